//! Three `serve` processes on one PostgreSQL queue, one chromedriver and the sandbox portals,
//! working through a backlog: one is killed with SIGKILL mid-run, another drained with SIGTERM
//! under load, and still every job finishes exactly once (one verdict in its account's history),
//! the killed worker's jobs rescued and run again, the drained one exiting 0.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use databases::TestDatabase;
use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{Job, JobKind, JobState};

const ORG: &str = "org-fleet";
const PASSWORD: &str = "Sandbox-Pass-1";
const JOBS: usize = 300;

async fn states(stage: &serve::Stage, jobs: &[String]) -> Vec<Job> {
    let mut states = Vec::with_capacity(jobs.len());
    for id in jobs {
        states.push(stage.queue.job(ORG, id).await.unwrap().unwrap());
    }
    states
}

fn finished(states: &[Job]) -> usize {
    states.iter().filter(|j| j.state.is_final()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_finish_every_job_once_through_a_kill_and_a_drain() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let stage = serve::Stage::start_on(db).await;
    let mut accounts = Vec::new();
    let mut jobs = Vec::new();
    for _ in 0..JOBS {
        let account = serve::password_account(
            &stage.queue,
            ORG,
            "deliveroo",
            "owner@sandbox.test",
            PASSWORD,
        )
        .await;
        let job = stage
            .queue
            .submit(ORG, &account, JobKind::Pair, false)
            .await
            .unwrap();
        accounts.push(account);
        jobs.push(job.job.id);
    }
    let logs = tempfile::tempdir().unwrap();
    // Logins are limited per worker and provider; this backlog is one provider's.
    let unlimited = ["--logins-per-minute", "100000"];
    let mut workers: Vec<serve::Serve> = (0..3)
        .map(|i| stage.serve_with(logs.path().join(format!("{i}.log")), &unlimited))
        .collect();
    let began = Instant::now();
    let deadline = began + Duration::from_secs(600);
    let wait_until = |done: usize| {
        let (stage, jobs) = (&stage, &jobs);
        async move {
            loop {
                let states = states(stage, jobs).await;
                if finished(&states) >= done {
                    return states;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} of {JOBS} finished",
                    finished(&states)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // Worker 0 dies mid-run, holding jobs.
    let states = wait_until(JOBS / 5).await;
    let held: Vec<String> = states
        .iter()
        .filter(|j| j.state == JobState::Running)
        .map(|j| j.id.clone())
        .collect();
    workers[0].child.kill().unwrap();
    workers[0].child.wait().unwrap();
    assert!(!held.is_empty(), "jobs were running when the worker died");

    // Worker 1 is drained under load: it stops claiming, finishes or releases, exits 0.
    wait_until(JOBS / 2).await;
    unsafe { libc::kill(workers[1].child.id() as i32, libc::SIGTERM) };
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = workers[1].child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(40),
            "SIGTERM ignored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "drained worker: {status:?}");

    // Worker 2 finishes the rest, the killed worker's jobs among them.
    let states = wait_until(JOBS).await;
    let elapsed = began.elapsed();
    for job in &states {
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Succeeded, Some(Outcome::Paired)),
            "{job:?}"
        );
    }
    let rescued = states.iter().filter(|j| held.contains(&j.id)).count();
    assert!(rescued >= 1);
    for account in &accounts {
        let history = stage.queue.history(account, 10).await.unwrap();
        assert_eq!(history.len(), 1, "one verdict per job: {history:?}");
    }
    let twice = states.iter().filter(|j| j.attempts > 1).count();
    eprintln!(
        "{JOBS} jobs by 3 workers (one killed, one drained) in {:.1} s; {twice} ran twice",
        elapsed.as_secs_f64()
    );
    workers[2].child.kill().unwrap();
    for worker in &workers {
        let text = std::fs::read_to_string(&worker.log).unwrap();
        assert!(
            !text.contains(PASSWORD),
            "password in {}",
            worker.log.display()
        );
        assert!(
            !text.contains(&stage.key[4..]),
            "key in {}",
            worker.log.display()
        );
    }
    stage.browser.shutdown();
}
