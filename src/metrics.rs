//! Prometheus metrics: what the worker process observed (durations, rate-limit waits, open
//! browser sessions) plus what the shared database says (queue depth, jobs by provider and
//! outcome), encoded by `prometheus-client` in the OpenMetrics text format.
//!
//! `prometheus-client` rather than the `metrics` facade: the facade keeps every gauge in a global
//! recorder, so a gauge read from the database for one scrape (a state whose jobs have all
//! drained) would go on being exported with its last value. Here the database's counts are a
//! collector built for the scrape that reads them and dropped after it; the process's own
//! metrics live for the process.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the shared database says, read by the caller (the API) for one scrape: jobs by state,
/// finished runs by provider and outcome, across all workers.
#[derive(Debug, Clone, Default)]
pub struct DatabaseCounts {
    pub jobs_by_state: Vec<(String, i64)>,
    pub finished: Vec<(String, String, i64)>,
}

/// Upper bounds (seconds) of the pairing-duration histogram: a flow takes 1–10 s, a code wait
/// up to minutes.
const BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// What this process observed. Each metric is a shared handle: the registry of a scrape holds
/// clones of the same counters.
pub struct Metrics {
    durations: Histogram,
    rate_limit_waits: Counter,
    rate_limit_wait_seconds: Counter<f64, AtomicU64>,
    open_sessions: Gauge,
    webdriver_replacements: Counter,
    sessions_reaped: Counter,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    durations: Histogram::new(BUCKETS),
    rate_limit_waits: Counter::default(),
    rate_limit_wait_seconds: Counter::default(),
    open_sessions: Gauge::default(),
    webdriver_replacements: Counter::default(),
    sessions_reaped: Counter::default(),
});

impl Metrics {
    pub fn pairing_finished(&self, elapsed: std::time::Duration) {
        self.durations.observe(elapsed.as_secs_f64());
    }

    pub fn rate_limit_waited(&self, waited: std::time::Duration) {
        self.rate_limit_waits.inc();
        self.rate_limit_wait_seconds.inc_by(waited.as_secs_f64());
    }

    pub fn session_opened(&self) {
        self.open_sessions.inc();
    }

    pub fn session_closed(&self) {
        self.open_sessions.dec();
    }

    pub fn webdriver_replaced(&self) {
        self.webdriver_replacements.inc();
    }

    pub fn sessions_reaped(&self, count: usize) {
        self.sessions_reaped.inc_by(count as u64);
    }
}

/// The database's counts, encoded in the order the database gave them. Counter family names go
/// without `_total`: the encoder adds it to the samples (`pairing_jobs_finished_total{..}`).
#[derive(Debug)]
struct Database(DatabaseCounts);

impl Collector for Database {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "pairing_queue_jobs",
            "Jobs in the queue by state (all workers).",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in &self.0.jobs_by_state {
            let labels = [("state", state.as_str())];
            ConstGauge::new(*count).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "pairing_jobs_finished",
            "Finished runs by provider and outcome (all workers).",
            None,
            MetricType::Counter,
        )?;
        for (provider, outcome, count) in &self.0.finished {
            let labels = [
                ("provider", provider.as_str()),
                ("outcome", outcome.as_str()),
            ];
            let count = u64::try_from(*count).unwrap_or(0);
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The exposition text for `/metrics`.
pub fn render(database: &DatabaseCounts) -> String {
    let m = &*METRICS;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Database(database.clone())));
    registry.register(
        "pairing_duration_seconds",
        "Pairing runs in this process, start to outcome",
        m.durations.clone(),
    );
    registry.register(
        "pairing_rate_limit_waits",
        "Logins that waited for the provider rate limit",
        m.rate_limit_waits.clone(),
    );
    registry.register(
        "pairing_rate_limit_wait_seconds",
        "Time spent waiting for rate limits",
        m.rate_limit_wait_seconds.clone(),
    );
    registry.register(
        "pairing_browser_sessions_open",
        "Browser sessions open in this process",
        m.open_sessions.clone(),
    );
    registry.register(
        "pairing_webdriver_replacements",
        "Local chromedrivers that died and were replaced",
        m.webdriver_replacements.clone(),
    );
    registry.register(
        "pairing_webdriver_sessions_reaped",
        "Sessions on WebDriver endpoints older than any job, deleted",
        m.sessions_reaped.clone(),
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String does not fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_keep_their_names_types_labels_and_help() {
        METRICS.pairing_finished(std::time::Duration::from_millis(1500));
        let text = render(&DatabaseCounts {
            jobs_by_state: vec![("queued".into(), 3)],
            finished: vec![("deliveroo".into(), "a\"b".into(), 2)],
        });
        for line in [
            "# HELP pairing_queue_jobs Jobs in the queue by state (all workers).",
            "# TYPE pairing_queue_jobs gauge",
            "pairing_queue_jobs{state=\"queued\"} 3",
            "# HELP pairing_jobs_finished Finished runs by provider and outcome (all workers).",
            "# TYPE pairing_jobs_finished counter",
            "pairing_jobs_finished_total{provider=\"deliveroo\",outcome=\"a\\\"b\"} 2",
            "# HELP pairing_duration_seconds Pairing runs in this process, start to outcome.",
            "# TYPE pairing_duration_seconds histogram",
            "pairing_duration_seconds_bucket{le=\"+Inf\"}",
            "pairing_duration_seconds_count",
            "pairing_duration_seconds_sum",
            "# HELP pairing_rate_limit_waits Logins that waited for the provider rate limit.",
            "# TYPE pairing_rate_limit_waits counter",
            "pairing_rate_limit_waits_total ",
            "# HELP pairing_rate_limit_wait_seconds Time spent waiting for rate limits.",
            "pairing_rate_limit_wait_seconds_total ",
            "# HELP pairing_browser_sessions_open Browser sessions open in this process.",
            "# TYPE pairing_browser_sessions_open gauge",
            "pairing_browser_sessions_open ",
            "# HELP pairing_webdriver_replacements Local chromedrivers that died and were replaced.",
            "pairing_webdriver_replacements_total ",
            "# HELP pairing_webdriver_sessions_reaped Sessions on WebDriver endpoints older than any job, deleted.",
            "pairing_webdriver_sessions_reaped_total ",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}
