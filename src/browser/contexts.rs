//! [`Isolation::Context`](super::Isolation::Context): one long-lived Chromium, a fresh browser
//! context per session. A browser context is what Playwright isolates its contexts with and
//! Chromium its incognito profiles: its own cookie jar, storage, cache and service workers,
//! destroyed with it. WebDriver cannot create one, so the shared browser's DevTools endpoint
//! does; a WebDriver session attached to that browser (`debuggerAddress`) then drives the
//! context's window with the usual commands. Attached sessions hold no browsing data, so they
//! are kept and switched to the next session's window instead of being re-attached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::wd::WindowHandle;
use fantoccini::Client;
use serde_json::{json, Value};

use super::cdp::Cdp;
use super::{Browser, BrowserError, Owner, Session};

/// The shared Chromium and the WebDriver sessions attached to it.
pub(super) struct Host {
    /// The WebDriver session that started the browser; deleting it ends the browser.
    anchor: Client,
    cdp: Cdp,
    debugger_address: String,
    /// Attached WebDriver sessions waiting for their next context's window.
    lanes: Mutex<Vec<Client>>,
    timeout: Duration,
    _profile: Option<tempfile::TempDir>,
    /// The local chromedriver generation it was started on: a replaced driver took it down.
    generation: u64,
}

fn broken(reason: impl Into<String>) -> BrowserError {
    BrowserError::Command {
        command: "new_context",
        reason: reason.into(),
    }
}

/// A session in a new browser context of the shared browser (started or restarted as needed).
pub(super) async fn session(browser: &Browser) -> Result<Session, BrowserError> {
    let host = host(browser).await?;
    let created = host
        .cdp
        .call(
            "Target.createBrowserContext",
            json!({ "disposeOnDetach": false }),
        )
        .await?;
    let context = created["browserContextId"]
        .as_str()
        .ok_or_else(|| broken("no browserContextId"))?
        .to_string();
    match host.open_window(browser, &context).await {
        Ok(client) => Ok(Session {
            client: Some(client),
            timeout: browser.config.command_timeout,
            owner: Owner::Context { host, context },
            generation: 0,
        }),
        Err(error) => {
            let _ = host.dispose(&context).await;
            Err(error)
        }
    }
}

/// The running shared browser, started on first use and restarted when it has died.
async fn host(browser: &Browser) -> Result<Arc<Host>, BrowserError> {
    let mut slot = browser.host.lock().await;
    if let Some(host) = slot.take() {
        if host.cdp.is_open() && host.generation == browser.driver_generation() {
            *slot = Some(host.clone());
            return Ok(host);
        }
        tracing::warn!("the shared browser died or hung; starting a new one");
        // Deleting the session that started it ends that browser (sessions still in it fail
        // as infrastructure errors and are retried).
        let (anchor, timeout) = (host.anchor.clone(), host.timeout);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, anchor.close()).await;
        });
    }
    let (anchor, profile) = browser.launch_chromium(&browser.endpoint()).await?;
    let debugger_address = anchor
        .capabilities()
        .and_then(|caps| caps.get("goog:chromeOptions"))
        .and_then(|options| options["debuggerAddress"].as_str())
        .map(str::to_string);
    let Some(debugger_address) = debugger_address else {
        let _ = anchor.close().await;
        return Err(broken(
            "the WebDriver endpoint does not report the browser's debuggerAddress: use --isolation browser",
        ));
    };
    let cdp = match Cdp::connect(&debugger_address, browser.config.command_timeout).await {
        Ok(cdp) => cdp,
        Err(error) => {
            let _ = anchor.close().await;
            return Err(error);
        }
    };
    let host = Arc::new(Host {
        anchor,
        cdp,
        debugger_address,
        lanes: Mutex::new(Vec::new()),
        timeout: browser.config.command_timeout,
        _profile: profile,
        generation: browser.driver_generation(),
    });
    *slot = Some(host.clone());
    Ok(host)
}

