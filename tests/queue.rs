//! The queue conformance suite: every case runs on SQLite and on the real PostgreSQL server, on a
//! fake clock, so both backends are held to the same behaviour.

#[path = "support/databases.rs"]
mod databases;
#[macro_use]
#[path = "support/conformance.rs"]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use conformance::*;
use databases::TestDatabase;
use pairing_worker::outcome::{Blocked, CodeChannel, CodeRequest, Outcome, TwoFactor, Unavailable};
use pairing_worker::queue::{
    backoff, AccountUpdate, Change, CodeError, Health, HeartbeatError, JobKind, JobState, Key,
    KeyError, KeyRing, Lease, Queue, QueueConfig, QueueError, RunResult, SubmitError,
};

conformance!(
    claim_takes_oldest_ready_job_once,
    lease_boundary_table,
    stale_token_cannot_write_after_rescue,
    fifty_concurrent_submits_make_one_job,
    transient_outcomes_back_off_then_fail,
    infrastructure_errors_retry_and_final_outcomes_do_not,
    rejected_credentials_block_rechecks_until_they_change,
    failed_login_budget_holds_for_the_window,
    pending_code_blocks_new_logins_until_it_expires,
    codes_are_shape_checked_sealed_and_taken_once,
    a_code_submitted_here_wakes_its_own_run,
    cancel_takes_the_lease_away,
    release_gives_the_job_back_uncounted,
    recheck_results_and_health,
    organisations_never_see_each_other,
    secrets_are_encrypted_at_rest_and_rotate,
    wrong_or_missing_key_is_refused_before_anything_is_read,
);

async fn claim_takes_oldest_ready_job_once(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let b = account(&f.queue, ORG).await;
    let first = f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    assert!(first.created);
    assert_eq!(first.job.state, JobState::Queued);
    f.clock.advance(Duration::from_millis(1));
    f.queue.submit(ORG, &b, JobKind::Pair, true).await.unwrap();
    let one = f.queue.claim("w1").await.unwrap().unwrap();
    let two = f.queue.claim("w2").await.unwrap().unwrap();
    assert_eq!(one.job.id, first.job.id, "oldest first");
    assert_ne!(one.lease.token, two.lease.token);
    assert!(f.queue.claim("w3").await.unwrap().is_none());
    let running = f.queue.job(ORG, &one.job.id).await.unwrap().unwrap();
    assert_eq!((running.state, running.attempts), (JobState::Running, 1));
}

/// A lease expires strictly after its cutoff: at the cutoff it is still held.
async fn lease_boundary_table(f: Fixture) {
    let lease = f.queue.config().lease;
    let cases = [
        (lease - Duration::from_millis(1), false),
        (lease, false),
        (lease + Duration::from_millis(1), true),
        (lease * 10, true),
    ];
    for (after, rescued) in cases {
        let a = account(&f.queue, ORG).await;
        f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
        let claimed = f.queue.claim("w1").await.unwrap().unwrap();
        f.clock.advance(after);
        assert_eq!(
            f.queue.rescue_expired().await.unwrap(),
            u64::from(rescued),
            "{after:?} after the claim"
        );
        let job = f.queue.job(ORG, &claimed.job.id).await.unwrap().unwrap();
        let expected = if rescued {
            JobState::Queued
        } else {
            JobState::Running
        };
        assert_eq!(job.state, expected, "{after:?} after the claim");
        assert_eq!(f.queue.heartbeat(&claimed.lease).await.is_ok(), !rescued);
        // Leave nothing live for the next row.
        f.queue.cancel(ORG, &claimed.job.id).await.unwrap();
    }
}

async fn stale_token_cannot_write_after_rescue(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    let old = f.queue.claim("dead-worker").await.unwrap().unwrap();
    f.clock.advance(f.queue.config().lease * 2);
    let new = f
        .queue
        .claim("live-worker")
        .await
        .unwrap()
        .expect("rescued and claimed");
    assert_eq!(new.job.id, old.job.id);
    assert_eq!(new.job.attempts, 2);
    for result in [
        f.queue
            .finish(&old.lease, finished(Outcome::Paired))
            .await
            .err(),
        f.queue.heartbeat(&old.lease).await.err(),
    ] {
        assert!(
            matches!(result, Some(HeartbeatError::Lost(_))),
            "{result:?}"
        );
    }
    let done = f
        .queue
        .finish(&new.lease, finished(INACTIVE))
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.outcome),
        (JobState::Failed, Some(INACTIVE))
    );
    assert!(matches!(
        f.queue.finish(&new.lease, finished(Outcome::Paired)).await,
        Err(HeartbeatError::Lost(_))
    ));
}

