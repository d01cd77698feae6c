//! The worker end to end: real queue (SQLite), real Chromium through chromedriver, the sandbox
//! portals, and the `serve` binary killed with SIGKILL mid-login. Every log line of the run is
//! captured and checked for the secrets the accounts carry.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/rig.rs"]
mod rig;
#[path = "support/serve.rs"]
mod serve;

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use pairing_worker::kit::sandbox::AccountChange;
use pairing_worker::outcome::{InvalidCredentials, Outcome, StoreConfig, TwoFactor};
use pairing_worker::queue::{
    AccountUpdate, Change, CodeError, Job, JobKind, JobState, SubmitError,
};
use pairing_worker::secret::Credentials;

const ORG: &str = "org-sandbox";
const SANDBOX_PASSWORD: &str = "Sandbox-Pass-1";

/// Every log line any test in this binary produced, at trace level.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone)]
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_env_filter("pairing_worker=trace")
            .with_writer(|| Sink)
            .with_ansi(false)
            .try_init();
        Mutex::new(Vec::new())
    })
}

fn assert_not_logged(secrets: &[&str]) {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).to_string();
    assert!(text.contains("job claimed"), "logs were captured");
    for secret in secrets {
        assert!(!text.contains(secret), "secret {secret:?} in the logs");
    }
}

/// The shared rig, with this file's log capture installed first.
struct Rig(rig::Rig);

impl std::ops::Deref for Rig {
    type Target = rig::Rig;
    fn deref(&self) -> &rig::Rig {
        &self.0
    }
}

impl Rig {
    async fn start() -> Rig {
        logs();
        Rig(rig::Rig::start().await)
    }

    async fn stop(self) {
        self.0.stop().await;
    }

    async fn account(&self, provider: &str, username: &str, password: &str) -> String {
        serve::password_account(&self.queue, ORG, provider, username, password).await
    }

    async fn run(&self, account: &str, kind: JobKind, interactive: bool) -> Job {
        let job = self
            .queue
            .submit(ORG, account, kind, interactive)
            .await
            .unwrap()
            .job;
        self.wait(&job.id, |job| job.state.is_final()).await
    }

