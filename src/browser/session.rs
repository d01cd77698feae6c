//! One browser session: reading the rendered page, filling and clicking as a person would,
//! scrubbing secrets before anything is saved, and closing (always).

use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use super::{contexts, BrowserError, Input};

/// The page as the browser renders it.
pub struct PageSnapshot {
    pub url: String,
    /// The DOM, with everything not rendered marked `hidden`.
    pub html: String,
    /// Changes with every document load (a reload is a new document).
    pub document: String,
    /// The HTTP status of the document's response, where the browser reports it.
    pub status: Option<u16>,
}

/// One browser session. Always call [`Session::close`]; dropping it closes in the background.
pub struct Session {
    pub(super) client: Option<Client>,
    pub(super) timeout: Duration,
    pub(super) owner: Owner,
    /// The local chromedriver generation it was opened on (an older one's sessions are dead).
    pub(super) generation: u64,
}

impl Session {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// What the session owns, for releasing it (an empty owner is left behind).
    fn take_owner(&mut self) -> Owner {
        std::mem::replace(
            &mut self.owner,
            Owner::Browser {
                _profile: None,
                slot: None,
            },
        )
    }
}

/// What a session's WebDriver client is attached to, and so what closing it means.
pub(super) enum Owner {
    /// Its own Chromium: deleting the WebDriver session ends the browser, then the profile goes
    /// and the place on the endpoint is given back.
    Browser {
        _profile: Option<tempfile::TempDir>,
        slot: Option<super::GridSlot>,
    },
    /// A browser context in the shared Chromium: disposing of the context closes its window and
    /// destroys its cookies, storage and cache; the attached WebDriver session is reused.
    Context {
        host: Arc<contexts::Host>,
        context: String,
    },
}

/// What the page looked like: its URL and its DOM with everything the browser does not render
/// marked `hidden`, so the classifier sees what a person sees.
const SNAPSHOT_JS: &str = r#"
const live = document.querySelectorAll('body *');
const clone = document.documentElement.cloneNode(true);
const copies = clone.querySelectorAll('body *');
for (let i = 0; i < live.length; i++) {
  const el = live[i];
  if (el.checkVisibility && !el.checkVisibility({visibilityProperty: true}) && copies[i]) {
    copies[i].setAttribute('hidden', '');
  }
}
const nav = performance.getEntriesByType('navigation')[0];
return [location.href, clone.outerHTML, String(performance.timeOrigin), nav ? (nav.responseStatus || 0) : 0];
"#;

/// WebDriver's key for an element reference in script results.
const WEBDRIVER_ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The first element matching `arguments[0]` that the browser renders, or null.
const FIRST_VISIBLE_JS: &str = r#"
for (const el of document.querySelectorAll(arguments[0])) {
  if (!el.checkVisibility || el.checkVisibility({visibilityProperty: true})) return el;
}
return null;
"#;

/// Clicks the first rendered element matching `arguments[0]`; false when there is none.
const CLICK_JS: &str = r#"
for (const el of document.querySelectorAll(arguments[0])) {
  if (!el.checkVisibility || el.checkVisibility({visibilityProperty: true})) {
    el.click();
    return true;
  }
}
return false;
"#;

/// How many elements matching `arguments[0]` the browser renders.
const COUNT_VISIBLE_JS: &str = r#"
return [...document.querySelectorAll(arguments[0])]
  .filter(el => !el.checkVisibility || el.checkVisibility({visibilityProperty: true})).length;
"#;

/// Puts `arguments[1][i]` into the i-th rendered field matching `arguments[0]` through the
/// prototype's value setter (so frameworks that track the property see it) and fires `input` and
/// `change`, as a paste does. False when there are fewer fields than values.
const FILL_JS: &str = r#"
const values = arguments[1];
const fields = [...document.querySelectorAll(arguments[0])]
  .filter(el => !el.checkVisibility || el.checkVisibility({visibilityProperty: true}));
if (fields.length < values.length) return false;
values.forEach((value, i) => {
  const el = fields[i];
  el.focus();
  const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value')?.set;
  if (setter) { setter.call(el, value); } else { el.value = value; }
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
});
return true;
"#;

/// Resolves on the first DOM mutation, when the document starts to unload (a submitted form:
/// the next command then waits for the new page), or after `arguments[0]` ms.
const MUTATION_JS: &str = r#"
const finish = arguments[arguments.length - 1];
const ms = arguments[0];
let settled = false;
const done = (changed) => {
  if (settled) return;
  settled = true;
  observer.disconnect();
  removeEventListener('beforeunload', leaving);
  removeEventListener('pagehide', leaving);
  finish(changed);
};
const leaving = () => done(true);
const observer = new MutationObserver(() => done(true));
observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
addEventListener('beforeunload', leaving);
addEventListener('pagehide', leaving);
setTimeout(() => done(false), ms);
"#;

