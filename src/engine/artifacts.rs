//! What an unrecognised page leaves behind for the adapter developer: the redacted HTML, a
//! screenshot and where it was, and how to turn that into a recorded page.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::fixtures::Expected;

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

/// Copies an artifact's page into `fixtures/<provider>/<case>.html` with an expected file whose
/// `page` says FILL_ME, so the fixture test fails until the developer classifies it.
pub fn promote(
    artifact: &Path,
    provider: &str,
    case: &str,
    fixtures_root: &Path,
) -> anyhow::Result<PathBuf> {
    if case.is_empty()
        || !case
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        anyhow::bail!("--case `{case}`: use letters, digits, `_` and `-` only");
    }
    let meta_path = artifact.join(META_FILE);
    let meta: ArtifactMeta =
        serde_json::from_slice(&std::fs::read(&meta_path).with_context(|| {
            format!(
                "{} is not an artifact folder (no {META_FILE})",
                artifact.display()
            )
        })?)
        .with_context(|| format!("{} is not valid artifact metadata", meta_path.display()))?;
    if meta.provider != provider {
        anyhow::bail!("the artifact is from `{}`, not `{provider}`", meta.provider);
    }
    let html = std::fs::read_to_string(artifact.join(PAGE_FILE))
        .with_context(|| format!("{} has no {PAGE_FILE}", artifact.display()))?;
    let language = crate::engine::classify::Snapshot::parse(&meta.url, &html)
        .language()
        .and_then(|l| l.split(['-', '_']).next().map(str::to_ascii_lowercase))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en".into());
    let dir = fixtures_root.join(provider);
    std::fs::create_dir_all(&dir)?;
    let page_path = dir.join(format!("{case}.html"));
    if page_path.exists() {
        anyhow::bail!(
            "{} exists already: pick another --case",
            page_path.display()
        );
    }
    let expected = Expected {
        url: meta.url,
        page: "FILL_ME".into(),
        overlays: vec![],
        outcome: None,
        raw_message: None,
        store_ids: vec![],
        code_channel: None,
        destination: None,
        language,
        status: meta.status.unwrap_or(200),
        source: None,
        note: Some(format!(
            "from an unrecognised page: {}; add a page rule, then set `page` and `outcome`",
            meta.error
        )),
    };
    std::fs::write(&page_path, html)?;
    std::fs::write(
        dir.join(format!("{case}.toml")),
        toml::to_string_pretty(&expected)?,
    )?;
    Ok(page_path)
}