    async fn wait(&self, job: &str, done: impl Fn(&Job) -> bool) -> Job {
        let started = Instant::now();
        loop {
            let current = self.queue.job(ORG, job).await.unwrap().unwrap();
            if done(&current) {
                return current;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "job stuck: {current:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_costs_one_attempt_and_nothing_automatic_until_credentials_change() {
    let rig = Rig::start().await;
    let username = "wrong.password@sandbox.test";
    let typed = "Not-The-Password-7";
    let account = rig.account("deliveroo", username, typed).await;
    let job = rig.run(&account, JobKind::Pair, true).await;
    assert_eq!(
        job.outcome,
        Some(Outcome::InvalidCredentials(
            InvalidCredentials::WrongPassword
        ))
    );
    assert_eq!((job.state, job.attempts), (JobState::Failed, 1));
    let seen = rig.sandbox.attempts("deliveroo", username);
    assert_eq!((seen.submitted, seen.failed), (1, 1));
    assert!(matches!(
        rig.queue
            .submit(ORG, &account, JobKind::Recheck, false)
            .await,
        Err(SubmitError::CredentialsRejected)
    ));
    // The worker keeps polling; the portal sees nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.sandbox.attempts("deliveroo", username).submitted, 1);
    let update = AccountUpdate {
        credentials: Some(Credentials {
            username: username.into(),
            password: SecretString::from(SANDBOX_PASSWORD.to_string()),
        }),
        ..AccountUpdate::default()
    };
    rig.queue
        .update_account(ORG, &account, update)
        .await
        .unwrap();
    let job = rig.run(&account, JobKind::Pair, true).await;
    assert_eq!(
        (job.state, job.outcome),
        (JobState::Succeeded, Some(Outcome::Paired))
    );
    let seen = rig.sandbox.attempts("deliveroo", username);
    assert_eq!((seen.submitted, seen.failed), (2, 1));
    let history = rig.queue.history(&account, 10).await.unwrap();
    assert_eq!(history.last().unwrap().change, Change::Resolved);
    assert_not_logged(&[typed, SANDBOX_PASSWORD]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recheck_reports_unchanged_resolved_and_changed_to_reconnect() {
    let rig = Rig::start().await;
    let username = "inactive@sandbox.test";
    let account = rig.account("deliveroo", username, SANDBOX_PASSWORD).await;
    let inactive = Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive);
    let first = rig.run(&account, JobKind::Pair, true).await;
    assert_eq!(first.outcome, Some(inactive));
    let change = |rig: &Rig| {
        let queue = rig.queue.clone();
        let account = account.clone();
        async move { queue.history(&account, 1).await.unwrap()[0].change }
    };
    assert_eq!(change(&rig).await, Change::Broke);
    // "I have completed these steps" without having done them.
    let again = rig.run(&account, JobKind::Recheck, true).await;
    assert_eq!(again.outcome, Some(inactive));
    assert_eq!(change(&rig).await, Change::Unchanged);
    // The merchant reactivated the store in the portal.
    let fixed = AccountChange {
        scenario: Some("good_login".into()),
        password: None,
    };
    rig.sandbox.change_account("deliveroo", username, fixed);
    let resolved = rig.run(&account, JobKind::Recheck, true).await;
    assert_eq!(resolved.outcome, Some(Outcome::Paired));
    assert_eq!(change(&rig).await, Change::Resolved);
    // The store goes inactive again, then someone changes the password in the portal: the next
    // re-check meets a different error, one a Reconnect repairs.
    let change_to = |scenario: &str, password: Option<&str>| AccountChange {
        scenario: Some(scenario.into()),
        password: password.map(str::to_string),
    };
    rig.sandbox.change_account(
        "deliveroo",
        username,
        change_to("restaurant_inactive", None),
    );
    rig.run(&account, JobKind::Recheck, false).await;
    assert_eq!(change(&rig).await, Change::Broke);
    let new_password = "Changed-Elsewhere-9";
    rig.sandbox.change_account(
        "deliveroo",
        username,
        change_to("restaurant_inactive", Some(new_password)),
    );
    let changed = rig.run(&account, JobKind::Recheck, false).await;
    let wrong = Outcome::InvalidCredentials(InvalidCredentials::WrongPassword);
    assert_eq!(changed.outcome, Some(wrong));
    assert_eq!(change(&rig).await, Change::Changed);
    assert!(wrong.is_reauth_repairable(), "offered as Reconnect");
    // Reconnect with the new password, the store active again.
    rig.sandbox.change_account(
        "deliveroo",
        username,
        change_to("good_login", Some(new_password)),
    );
    let update = AccountUpdate {
        credentials: Some(Credentials {
            username: username.into(),
            password: SecretString::from(new_password.to_string()),
        }),
        ..AccountUpdate::default()
    };
    rig.queue
        .update_account(ORG, &account, update)
        .await
        .unwrap();
    let reconnected = rig.run(&account, JobKind::Pair, true).await;
    assert_eq!(reconnected.outcome, Some(Outcome::Paired));
    assert_eq!(change(&rig).await, Change::Resolved);
    assert_not_logged(&[SANDBOX_PASSWORD, new_password]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_types_the_code_through_the_queue_in_six_boxes() {
    let rig = Rig::start().await;
    let username = "merchant-sms@sandbox.test";
    let account = rig.account("doordash", username, SANDBOX_PASSWORD).await;
    let job = rig
        .queue
        .submit(ORG, &account, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    let waiting = rig
        .wait(&job.id, |j| {
            j.state == JobState::AwaitingCode || j.state.is_final()
        })
        .await;
    assert_eq!(waiting.state, JobState::AwaitingCode, "{waiting:?}");
    let request = waiting.code_request.clone().expect("code request shown");
    assert_eq!(request.code_length, Some(6));
    // A second submit while the job waits returns that job, and no second login starts.
    let logins = rig.sandbox.attempts("doordash", username);
    let again = rig
        .queue
        .submit(ORG, &account, JobKind::Pair, true)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.job.id, job.id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.sandbox.attempts("doordash", username), logins);
    let code = rig
        .sandbox
        .issued_code("doordash", username)
        .expect("code texted");
    let typo = SecretString::from(format!("{code}9"));
    assert!(matches!(
        rig.queue.submit_code(ORG, &job.id, &typo).await,
        Err(CodeError::Shape(_))
    ));
    rig.queue
        .submit_code(ORG, &job.id, &SecretString::from(code.clone()))
        .await
        .unwrap();
    let done = rig.wait(&job.id, |j| j.state.is_final()).await;
    assert_eq!(
        (done.state, done.outcome),
        (JobState::Succeeded, Some(Outcome::Paired))
    );
    let stored = serde_json::to_string(&done).unwrap();
    assert!(!stored.contains(&code), "code in the stored job");
    assert!(!stored.contains(SANDBOX_PASSWORD));
    assert_not_logged(&[SANDBOX_PASSWORD, &code]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_recheck_meeting_a_code_page_stops_and_blocks_new_logins() {
    let rig = Rig::start().await;
    let username = "code.sms@sandbox.test";
    let account = rig.account("deliveroo", username, SANDBOX_PASSWORD).await;
    let job = rig.run(&account, JobKind::Recheck, false).await;
    assert_eq!(
        job.outcome,
        Some(Outcome::TwoFactor(TwoFactor::CodeRequired))
    );
    let pending = rig.queue.account(ORG, &account).await.unwrap().unwrap();
    assert!(
        pending.code_pending_until.is_some(),
        "the texted code may still be typed"
    );
    let next = rig
        .queue
        .submit(ORG, &account, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = rig.queue.job(ORG, &next.id).await.unwrap().unwrap();
    assert_eq!(
        still.state,
        JobState::Queued,
        "no login while a code is pending"
    );
    assert_eq!(rig.sandbox.attempts("deliveroo", username).submitted, 1);
    rig.queue.cancel(ORG, &next.id).await.unwrap();
    rig.stop().await;
}

/// Sessions the pool starts ahead of need are handed out once each, replaced, and all ended
/// when the pool closes, with either isolation: nothing is shared between jobs and nothing is
/// left behind (no browser context, no browser, no WebDriver session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_started_sessions_are_used_once_and_all_closed() {
    use pairing_worker::browser::{Browser, BrowserConfig, Isolation, SessionPool};
    for isolation in [Isolation::Context, Isolation::Browser] {
        let config = BrowserConfig {
            isolation: Some(isolation),
            ..BrowserConfig::default()
        };
        let browser = Browser::launch(config).await.unwrap();
        let open = || async { browser.isolated_sessions_open().await.unwrap() };
        let until = |pool: &std::sync::Arc<SessionPool>, n: usize| {
            let pool = pool.clone();
            async move {
                let started = Instant::now();
                while pool.ready() < n {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "pool never filled"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let pool = SessionPool::new(browser.clone(), 2);
        until(&pool, 2).await;
        let first = pool.take().await.unwrap();
        let second = pool.take().await.unwrap();
        assert_eq!(open().await, 2, "{isolation:?}: two in use, none waiting");
        pool.top_up();
        until(&pool, 2).await;
        assert_eq!(
            open().await,
            4,
            "{isolation:?}: two in use, two replacements waiting"
        );
        first.close().await.unwrap();
        second.close().await.unwrap();
        pool.close().await;
        assert_eq!(pool.ready(), 0);
        assert_eq!(open().await, 0, "{isolation:?}: every session ended");
        browser.stop_shared().await;
        let sessions: serde_json::Value = reqwest::get(format!("{}/sessions", browser.endpoint()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            sessions["value"].as_array().unwrap().len(),
            0,
            "{isolation:?}: nothing left in chromedriver"
        );
        browser.shutdown();
    }
}

/// Isolation is the promise that no cookie or storage crosses accounts: with either isolation, a
/// session sees nothing another session (open at the same time, or ended before it) stored for
/// the same site, and what a page stored is gone once its session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_no_cookies_or_storage() {
    use axum::response::Html;
    use pairing_worker::browser::{Browser, BrowserConfig, Isolation};
    let app = axum::Router::new().fallback(axum::routing::get(|| async {
        Html("<!doctype html><title>site</title><p>one site for every session</p>")
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    const STORE: &str = "document.cookie = 'account=' + arguments[0] + '; max-age=3600'; \
        localStorage.setItem('account', arguments[0]); sessionStorage.setItem('account', arguments[0]); \
        return document.cookie;";
    const READ: &str = "return [document.cookie, localStorage.getItem('account'), \
        sessionStorage.getItem('account')];";
    let nothing = serde_json::json!(["", null, null]);
    for isolation in [Isolation::Context, Isolation::Browser] {
        let browser = Browser::launch(BrowserConfig {
            isolation: Some(isolation),
            ..BrowserConfig::default()
        })
        .await
        .unwrap();
        let first = browser.session().await.unwrap();
        let second = browser.session().await.unwrap();
        first.goto(&site).await.unwrap();
        let stored = first
            .execute(STORE, vec![serde_json::json!("first")])
            .await
            .unwrap();
        assert_eq!(
            stored, "account=first",
            "{isolation:?}: the page could store"
        );
        second.goto(&site).await.unwrap();
        assert_eq!(
            second.execute(READ, vec![]).await.unwrap(),
            nothing,
            "{isolation:?}: a session open at the same time sees another's data"
        );
        first.close().await.unwrap();
        let third = browser.session().await.unwrap();
        third.goto(&site).await.unwrap();
        assert_eq!(
            third.execute(READ, vec![]).await.unwrap(),
            nothing,
            "{isolation:?}: a later session sees an ended session's data"
        );
        second.close().await.unwrap();
        third.close().await.unwrap();
        assert_eq!(browser.isolated_sessions_open().await.unwrap(), 0);
        browser.stop_shared().await;
        browser.shutdown();
    }
}

/// The shared browser of context isolation can die or hang under the worker: the sessions in it
/// fail as infrastructure errors (retried by the queue), and the next session gets a new browser
/// instead of waiting on the broken one forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_hung_shared_browser_is_replaced() {
    use pairing_worker::browser::{Browser, BrowserConfig, BrowserError, Isolation};
    let browser = Browser::launch(BrowserConfig {
        isolation: Some(Isolation::Context),
        command_timeout: Duration::from_secs(3),
        ..BrowserConfig::default()
    })
    .await
    .unwrap();
    let page = "data:text/html,<p>alive</p>";
    for (signal, what) in [(libc::SIGKILL, "killed"), (libc::SIGSTOP, "hung")] {
        let session = browser.session().await.unwrap();
        session.goto(page).await.unwrap();
        let pid = browser
            .shared_browser_pid()
            .await
            .expect("a shared browser runs");
        // SAFETY: kill(2) on a browser process this test's chromedriver started.
        unsafe { libc::kill(pid as i32, signal) };
        let failed = session.goto(page).await;
        assert!(
            matches!(
                failed,
                Err(BrowserError::Command { .. } | BrowserError::Timeout { .. })
            ),
            "{what}: a command in the broken browser is an infrastructure error, got {failed:?}"
        );
        drop(session);
        // The hung browser is noticed by the first DevTools call that goes unanswered.
        let mut replaced = None;
        for _ in 0..3 {
            if let Ok(next) = browser.session().await {
                replaced = Some(next);
                break;
            }
        }
        let next = replaced.unwrap_or_else(|| panic!("{what}: no new browser was started"));
        next.goto(page).await.unwrap();
        let new_pid = browser.shared_browser_pid().await.unwrap();
        assert_ne!(new_pid, pid, "{what}: the broken browser is still in use");
        next.close().await.unwrap();
        if signal == libc::SIGSTOP {
            // SAFETY: as above; the stopped browser is killed so it does not linger.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    browser.stop_shared().await;
    browser.shutdown();
}