/// Before a screenshot: clears typed values and replaces every spelling in `arguments[0]`
/// (longest first), ignoring case, in text, comments and attribute values of the document,
/// its open shadow roots and same-origin frames (the title is a text node too). Returns how
/// many it replaced.
const SCRUB_JS: &str = r#"
const spellings = arguments[0];
let replaced = 0;
const quote = s => s.replace(/[\\^$.*+?()[\]{}|\/-]/g, '\\$&');
const pattern = spellings.length ? new RegExp(spellings.map(quote).join('|'), 'gi') : null;
const clean = v => (pattern && v) ? v.replace(pattern, () => { replaced++; return '[REDACTED]'; }) : v;
const labels = new Set(['button', 'submit', 'reset']);
const visit = root => {
  const walker = document.createTreeWalker(root,
    NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT | NodeFilter.SHOW_COMMENT);
  for (let node = walker.currentNode; node; node = walker.nextNode()) {
    if (node.nodeType !== Node.ELEMENT_NODE) {
      const text = clean(node.nodeValue);
      if (text !== node.nodeValue) node.nodeValue = text;
      continue;
    }
    for (const attr of [...node.attributes]) {
      const value = clean(attr.value);
      if (value !== attr.value) attr.value = value;
    }
    const tag = node.tagName;
    if (tag === 'INPUT' && labels.has(node.type)) node.value = clean(node.value);
    else if (tag === 'INPUT' || tag === 'TEXTAREA') node.value = '';
    if (node.shadowRoot) visit(node.shadowRoot);
    if (tag === 'IFRAME' || tag === 'FRAME') {
      try { if (node.contentDocument) visit(node.contentDocument); } catch (e) {}
    }
  }
};
visit(document);
return replaced;
"#;

