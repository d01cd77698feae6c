//! The lockout guard under faults, on SQLite and on the real PostgreSQL server: a sent password
//! counts as a failed login from the moment it is recorded until a verdict proves otherwise, so
//! retries, rescues, cancels and late verdicts can never spend more than the budget.

#[path = "support/databases.rs"]
mod databases;
#[macro_use]
#[path = "support/conformance.rs"]
mod conformance;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use conformance::*;
use databases::TestDatabase;
use pairing_worker::engine::guard::Withheld;
use pairing_worker::outcome::{CodeChannel, CodeRequest, Outcome};
use pairing_worker::queue::{
    AccountUpdate, Claimed, HeartbeatError, Job, JobKind, JobState, RunResult, SubmissionRefused,
    SubmitError,
};

conformance!(
    a_sent_password_without_verdict_counts_against_the_budget,
    an_accepted_password_does_not_count,
    a_rescued_run_is_held_to_the_budget_whatever_its_kind,
    a_verdict_after_a_cancel_still_guards_the_account,
    a_verdict_after_a_rescue_blocks_the_new_run,
    rejected_credentials_are_never_sent_again,
    a_rescued_code_wait_does_not_reuse_the_old_code,
    another_organisations_cancel_keeps_the_code,
);

/// Claims the next job and sends its password (what the worker does just before the submit).
async fn claim_and_send(f: &Fixture) -> Claimed {
    let claimed = f.queue.claim("w1").await.unwrap().expect("a ready job");
    f.queue.password_submitting(&claimed.lease).await.unwrap();
    claimed
}

async fn submit(f: &Fixture, account: &str, kind: JobKind, interactive: bool) -> Job {
    let submitted = f.queue.submit(ORG, account, kind, interactive).await;
    submitted.unwrap().job
}

/// A Reconnect whose run sent the password, reached a code page and got the merchant's code
/// (not yet taken by the worker).
async fn code_submitted(
    f: &Fixture,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> (Job, Claimed) {
    let a = account(&f.queue, ORG).await;
    let job = submit(f, &a, JobKind::Pair, true).await;
    let claimed = claim_and_send(f).await;
    let request = CodeRequest {
        channel: CodeChannel::Sms,
        destination: None,
        code_length: Some(6),
        expires_at,
    };
    f.queue
        .await_code(&claimed.lease, &request, None)
        .await
        .unwrap();
    let code = SecretString::from("123456".to_string());
    f.queue.submit_code(ORG, &job.id, &code).await.unwrap();
    (job, claimed)
}

fn infrastructure() -> RunResult {
    browser_lost("webdriver: 500 after the submit")
}

/// Past any retry's backoff.
fn after_backoff(f: &Fixture) {
    f.clock.advance(Duration::from_secs(3 * 3600));
}

async fn a_sent_password_without_verdict_counts_against_the_budget(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let job = submit(&f, &a, JobKind::Recheck, false).await;
    // Two runs each send the password, then the browser fails: no verdict either time.
    for _ in 0..2 {
        let claimed = claim_and_send(&f).await;
        assert_eq!(claimed.job.id, job.id);
        let retried = f
            .queue
            .finish(&claimed.lease, infrastructure())
            .await
            .unwrap();
        assert_eq!(
            retried.state,
            JobState::Queued,
            "an infrastructure error is retried"
        );
        after_backoff(&f);
    }
    // The third run is refused at claim: both sends may have been failed logins.
    assert!(f.queue.claim("w1").await.unwrap().is_none());
    let refused = f.queue.job(ORG, &job.id).await.unwrap().unwrap();
    assert_eq!(refused.state, JobState::Failed);
    assert!(refused.error.unwrap().contains("budget"), "says why");
    assert!(matches!(
        f.queue.submit(ORG, &a, JobKind::Recheck, false).await,
        Err(SubmitError::LoginBudgetSpent { .. })
    ));
    f.clock.advance(f.queue.config().failed_login_window);
    f.queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .expect("the window passed");
}

async fn an_accepted_password_does_not_count(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    for outcome in [
        Outcome::Paired,
        Outcome::TwoFactor(pairing_worker::outcome::TwoFactor::CodeExpired),
        INACTIVE,
        Outcome::Paired,
    ] {
        f.queue
            .submit(ORG, &a, JobKind::Recheck, false)
            .await
            .unwrap();
        let claimed = claim_and_send(&f).await;
        f.queue
            .finish(&claimed.lease, finished(outcome))
            .await
            .unwrap();
        f.clock.advance(Duration::from_secs(60));
    }
    f.queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .expect("four accepted passwords spend nothing");
}

async fn a_rescued_run_is_held_to_the_budget_whatever_its_kind(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    // The merchant's own Reconnect: its first run is theirs, every later run is automatic.
    let job = submit(&f, &a, JobKind::Pair, false).await;
    let lease = f.queue.config().lease;
    for _ in 0..2 {
        claim_and_send(&f).await; // ... and the worker is killed
        f.clock.advance(lease * 2);
    }
    assert!(
        f.queue.claim("w1").await.unwrap().is_none(),
        "refused at claim"
    );
    let refused = f.queue.job(ORG, &job.id).await.unwrap().unwrap();
    assert_eq!((refused.state, refused.attempts), (JobState::Failed, 3));
    // A graceful release gives the attempt back, but not the password it sent.
    let b = account(&f.queue, ORG).await;
    let second = submit(&f, &b, JobKind::Pair, false).await;
    let first_run = claim_and_send(&f).await;
    f.queue.release(&first_run.lease).await.unwrap();
    let again = f.queue.claim("w1").await.unwrap().unwrap();
    assert_eq!(
        (again.job.id.as_str(), again.job.attempts),
        (second.id.as_str(), 1)
    );
    f.queue.password_submitting(&again.lease).await.unwrap();
    f.queue.release(&again.lease).await.unwrap();
    assert!(
        f.queue.claim("w1").await.unwrap().is_none(),
        "two sent: refused"
    );
}

async fn a_verdict_after_a_cancel_still_guards_the_account(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let job = submit(&f, &a, JobKind::Pair, false).await;
    let claimed = claim_and_send(&f).await;
    f.queue.cancel(ORG, &job.id).await.unwrap();
    // The portal's verdict arrives after the cancel took the lease away.
    let late = f
        .queue
        .finish(&claimed.lease, finished(WRONG_PASSWORD))
        .await;
    assert!(matches!(late, Err(HeartbeatError::Lost(_))), "{late:?}");
    let cancelled = f.queue.job(ORG, &job.id).await.unwrap().unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled, "the cancel stands");
    let account = f.queue.account(ORG, &a).await.unwrap().unwrap();
    assert!(account.credentials_rejected, "the rejection is kept");
    assert!(matches!(
        f.queue.submit(ORG, &a, JobKind::Recheck, false).await,
        Err(SubmitError::CredentialsRejected)
    ));
}

