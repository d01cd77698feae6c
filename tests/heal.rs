//! The worker heals itself and says when it cannot, with real parts: a chromedriver that dies is
//! replaced and jobs pair again; `serve` killed with SIGKILL takes its chromedriver, browsers and
//! profiles with it; what a dead worker left anyway is swept at the next start; and readiness
//! means "a job claimed now would get a browser".

#[path = "support/databases.rs"]
mod databases;
#[path = "support/rig.rs"]
mod rig;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use pairing_worker::browser::{Browser, BrowserConfig, Endpoint};
use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{AccountSecrets, JobKind, JobState, NewAccount, QueueConfig};
use pairing_worker::secret::Credentials;

const ORG: &str = "org-heal";

/// Processes whose command line mentions `needle`, after a short settle (exiting browsers leave
/// short-lived zombies).
fn processes_naming(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for process in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = process.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else {
            continue;
        };
        let state = std::fs::read_to_string(process.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_chromedriver_is_replaced_and_jobs_pair_again() {
    let rig = rig::Rig::start_with(rig::RigOptions {
        queue: Some(QueueConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(400),
            ..QueueConfig::default()
        }),
        ..rig::RigOptions::default()
    })
    .await;
    let account = rig
        .queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: "deliveroo".into(),
            secrets: AccountSecrets {
                credentials: Credentials {
                    username: "owner@sandbox.test".into(),
                    password: SecretString::from("Sandbox-Pass-1".to_string()),
                },
                totp: None,
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await
        .unwrap()
        .id;
    let run = |rig: &rig::Rig| {
        let (queue, account) = (rig.queue.clone(), account.clone());
        async move {
            let job = queue
                .submit(ORG, &account, JobKind::Pair, false)
                .await
                .unwrap()
                .job;
            let started = Instant::now();
            loop {
                let job = queue.job(ORG, &job.id).await.unwrap().unwrap();
                if job.state.is_final() {
                    return job;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "stuck: {job:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(run(&rig).await.outcome, Some(Outcome::Paired));
    let driver = rig
        .browser
        .local_driver()
        .expect("the rig starts chromedriver");
    let (old_pid, old_url) = (driver.current().pid(), rig.browser.endpoint());
    let killed = Instant::now();
    driver.crash(); // chromedriver alone dies, as a crash would
    for round in 0..3 {
        let job = run(&rig).await;
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Succeeded, Some(Outcome::Paired)),
            "round {round}: {job:?}"
        );
        if round == 0 {
            eprintln!(
                "figure: killed chromedriver -> next job paired in {} ms",
                killed.elapsed().as_millis()
            );
        }
    }
    assert_ne!(driver.current().pid(), old_pid, "a new chromedriver");
    assert_ne!(rig.browser.endpoint(), old_url);
    rig.browser.ready().await.expect("ready again");
    rig.stop().await;
}

#[test]
fn kill_9_of_serve_takes_its_chromedriver_browsers_and_profiles_with_it() {
    let db = databases::TestDatabase::sqlite();
    let key = pairing_worker::queue::Key::generate_line();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .args([
            "serve",
            "--db",
            &db.url,
            "--listen",
            "127.0.0.1:0",
            "--prestarted-sessions",
            "2",
        ])
        .env("PAIRING_WORKER_KEY", &key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("worker ready"));
    assert!(ready, "serve started");
    std::thread::spawn(move || lines.for_each(drop)); // keep its stderr drained
    let root = format!("pairing-worker-{}-", child.id());
    // The pre-started sessions run in the shared Chromium under the driver's folder.
    let started = Instant::now();
    let before = loop {
        let found = processes_naming(&root);
        if found.len() >= 2 || started.elapsed() > Duration::from_secs(20) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        before.len() >= 2,
        "chromedriver and a browser run under {root}: {before:?}"
    );
    let folders = |root: &str| -> Vec<String> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(root))
            .collect()
    };
    assert_eq!(folders(&root).len(), 1);
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let killed = Instant::now();
    let left = loop {
        let left = processes_naming(&root);
        if (left.is_empty() && folders(&root).is_empty())
            || killed.elapsed() > Duration::from_secs(10)
        {
            break left;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "figure: {} processes under the killed worker's folder, {} left after {} ms",
        before.len(),
        left.len(),
        killed.elapsed().as_millis()
    );
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        folders(&root).is_empty(),
        "profiles left: {:?}",
        folders(&root)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_dead_worker_left_is_swept_at_start() {
    // A pid that no longer runs, and a "browser" naming its folder, as SIGKILL plus a dead
    // reaper would leave them.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let stale = std::env::temp_dir().join(format!("pairing-worker-{dead_pid}-stale"));
    std::fs::create_dir_all(stale.join("profile-x")).unwrap();
    // A "browser" whose own executable lives in the folder, so its command line names it.
    let binary = stale.join("profile-x").join("chromium");
    std::fs::copy("/bin/sleep", &binary).unwrap();
    let mut orphan = Command::new(&binary)
        .arg("300")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Visible once exec'd (another test's start may sweep it first: that is a sweep too).
    let spawned = Instant::now();
    while processes_naming(&stale.display().to_string()).is_empty()
        && orphan.try_wait().unwrap().is_none()
    {
        assert!(
            spawned.elapsed() < Duration::from_secs(5),
            "the orphan never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let browser = Browser::launch(BrowserConfig::default()).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(status) = orphan.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the orphan was killed");
    assert!(!status.success());
    assert!(!stale.exists(), "the stale folder was removed");
    browser.shutdown();
}

/// A WebDriver endpoint that misbehaves in one way.
async fn bad_endpoint(behaviour: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                match behaviour {
                    "hangs" => tokio::time::sleep(Duration::from_secs(600)).await,
                    "fails" => {
                        let body = r#"{"value":{"error":"unknown error","message":"boom"}}"#;
                        let answer = format!(
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    "not ready" => {
                        let body = r#"{"value":{"ready":false,"message":"no free nodes"}}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    _ => drop(socket), // drops the connection
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_a_job_would_get_a_browser() {
    for behaviour in ["hangs", "fails", "drops", "not ready"] {
        let url = bad_endpoint(behaviour).await;
        let browser = Browser::launch(BrowserConfig {
            endpoints: vec![Endpoint::new(url)],
            ..BrowserConfig::default()
        })
        .await
        .expect("a listening endpoint is accepted at start");
        let started = Instant::now();
        let ready = browser.ready().await;
        assert!(ready.is_err(), "{behaviour}: reported ready");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{behaviour}: the check hung"
        );
    }
    let real = Browser::launch(BrowserConfig::default()).await.unwrap();
    real.ready().await.expect("a real chromedriver is ready");
    real.shutdown();
}