async fn fifty_concurrent_submits_make_one_job(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let queue = Arc::new(f.queue);
    let submits = (0..50).map(|i| {
        let queue = queue.clone();
        let a = a.clone();
        let kind = if i % 2 == 0 {
            JobKind::Pair
        } else {
            JobKind::Recheck
        };
        tokio::spawn(async move { queue.submit(ORG, &a, kind, true).await.unwrap() })
    });
    let results = futures_util::future::join_all(submits).await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r.as_ref().unwrap().job.id.clone())
        .collect();
    let created = results
        .iter()
        .filter(|r| r.as_ref().unwrap().created)
        .count();
    assert_eq!((ids.len(), created), (1, 1));
    assert_eq!(
        queue.jobs_of_account(ORG, &a).await.unwrap().len(),
        1,
        "one row in the table"
    );
}

async fn transient_outcomes_back_off_then_fail(f: Fixture) {
    let config = f.queue.config().clone();
    let a = account(&f.queue, ORG).await;
    let job = f
        .queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .unwrap()
        .job;
    let unavailable = Outcome::ProviderUnavailable(Unavailable::Maintenance);
    for attempt in 1..=config.max_attempts {
        let claimed = f.queue.claim("w1").await.unwrap().expect("ready");
        assert_eq!(claimed.job.attempts, attempt);
        let after = f
            .queue
            .finish(&claimed.lease, finished(unavailable))
            .await
            .unwrap();
        if attempt == config.max_attempts {
            assert_eq!(after.state, JobState::Failed, "attempts spent");
            break;
        }
        assert_eq!(after.state, JobState::Queued);
        let nominal = backoff(attempt, config.backoff_base, config.backoff_cap, 1.0);
        let delay = (after.run_at
            - chrono::DateTime::from_timestamp_millis(f.clock.now_ms()).unwrap())
        .to_std()
        .unwrap();
        assert!(
            delay >= nominal / 2 && delay <= nominal,
            "attempt {attempt}: {delay:?} outside [{:?}, {nominal:?}]",
            nominal / 2
        );
        f.clock.advance(delay - Duration::from_millis(1));
        assert!(
            f.queue.claim("w1").await.unwrap().is_none(),
            "not before its time"
        );
        f.clock.advance(Duration::from_millis(1));
    }
    assert_eq!(
        f.queue.job(ORG, &job.id).await.unwrap().unwrap().attempts,
        config.max_attempts
    );
    // The schedule itself: doubling from the base, capped, never under half.
    let base = Duration::from_secs(30);
    let cap = Duration::from_secs(1800);
    let schedule: Vec<u64> = (1..=8)
        .map(|n| backoff(n, base, cap, 1.0).as_secs())
        .collect();
    assert_eq!(schedule, [30, 60, 120, 240, 480, 960, 1800, 1800]);
    assert_eq!(backoff(3, base, cap, 0.0), Duration::from_secs(60));
}

async fn infrastructure_errors_retry_and_final_outcomes_do_not(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    let after = f
        .queue
        .finish(&claimed.lease, browser_lost("chromedriver went away"))
        .await
        .unwrap();
    assert_eq!(after.state, JobState::Queued);
    let error = after.error.as_deref().unwrap_or_default();
    assert!(error.contains("chromedriver went away"), "{error}");
    f.clock.advance(f.queue.config().backoff_cap);
    for outcome in [
        WRONG_PASSWORD,
        Outcome::BlockedByThirdParty(Blocked::Captcha),
    ] {
        let claimed = f.queue.claim("w1").await.unwrap().expect("retry is ready");
        let after = f
            .queue
            .finish(&claimed.lease, finished(outcome))
            .await
            .unwrap();
        assert_eq!(after.state, JobState::Failed, "{outcome} is final");
        assert!(after.finished_at.is_some());
        f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    }
}

