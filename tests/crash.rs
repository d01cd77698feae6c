//! A real crash: `serve` is killed with SIGKILL in the middle of sandbox logins, restarted, and
//! every job still reaches a final state; then SIGTERM stops it cleanly.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{JobKind, JobState};

const ORG: &str = "org-crash";
const PASSWORD: &str = "Sandbox-Pass-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_login_loses_no_job_and_sigterm_exits_cleanly() {
    let stage = serve::Stage::start().await;
    let (sandbox, queue, key) = (&stage.sandbox, &stage.queue, &stage.key);
    let usernames = [
        "owner@sandbox.test",
        "dac7@sandbox.test",
        "group@sandbox.test",
        "gerant@sandbox.test",
        "titolare@sandbox.test",
    ];
    let mut jobs = Vec::new();
    for username in usernames {
        let account = serve::password_account(queue, ORG, "deliveroo", username, PASSWORD).await;
        let job = queue
            .submit(ORG, &account, JobKind::Pair, false)
            .await
            .unwrap();
        jobs.push(job.job.id);
    }
    let logs = tempfile::tempdir().unwrap();
    let mut first = stage.serve(logs.path().join("1.log"));

    // Wait until a login is under way: a job running and its password already posted.
    let started = Instant::now();
    let killed_mid_login = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no job started"
        );
        let mut running = None;
        for id in &jobs {
            let job = queue.job(ORG, id).await.unwrap().unwrap();
            if job.state == JobState::Running {
                running = Some(job);
            }
        }
        let posted = usernames
            .iter()
            .any(|u| sandbox.attempts("deliveroo", u).submitted > 0);
        if let (Some(job), true) = (running, posted) {
            first.child.kill().unwrap(); // SIGKILL
            first.child.wait().unwrap();
            break job.id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let orphaned = queue.job(ORG, &killed_mid_login).await.unwrap().unwrap();
    assert!(
        !orphaned.state.is_final(),
        "the job was mid-run when the worker died: {orphaned:?}"
    );

    let mut second = stage.serve(logs.path().join("2.log"));
    let started = Instant::now();
    loop {
        let mut states = Vec::new();
        for id in &jobs {
            states.push(queue.job(ORG, id).await.unwrap().unwrap());
        }
        if states.iter().all(|job| job.state.is_final()) {
            for job in &states {
                assert_eq!(
                    (job.state, job.outcome),
                    (JobState::Succeeded, Some(Outcome::Paired)),
                    "{job:?}"
                );
            }
            let rescued = states
                .iter()
                .find(|job| job.id == killed_mid_login)
                .unwrap();
            assert_eq!(rescued.attempts, 2, "rescued and run again");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "jobs left unfinished: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: stop claiming, finish, exit 0.
    unsafe { libc::kill(second.child.id() as i32, libc::SIGTERM) };
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = second.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "serve ignored SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    for log in [&first.log, &second.log] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("job claimed"), "{}: {text}", log.display());
        // JSON lines by default; every line logged inside a job names the job, account, provider.
        let in_jobs: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line["span"]["name"] == "job")
            .collect();
        assert!(
            in_jobs
                .iter()
                .any(|line| line["fields"]["message"] == "job claimed"),
            "no JSON `job claimed` line in {}",
            log.display()
        );
        for line in &in_jobs {
            for field in ["job", "account", "provider"] {
                assert!(line["span"][field].is_string(), "no {field}: {line}");
            }
        }
        assert!(!text.contains(PASSWORD), "password in {}", log.display());
        assert!(!text.contains(&key[4..]), "key in {}", log.display());
    }
    stage.browser.shutdown();
}