/// Browser contexts open in the shared browser (0 when none runs).
pub(super) async fn open_contexts(browser: &Browser) -> Result<usize, BrowserError> {
    let host = browser.host.lock().await.clone();
    match host {
        Some(host) if host.cdp.is_open() => {
            let contexts = host
                .cdp
                .call("Target.getBrowserContexts", json!({}))
                .await?;
            Ok(contexts["browserContextIds"].as_array().map_or(0, Vec::len))
        }
        _ => Ok(0),
    }
}

/// The shared browser's process id, if one runs (health checks, tests that kill it).
pub(super) async fn shared_pid(browser: &Browser) -> Option<u32> {
    let host = browser.host.lock().await.clone()?;
    let info = host
        .cdp
        .call("SystemInfo.getProcessInfo", json!({}))
        .await
        .ok()?;
    info["processInfo"]
        .as_array()?
        .iter()
        .find(|process| process["type"] == "browser")
        .and_then(|process| process["id"].as_u64())
        .map(|id| id as u32)
}

/// Ends the shared browser, if one runs (its sessions' contexts go with it).
pub(super) async fn stop(browser: &Browser) {
    if let Some(host) = browser.host.lock().await.take() {
        let lanes: Vec<Client> = host.lanes.lock().expect("lanes lock").drain(..).collect();
        for lane in lanes {
            let _ = tokio::time::timeout(host.timeout, lane.close()).await;
        }
        let _ = tokio::time::timeout(host.timeout, host.anchor.clone().close()).await;
    }
}

impl Host {
    /// Opens the context's window and points an attached WebDriver session at it.
    async fn open_window(&self, browser: &Browser, context: &str) -> Result<Client, BrowserError> {
        let target = self
            .cdp
            .call(
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context, "width": 1280, "height": 900 }),
            )
            .await?;
        let target = target["targetId"]
            .as_str()
            .ok_or_else(|| broken("no targetId"))?
            .to_string();
        let idle = self.lanes.lock().expect("lanes lock").pop();
        if let Some(lane) = idle {
            if self.switch(&lane, &target).await.is_ok() {
                return Ok(lane);
            }
            // A lane that cannot switch is broken: replace it.
            tokio::spawn(async move {
                let _ = lane.close().await;
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "debuggerAddress": self.debugger_address }),
        );
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        caps.insert("unhandledPromptBehavior".into(), json!("dismiss"));
        let lane = browser.connect(caps).await?;
        match self.switch(&lane, &target).await {
            Ok(()) => Ok(lane),
            Err(error) => {
                let _ = lane.close().await;
                Err(error)
            }
        }
    }

    async fn switch(&self, lane: &Client, target: &str) -> Result<(), BrowserError> {
        let handle = WindowHandle::try_from(target.to_string())
            .map_err(|_| broken(format!("bad window handle {target}")))?;
        match tokio::time::timeout(self.timeout, lane.switch_to_window(handle)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(broken(e.to_string())),
            Err(_) => Err(BrowserError::Timeout {
                command: "switch_to_window",
                timeout: self.timeout,
            }),
        }
    }

    async fn dispose(&self, context: &str) -> Result<Value, BrowserError> {
        self.cdp
            .call(
                "Target.disposeBrowserContext",
                json!({ "browserContextId": context }),
            )
            .await
    }

    /// Destroys the context (its window, cookies, storage and cache) and keeps the attached
    /// WebDriver session for the next one.
    pub(super) async fn release(&self, lane: Client, context: &str) -> Result<(), BrowserError> {
        match self.dispose(context).await {
            Ok(_) => {
                self.lanes.lock().expect("lanes lock").push(lane);
                Ok(())
            }
            Err(error) => {
                let _ = tokio::time::timeout(self.timeout, lane.close()).await;
                Err(error)
            }
        }
    }
}
