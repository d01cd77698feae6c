//! The failed-login budget under bad luck, end to end with real parts: the sandbox portal counts
//! every wrong password it is sent — what a platform's lockout counter sees — and whatever
//! happens after a password is posted (the browser failing, the worker killed with SIGKILL, a
//! cancel racing the verdict), that count never exceeds the budget (2 per account per 24 h).

#[path = "support/databases.rs"]
mod databases;
#[path = "support/faulty_webdriver.rs"]
mod faulty_webdriver;
#[path = "support/rig.rs"]
mod rig;
#[path = "support/serve.rs"]
mod serve;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::kit::sandbox::Sandbox;
use pairing_worker::provider::Registry;
use pairing_worker::queue::{
    AccountSecrets, Job, JobKind, JobState, NewAccount, Queue, QueueConfig, SubmitError,
};
use pairing_worker::secret::Credentials;

const ORG: &str = "org-faults";
const PROVIDER: &str = "deliveroo";
const TYPED: &str = "Not-The-Password-7";

/// Retries come quickly so a test sees every run the queue would make.
fn quick_retries() -> QueueConfig {
    QueueConfig {
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(400),
        ..QueueConfig::default()
    }
}

async fn wrong_password_account(queue: &Queue, username: &str) -> String {
    let secrets = AccountSecrets {
        credentials: Credentials {
            username: username.into(),
            password: SecretString::from(TYPED.to_string()),
        },
        totp: None,
        mailbox: None,
    };
    queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: PROVIDER.into(),
            secrets,
            stores: Vec::new(),
        })
        .await
        .unwrap()
        .id
}

/// The merchant's Reconnect for the account, in the background (no code to type).
async fn reconnect(queue: &Queue, account: &str) -> Job {
    let submitted = queue.submit(ORG, account, JobKind::Pair, false).await;
    submitted.unwrap().job
}

async fn wait_for(queue: &Queue, job: &str, done: impl Fn(&Job) -> bool, within: Duration) -> Job {
    let started = Instant::now();
    loop {
        let current = queue.job(ORG, job).await.unwrap().unwrap();
        if done(&current) {
            return current;
        }
        assert!(started.elapsed() < within, "job stuck: {current:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the sandbox has seen more than `seen` password posts for `username`, or the job
/// is final; `true` when a new password was posted.
async fn wait_for_post(
    sandbox: &Sandbox,
    queue: &Queue,
    username: &str,
    seen: u32,
    job: &str,
) -> bool {
    let started = Instant::now();
    loop {
        if sandbox.attempts(PROVIDER, username).submitted > seen {
            return true;
        }
        if queue.job(ORG, job).await.unwrap().unwrap().state.is_final() {
            return false;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no password was posted"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_failing_after_the_submit_spends_the_budget_and_no_more() {
    let username = "wrong.password@sandbox.test";
    // The real chromedriver, behind a proxy that fails the first command after each post.
    let upstream = Browser::launch(BrowserConfig::default()).await.unwrap();
    let registry = Registry::from_source_tree().unwrap();
    let sandbox = Arc::new(
        Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree()).unwrap(),
    );
    let punished = Arc::new(AtomicU32::new(0));
    let rule = {
        let (sandbox, punished) = (sandbox.clone(), punished.clone());
        Arc::new(move |_: &axum::http::Method, path: &str| {
            let posted = sandbox.attempts(PROVIDER, username).submitted;
            // Not the session's own creation or deletion: a command inside the login.
            path.contains("/session/")
                && punished
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                        (posted > p).then_some(posted)
                    })
                    .is_ok()
        })
    };
    let proxy = faulty_webdriver::start(&upstream.endpoint(), rule).await;
    let rig = rig::Rig::start_with(rig::RigOptions {
        webdriver: Some(proxy),
        queue: Some(quick_retries()),
        sandbox: Some(sandbox.clone()),
        ..Default::default()
    })
    .await;
    let account = wrong_password_account(&rig.queue, username).await;
    let job = reconnect(&rig.queue, &account).await;
    let ended = wait_for(
        &rig.queue,
        &job.id,
        |j| j.state.is_final(),
        Duration::from_secs(120),
    )
    .await;
    let seen = sandbox.attempts(PROVIDER, username);
    assert!(
        punished.load(Ordering::SeqCst) >= 1,
        "the fault was injected"
    );
    assert_eq!(
        seen.failed, 2,
        "budget of 2, and nothing past it: {seen:?}, {ended:?}"
    );
    assert_eq!(ended.state, JobState::Failed);
    assert!(
        ended
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("budget"),
        "{ended:?}"
    );
    assert!(matches!(
        rig.queue
            .submit(ORG, &account, JobKind::Recheck, false)
            .await,
        Err(SubmitError::LoginBudgetSpent { .. })
    ));
    rig.stop().await;
    upstream.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_the_verdict_still_records_it() {
    let username = "wrong.password@sandbox.test";
    let rig = rig::Rig::start().await;
    let account = wrong_password_account(&rig.queue, username).await;
    for _ in 0..4 {
        let seen = rig.sandbox.attempts(PROVIDER, username).submitted;
        let job = reconnect(&rig.queue, &account).await;
        if wait_for_post(&rig.sandbox, &rig.queue, username, seen, &job.id).await {
            rig.queue.cancel(ORG, &job.id).await.unwrap();
        }
        wait_for(
            &rig.queue,
            &job.id,
            |j| j.state.is_final(),
            Duration::from_secs(60),
        )
        .await;
        // The cancelled run may still be reading the verdict: let it land.
        let started = Instant::now();
        while !rig
            .queue
            .account(ORG, &account)
            .await
            .unwrap()
            .unwrap()
            .credentials_rejected
            && started.elapsed() < Duration::from_secs(25)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let seen = rig.sandbox.attempts(PROVIDER, username);
    assert!(seen.failed <= 2, "{seen:?}");
    assert_eq!(
        seen.failed, 1,
        "the first verdict was kept, so nothing was sent again: {seen:?}"
    );
    let account = rig.queue.account(ORG, &account).await.unwrap().unwrap();
    assert!(
        account.credentials_rejected,
        "the verdict after the cancel was recorded"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_each_post_never_exceeds_the_budget() {
    let username = "wrong.password@sandbox.test";
    let stage = serve::Stage::start().await;
    let (sandbox, queue) = (&stage.sandbox, &stage.queue);
    let account = wrong_password_account(queue, username).await;
    let job = reconnect(queue, &account).await;
    let logs = tempfile::tempdir().unwrap();
    let mut kills = 0;
    for round in 0..5 {
        let log = logs.path().join(format!("{round}.log"));
        let mut worker = stage.serve(log);
        let seen = sandbox.attempts(PROVIDER, username).submitted;
        let posted = wait_for_post(sandbox, queue, username, seen, &job.id).await;
        if posted && round < 4 {
            worker.child.kill().unwrap(); // SIGKILL, the verdict page not yet read
            worker.child.wait().unwrap();
            kills += 1;
            continue;
        }
        wait_for(
            queue,
            &job.id,
            |j| j.state.is_final(),
            Duration::from_secs(60),
        )
        .await;
        worker.child.kill().unwrap();
        worker.child.wait().unwrap();
        break;
    }
    let ended = queue.job(ORG, &job.id).await.unwrap().unwrap();
    let seen = sandbox.attempts(PROVIDER, username);
    assert!(
        kills >= 1,
        "the worker was killed after a post {kills} times"
    );
    assert!(seen.failed <= 2, "{seen:?} after {kills} kills: {ended:?}");
    assert_eq!(ended.state, JobState::Failed, "{ended:?}");
    stage.browser.shutdown();
}