impl Session {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("session used after close")
    }

    async fn run<T>(
        &self,
        command: &'static str,
        fut: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> Result<T, BrowserError> {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, fut).await;
        tracing::trace!(
            command,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "webdriver"
        );
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(BrowserError::Command {
                command,
                reason: e.to_string(),
            }),
            Err(_) => Err(BrowserError::Timeout {
                command,
                timeout: self.timeout,
            }),
        }
    }

    /// Runs a script in the page (`arguments[i]` are `args`) and returns its result: for a
    /// provider's code hook, where a spec cannot say it.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, BrowserError> {
        self.run("execute", self.client().execute(script, args))
            .await
    }

    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.run("goto", self.client().goto(url)).await
    }

    /// The page as rendered.
    pub async fn snapshot(&self) -> Result<PageSnapshot, BrowserError> {
        let value = self
            .run("snapshot", self.client().execute(SNAPSHOT_JS, vec![]))
            .await?;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match value {
            Value::Array(parts) if parts.len() == 4 => Ok(PageSnapshot {
                url: text(&parts[0]),
                html: text(&parts[1]),
                document: text(&parts[2]),
                status: parts[3]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| *s > 0),
            }),
            other => Err(BrowserError::Command {
                command: "snapshot",
                reason: format!("unexpected result {other}"),
            }),
        }
    }

    /// Waits up to `max` for any DOM change; a navigation (the script dies with the document)
    /// counts as a change.
    pub async fn wait_for_mutation(&self, max: Duration) -> Result<bool, BrowserError> {
        let ms = max.as_millis() as u64;
        match self
            .run(
                "wait_for_mutation",
                self.client().execute_async(MUTATION_JS, vec![json!(ms)]),
            )
            .await
        {
            Ok(value) => Ok(value.as_bool().unwrap_or(true)),
            Err(BrowserError::Command { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The first displayed element matching `css`, found in one script call (one `is_displayed`
    /// round trip per candidate cost 3–70 ms each).
    async fn first_visible(
        &self,
        css: &str,
    ) -> Result<fantoccini::elements::Element, BrowserError> {
        let found = self
            .run(
                "find_visible",
                self.client().execute(FIRST_VISIBLE_JS, vec![json!(css)]),
            )
            .await?;
        let id = found
            .as_object()
            .and_then(|element| element.get(WEBDRIVER_ELEMENT_KEY))
            .and_then(Value::as_str)
            .ok_or_else(|| BrowserError::NoElement {
                command: "find",
                css: css.to_string(),
            })?;
        Ok(fantoccini::elements::Element::from_element_id(
            self.client().clone(),
            id.to_string().into(),
        ))
    }

    /// How many displayed elements match `css` (code boxes).
    pub async fn count_visible(&self, css: &str) -> Result<usize, BrowserError> {
        let count = self
            .run(
                "count_visible",
                self.client().execute(COUNT_VISIBLE_JS, vec![json!(css)]),
            )
            .await?;
        Ok(count.as_u64().unwrap_or(0) as usize)
    }

    /// Sets the value of the first displayed field matching `css`; see [`Input`] for how.
    pub async fn fill(&self, css: &str, text: &str, input: Input) -> Result<(), BrowserError> {
        self.fill_boxes(css, &[text], input).await
    }

    /// Puts one character into each displayed field matching `css` (split code inputs).
    pub async fn fill_each(
        &self,
        css: &str,
        chars: &str,
        input: Input,
    ) -> Result<(), BrowserError> {
        let chars: Vec<String> = chars.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        self.fill_boxes(css, &chars, input).await
    }

    async fn fill_boxes(
        &self,
        css: &str,
        values: &[&str],
        input: Input,
    ) -> Result<(), BrowserError> {
        let missing = || BrowserError::NoElement {
            command: "fill",
            css: css.to_string(),
        };
        match input {
            Input::Script => {
                let filled = self
                    .run(
                        "fill",
                        self.client()
                            .execute(FILL_JS, vec![json!(css), json!(values)]),
                    )
                    .await?;
                if filled.as_bool() != Some(true) {
                    return Err(missing());
                }
            }
            Input::Native => {
                let all = self
                    .run("find_all", self.client().find_all(Locator::Css(css)))
                    .await?;
                let mut shown = Vec::with_capacity(values.len());
                for el in all {
                    if shown.len() < values.len()
                        && self.run("is_displayed", el.is_displayed()).await?
                    {
                        shown.push(el);
                    }
                }
                if shown.len() < values.len() {
                    return Err(missing());
                }
                for (el, value) in shown.iter().zip(values) {
                    self.run("clear", el.clear()).await?;
                    self.run("send_keys", el.send_keys(value)).await?;
                }
            }
        }
        Ok(())
    }

    /// Clicks the first displayed element matching `css`; see [`Input`] for how.
    pub async fn click(&self, css: &str, input: Input) -> Result<(), BrowserError> {
        match input {
            Input::Script => {
                let clicked = self
                    .run("click", self.client().execute(CLICK_JS, vec![json!(css)]))
                    .await?;
                if clicked.as_bool() != Some(true) {
                    return Err(BrowserError::NoElement {
                        command: "click",
                        css: css.to_string(),
                    });
                }
                Ok(())
            }
            Input::Native => {
                let el = self.first_visible(css).await?;
                self.run("click", el.click()).await
            }
        }
    }

    /// A PNG of the page after every typed value, and every spelling of every given secret
    /// ([`crate::secret::spellings`]), is scrubbed from its DOM in one script call.
    pub async fn scrubbed_screenshot(
        &self,
        redactor: &crate::secret::Redactor,
    ) -> Result<Vec<u8>, BrowserError> {
        self.run(
            "scrub",
            self.client()
                .execute(SCRUB_JS, vec![json!(redactor.spellings())]),
        )
        .await?;
        self.run("screenshot", self.client().screenshot()).await
    }

    /// Ends the session: its browser context (cookies, storage, cache) or its whole browser and
    /// profile are destroyed.
    pub async fn close(mut self) -> Result<(), BrowserError> {
        match self.client.take() {
            Some(client) => {
                let owner = self.take_owner();
                release(client, owner, self.timeout).await
            }
            None => Ok(()),
        }
    }
}

/// Destroys what a session used (see [`Owner`]).
async fn release(client: Client, owner: Owner, timeout: Duration) -> Result<(), BrowserError> {
    match owner {
        Owner::Context { host, context } => host.release(client, &context).await,
        Owner::Browser { _profile, slot } => {
            let closed = tokio::time::timeout(timeout, client.close()).await;
            drop(_profile); // removed only once the browser is gone
            drop(slot); // a close that timed out leaves the session to the reaper
            match closed {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(BrowserError::Command {
                    command: "delete_session",
                    reason: e.to_string(),
                }),
                Err(_) => Err(BrowserError::Timeout {
                    command: "delete_session",
                    timeout,
                }),
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Error paths and panics: still end the session, in the background.
        if let Some(client) = self.client.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let owner = self.take_owner();
                let timeout = self.timeout;
                handle.spawn(async move {
                    let _ = release(client, owner, timeout).await;
                });
            }
        }
    }
}
