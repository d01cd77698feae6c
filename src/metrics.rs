//! Prometheus metrics: what the worker process observed (durations, rate-limit waits, open
//! browser sessions) plus what the shared database says (queue depth, jobs by provider and
//! outcome). Plain text exposition format; a few atomics are all it needs.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// What the shared database says, read by the caller (the API) for one scrape: jobs by state,
/// finished runs by provider and outcome, across all workers.
pub struct DatabaseCounts {
    pub jobs_by_state: Vec<(String, i64)>,
    pub finished: Vec<(String, String, i64)>,
}

/// Upper bounds (seconds) of the pairing-duration histogram: a flow takes 1–10 s, a code wait
/// up to minutes.
const BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

pub struct Metrics {
    durations: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_ms: AtomicU64,
    rate_limit_waits: AtomicU64,
    rate_limit_wait_ms: AtomicU64,
    open_sessions: AtomicI64,
    webdriver_replacements: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    durations: [const { AtomicU64::new(0) }; BUCKETS.len()],
    duration_count: AtomicU64::new(0),
    duration_sum_ms: AtomicU64::new(0),
    rate_limit_waits: AtomicU64::new(0),
    rate_limit_wait_ms: AtomicU64::new(0),
    open_sessions: AtomicI64::new(0),
    webdriver_replacements: AtomicU64::new(0),
};

impl Metrics {
    pub fn pairing_finished(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.durations.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_sum_ms
            .fetch_add(elapsed.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn rate_limit_waited(&self, waited: std::time::Duration) {
        self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
        self.rate_limit_wait_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn session_opened(&self) {
        self.open_sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_closed(&self) {
        self.open_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn webdriver_replaced(&self) {
        self.webdriver_replacements.fetch_add(1, Ordering::Relaxed);
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text for `/metrics`.
pub fn render(database: &DatabaseCounts) -> String {
    let m = &METRICS;
    let mut out = String::new();
    out.push_str("# HELP pairing_queue_jobs Jobs in the queue by state (all workers).\n");
    out.push_str("# TYPE pairing_queue_jobs gauge\n");
    for (state, count) in &database.jobs_by_state {
        let _ = writeln!(out, "pairing_queue_jobs{{state=\"{state}\"}} {count}");
    }
    out.push_str(
        "# HELP pairing_jobs_finished_total Finished runs by provider and outcome (all workers).\n",
    );
    out.push_str("# TYPE pairing_jobs_finished_total counter\n");
    for (provider, outcome, count) in &database.finished {
        let _ = writeln!(
            out,
            "pairing_jobs_finished_total{{provider=\"{}\",outcome=\"{}\"}} {count}",
            label(provider),
            label(outcome)
        );
    }
    out.push_str(
        "# HELP pairing_duration_seconds Pairing runs in this process, start to outcome.\n",
    );
    out.push_str("# TYPE pairing_duration_seconds histogram\n");
    for (bucket, bound) in m.durations.iter().zip(BUCKETS) {
        let _ = writeln!(
            out,
            "pairing_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            bucket.load(Ordering::Relaxed)
        );
    }
    let count = m.duration_count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "pairing_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "pairing_duration_seconds_sum {}",
        m.duration_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    let _ = writeln!(out, "pairing_duration_seconds_count {count}");
    out.push_str(
        "# HELP pairing_rate_limit_waits_total Logins that waited for the provider rate limit.\n",
    );
    out.push_str("# TYPE pairing_rate_limit_waits_total counter\n");
    let _ = writeln!(
        out,
        "pairing_rate_limit_waits_total {}",
        m.rate_limit_waits.load(Ordering::Relaxed)
    );
    out.push_str(
        "# HELP pairing_rate_limit_wait_seconds_total Time spent waiting for rate limits.\n",
    );
    out.push_str("# TYPE pairing_rate_limit_wait_seconds_total counter\n");
    let _ = writeln!(
        out,
        "pairing_rate_limit_wait_seconds_total {}",
        m.rate_limit_wait_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    out.push_str("# HELP pairing_browser_sessions_open Browser sessions open in this process.\n");
    out.push_str("# TYPE pairing_browser_sessions_open gauge\n");
    let _ = writeln!(
        out,
        "pairing_browser_sessions_open {}",
        m.open_sessions.load(Ordering::Relaxed)
    );
    out.push_str(
        "# HELP pairing_webdriver_replacements_total Local chromedrivers that died and were replaced.\n",
    );
    out.push_str("# TYPE pairing_webdriver_replacements_total counter\n");
    let _ = writeln!(
        out,
        "pairing_webdriver_replacements_total {}",
        m.webdriver_replacements.load(Ordering::Relaxed)
    );
    out
}
