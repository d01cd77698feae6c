//! Scheduled health checks, on SQLite and on the real PostgreSQL server with a fake clock: each
//! healthy account is checked once a period, spread over it, taken by one worker of many, never
//! past a guard, and a check that finds a disconnection turns the account unhealthy once (a
//! store-level one after a second, confirming look).

#[path = "support/databases.rs"]
mod databases;
#[macro_use]
#[path = "support/conformance.rs"]
mod conformance;

use std::collections::HashSet;
use std::time::Duration;

use conformance::*;
use databases::TestDatabase;
use pairing_worker::outcome::{CodeChannel, CodeRequest, Outcome};
use pairing_worker::queue::{
    Change, CheckDecision, CheckSkipped, JobKind, JobState, KeyRing, Queue, QueueConfig,
    ScheduledCheck,
};

conformance!(
    healthy_accounts_are_checked_once_a_period_spread_over_it,
    two_workers_never_take_the_same_check,
    checks_stop_at_every_guard,
    a_check_that_finds_a_disconnection_alerts_once,
    a_pairing_that_never_worked_is_not_checked,
    checks_never_spend_the_failed_login_budget,
    an_organisation_sets_its_period_or_turns_checks_off,
);

const HOUR: Duration = Duration::from_secs(3600);

fn started(checks: &[ScheduledCheck]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| matches!(c.decision, CheckDecision::Started { .. }))
        .map(|c| c.account.as_str())
        .collect()
}

async fn paired_accounts(f: &Fixture, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = account(&f.queue, ORG).await;
        run_to(f, &id, JobKind::Pair, Outcome::Paired).await;
        ids.push(id);
    }
    ids
}

async fn healthy_accounts_are_checked_once_a_period_spread_over_it(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    let ids = paired_accounts(&f, 40).await;
    // Placed, none due at once: a new schedule never starts a wave of logins.
    assert!(started(&f.queue.schedule_due_checks(100).await.unwrap()).is_empty());
    f.clock.advance(Duration::from_secs(29 * 60));
    assert!(started(&f.queue.schedule_due_checks(100).await.unwrap()).is_empty());
    // Spread over the second half of the period: about half due at three quarters.
    f.clock.advance(Duration::from_secs(16 * 60));
    let first = f.queue.schedule_due_checks(100).await.unwrap();
    let early = started(&first).len();
    assert!((5..=35).contains(&early), "{early} of 40 due at 45 min");
    f.clock.advance(Duration::from_secs(15 * 60));
    let second = f.queue.schedule_due_checks(100).await.unwrap();
    let all: HashSet<&str> = started(&first)
        .into_iter()
        .chain(started(&second))
        .collect();
    assert_eq!(all.len(), 40, "every healthy account once");
    assert_eq!(
        started(&first).len() + started(&second).len(),
        40,
        "none twice"
    );
    // Background re-checks that nobody will answer a code for.
    for check in first.iter().chain(&second) {
        let CheckDecision::Started { job } = &check.decision else {
            panic!("{check:?}")
        };
        let job = f.queue.job(ORG, job).await.unwrap().unwrap();
        assert_eq!(
            (job.kind, job.interactive, job.state),
            (JobKind::Recheck, false, JobState::Queued)
        );
    }
    // Run them all to `paired`: the next round comes a period later, not before.
    while let Some(claimed) = f.queue.claim("w1").await.unwrap() {
        f.queue
            .finish(&claimed.lease, finished(Outcome::Paired))
            .await
            .unwrap();
    }
    f.clock.advance(Duration::from_secs(40 * 60));
    assert!(started(&f.queue.schedule_due_checks(100).await.unwrap()).is_empty());
    f.clock.advance(Duration::from_secs(25 * 60));
    let third = f.queue.schedule_due_checks(100).await.unwrap();
    assert_eq!(started(&third).len(), ids.len());
}

