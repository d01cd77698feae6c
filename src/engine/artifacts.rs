//! What an unrecognised page leaves behind for the adapter developer: the redacted HTML, a
//! screenshot and where it was, and how to turn that into a recorded page.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `meta.json` of an artifact folder.
#[derive(Debug, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub provider: String,
    /// The portal's real URL (a sandbox URL is mapped back to the portal host it stands for).
    pub url: String,
    pub error: String,
    pub saved_at: chrono::DateTime<chrono::Utc>,
    /// The HTTP status the page was served with, where the browser reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

pub const PAGE_FILE: &str = "page.html";
pub const SCREENSHOT_FILE: &str = "screenshot.png";
pub const META_FILE: &str = "meta.json";

/// Writes an artifact folder under `root`. The HTML must already be redacted.
pub fn save(
    root: &Path,
    meta: &ArtifactMeta,
    redacted_html: &str,
    screenshot: Option<&[u8]>,
) -> std::io::Result<PathBuf> {
    let stamp = meta.saved_at.format("%Y%m%dT%H%M%S%.3fZ");
    let dir = root.join(format!(
        "{}-{stamp}-{:04x}",
        meta.provider,
        rand::random::<u16>()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(PAGE_FILE), redacted_html)?;
    if let Some(png) = screenshot {
        std::fs::write(dir.join(SCREENSHOT_FILE), png)?;
    }
    std::fs::write(
        dir.join(META_FILE),
        serde_json::to_vec_pretty(meta).expect("meta serialises"),
    )?;
    Ok(dir)
}
