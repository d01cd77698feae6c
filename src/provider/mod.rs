//! The provider registry: all fifteen platforms we connect to, and the specs of those we support.

pub mod checklist;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{include_dir, Dir};
use serde::Serialize;

pub use spec::{ProviderSpec, SpecError};

/// Every platform the dashboard can connect, known from day one even without a spec.
pub const KNOWN_PROVIDERS: &[(&str, &str)] = &[
    ("ubereats", "Uber Eats"),
    ("doordash", "DoorDash"),
    ("grubhub", "Grubhub"),
    ("skipthedishes", "SkipTheDishes"),
    ("deliveroo", "Deliveroo"),
    ("justeat", "Just Eat"),
    ("coupangeats", "Coupang Eats"),
    ("baemin", "Baemin"),
    ("rappi", "Rappi"),
    ("chownow", "ChowNow"),
    ("yogiyo", "Yogiyo"),
    ("jahez", "Jahez"),
    ("glovo", "Glovo"),
    ("takeaway", "Takeaway Web"),
    ("foodpanda", "Foodpanda Web"),
];

static EMBEDDED_PROVIDERS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/providers");
static EMBEDDED_FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/fixtures");

/// Where specs or fixtures come from: compiled into the binary, or a folder an adapter developer
/// is editing.
#[derive(Debug, Clone)]
pub enum Files {
    Embedded(&'static Dir<'static>),
    Disk(PathBuf),
}

impl Files {
    pub fn embedded_providers() -> Files {
        Files::Embedded(&EMBEDDED_PROVIDERS)
    }

    pub fn embedded_fixtures() -> Files {
        Files::Embedded(&EMBEDDED_FIXTURES)
    }

    /// Names of the files directly in `dir` (relative to the root), sorted.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Files::Embedded(root) => {
                let entries = if dir.is_empty() {
                    Some(root.entries())
                } else {
                    root.get_dir(dir).map(|d| d.entries())
                };
                entries
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| e.path().file_name()?.to_str().map(str::to_string))
                    .collect()
            }
            Files::Disk(root) => std::fs::read_dir(root.join(dir))
                .map(|rd| {
                    rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        names.sort();
        names
    }

    pub fn read(&self, path: &str) -> Option<String> {
        match self {
            Files::Embedded(root) => root.get_file(path)?.contents_utf8().map(str::to_string),
            Files::Disk(root) => std::fs::read_to_string(root.join(path)).ok(),
        }
    }

    /// How to name a file of this source in an error.
    pub fn display(&self, path: &str) -> String {
        match self {
            Files::Embedded(_) => format!("<embedded>/{path}"),
            Files::Disk(root) => root.join(path).display().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("unknown provider `{0}`; known providers: {known}", known = KNOWN_PROVIDERS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("provider `{0}` is known but has no spec yet (`pairing-worker providers` lists the supported ones)")]
    NoSpec(String),
    #[error("cannot read providers folder {0}: {1}")]
    Folder(String, std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportStatus {
    /// A spec, recorded pages and a sandbox portal.
    Supported,
    /// Known to the registry; no spec yet.
    Planned,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub id: &'static str,
    pub name: &'static str,
    pub status: SupportStatus,
    pub languages: Vec<String>,
    pub recorded_pages: usize,
}

#[derive(Debug, Clone)]
pub struct Registry {
    specs: BTreeMap<String, Arc<ProviderSpec>>,
    pub fixtures: Files,
    /// The shared lexicon, walls and surfaces every spec was compiled with.
    pub shared: Arc<crate::lexicon::Shared>,
}

impl Registry {
    /// The specs and fixtures compiled into this binary.
    pub fn embedded() -> Result<Registry, RegistryError> {
        Registry::load(Files::embedded_providers(), Files::embedded_fixtures())
    }

    /// This crate's own `providers/` and `fixtures/` folders on disk (tests, developers).
    pub fn from_source_tree() -> Result<Registry, RegistryError> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Registry::load(
            Files::Disk(root.join("providers")),
            Files::Disk(root.join("fixtures")),
        )
    }

    pub fn load(providers: Files, fixtures: Files) -> Result<Registry, RegistryError> {
        if let Files::Disk(dir) = &providers {
            std::fs::read_dir(dir)
                .map_err(|e| RegistryError::Folder(dir.display().to_string(), e))?;
        }
        // A folder with its own `lexicon/` is read whole; one with specs only (an adapter
        // developer's scratch folder) uses the lexicon compiled into the binary.
        let shared = Arc::new(match &providers {
            Files::Disk(_) if !providers.list("lexicon").is_empty() => {
                crate::lexicon::Shared::load(&providers)?
            }
            _ => crate::lexicon::Shared::embedded().clone(),
        });
        let mut specs = BTreeMap::new();
        for name in providers.list("") {
            let Some(stem) = name.strip_suffix(".toml") else {
                continue;
            };
            let text = providers.read(&name).unwrap_or_default();
            let spec = ProviderSpec::parse_with(&providers.display(&name), &text, &shared)?;
            if !KNOWN_PROVIDERS.iter().any(|(id, _)| *id == stem) {
                return Err(SpecError {
                    file: providers.display(&name),
                    field: "id".into(),
                    message: format!("`{stem}` is not one of the known providers"),
                }
                .into());
            }
            specs.insert(spec.id.clone(), Arc::new(spec));
        }
        Ok(Registry {
            specs,
            fixtures,
            shared,
        })
    }

    pub fn get(&self, id: &str) -> Result<Arc<ProviderSpec>, RegistryError> {
        if let Some(spec) = self.specs.get(id) {
            return Ok(spec.clone());
        }
        if KNOWN_PROVIDERS.iter().any(|(known, _)| *known == id) {
            Err(RegistryError::NoSpec(id.to_string()))
        } else {
            Err(RegistryError::Unknown(id.to_string()))
        }
    }

    pub fn supported(&self) -> impl Iterator<Item = &Arc<ProviderSpec>> {
        self.specs.values()
    }

    pub fn list(&self) -> Vec<ProviderInfo> {
        KNOWN_PROVIDERS
            .iter()
            .map(|(id, name)| {
                let spec = self.specs.get(*id);
                ProviderInfo {
                    id,
                    name,
                    status: if spec.is_some() {
                        SupportStatus::Supported
                    } else {
                        SupportStatus::Planned
                    },
                    languages: spec.map(|s| s.languages.clone()).unwrap_or_default(),
                    recorded_pages: self
                        .fixtures
                        .list(id)
                        .iter()
                        .filter(|f| f.ends_with(".html"))
                        .count(),
                }
            })
            .collect()
    }
}
