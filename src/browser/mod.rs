//! WebDriver sessions over fantoccini: a local chromedriver we start and stop ourselves (or any
//! WebDriver endpoint), a client-side timeout on every command, a fresh profile per session, and a
//! session that is always deleted.

mod cdp;
mod chromedriver;
mod contexts;
mod grid;
mod pool;
mod session;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

pub use chromedriver::{chromedriver_binary, chromium_binary, Chromedriver, LocalDriver};
pub use grid::Endpoint;
use grid::{Grid, GridSlot};
pub use pool::SessionPool;
use session::Owner;
pub use session::{PageSnapshot, Session};

/// Infrastructure failures: never an outcome of the portal, never "invalid credentials".
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("chromedriver not found ({0}): install the Debian packages `chromium` and `chromium-driver` (scripts/install-deps.sh does), or pass --webdriver URL")]
    DriverMissing(String),
    /// Settings that cannot work together (named in the message), refused before any browser.
    #[error("{0}")]
    Misconfigured(String),
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
    /// Every endpoint held its configured maximum of sessions for as long as a job may wait.
    #[error("no browser session free: every WebDriver endpoint held its maximum for {waited:?} (sessions in use per endpoint: {in_use:?}); raise max_sessions or add endpoints")]
    NoFreeSession {
        waited: Duration,
        in_use: Vec<usize>,
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
    /// Existing WebDriver endpoints (chromedriver, Selenium Grid) with the most sessions this
    /// worker may hold on each; none starts a local chromedriver.
    pub endpoints: Vec<Endpoint>,
    /// How long a job waits for a session when every endpoint holds its maximum, before it ends
    /// as an infrastructure error (retried later; never a merchant's error).
    pub session_wait: Duration,
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
            endpoints: Vec::new(),
            session_wait: Duration::from_secs(60),
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
    /// The remote endpoints and what this worker holds on each; `None` with a local driver.
    grid: Option<Arc<Grid>>,
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
    /// Connects to `config.endpoints`, or starts a local chromedriver.
    pub async fn launch(config: BrowserConfig) -> Result<Browser, BrowserError> {
        install_crypto_provider();
        if config.isolation == Some(Isolation::Context) && config.endpoints.len() > 1 {
            return Err(BrowserError::Misconfigured(
                "--isolation context drives one shared browser through one endpoint: give one --webdriver, or --isolation browser for several".into(),
            ));
        }
        let (grid, local) = if config.endpoints.is_empty() {
            let driver = Arc::new(LocalDriver::start().await?);
            driver.watch();
            (None, Some(driver))
        } else {
            (Some(Grid::new(&config.endpoints)), None)
        };
        let browser = Browser {
            grid,
            local,
            config,
            host: Arc::default(),
        };
        browser.check_reachable().await?;
        Ok(browser)
    }

    /// The endpoint sessions are opened on: the local driver's (it changes when the driver is
    /// replaced), else the first configured one.
    pub fn endpoint(&self) -> String {
        match (&self.local, &self.grid) {
            (Some(driver), _) => driver.current().url().to_string(),
            (None, Some(grid)) => grid.urls().next().unwrap_or_default().to_string(),
            (None, None) => String::new(),
        }
    }

    /// Every endpoint sessions may be opened on.
    pub fn endpoints(&self) -> Vec<String> {
        match &self.grid {
            Some(grid) => grid.urls().map(str::to_string).collect(),
            None => vec![self.endpoint()],
        }
    }

    /// Whether sessions go to configured endpoints (not a chromedriver of this process).
    pub fn has_endpoints(&self) -> bool {
        self.grid.is_some()
    }

    /// Sessions this worker holds on each configured endpoint (empty with a local driver).
    pub fn sessions_in_use(&self) -> Vec<usize> {
        self.grid
            .as_ref()
            .map_or_else(Vec::new, |grid| grid.in_use())
    }

    /// Deletes sessions older than `max_age` on the configured endpoints (see [`Grid::reap`]);
    /// a local driver's sessions end with it, so there is nothing to do. Returns how many.
    pub async fn reap_sessions_older_than(&self, max_age: Duration) -> usize {
        match &self.grid {
            Some(grid) => grid.reap(max_age).await,
            None => 0,
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
        match (self.isolation(), &self.grid) {
            (Isolation::Context, _) => contexts::open_contexts(self).await,
            (Isolation::Browser, Some(grid)) => grid.sessions_open().await,
            (Isolation::Browser, None) => grid::sessions_open_on(&self.endpoint()).await,
        }
    }

    /// Whether a job claimed now would get a browser: an endpoint answers `GET /status` with
    /// `ready: true` within 3 s (a hung, failing or connection-dropping endpoint is not ready).
    /// A local chromedriver that died is replaced first.
    pub async fn ready(&self) -> Result<(), BrowserError> {
        if let Some(driver) = &self.local {
            driver.heal(driver.generation()).await?;
        }
        let mut first_problem = None;
        for endpoint in self.endpoints() {
            match chromedriver::status(&endpoint).await {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    first_problem.get_or_insert(BrowserError::Unreachable {
                        url: endpoint,
                        reason,
                    });
                }
            }
        }
        Err(first_problem.unwrap_or(BrowserError::Unreachable {
            url: String::new(),
            reason: "no WebDriver endpoint configured".into(),
        }))
    }

    /// At least one endpoint accepts connections (the others may come up later: a job then
    /// uses the ones that answer).
    async fn check_reachable(&self) -> Result<(), BrowserError> {
        let mut first_problem = None;
        for endpoint in self.endpoints() {
            match tcp_reachable(&endpoint).await {
                Ok(()) => return Ok(()),
                Err(problem) => {
                    tracing::warn!(%problem, "a WebDriver endpoint is not reachable");
                    first_problem.get_or_insert(problem);
                }
            }
        }
        Err(first_problem.expect("at least one endpoint"))
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

    /// A new session only if an endpoint has room now (sessions started ahead of need never
    /// queue for a place a job could take); `Ok(None)` otherwise.
    pub(crate) async fn session_if_free(&self) -> Result<Option<Session>, BrowserError> {
        match &self.grid {
            Some(grid) if self.isolation() == Isolation::Browser => match grid.try_take() {
                Some(slot) => self.open_on(slot).await.map(Some),
                None => Ok(None),
            },
            _ => self.session().await.map(Some),
        }
    }

    async fn open_session(&self) -> Result<Session, BrowserError> {
        match (self.isolation(), &self.grid) {
            (Isolation::Context, _) => contexts::session(self).await,
            (Isolation::Browser, Some(grid)) => {
                // A refusing endpoint is set aside and the next one tried, each at most once.
                let mut last_error = None;
                for _ in 0..grid.urls().count() {
                    let slot = grid.take(self.config.session_wait).await?;
                    match self.open_on(slot).await {
                        Err(BrowserError::Unreachable { url, reason }) => {
                            last_error = Some(BrowserError::Unreachable { url, reason });
                        }
                        opened => return opened,
                    }
                }
                Err(last_error.expect("one endpoint at least"))
            }
            (Isolation::Browser, None) => self.open_browser(&self.endpoint()).await,
        }
    }

    /// A session on the endpoint `slot` holds a place on; an unreachable one is set aside.
    async fn open_on(&self, slot: GridSlot) -> Result<Session, BrowserError> {
        let opened = self.open_browser(slot.url()).await;
        match opened {
            Ok(mut session) => {
                if let Owner::Browser { slot: held, .. } = &mut session.owner {
                    *held = Some(slot);
                }
                Ok(session)
            }
            Err(error) => {
                if matches!(error, BrowserError::Unreachable { .. }) {
                    slot.set_aside();
                }
                Err(error)
            }
        }
    }

    async fn open_browser(&self, endpoint: &str) -> Result<Session, BrowserError> {
        let (client, profile) = self.launch_chromium(endpoint).await?;
        Ok(Session {
            client: Some(client),
            timeout: self.config.command_timeout,
            owner: Owner::Browser {
                _profile: profile,
                slot: None,
            },
            generation: 0,
        })
    }

    /// Starts a Chromium with a fresh, throwaway profile under a new WebDriver session.
    async fn launch_chromium(
        &self,
        endpoint: &str,
    ) -> Result<(Client, Option<tempfile::TempDir>), BrowserError> {
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
        let client = self.connect_to(endpoint, caps).await?;
        Ok((client, profile))
    }

    /// A WebDriver session on [`Browser::endpoint`] with the given capabilities.
    async fn connect(&self, caps: serde_json::Map<String, Value>) -> Result<Client, BrowserError> {
        self.connect_to(&self.endpoint(), caps).await
    }

    async fn connect_to(
        &self,
        endpoint: &str,
        caps: serde_json::Map<String, Value>,
    ) -> Result<Client, BrowserError> {
        let mut builder =
            ClientBuilder::rustls().map_err(|e| BrowserError::DriverStart(e.to_string()))?;
        builder.capabilities(caps);
        let endpoint = endpoint.to_string();
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

async fn tcp_reachable(endpoint: &str) -> Result<(), BrowserError> {
    let unreachable = |reason: String| BrowserError::Unreachable {
        url: endpoint.to_string(),
        reason,
    };
    let url = url::Url::parse(endpoint).map_err(|e| unreachable(e.to_string()))?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port_or_known_default().unwrap_or(4444);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("connection timed out".into())),
    }
}
