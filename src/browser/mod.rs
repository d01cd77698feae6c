//! WebDriver sessions over fantoccini: a local chromedriver we start and stop ourselves (or any
//! WebDriver endpoint), a client-side timeout on every command, a fresh profile per session, and a
//! session that is always deleted.

mod cdp;
mod chromedriver;
mod contexts;
mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub use chromedriver::{Chromedriver, LocalDriver};
pub use pool::SessionPool;

/// Infrastructure failures: never an outcome of the portal, never "invalid credentials".
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("chromedriver not found ({0}): install the Debian packages `chromium` and `chromium-driver` (scripts/install-deps.sh does), or pass --webdriver URL")]
    DriverMissing(String),
    #[error("chromedriver did not start: {0}")]
    DriverStart(String),
    #[error("cannot reach WebDriver at {url}: {reason} (is it running? check --webdriver)")]
    Unreachable { url: String, reason: String },
    #[error(
        "WebDriver command `{command}` did not answer within {timeout:?}: the browser is hung"
    )]
    Timeout {
        command: &'static str,
        timeout: Duration,
    },
    #[error("WebDriver command `{command}` failed: {reason}")]
    Command {
        command: &'static str,
        reason: String,
    },
    /// The page has no (or too few) visible elements for the spec's selector: the page is not the
    /// one the spec expects, which is an outcome (`unrecognized_page`), never a retry.
    #[error("`{command}`: no visible element (or too few) matches `{css}`")]
    NoElement { command: &'static str, css: String },
}

#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// An existing WebDriver endpoint (chromedriver, Selenium Grid); `None` starts chromedriver.
    pub webdriver: Option<String>,
    /// The longest one WebDriver command may take (fantoccini has no timeout of its own).
    pub command_timeout: Duration,
    /// Chromium binary for a local chromedriver.
    pub chromium: Option<PathBuf>,
    /// How sessions are kept apart; `None`: contexts with a local chromedriver, a browser per
    /// session with a remote endpoint (a grid node's browser is not reachable from here).
    pub isolation: Option<Isolation>,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            webdriver: None,
            command_timeout: Duration::from_secs(30),
            chromium: None,
            isolation: None,
        }
    }
}

/// How one account's session is kept apart from every other's. Both give each session its own
/// cookies, storage and cache, and throw them away after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// A fresh browser context (as a Playwright context or an incognito profile: separate
    /// cookies, storage and cache) in one long-lived Chromium, with its own window, driven by a
    /// WebDriver session attached to that browser. ≈ 0.15 s and one renderer per session.
    /// Needs the WebDriver endpoint on the browser's machine (a local chromedriver).
    Context,
    /// A new Chromium with a fresh profile per session: ≈ 0.5 s of start-up plus ≈ 1 CPU-second
    /// and ≈ 250 MiB per session, but works through any WebDriver endpoint, grids included.
    Browser,
}

/// How the engine fills fields and clicks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// One script call per action: a value set as a paste sets it (`input` and `change` fire),
    /// a click as `element.click()`. One round trip each instead of a key event per character
    /// and WebDriver's pointer sequence (≈ 50 ms per click).
    #[default]
    Script,
    /// WebDriver key events and pointer clicks, for a portal whose scripts only react to
    /// trusted keystrokes and clicks.
    Native,
}

/// Flags that work for headless Chromium as root on a machine with no outside network.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--window-size=1280,900",
    // Chromium 156 gives every new window two hidden WebUI omnibox pop-ups, each its own
    // renderer (≈ 100 MiB, tens of ms of CPU): headless sessions never show an address bar.
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
];

/// A WebDriver endpoint sessions are opened on. Cheap to clone.
#[derive(Clone)]
pub struct Browser {
    /// A remote endpoint's URL (a local driver's changes when it is replaced: see `endpoint()`).
    endpoint: String,
    local: Option<Arc<LocalDriver>>,
    config: BrowserConfig,
    /// The shared Chromium of [`Isolation::Context`], started on first use, restarted if it dies.
    host: Arc<tokio::sync::Mutex<Option<Arc<contexts::Host>>>>,
}