/// Several schedulers at once, each due account taken by one: two workers on one PostgreSQL
/// database, or two calls in one process on SQLite (one process owns a SQLite file).
async fn two_workers_never_take_the_same_check(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    paired_accounts(&f, 30).await;
    f.queue.schedule_due_checks(100).await.unwrap();
    f.clock.advance(HOUR);
    let other = if f.db.url.starts_with("postgres") {
        Some(
            Queue::open_with_clock(
                &f.db.url,
                KeyRing::parse(&f.key_line, None).unwrap(),
                QueueConfig::default(),
                f.clock.clone(),
            )
            .await
            .unwrap(),
        )
    } else {
        None
    };
    let second = other.as_ref().unwrap_or(&f.queue);
    let (mine, theirs) = tokio::join!(
        f.queue.schedule_due_checks(100),
        second.schedule_due_checks(100)
    );
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    let taken: Vec<&str> = mine
        .iter()
        .chain(&theirs)
        .map(|c| c.account.as_str())
        .collect();
    let distinct: HashSet<&str> = taken.iter().copied().collect();
    assert_eq!(taken.len(), 30, "{} + {}", mine.len(), theirs.len());
    assert_eq!(distinct.len(), 30, "an account taken twice");
    assert_eq!(started(&mine).len() + started(&theirs).len(), 30);
    if let Some(other) = other {
        other.close().await;
    }
}

async fn checks_stop_at_every_guard(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    let never_paired = account(&f.queue, ORG).await;
    let broken = account(&f.queue, ORG).await;
    run_to(&f, &broken, JobKind::Pair, INACTIVE).await;
    let busy = paired_accounts(&f, 1).await.remove(0);
    let code_pending = paired_accounts(&f, 1).await.remove(0);
    let verified = paired_accounts(&f, 1).await.remove(0);
    f.queue.schedule_due_checks(100).await.unwrap();
    f.clock.advance(HOUR);
    // A code asked for, then the job cancelled; a fresh verdict; a Reconnect in progress.
    let job = f
        .queue
        .submit(ORG, &code_pending, JobKind::Pair, true)
        .await
        .unwrap()
        .job;
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    assert_eq!(claimed.job.id, job.id);
    let request = CodeRequest {
        channel: CodeChannel::Email,
        destination: None,
        code_length: Some(6),
        expires_at: None,
    };
    f.queue
        .await_code(&claimed.lease, &request, None)
        .await
        .unwrap();
    f.queue.cancel(ORG, &job.id).await.unwrap();
    run_to(&f, &verified, JobKind::Recheck, Outcome::Paired).await;
    f.queue
        .submit(ORG, &busy, JobKind::Pair, true)
        .await
        .unwrap();
    let checks = f.queue.schedule_due_checks(100).await.unwrap();
    let decision = |id: &str| {
        checks
            .iter()
            .find(|c| c.account == id)
            .map(|c| c.decision.clone())
            .unwrap_or_else(|| panic!("{id} not looked at: {checks:?}"))
    };
    assert_eq!(
        decision(&never_paired),
        CheckDecision::Skipped(CheckSkipped::NotHealthy)
    );
    assert_eq!(
        decision(&broken),
        CheckDecision::Skipped(CheckSkipped::NotHealthy)
    );
    assert_eq!(decision(&busy), CheckDecision::Skipped(CheckSkipped::Busy));
    assert_eq!(
        decision(&code_pending),
        CheckDecision::Skipped(CheckSkipped::CodePending)
    );
    assert_eq!(
        decision(&verified),
        CheckDecision::Skipped(CheckSkipped::RecentlyVerified)
    );
    assert!(started(&checks).is_empty());
    // The just-verified account's next check counts from its verdict: not due half an hour on.
    f.clock.advance(Duration::from_secs(30 * 60));
    let later = f.queue.schedule_due_checks(100).await.unwrap();
    assert!(!later.iter().any(|c| c.account == verified), "{later:?}");
}

async fn a_check_that_finds_a_disconnection_alerts_once(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    let id = paired_accounts(&f, 1).await.remove(0);
    f.queue.schedule_due_checks(100).await.unwrap();
    for round in 0..4 {
        f.clock.advance(HOUR + Duration::from_secs(10 * 60));
        let checks = f.queue.schedule_due_checks(100).await.unwrap();
        if round < 2 {
            // The first look finds the store inactive; the second (a store-level failure is
            // confirmed before anyone is alerted) finds it still inactive.
            assert_eq!(started(&checks), vec![id.as_str()], "round {round}");
            let claimed = f.queue.claim("w1").await.unwrap().unwrap();
            f.queue
                .finish(&claimed.lease, finished(INACTIVE))
                .await
                .unwrap();
            let expected = [Change::Broke, Change::Unchanged][round];
            assert_eq!(f.queue.history(&id, 1).await.unwrap()[0].change, expected);
        } else {
            // Confirmed broken: the merchant has a repair to make; no login, no transition.
            assert_eq!(
                checks[0].decision,
                CheckDecision::Skipped(CheckSkipped::NotHealthy)
            );
            assert!(f.queue.claim("w1").await.unwrap().is_none());
        }
    }
    assert_eq!(
        f.queue.history(&id, 10).await.unwrap().len(),
        3,
        "paired, broke, confirmed"
    );
}

