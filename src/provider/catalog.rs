//! `providers/registry.toml`: which platforms exist (id, name, markets) and which are supported.
//! Data, so a new portal is a line, a spec and its pages — no rebuild.

use serde::{Deserialize, Serialize};

use super::{FileTree, SpecError};

pub const CATALOG_FILE: &str = "registry.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportStatus {
    /// A spec, recorded pages and a sandbox portal.
    Supported,
    /// Known to the dashboard; no spec yet.
    Planned,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    /// ISO 3166 country codes where merchants use the portal.
    #[serde(default)]
    pub markets: Vec<String>,
    pub status: SupportStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    provider: Vec<CatalogEntry>,
}

/// Reads and checks the catalog of `providers`; `None` when the folder has none (a scratch folder
/// of specs uses the catalog compiled into the binary).
pub fn load(providers: &FileTree) -> Result<Option<Vec<CatalogEntry>>, SpecError> {
    let Some(text) = providers.read(CATALOG_FILE) else {
        return Ok(None);
    };
    let error = |field: String, message: String| SpecError {
        file: providers.display(CATALOG_FILE),
        field,
        message,
    };
    let file: CatalogFile =
        toml::from_str(&text).map_err(|e| error("provider".into(), e.message().to_string()))?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, entry) in file.provider.iter().enumerate() {
        let valid_id = !entry.id.is_empty()
            && entry
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid_id {
            let message = "an id is lower-case letters and digits (it names the spec file)";
            return Err(error(format!("provider[{i}].id"), message.into()));
        }
        if !seen.insert(entry.id.clone()) {
            let message = format!("`{}` is listed twice", entry.id);
            return Err(error(format!("provider[{i}].id"), message));
        }
        if let Some(bad) = entry
            .markets
            .iter()
            .find(|m| m.len() != 2 || !m.chars().all(|c| c.is_ascii_uppercase()))
        {
            let message =
                format!("`{bad}` is not a two-letter country code (ISO 3166, upper case)");
            return Err(error(format!("provider[{i}].markets"), message));
        }
    }
    Ok(Some(file.provider))
}
