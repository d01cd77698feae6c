//! Fixture promotion: an unrecognised page's artifact becomes a recorded page to classify.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::fixtures::Expected;
use crate::engine::artifacts::{ArtifactMeta, META_FILE, PAGE_FILE};

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
