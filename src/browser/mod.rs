//! WebDriver sessions over fantoccini: a local chromedriver we start and stop ourselves (or any
//! WebDriver endpoint), a client-side timeout on every command, a fresh profile per session, and a
//! session that is always deleted.

mod chromedriver;
mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub use chromedriver::Chromedriver;
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
}

#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// An existing WebDriver endpoint (chromedriver, Selenium Grid); `None` starts chromedriver.
    pub webdriver: Option<String>,
    /// The longest one WebDriver command may take (fantoccini has no timeout of its own).
    pub command_timeout: Duration,
    /// Chromium binary for a local chromedriver.
    pub chromium: Option<PathBuf>,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            webdriver: None,
            command_timeout: Duration::from_secs(30),
            chromium: None,
        }
    }
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
];

/// A WebDriver endpoint sessions are opened on. Cheap to clone.
#[derive(Clone)]
pub struct Browser {
    endpoint: String,
    local: Option<Arc<Chromedriver>>,
    config: BrowserConfig,
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
                let driver = Chromedriver::start().await?;
                (driver.url().to_string(), Some(Arc::new(driver)))
            }
        };
        let browser = Browser {
            endpoint,
            local,
            config,
        };
        browser.check_reachable().await?;
        Ok(browser)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops a chromedriver we started, with its browsers, now (for owners that are never dropped,
    /// like a static); a remote endpoint is left alone.
    pub fn shutdown(&self) {
        if let Some(driver) = &self.local {
            driver.kill();
        }
    }

    /// Whether the WebDriver endpoint accepts connections (readiness checks).
    pub async fn ready(&self) -> Result<(), BrowserError> {
        self.check_reachable().await
    }

    async fn check_reachable(&self) -> Result<(), BrowserError> {
        let url = url::Url::parse(&self.endpoint).map_err(|e| BrowserError::Unreachable {
            url: self.endpoint.clone(),
            reason: e.to_string(),
        })?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let port = url.port_or_known_default().unwrap_or(4444);
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BrowserError::Unreachable {
                url: self.endpoint.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(BrowserError::Unreachable {
                url: self.endpoint.clone(),
                reason: "connection timed out".into(),
            }),
        }
    }

    /// Opens a new session with a fresh, throwaway profile: no cookie ever crosses accounts.
    pub async fn session(&self) -> Result<Session, BrowserError> {
        let profile = match self.local {
            Some(_) => Some(
                tempfile::Builder::new()
                    .prefix("pairing-worker-profile-")
                    .tempdir()
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
        let mut builder =
            ClientBuilder::rustls().map_err(|e| BrowserError::DriverStart(e.to_string()))?;
        builder.capabilities(caps);
        let connect = builder.connect(&self.endpoint);
        let client = match tokio::time::timeout(self.config.command_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(BrowserError::Unreachable {
                    url: self.endpoint.clone(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(BrowserError::Timeout {
                    command: "new_session",
                    timeout: self.config.command_timeout,
                })
            }
        };
        Ok(Session {
            client: Some(client),
            timeout: self.config.command_timeout,
            _profile: profile,
        })
    }
}

/// The page as the browser renders it.
pub struct PageSnapshot {
    pub url: String,
    /// The DOM, with everything not rendered marked `hidden`.
    pub html: String,
    /// Changes with every document load (a reload is a new document).
    pub document: String,
}

/// One browser session. Always call [`Session::close`]; dropping it closes in the background.
pub struct Session {
    client: Option<Client>,
    timeout: Duration,
    _profile: Option<tempfile::TempDir>,
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
return [location.href, clone.outerHTML, String(performance.timeOrigin)];
"#;

/// Resolves on the first DOM mutation or after `arguments[0]` ms, whichever is first.
const MUTATION_JS: &str = r#"
const done = arguments[arguments.length - 1];
const ms = arguments[0];
const observer = new MutationObserver(() => { observer.disconnect(); done(true); });
observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
setTimeout(() => { observer.disconnect(); done(false); }, ms);
"#;

/// Clears typed values and replaces secret text before a screenshot is taken.
const SCRUB_JS: &str = r#"
const secrets = arguments[0].filter(s => s.length >= 3);
for (const input of document.querySelectorAll('input, textarea')) { input.value = ''; }
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  let text = walker.currentNode.nodeValue;
  for (const s of secrets) { text = text.split(s).join('[REDACTED]'); }
  walker.currentNode.nodeValue = text;
}
return true;
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
            Value::Array(parts) if parts.len() == 3 => Ok(PageSnapshot {
                url: text(&parts[0]),
                html: text(&parts[1]),
                document: text(&parts[2]),
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

    /// The displayed elements matching `css`, in document order.
    pub async fn visible(
        &self,
        css: &str,
    ) -> Result<Vec<fantoccini::elements::Element>, BrowserError> {
        let all = self
            .run("find_all", self.client().find_all(Locator::Css(css)))
            .await?;
        let mut shown = Vec::with_capacity(all.len());
        for el in all {
            if self.run("is_displayed", el.is_displayed()).await? {
                shown.push(el);
            }
        }
        Ok(shown)
    }

    async fn first_visible(
        &self,
        css: &str,
    ) -> Result<fantoccini::elements::Element, BrowserError> {
        self.visible(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| BrowserError::Command {
                command: "find",
                reason: format!("no visible element matches `{css}`"),
            })
    }

    /// Clears a field and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), BrowserError> {
        let el = self.first_visible(css).await?;
        self.run("clear", el.clear()).await?;
        self.run("send_keys", el.send_keys(text)).await
    }

    /// Types one character into each of several boxes (split code inputs).
    pub async fn fill_each(
        &self,
        elements: &[fantoccini::elements::Element],
        chars: &str,
    ) -> Result<(), BrowserError> {
        for (el, ch) in elements.iter().zip(chars.chars()) {
            self.run("clear", el.clear()).await?;
            self.run("send_keys", el.send_keys(&ch.to_string())).await?;
        }
        Ok(())
    }

    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        let el = self.first_visible(css).await?;
        self.run("click", el.click()).await
    }

    /// A PNG of the page after every typed value and every given secret is scrubbed from it.
    pub async fn scrubbed_screenshot(&self, secrets: &[&str]) -> Result<Vec<u8>, BrowserError> {
        self.run(
            "scrub",
            self.client().execute(SCRUB_JS, vec![json!(secrets)]),
        )
        .await?;
        self.run("screenshot", self.client().screenshot()).await
    }

    /// Deletes the session (and with it the browser and its profile).
    pub async fn close(mut self) -> Result<(), BrowserError> {
        if let Some(client) = self.client.take() {
            let timeout = self.timeout;
            match tokio::time::timeout(timeout, client.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(BrowserError::Command {
                        command: "delete_session",
                        reason: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(BrowserError::Timeout {
                        command: "delete_session",
                        timeout,
                    })
                }
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Error paths and panics: still delete the session, in the background.
        if let Some(client) = self.client.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let timeout = self.timeout;
                let profile = self._profile.take(); // removed only once the browser is gone
                handle.spawn(async move {
                    let _ = tokio::time::timeout(timeout, client.close()).await;
                    drop(profile);
                });
            }
        }
    }
}
