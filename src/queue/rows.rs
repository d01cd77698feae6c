//! SQL rows to the queue's types: the column lists every read selects, and the mapping back.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{time, Account, HistoryEntry, Job, Queue, QueueError};

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, organisation, provider, stores, credentials_version, \
    rejected_version, code_pending_until, created_at, updated_at";

/// Read from `jobs j JOIN accounts a`.
pub(super) const JOB_COLUMNS: &str =
    "j.id, j.account_id, a.organisation, j.worker, a.provider, j.kind, j.interactive, \
    j.state, j.credentials_version, j.attempts, j.run_at, j.code_request, j.code_verdict, j.outcome, j.result, j.error, j.created_at, \
    j.updated_at, j.started_at, j.finished_at";

/// The job's states while a run holds its lease.
pub(super) const HELD_STATES: &str = "('running', 'awaiting_code')";

/// The job's states until it ends (one per account at a time).
pub(super) const LIVE_STATES: &str = "('queued', 'running', 'awaiting_code')";

impl Queue {
    pub(super) fn account_from_row(&self, row: &AnyRow) -> Result<Account, QueueError> {
        let stores: String = row.get("stores");
        let now = self.clock.now_ms();
        Ok(Account {
            id: row.get("id"),
            organisation: row.get("organisation"),
            provider: row.get("provider"),
            stores: serde_json::from_str(&stores)
                .map_err(|e| QueueError::Corrupt(format!("account stores: {e}")))?,
            credentials_version: row.get("credentials_version"),
            credentials_rejected: row.get::<Option<i64>, _>("rejected_version")
                == Some(row.get("credentials_version")),
            code_pending_until: row
                .get::<Option<i64>, _>("code_pending_until")
                .filter(|until| *until > now)
                .map(time),
            created_at: time(row.get("created_at")),
            updated_at: time(row.get("updated_at")),
        })
    }
}

/// An optional text column parsed as `T` (an enum's name, a JSON document).
fn parsed<T>(
    row: &AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    corrupt: impl FnOnce() -> QueueError,
) -> Result<Option<T>, QueueError> {
    match row.get::<Option<String>, _>(column) {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).ok_or_else(corrupt),
    }
}

pub(super) fn job_from_row(row: &AnyRow) -> Result<Job, QueueError> {
    let corrupt = |what: &str| QueueError::Corrupt(format!("job {what}"));
    let kind: String = row.get("kind");
    let state: String = row.get("state");
    Ok(Job {
        id: row.get("id"),
        account_id: row.get("account_id"),
        organisation: row.get("organisation"),
        worker: row.get("worker"),
        provider: row.get("provider"),
        kind: kind.parse().map_err(|_| corrupt("kind"))?,
        interactive: row.get::<i64, _>("interactive") != 0,
        state: state.parse().map_err(|_| corrupt("state"))?,
        credentials_version: row.get("credentials_version"),
        attempts: row.get("attempts"),
        run_at: time(row.get("run_at")),
        code_request: parsed(
            row,
            "code_request",
            |text| serde_json::from_str(text).ok(),
            || corrupt("code request"),
        )?,
        code_verdict: parsed(
            row,
            "code_verdict",
            |text| text.parse().ok(),
            || corrupt("code verdict"),
        )?,
        outcome: parsed(
            row,
            "outcome",
            |text| text.parse().ok(),
            || corrupt("outcome"),
        )?,
        result: parsed(
            row,
            "result",
            |text| serde_json::from_str(text).ok(),
            || corrupt("result"),
        )?,
        error: row.get("error"),
        created_at: time(row.get("created_at")),
        updated_at: time(row.get("updated_at")),
        started_at: row.get::<Option<i64>, _>("started_at").map(time),
        finished_at: row.get::<Option<i64>, _>("finished_at").map(time),
    })
}

pub(super) fn history_from_row(row: &AnyRow) -> Result<HistoryEntry, QueueError> {
    let corrupt = |what: &str| QueueError::Corrupt(format!("history {what}"));
    let kind: String = row.get("kind");
    let outcome: String = row.get("outcome");
    let change: String = row.get("change");
    Ok(HistoryEntry {
        job_id: row.get("job_id"),
        kind: kind.parse().map_err(|_| corrupt("kind"))?,
        at: time(row.get("at")),
        outcome: outcome.parse().map_err(|_| corrupt("outcome"))?,
        previous: parsed(
            row,
            "previous",
            |text| text.parse().ok(),
            || corrupt("previous"),
        )?,
        change: change.parse().map_err(|_| corrupt("change"))?,
    })
}