async fn a_pairing_that_never_worked_is_not_checked(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    let id = account(&f.queue, ORG).await;
    // A store-level failure that would be confirmed on a working connection.
    run_to(&f, &id, JobKind::Pair, INACTIVE).await;
    for _ in 0..3 {
        f.clock.advance(Duration::from_secs(20 * 60));
        let checks = f.queue.schedule_due_checks(100).await.unwrap();
        assert!(started(&checks).is_empty(), "{checks:?}");
    }
}

async fn an_organisation_sets_its_period_or_turns_checks_off(f: Fixture) {
    assert_eq!(
        f.queue.check_period(ORG).await.unwrap(),
        Some(QueueConfig::default().health_check_every)
    );
    let ids = paired_accounts(&f, 3).await;
    f.queue.set_check_period(ORG, None).await.unwrap();
    assert_eq!(f.queue.check_period(ORG).await.unwrap(), None);
    for _ in 0..3 {
        assert!(f.queue.schedule_due_checks(100).await.unwrap().is_empty());
        f.clock.advance(24 * HOUR);
    }
    // Back on: spread over the new period again, due within it.
    f.queue.set_check_period(ORG, Some(2 * HOUR)).await.unwrap();
    f.queue.schedule_due_checks(100).await.unwrap();
    f.clock.advance(2 * HOUR);
    assert_eq!(
        started(&f.queue.schedule_due_checks(100).await.unwrap()).len(),
        ids.len()
    );
}

async fn checks_never_spend_the_failed_login_budget(f: Fixture) {
    f.queue.set_check_period(ORG, Some(HOUR)).await.unwrap();
    let id = paired_accounts(&f, 1).await.remove(0);
    f.queue.schedule_due_checks(100).await.unwrap();
    f.clock.advance(HOUR);
    let checks = f.queue.schedule_due_checks(100).await.unwrap();
    assert_eq!(started(&checks), vec![id.as_str()]);
    // The check's runs send the password, then the browser dies: no verdict, twice. Each send
    // may have been a failed login, so the budget (2 a day) is spent although the account is
    // still healthy.
    let budget = f.queue.config().failed_login_budget;
    for _ in 0..budget {
        let claimed = f.queue.claim("w1").await.unwrap().expect("the check's run");
        f.queue.password_submitting(&claimed.lease).await.unwrap();
        f.queue
            .finish(
                &claimed.lease,
                browser_lost("webdriver: 500 after the submit"),
            )
            .await
            .unwrap();
        f.clock.advance(3 * HOUR); // past the retry's backoff
    }
    assert!(
        f.queue.claim("w1").await.unwrap().is_none(),
        "refused at claim"
    );
    // Every later check stops at the budget: no run, no password sent.
    let mut stopped_at_budget = 0;
    for _ in 0..3 {
        f.clock.advance(HOUR);
        let checks = f.queue.schedule_due_checks(100).await.unwrap();
        assert!(started(&checks).is_empty(), "{checks:?}");
        stopped_at_budget += checks
            .iter()
            .filter(|c| c.decision == CheckDecision::Skipped(CheckSkipped::LoginBudgetSpent))
            .count();
        assert!(f.queue.claim("w1").await.unwrap().is_none());
    }
    assert!(
        stopped_at_budget >= 1,
        "looked at, and stopped by the budget"
    );
    // Once the window has passed, checks resume.
    f.clock.advance(f.queue.config().failed_login_window);
    let mut resumed = Vec::new();
    for _ in 0..2 {
        f.clock.advance(HOUR);
        resumed.extend(
            started(&f.queue.schedule_due_checks(100).await.unwrap())
                .into_iter()
                .map(str::to_string),
        );
    }
    assert_eq!(resumed, vec![id.clone()]);
}
