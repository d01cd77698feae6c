//! The provider registry: every platform we connect to (`providers/registry.toml`), and the
//! specs of those we support.

pub mod catalog;
pub mod hosts;
pub mod lexicon;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{include_dir, Dir};
use serde::Serialize;

pub use hosts::{HostMapError, PortalHosts};
pub use spec::{ProviderSpec, SpecError};

pub use catalog::{CatalogEntry, SupportStatus};

static EMBEDDED_PROVIDERS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/providers");

/// Where specs (or the kit's recorded pages) come from: compiled into the binary, or a folder an adapter developer
/// is editing.
#[derive(Debug, Clone)]
pub enum FileTree {
    Embedded(&'static Dir<'static>),
    Disk(PathBuf),
}

impl FileTree {
    pub fn embedded_providers() -> FileTree {
        FileTree::Embedded(&EMBEDDED_PROVIDERS)
    }

    /// Names of the files directly in `dir` (relative to the root), sorted.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            FileTree::Embedded(root) => {
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
            FileTree::Disk(root) => std::fs::read_dir(root.join(dir))
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
            FileTree::Embedded(root) => root.get_file(path)?.contents_utf8().map(str::to_string),
            FileTree::Disk(root) => std::fs::read_to_string(root.join(path)).ok(),
        }
    }

    /// How to name a file of this source in an error.
    pub fn display(&self, path: &str) -> String {
        match self {
            FileTree::Embedded(_) => format!("<embedded>/{path}"),
            FileTree::Disk(root) => root.join(path).display().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("unknown provider `{id}`; known providers: {known}")]
    Unknown { id: String, known: String },
    #[error("provider `{0}` is known but has no spec yet (`pairing-worker providers` lists the supported ones)")]
    NoSpec(String),
    #[error("cannot read providers folder {0}: {1}")]
    Folder(String, std::io::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub markets: Vec<String>,
    pub status: SupportStatus,
    pub languages: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    specs: BTreeMap<String, Arc<ProviderSpec>>,
    /// Every platform there is, supported or planned, in the catalog's order.
    catalog: Arc<Vec<CatalogEntry>>,
    /// The shared lexicon, walls and surfaces every spec was compiled with.
    pub shared: Arc<lexicon::Shared>,
}

impl Registry {
    /// The specs compiled into this binary.
    pub fn embedded() -> Result<Registry, RegistryError> {
        Registry::load(FileTree::embedded_providers())
    }

    /// This crate's own `providers/` folder on disk (tests, developers).
    pub fn from_source_tree() -> Result<Registry, RegistryError> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Registry::load(FileTree::Disk(root.join("providers")))
    }

    pub fn load(providers: FileTree) -> Result<Registry, RegistryError> {
        if let FileTree::Disk(dir) = &providers {
            std::fs::read_dir(dir)
                .map_err(|e| RegistryError::Folder(dir.display().to_string(), e))?;
        }
        // A folder with its own `lexicon/` is read whole; one with specs only (an adapter
        // developer's scratch folder) uses the lexicon compiled into the binary.
        let shared = Arc::new(match &providers {
            FileTree::Disk(_) if !providers.list("lexicon").is_empty() => {
                lexicon::Shared::load(&providers)?
            }
            _ => lexicon::Shared::embedded().clone(),
        });
        let catalog = match catalog::load(&providers)? {
            Some(catalog) => catalog,
            None => catalog::load(&FileTree::embedded_providers())?.unwrap_or_default(),
        };
        let mut specs = BTreeMap::new();
        for name in providers.list("") {
            let Some(stem) = name.strip_suffix(".toml") else {
                continue;
            };
            if name == catalog::CATALOG_FILE {
                continue;
            }
            let text = providers.read(&name).unwrap_or_default();
            let spec = ProviderSpec::parse_with(&providers.display(&name), &text, &shared)?;
            let listed = catalog.iter().find(|entry| entry.id == stem);
            let refusal = match listed.map(|entry| entry.status) {
                None => Some(format!(
                    "`{stem}` is not in {}: add a line for it",
                    catalog::CATALOG_FILE
                )),
                Some(SupportStatus::Planned) => Some(format!(
                    "`{stem}` has a spec but {} says `planned`: mark it `supported`",
                    catalog::CATALOG_FILE
                )),
                Some(SupportStatus::Supported) => None,
            };
            if let Some(message) = refusal {
                return Err(SpecError {
                    file: providers.display(&name),
                    field: "id".into(),
                    message,
                }
                .into());
            }
            // A host map is keyed by origin: one origin must name one provider's host.
            let shared_origin = specs.values().find_map(|other: &Arc<ProviderSpec>| {
                let theirs: Vec<&String> = other.hosts.values().collect();
                spec.hosts
                    .values()
                    .find(|origin| theirs.contains(origin))
                    .map(|origin| (other.id.clone(), origin.clone()))
            });
            if let Some((other, origin)) = shared_origin {
                return Err(SpecError {
                    file: providers.display(&name),
                    field: "hosts".into(),
                    message: format!(
                        "`{origin}` is already a host of `{other}`: one origin, one provider"
                    ),
                }
                .into());
            }
            specs.insert(spec.id.clone(), Arc::new(spec));
        }
        if let Some(missing) = catalog.iter().find(|entry| {
            entry.status == SupportStatus::Supported && !specs.contains_key(&entry.id)
        }) {
            return Err(SpecError {
                file: providers.display(catalog::CATALOG_FILE),
                field: "status".into(),
                message: format!(
                    "`{}` is `supported` but has no spec `{}.toml`",
                    missing.id, missing.id
                ),
            }
            .into());
        }
        Ok(Registry {
            specs,
            catalog: Arc::new(catalog),
            shared,
        })
    }

    pub fn get(&self, id: &str) -> Result<Arc<ProviderSpec>, RegistryError> {
        if let Some(spec) = self.specs.get(id) {
            return Ok(spec.clone());
        }
        if self.catalog.iter().any(|entry| entry.id == id) {
            Err(RegistryError::NoSpec(id.to_string()))
        } else {
            Err(RegistryError::Unknown {
                id: id.to_string(),
                known: self
                    .catalog
                    .iter()
                    .map(|entry| entry.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    pub fn supported(&self) -> impl Iterator<Item = &Arc<ProviderSpec>> {
        self.specs.values()
    }

    /// Every platform of the catalog, with what this registry has for it.
    pub fn list(&self) -> Vec<ProviderInfo> {
        self.catalog
            .iter()
            .map(|entry| {
                let spec = self.specs.get(&entry.id);
                ProviderInfo {
                    id: entry.id.clone(),
                    name: entry.name.clone(),
                    markets: entry.markets.clone(),
                    status: entry.status,
                    languages: spec.map(|s| s.languages.clone()).unwrap_or_default(),
                }
            })
            .collect()
    }
}