async fn a_verdict_after_a_rescue_blocks_the_new_run(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    f.queue.submit(ORG, &a, JobKind::Pair, false).await.unwrap();
    let stalled = claim_and_send(&f).await;
    f.clock.advance(f.queue.config().lease * 2);
    let rescued = f
        .queue
        .claim("w2")
        .await
        .unwrap()
        .expect("rescued and claimed");
    // The stalled run's page answers now: wrong password.
    let late = f
        .queue
        .finish(&stalled.lease, finished(WRONG_PASSWORD))
        .await;
    assert!(matches!(late, Err(HeartbeatError::Lost(_))));
    // The new run must not send the rejected credentials.
    let refused = f.queue.password_submitting(&rescued.lease).await;
    assert!(
        matches!(
            refused,
            Err(SubmissionRefused::Guard(SubmitError::CredentialsRejected))
        ),
        "{refused:?}"
    );
}

async fn rejected_credentials_are_never_sent_again(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    run_to(&f, &a, JobKind::Pair, WRONG_PASSWORD).await;
    // A Reconnect without new credentials would type the same rejected password.
    f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    assert!(matches!(
        f.queue.password_submitting(&claimed.lease).await,
        Err(SubmissionRefused::Guard(SubmitError::CredentialsRejected))
    ));
    f.queue
        .finish(
            &claimed.lease,
            RunResult::Failed(RunError::Withheld(Withheld {
                reason: "withheld".into(),
                final_refusal: true,
            })),
        )
        .await
        .unwrap();
    let update = AccountUpdate {
        credentials: Some(secrets("New-Password-2").credentials),
        ..AccountUpdate::default()
    };
    f.queue.update_account(ORG, &a, update).await.unwrap();
    f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    claim_and_send(&f).await; // new credentials go
}

async fn a_rescued_code_wait_does_not_reuse_the_old_code(f: Fixture) {
    let expires = chrono::DateTime::from_timestamp_millis(f.clock.now_ms() + 60_000);
    let (job, _) = code_submitted(&f, expires).await;
    // The worker dies before taking the code; the job is rescued into a new login.
    f.clock.advance(Duration::from_secs(120)); // the lease expired, and so did the code
    let rescued = f.queue.claim("w2").await.unwrap().expect("rescued");
    assert_eq!(rescued.job.id, job.id);
    let taken = f.queue.take_code(&rescued.lease).await.unwrap();
    assert!(
        taken.is_none(),
        "the old login's code would have been typed: {:?}",
        taken.map(|c| c.expose_secret().len())
    );
}

async fn another_organisations_cancel_keeps_the_code(f: Fixture) {
    let (job, claimed) = code_submitted(&f, None).await;
    assert!(f.queue.cancel("org-intruder", &job.id).await.is_err());
    let code = f.queue.take_code(&claimed.lease).await.unwrap();
    assert_eq!(
        code.map(|c| c.expose_secret().to_string()).as_deref(),
        Some("123456")
    );
}
