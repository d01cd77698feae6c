//! The spec file as written: what `providers/<id>.toml` may say, field by field (unknown fields
//! are refused), before it is checked and compiled.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::FillValue;
use crate::outcome::{self, CodeChannel, Outcome};
use crate::provider::lexicon::walls::SurfacesFile;
use crate::provider::lexicon::Concept;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpecFile {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) portal: Option<String>,
    pub(super) languages: Vec<String>,
    pub(super) support_url: String,
    /// Host key -> origin, e.g. `hub = "https://partner-hub.deliveroo.com"`.
    pub(super) hosts: BTreeMap<String, String>,
    /// Where the login starts: `host_key:/path`.
    pub(super) entry: String,
    /// The longest the engine waits for a page to change after acting.
    #[serde(default = "default_step_timeout_ms")]
    pub(super) step_timeout_ms: u64,
    /// How fields are filled and buttons clicked: `script` (default, one call each) or `native`
    /// (key events and pointer clicks, for a portal that only reacts to trusted input).
    #[serde(default)]
    pub(super) input: crate::browser::Input,
    #[serde(default)]
    pub(super) overlays: Vec<OverlayFile>,
    pub(super) pages: Vec<PageFile>,
    #[serde(default)]
    pub(super) external_steps: BTreeMap<String, ExternalStepsFile>,
    /// How the portal's code emails look, for reading codes from the merchant's mailbox.
    #[serde(default)]
    pub(super) email_code: Option<EmailCodeFile>,
    /// The portal's own wording, on top of the shared lexicon: language -> concept -> expressions.
    #[serde(default)]
    pub(super) lexicon: BTreeMap<String, BTreeMap<Concept, Vec<String>>>,
    /// Where this portal shows messages, on top of the shared surfaces.
    #[serde(default)]
    pub(super) surfaces: Option<SurfacesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmailCodeFile {
    pub(super) sender: String,
    pub(super) pattern: String,
}

pub(super) fn default_step_timeout_ms() -> u64 {
    15_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OverlayFile {
    pub(super) name: String,
    pub(super) present: Vec<String>,
    pub(super) dismiss: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) host: Option<String>,
    pub(super) url: String,
    #[serde(default)]
    pub(super) present: Vec<String>,
    #[serde(default)]
    pub(super) absent: Vec<String>,
    #[serde(default)]
    pub(super) text: Vec<String>,
    #[serde(default)]
    pub(super) signals: Vec<SignalFile>,
    #[serde(default)]
    pub(super) actions: Vec<ActionFile>,
    #[serde(default)]
    pub(super) code: Option<CodeFile>,
    #[serde(default, with = "outcome::compact::option")]
    pub(super) outcome: Option<Outcome>,
    /// Selector whose text is the portal's own message, kept for operators.
    #[serde(default)]
    pub(super) raw_message: Option<String>,
    #[serde(default)]
    pub(super) stores: Option<StoresFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignalFile {
    /// The outcome; defaults to the concept's.
    #[serde(default, with = "outcome::compact::option")]
    pub(super) outcome: Option<Outcome>,
    #[serde(default)]
    pub(super) selector: Option<String>,
    #[serde(default)]
    pub(super) text: Vec<String>,
    /// A lexicon concept the element's text must express (in any language).
    #[serde(default)]
    pub(super) concept: Option<Concept>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionFile {
    #[serde(default)]
    pub(super) fill: Option<String>,
    #[serde(default)]
    pub(super) with: Option<FillValue>,
    #[serde(default)]
    pub(super) click: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeFile {
    pub(super) inputs: String,
    pub(super) submit: String,
    pub(super) channel: CodeChannel,
    #[serde(default)]
    pub(super) destination: Option<String>,
    #[serde(default)]
    pub(super) length: Option<usize>,
    #[serde(default)]
    pub(super) channels: Vec<ChannelFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelFile {
    pub(super) channel: CodeChannel,
    pub(super) text: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoresFile {
    pub(super) item: String,
    pub(super) id: FieldFile,
    pub(super) name: FieldFile,
    #[serde(default)]
    pub(super) brand: Option<FieldFile>,
    #[serde(default)]
    pub(super) status: Option<FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldFile {
    #[serde(default)]
    pub(super) selector: Option<String>,
    #[serde(default)]
    pub(super) attr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExternalStepsFile {
    #[serde(default)]
    pub(super) support_url: Option<String>,
    /// Language -> ordered steps shown to the merchant.
    pub(super) steps: BTreeMap<String, Vec<String>>,
}