fn install_crypto_provider() {
    // fantoccini's hyper-rustls may pull in aws-lc-rs next to our ring: pick one, once.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Browser {
    /// Connects to `config.webdriver`, or starts a local chromedriver.
    pub async fn launch(config: BrowserConfig) -> Result<Browser, BrowserError> {
        install_crypto_provider();
        let (endpoint, local) = match &config.webdriver {
            Some(url) => (url.trim_end_matches('/').to_string(), None),
            None => {
                let driver = Arc::new(LocalDriver::start().await?);
                driver.watch();
                (driver.current().url().to_string(), Some(driver))
            }
        };
        let browser = Browser {
            endpoint,
            local,
            config,
            host: Arc::default(),
        };
        browser.check_reachable().await?;
        Ok(browser)
    }

    pub fn endpoint(&self) -> String {
        match &self.local {
            Some(driver) => driver.current().url().to_string(),
            None => self.endpoint.clone(),
        }
    }

    /// Our local chromedriver (for tests that kill it), if we started one.
    pub fn local_driver(&self) -> Option<&LocalDriver> {
        self.local.as_deref()
    }

    /// Which local chromedriver sessions are opened on now (bumped on every replacement).
    pub(crate) fn driver_generation(&self) -> u64 {
        self.local.as_ref().map_or(0, |driver| driver.generation())
    }

    /// Stops a chromedriver we started, with its browsers, now (for owners that are never dropped,
    /// like a static); a remote endpoint is left alone.
    pub fn shutdown(&self) {
        if let Some(driver) = &self.local {
            driver.kill();
        }
    }

    /// Ends the shared browser of [`Isolation::Context`] and its attached WebDriver sessions
    /// (sessions still open lose their contexts with it). Nothing to do otherwise.
    pub async fn stop_shared(&self) {
        contexts::stop(self).await;
    }

    /// The process id of the shared browser of [`Isolation::Context`], once one runs.
    pub async fn shared_browser_pid(&self) -> Option<u32> {
        contexts::shared_pid(self).await
    }

    /// How many isolated sessions exist right now: browser contexts in the shared browser, or
    /// WebDriver sessions (one browser each). For checks that nothing was left behind.
    pub async fn isolated_sessions_open(&self) -> Result<usize, BrowserError> {
        match self.isolation() {
            Isolation::Context => contexts::open_contexts(self).await,
            Isolation::Browser => {
                let failed = |e: reqwest::Error| BrowserError::Unreachable {
                    url: self.endpoint(),
                    reason: e.to_string(),
                };
                let url = format!("{}/sessions", self.endpoint());
                let body: Value = reqwest::get(url)
                    .await
                    .map_err(failed)?
                    .json()
                    .await
                    .map_err(failed)?;
                Ok(body["value"].as_array().map_or(0, Vec::len))
            }
        }
    }

    /// Whether a job claimed now would get a browser: the endpoint answers `GET /status` with
    /// `ready: true` within 3 s (a hung, failing or connection-dropping endpoint is not ready).
    /// A local chromedriver that died is replaced first.
    pub async fn ready(&self) -> Result<(), BrowserError> {
        if let Some(driver) = &self.local {
            driver.heal(driver.generation()).await?;
        }
        chromedriver::status(&self.endpoint())
            .await
            .map_err(|reason| BrowserError::Unreachable {
                url: self.endpoint(),
                reason,
            })
    }

    async fn check_reachable(&self) -> Result<(), BrowserError> {
        let endpoint = self.endpoint();
        let url = url::Url::parse(&endpoint).map_err(|e| BrowserError::Unreachable {
            url: endpoint.clone(),
            reason: e.to_string(),
        })?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let port = url.port_or_known_default().unwrap_or(4444);
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BrowserError::Unreachable {
                url: endpoint,
                reason: e.to_string(),
            }),
            Err(_) => Err(BrowserError::Unreachable {
                url: endpoint,
                reason: "connection timed out".into(),
            }),
        }
    }

    /// How this browser isolates sessions (see [`BrowserConfig::isolation`]).
    pub fn isolation(&self) -> Isolation {
        self.config.isolation.unwrap_or(match self.local {
            Some(_) => Isolation::Context,
            None => Isolation::Browser,
        })
    }

    /// Opens a new session that shares nothing with any other: no cookie, storage or cache
    /// ever crosses accounts.
    /// A local chromedriver that died is replaced and the session opened on the new one.
    pub async fn session(&self) -> Result<Session, BrowserError> {
        let generation = self.driver_generation();
        let opened = match self.open_session().await {
            Err(error) => match &self.local {
                Some(driver) if driver.heal(generation).await? => self.open_session().await,
                _ => Err(error),
            },
            opened => opened,
        };
        opened.map(|mut session| {
            session.generation = self.driver_generation();
            session
        })
    }

    async fn open_session(&self) -> Result<Session, BrowserError> {
        match self.isolation() {
            Isolation::Context => contexts::session(self).await,
            Isolation::Browser => {
                let (client, profile) = self.launch_chromium().await?;
                Ok(Session {
                    client: Some(client),
                    timeout: self.config.command_timeout,
                    owner: Owner::Browser { _profile: profile },
                    generation: 0,
                })
            }
        }
    }

    /// Starts a Chromium with a fresh, throwaway profile under a new WebDriver session.
    async fn launch_chromium(&self) -> Result<(Client, Option<tempfile::TempDir>), BrowserError> {
        let profile = match &self.local {
            // Under the driver's folder: its reaper and the start-up sweep remove it with the
            // driver if this process dies before it can.
            Some(driver) => Some(
                tempfile::Builder::new()
                    .prefix("profile-")
                    .tempdir_in(driver.current().profiles())
                    .map_err(|e| BrowserError::DriverStart(e.to_string()))?,
            ),
            None => None, // a remote node makes its own fresh profile per session
        };
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        if let Some(dir) = &profile {
            args.push(format!("--user-data-dir={}", dir.path().display()));
        }
        let mut options = json!({ "args": args });
        if self.local.is_some() {
            let binary = self
                .config
                .chromium
                .clone()
                .unwrap_or_else(chromedriver::chromium_binary);
            options["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        caps.insert("unhandledPromptBehavior".into(), json!("dismiss"));
        let client = self.connect(caps).await?;
        Ok((client, profile))
    }

    /// A WebDriver session on the endpoint with the given capabilities.
    async fn connect(&self, caps: serde_json::Map<String, Value>) -> Result<Client, BrowserError> {
        let mut builder =
            ClientBuilder::rustls().map_err(|e| BrowserError::DriverStart(e.to_string()))?;
        builder.capabilities(caps);
        let endpoint = self.endpoint();
        let connect = builder.connect(&endpoint);
        match tokio::time::timeout(self.config.command_timeout, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(BrowserError::Unreachable {
                url: endpoint,
                reason: e.to_string(),
            }),
            Err(_) => Err(BrowserError::Timeout {
                command: "new_session",
                timeout: self.config.command_timeout,
            }),
        }
    }
}

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
    client: Option<Client>,
    timeout: Duration,
    owner: Owner,
    /// The local chromedriver generation it was opened on (an older one's sessions are dead).
    generation: u64,
}

impl Session {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// What a session's WebDriver client is attached to, and so what closing it means.
enum Owner {
    /// Its own Chromium: deleting the WebDriver session ends the browser, then the profile goes.
    Browser { _profile: Option<tempfile::TempDir> },
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
                let owner = std::mem::replace(&mut self.owner, Owner::Browser { _profile: None });
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
        Owner::Browser { _profile } => {
            let closed = tokio::time::timeout(timeout, client.close()).await;
            drop(_profile); // removed only once the browser is gone
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
                let owner = std::mem::replace(&mut self.owner, Owner::Browser { _profile: None });
                let timeout = self.timeout;
                handle.spawn(async move {
                    let _ = release(client, owner, timeout).await;
                });
            }
        }
    }
}