async fn rejected_credentials_block_rechecks_until_they_change(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    assert_eq!(
        run_to(&f, &a, JobKind::Pair, WRONG_PASSWORD).await,
        Change::Broke
    );
    assert!(
        f.queue
            .account(ORG, &a)
            .await
            .unwrap()
            .unwrap()
            .credentials_rejected
    );
    assert!(matches!(
        f.queue.submit(ORG, &a, JobKind::Recheck, false).await,
        Err(SubmitError::CredentialsRejected)
    ));
    // Days later, still nothing automatic.
    f.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert!(matches!(
        f.queue.submit(ORG, &a, JobKind::Recheck, false).await,
        Err(SubmitError::CredentialsRejected)
    ));
    let update = AccountUpdate {
        credentials: Some(secrets("New-Password-2").credentials),
        ..AccountUpdate::default()
    };
    let updated = f.queue.update_account(ORG, &a, update).await.unwrap();
    assert!(!updated.credentials_rejected);
    assert_eq!(updated.credentials_version, 2);
    let stored = f.queue.account_secrets(&a).await.unwrap().unwrap();
    assert_eq!(
        stored.credentials.password.expose_secret(),
        "New-Password-2"
    );
    assert!(stored.totp.is_some(), "other secrets kept");
    f.queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .expect("allowed again");
}

