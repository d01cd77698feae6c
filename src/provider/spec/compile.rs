//! Checks a spec file and compiles it: selectors and patterns parsed, host keys and page names
//! resolved, the shared lexicon applied; every mistake named by file and field.

use super::file::*;
use super::*;

pub(super) struct Compiler<'a> {
    pub(super) file: &'a str,
}

impl Compile for Compiler<'_> {
    fn css(&self, at: &str, source: &str) -> Result<Css, String> {
        parse_css(source).map_err(|e| format!("{at}: {e}"))
    }
    fn regex(&self, at: &str, source: &str) -> Result<Regex, String> {
        Regex::new(source).map_err(|e| format!("{at}: invalid regex `{source}`: {e}"))
    }
}

impl Compiler<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn css(&self, field: &str, source: &str) -> Result<Css, SpecError> {
        parse_css(source).map_err(|e| self.err(field, e))
    }

    fn css_list(&self, field: &str, sources: &[String]) -> Result<Vec<Css>, SpecError> {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.css(&format!("{field}[{i}]"), s))
            .collect()
    }

    fn regex(&self, field: &str, source: &str) -> Result<Regex, SpecError> {
        Regex::new(source).map_err(|e| self.err(field, format!("invalid regex `{source}`: {e}")))
    }

    fn regex_list(&self, field: &str, sources: &[String]) -> Result<Vec<Regex>, SpecError> {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.regex(&format!("{field}[{i}]"), s))
            .collect()
    }

    fn field(&self, at: &str, raw: FieldFile) -> Result<Field, SpecError> {
        let selector = raw
            .selector
            .as_deref()
            .map(|s| self.css(&format!("{at}.selector"), s))
            .transpose()?;
        Ok(Field {
            selector,
            attr: raw.attr,
        })
    }

    pub(super) fn spec(&self, raw: SpecFile, shared: &Shared) -> Result<ProviderSpec, SpecError> {
        let expected_id = std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str());
        if let Some(stem) = expected_id {
            if stem != raw.id {
                return Err(self.err(
                    "id",
                    format!("`{}` does not match the file name `{stem}`", raw.id),
                ));
            }
        }
        url::Url::parse(&raw.support_url).map_err(|e| {
            self.err(
                "support_url",
                format!("`{}` is not a URL: {e}", raw.support_url),
            )
        })?;
        if raw.hosts.is_empty() {
            return Err(self.err("hosts", "at least one host is needed"));
        }
        for (key, origin) in &raw.hosts {
            let parsed = url::Url::parse(origin).map_err(|e| {
                self.err(
                    format!("hosts.{key}"),
                    format!("`{origin}` is not a URL: {e}"),
                )
            })?;
            if parsed.path() != "/" || origin.ends_with('/') {
                return Err(self.err(
                    format!("hosts.{key}"),
                    "give the origin only, without a path or trailing slash",
                ));
            }
        }
        let (entry_host, entry_path) = raw
            .entry
            .split_once(':')
            .filter(|(host, path)| raw.hosts.contains_key(*host) && path.starts_with('/'))
            .ok_or_else(|| {
                self.err(
                    "entry",
                    format!(
                        "`{}` must be `host_key:/path` with a host from [hosts]",
                        raw.entry
                    ),
                )
            })?;
        if raw.pages.is_empty() {
            return Err(self.err("pages", "a provider needs at least one page rule"));
        }

        let overlays = raw
            .overlays
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let at = format!("overlays[{i}]");
                if o.present.is_empty() {
                    return Err(self.err(
                        format!("{at}.present"),
                        "an overlay needs at least one selector",
                    ));
                }
                Ok(OverlayRule {
                    present: self.css_list(&format!("{at}.present"), &o.present)?,
                    dismiss: self.css(&format!("{at}.dismiss"), &o.dismiss)?,
                    name: o.name,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut pages = Vec::new();
        for (i, p) in raw.pages.into_iter().enumerate() {
            let at = format!("pages[{i}] ({})", p.name);
            pages.push(self.page(&at, p, &raw.hosts)?);
        }
        let mut names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(self.err("pages", format!("two page rules are named `{}`", dup[0])));
        }

        let mut external_steps = BTreeMap::new();
        for (reason, steps) in raw.external_steps {
            let at = format!("external_steps.{reason}");
            if !steps.steps.contains_key("en") {
                return Err(self.err(&at, "steps need at least an `en` text"));
            }
            external_steps.insert(
                reason,
                ExternalSteps {
                    support_url: steps.support_url.unwrap_or_else(|| raw.support_url.clone()),
                    steps: steps.steps,
                },
            );
        }

        let email_code = raw
            .email_code
            .map(|e| {
                Ok::<_, SpecError>(crate::codes::EmailCodeRule {
                    sender: self.regex("email_code.sender", &e.sender)?,
                    pattern: self.regex("email_code.pattern", &e.pattern)?,
                })
            })
            .transpose()?;
        let lexicon = shared
            .with_wording(&raw.lexicon)
            .map_err(|e| self.err("lexicon", e.to_string()))?;
        let own_surfaces = match &raw.surfaces {
            Some(file) => compile_surfaces(file, "surfaces", self).map_err(|e| self.err("", e))?,
            None => Surfaces::default(),
        };
        let spec = ProviderSpec {
            id: raw.id,
            name: raw.name,
            portal: raw.portal,
            languages: raw.languages,
            support_url: raw.support_url,
            hosts: raw.hosts,
            entry_host: entry_host.to_string(),
            entry_path: entry_path.to_string(),
            step_timeout_ms: raw.step_timeout_ms,
            input: raw.input,
            overlays,
            pages,
            external_steps,
            email_code,
            lexicon,
            walls: shared.walls.clone(),
            surfaces: shared.surfaces.with(&own_surfaces),
        };
        // Every outcome the merchant must fix outside our product needs steps to show.
        for outcome in spec.reachable_outcomes() {
            if outcome.decision().resolution == Resolution::ExternalSteps {
                let reason = outcome.reason().unwrap_or_default();
                if !spec.external_steps.contains_key(reason) {
                    return Err(self.err(
                        format!("external_steps.{reason}"),
                        format!("the spec can end in `{outcome}`, which needs external steps for the merchant"),
                    ));
                }
            }
        }
        // A paired page with no store list would be a success we cannot check.
        Ok(spec)
    }

    fn page(
        &self,
        at: &str,
        p: PageFile,
        hosts: &BTreeMap<String, String>,
    ) -> Result<PageRule, SpecError> {
        if let Some(host) = &p.host {
            if !hosts.contains_key(host) {
                return Err(self.err(format!("{at}.host"), format!("`{host}` is not in [hosts]")));
            }
        }
        if p.present.is_empty() && p.text.is_empty() {
            return Err(self.err(
                at,
                "a page rule needs `present` selectors or `text` patterns, not only a URL",
            ));
        }
        let ends = p.outcome.is_some();
        let kinds = [ends, p.code.is_some(), !p.actions.is_empty()]
            .iter()
            .filter(|b| **b)
            .count();
        if kinds != 1 {
            return Err(self.err(
                at,
                "a page rule needs exactly one of `outcome`, `code` or `actions`",
            ));
        }
        if p.outcome == Some(Outcome::Paired) && p.stores.is_none() {
            return Err(self.err(
                format!("{at}.stores"),
                "a page that ends `paired` must say how to read the store list",
            ));
        }
        if p.stores.is_some() && p.outcome != Some(Outcome::Paired) {
            return Err(self.err(
                format!("{at}.stores"),
                "only a page that ends `paired` reads stores",
            ));
        }
        let signals = p
            .signals
            .into_iter()
            .enumerate()
            .map(|(j, s)| {
                let sat = format!("{at}.signals[{j}]");
                if s.selector.is_none() && s.text.is_empty() && s.concept.is_none() {
                    return Err(self.err(
                        &sat,
                        "a signal needs a `selector`, `text` patterns, a `concept`, or a selector with either",
                    ));
                }
                let outcome = s
                    .outcome
                    .or_else(|| s.concept.and_then(Concept::outcome))
                    .ok_or_else(|| {
                        self.err(
                            &sat,
                            "a signal needs an `outcome` (its concept decides none)",
                        )
                    })?;
                Ok(Signal {
                    outcome,
                    concept: s.concept,
                    selector: s
                        .selector
                        .as_deref()
                        .map(|c| self.css(&format!("{sat}.selector"), c))
                        .transpose()?,
                    text: self.regex_list(&format!("{sat}.text"), &s.text)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let actions = p
            .actions
            .into_iter()
            .enumerate()
            .map(|(j, a)| {
                let aat = format!("{at}.actions[{j}]");
                match (a.fill, a.with, a.click) {
                    (Some(fill), Some(value), None) => {
                        Ok(Action::Fill { target: self.css(&format!("{aat}.fill"), &fill)?, value })
                    }
                    (None, None, Some(click)) => Ok(Action::Click { target: self.css(&format!("{aat}.click"), &click)? }),
                    _ => Err(self.err(aat, "an action is either `{ fill = CSS, with = \"username\"|\"password\" }` or `{ click = CSS }`")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let code = p
            .code
            .map(|c| {
                let cat = format!("{at}.code");
                Ok::<_, SpecError>(CodePage {
                    inputs: self.css(&format!("{cat}.inputs"), &c.inputs)?,
                    submit: self.css(&format!("{cat}.submit"), &c.submit)?,
                    channel: c.channel,
                    destination: c
                        .destination
                        .as_deref()
                        .map(|d| self.css(&format!("{cat}.destination"), d))
                        .transpose()?,
                    length: c.length,
                    channels: c
                        .channels
                        .into_iter()
                        .enumerate()
                        .map(|(k, ch)| {
                            Ok((
                                ch.channel,
                                self.regex_list(&format!("{cat}.channels[{k}].text"), &ch.text)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, SpecError>>()?,
                })
            })
            .transpose()?;
        let stores = p
            .stores
            .map(|s| {
                let sat = format!("{at}.stores");
                Ok::<_, SpecError>(StoreList {
                    item: self.css(&format!("{sat}.item"), &s.item)?,
                    id: self.field(&format!("{sat}.id"), s.id)?,
                    name: self.field(&format!("{sat}.name"), s.name)?,
                    brand: s
                        .brand
                        .map(|f| self.field(&format!("{sat}.brand"), f))
                        .transpose()?,
                    status: s
                        .status
                        .map(|f| self.field(&format!("{sat}.status"), f))
                        .transpose()?,
                })
            })
            .transpose()?;
        Ok(PageRule {
            host: p.host,
            url: self.regex(&format!("{at}.url"), &p.url)?,
            present: self.css_list(&format!("{at}.present"), &p.present)?,
            absent: self.css_list(&format!("{at}.absent"), &p.absent)?,
            text: self.regex_list(&format!("{at}.text"), &p.text)?,
            raw_message: p
                .raw_message
                .as_deref()
                .map(|r| self.css(&format!("{at}.raw_message"), r))
                .transpose()?,
            name: p.name,
            signals,
            actions,
            code,
            outcome: p.outcome,
            stores,
        })
    }
}