async fn failed_login_budget_holds_for_the_window(f: Fixture) {
    let config = f.queue.config().clone();
    let a = account(&f.queue, ORG).await;
    let too_many = Outcome::BlockedByThirdParty(Blocked::TooManyAttempts);
    for _ in 0..config.failed_login_budget {
        run_to(&f, &a, JobKind::Recheck, too_many).await;
        f.clock.advance(Duration::from_secs(60));
    }
    let refused = f.queue.submit(ORG, &a, JobKind::Recheck, false).await;
    assert!(
        matches!(refused, Err(SubmitError::LoginBudgetSpent { .. })),
        "budget spent"
    );
    // A Reconnect (the merchant typing credentials) is still possible.
    let pair = f
        .queue
        .submit(ORG, &a, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    f.queue.cancel(ORG, &pair.id).await.unwrap();
    f.clock.advance(config.failed_login_window);
    f.queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .expect("window passed");
}

async fn pending_code_blocks_new_logins_until_it_expires(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let expires = chrono::DateTime::from_timestamp_millis(f.clock.now_ms()).unwrap()
        + chrono::Duration::minutes(5);
    f.queue
        .submit(ORG, &a, JobKind::Recheck, false)
        .await
        .unwrap();
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    let request = CodeRequest {
        channel: CodeChannel::Email,
        destination: Some("o***@example.test".into()),
        code_length: Some(6),
        expires_at: Some(expires),
    };
    let mut report = PairingReport::of("deliveroo", Outcome::TwoFactor(TwoFactor::CodeRequired));
    report.code_request = Some(request);
    f.queue
        .finish(&claimed.lease, RunResult::reported(report))
        .await
        .unwrap();
    let account = f.queue.account(ORG, &a).await.unwrap().unwrap();
    assert_eq!(account.code_pending_until, Some(expires));
    let next = f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    assert!(next.created);
    f.clock.advance(Duration::from_secs(299));
    assert!(
        f.queue.claim("w1").await.unwrap().is_none(),
        "code still pending"
    );
    f.clock.advance(Duration::from_secs(1));
    let claimed = f.queue.claim("w1").await.unwrap().expect("code expired");
    assert_eq!(claimed.job.id, next.job.id);
    f.queue
        .finish(&claimed.lease, finished(Outcome::Paired))
        .await
        .unwrap();
    assert_eq!(
        f.queue
            .account(ORG, &a)
            .await
            .unwrap()
            .unwrap()
            .code_pending_until,
        None
    );
}

/// A code typed into this process rings the run waiting for it, and only that run; the code
/// itself is read from the database, which stays the record.
async fn a_code_submitted_here_wakes_its_own_run(f: Fixture) {
    use futures_util::FutureExt as _;
    let request = CodeRequest {
        channel: CodeChannel::Sms,
        destination: None,
        code_length: Some(6),
        expires_at: None,
    };
    let mut leases = Vec::new();
    for _ in 0..2 {
        let a = account(&f.queue, ORG).await;
        f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
        let claimed = f.queue.claim("w1").await.unwrap().unwrap();
        f.queue
            .await_code(&claimed.lease, &request, None)
            .await
            .unwrap();
        leases.push(claimed.lease);
    }
    // A stale registration for the first job (an earlier run's) is replaced, and dropping it
    // leaves the current run's bell in place.
    let stale = f.queue.code_waiter(&Lease {
        job: leases[0].job.clone(),
        token: "an-earlier-run".into(),
    });
    let first = f.queue.code_waiter(&leases[0]);
    let second = f.queue.code_waiter(&leases[1]);
    drop(stale);
    let code = SecretString::from("654321".to_string());
    f.queue
        .submit_code(ORG, &leases[0].job, &code)
        .await
        .unwrap();
    // A hang guard, not a speed check: the bell was rung before this wait began.
    tokio::time::timeout(Duration::from_secs(10), first.submitted())
        .await
        .expect("the run waiting for this code was woken");
    assert!(
        second.submitted().now_or_never().is_none(),
        "another job's run was woken"
    );
    let taken = f.queue.take_code(&leases[0]).await.unwrap().unwrap();
    assert_eq!(taken.expose_secret(), "654321");
    assert!(f.queue.take_code(&leases[0]).await.unwrap().is_none());
}

async fn codes_are_shape_checked_sealed_and_taken_once(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let job = f
        .queue
        .submit(ORG, &a, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    let code = |text: &str| SecretString::from(text.to_string());
    assert!(matches!(
        f.queue.submit_code(ORG, &job.id, &code("123456")).await,
        Err(CodeError::NotAwaiting {
            state: JobState::Queued
        })
    ));
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    let request = CodeRequest {
        channel: CodeChannel::Sms,
        destination: Some("+44 ••• ••• 12 34".into()),
        code_length: Some(6),
        expires_at: None,
    };
    f.queue
        .await_code(&claimed.lease, &request, None)
        .await
        .unwrap();
    let waiting = f.queue.job(ORG, &job.id).await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::AwaitingCode);
    assert_eq!(waiting.code_request.as_ref(), Some(&request));
    assert!(f
        .queue
        .account(ORG, &a)
        .await
        .unwrap()
        .unwrap()
        .code_pending_until
        .is_some());
    for bad in ["12345", "1234567", "12 34 56", ""] {
        assert!(
            matches!(
                f.queue.submit_code(ORG, &job.id, &code(bad)).await,
                Err(CodeError::Shape(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        f.queue.submit_code("org-b", &job.id, &code("482913")).await,
        Err(CodeError::Queue(QueueError::UnknownJob(_)))
    ));
    f.queue
        .submit_code(ORG, &job.id, &code(" 482913 "))
        .await
        .unwrap();
    assert!(matches!(
        f.queue.submit_code(ORG, &job.id, &code("111111")).await,
        Err(CodeError::AlreadySubmitted)
    ));
    let taken = f
        .queue
        .take_code(&claimed.lease)
        .await
        .unwrap()
        .expect("code");
    assert_eq!(taken.expose_secret(), "482913");
    assert!(
        f.queue.take_code(&claimed.lease).await.unwrap().is_none(),
        "taken once"
    );
    f.queue.code_taken(&claimed.lease).await.unwrap();
    assert_eq!(
        f.queue.job(ORG, &job.id).await.unwrap().unwrap().state,
        JobState::Running
    );
}

async fn cancel_takes_the_lease_away(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let job = f
        .queue
        .submit(ORG, &a, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    let cancelled = f.queue.cancel(ORG, &job.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(matches!(
        f.queue.heartbeat(&claimed.lease).await,
        Err(HeartbeatError::Lost(_))
    ));
    assert!(
        f.queue
            .submit(ORG, &a, JobKind::Pair, true)
            .await
            .unwrap()
            .created
    );
}

async fn release_gives_the_job_back_uncounted(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    f.queue.submit(ORG, &a, JobKind::Pair, true).await.unwrap();
    let claimed = f.queue.claim("stopping").await.unwrap().unwrap();
    f.queue.release(&claimed.lease).await.unwrap();
    let again = f.queue.claim("next").await.unwrap().expect("released job");
    assert_eq!((again.job.id, again.job.attempts), (claimed.job.id, 1));
}

async fn recheck_results_and_health(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    assert_eq!(f.queue.health(&a).await.unwrap(), Health::Unknown);
    assert_eq!(run_to(&f, &a, JobKind::Pair, INACTIVE).await, Change::Broke);
    let broke_at = f.clock.now_ms();
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        run_to(&f, &a, JobKind::Recheck, INACTIVE).await,
        Change::Unchanged
    );
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        run_to(&f, &a, JobKind::Recheck, WRONG_PASSWORD).await,
        Change::Changed
    );
    match f.queue.health(&a).await.unwrap() {
        Health::NeedsAttention {
            error,
            resolution,
            since,
            last_change,
        } => {
            assert_eq!(error, WRONG_PASSWORD);
            assert_eq!(resolution, pairing_worker::outcome::Resolution::Reconnect);
            assert_eq!(since.timestamp_millis(), broke_at);
            assert_eq!(last_change, Change::Changed);
        }
        other => panic!("{other:?}"),
    }
    let update = AccountUpdate {
        credentials: Some(secrets("Right-Password-3").credentials),
        ..AccountUpdate::default()
    };
    f.queue.update_account(ORG, &a, update).await.unwrap();
    assert_eq!(
        run_to(&f, &a, JobKind::Pair, Outcome::Paired).await,
        Change::Resolved
    );
    assert!(matches!(
        f.queue.health(&a).await.unwrap(),
        Health::Healthy { .. }
    ));
    assert_eq!(f.queue.history(&a, 10).await.unwrap().len(), 4);
    // The organisation-wide query agrees with the per-account one.
    let other = account(&f.queue, ORG).await;
    run_to(&f, &other, JobKind::Recheck, INACTIVE).await;
    let healths = f.queue.healths(ORG).await.unwrap();
    assert_eq!(healths.len(), 2);
    for id in [&a, &other] {
        assert_eq!(healths[id.as_str()], f.queue.health(id).await.unwrap());
    }
}

async fn organisations_never_see_each_other(f: Fixture) {
    let mine = account(&f.queue, ORG).await;
    let theirs = account(&f.queue, "org-b").await;
    let job = f
        .queue
        .submit("org-b", &theirs, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    assert!(f.queue.account(ORG, &theirs).await.unwrap().is_none());
    assert!(f.queue.job(ORG, &job.id).await.unwrap().is_none());
    assert!(matches!(
        f.queue.submit(ORG, &theirs, JobKind::Pair, true).await,
        Err(SubmitError::Queue(QueueError::UnknownAccount(_)))
    ));
    assert!(matches!(
        f.queue.cancel(ORG, &job.id).await,
        Err(QueueError::UnknownJob(_))
    ));
    assert_eq!(
        f.queue.job("org-b", &job.id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert!(matches!(
        f.queue
            .update_account(ORG, &theirs, AccountUpdate::default())
            .await,
        Err(QueueError::UnknownAccount(_))
    ));
    assert!(!f.queue.delete_account(ORG, &theirs).await.unwrap());
    let listed: Vec<_> = f
        .queue
        .accounts(ORG)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&mine));
    assert!(f.queue.delete_account(ORG, &mine).await.unwrap());
    assert!(
        f.queue.account_secrets(&mine).await.unwrap().is_none(),
        "secrets destroyed"
    );
}

async fn secrets_are_encrypted_at_rest_and_rotate(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    let job = f
        .queue
        .submit(ORG, &a, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    let request = CodeRequest {
        channel: CodeChannel::Email,
        destination: None,
        code_length: None,
        expires_at: None,
    };
    f.queue
        .await_code(&claimed.lease, &request, None)
        .await
        .unwrap();
    f.queue
        .submit_code(ORG, &job.id, &SecretString::from("C0DE77".to_string()))
        .await
        .unwrap();
    let dump = dump(&f.db.url).await;
    for canary in [
        "Canary-Password-8c1f",
        "JBSWY3DPEHPK3PXP",
        "owner@example.test",
        "C0DE77",
    ] {
        assert!(!dump.contains(canary), "{canary} stored in clear");
    }
    f.queue.close().await;
    // Rotate: the new key first, the old one still readable.
    let new_line = Key::generate_line();
    let ring = KeyRing::parse(&new_line, Some(&f.key_line)).unwrap();
    let queue = Queue::open_with_clock(&f.db.url, ring, QueueConfig::default(), f.clock.clone())
        .await
        .unwrap();
    assert_eq!(
        queue.rotate_keys().await.unwrap(),
        2,
        "account and pending code"
    );
    let new_id = new_line.split(':').next().unwrap();
    assert_eq!(queue.key_ids_in_use().await.unwrap(), [new_id]);
    queue.close().await;
    // The old key can go now.
    let queue = Queue::open_with_clock(
        &f.db.url,
        KeyRing::parse(&new_line, None).unwrap(),
        QueueConfig::default(),
        f.clock.clone(),
    )
    .await
    .unwrap();
    let stored = queue.account_secrets(&a).await.unwrap().unwrap();
    assert_eq!(
        stored.credentials.password.expose_secret(),
        "Canary-Password-8c1f"
    );
    assert_eq!(
        queue
            .take_code(&claimed.lease)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "C0DE77"
    );
}

async fn wrong_or_missing_key_is_refused_before_anything_is_read(f: Fixture) {
    let a = account(&f.queue, ORG).await;
    f.queue.close().await;
    let before = dump(&f.db.url).await;
    // Same id, different key material.
    let id = f.key_line.split(':').next().unwrap();
    let other = Key::generate_line();
    let impostor = format!("{id}:{}", other.split_once(':').unwrap().1);
    let refused = |line: String| {
        let url = f.db.url.clone();
        async move {
            let ring = KeyRing::parse(&line, None).unwrap();
            Queue::open(&url, ring, QueueConfig::default())
                .await
                .err()
                .expect("refused")
        }
    };
    let error = refused(impostor).await;
    assert!(
        matches!(error, QueueError::Key(KeyError::WrongKey(_))),
        "{error}"
    );
    // A new key without the old one: the old secrets would be unreadable.
    let error = refused(other).await;
    assert!(
        matches!(error, QueueError::Key(KeyError::UnknownKeyIds(_))),
        "{error}"
    );
    assert!(error.to_string().contains(id), "{error}");
    assert_eq!(
        dump(&f.db.url).await,
        before,
        "nothing written by a refused open"
    );
    let queue = Queue::open(
        &f.db.url,
        KeyRing::parse(&f.key_line, None).unwrap(),
        QueueConfig::default(),
    )
    .await
    .unwrap();
    assert!(queue.account_secrets(&a).await.unwrap().is_some());
}

/// Every text value in the tables, for at-rest checks.
async fn dump(url: &str) -> String {
    use sqlx::{Column, Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let mut out = String::new();
    for table in [
        "accounts",
        "jobs",
        "job_codes",
        "encryption_keys",
        "account_history",
        "password_submissions",
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY 1"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            for (i, column) in row.columns().iter().enumerate() {
                let value = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string())
                    })
                    .unwrap_or_default();
                out.push_str(&format!("{table}.{}={value}\n", column.name()));
            }
        }
    }
    conn.close().await.unwrap();
    out
}

#[tokio::test]
async fn bad_database_files_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ring = || KeyRing::parse(&Key::generate_line(), None).unwrap();
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(
        &corrupt,
        b"this is not a database, just some bytes\n".repeat(200),
    )
    .unwrap();
    let url = format!("sqlite:{}", corrupt.display());
    let error = Queue::open(&url, ring(), QueueConfig::default())
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("corrupt.db"), "{error}");
    assert!(error.to_string().contains("not a database"), "{error}");

    let foreign = dir.path().join("foreign.db");
    let url = format!("sqlite:{}", foreign.display());
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let error = Queue::open(&url, ring(), QueueConfig::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, QueueError::Foreign { .. }), "{error}");
    assert!(error.to_string().contains("invoices"), "{error}");

    let error = Queue::open("mysql://localhost/x", ring(), QueueConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("expected sqlite:PATH or postgres://"),
        "{error}"
    );
    let error = Queue::open(
        "postgres://nobody:hunter2@127.0.0.1:1/none",
        ring(),
        QueueConfig::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(
        !error.to_string().contains("hunter2"),
        "password in an error: {error}"
    );
}

#[tokio::test]
async fn unknown_ids_are_clear_errors() {
    let f = fixture(TestDatabase::sqlite()).await;
    assert!(f.queue.job(ORG, "no-such-job").await.unwrap().is_none());
    assert!(matches!(
        f.queue.cancel(ORG, "no-such-job").await,
        Err(QueueError::UnknownJob(id)) if id == "no-such-job"
    ));
    assert!(matches!(
        f.queue
            .submit(ORG, "no-such-account", JobKind::Recheck, false)
            .await,
        Err(SubmitError::Queue(QueueError::UnknownAccount(_)))
    ));
    assert!(matches!(
        f.queue
            .submit_code(ORG, "no-such-job", &SecretString::from("1".to_string()))
            .await,
        Err(CodeError::Queue(QueueError::UnknownJob(_)))
    ));
}
