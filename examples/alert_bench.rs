//! Live-alert delivery, measured with the real parts the tests use: the outbox on a SQLite file,
//! the dispatcher (`pairing_worker::alerts::deliver_alerts`) and a real SMTP server (aiosmtpd on
//! loopback, delivering into a Maildir) or the `--alert-outbox` folder.
//!
//!   throughput   one break owed to 200 contacts = 200 messages, delivered by 1 and by 2
//!                dispatchers, to SMTP and to the folder; messages per second
//!   latency      a failed check's verdict committed → its email accepted by the SMTP server,
//!                with no digest window; p50 / p90 / max over 40 breaks
//!   burst        100 stores break within seconds for one recipient with a cap of 5 a day:
//!                emails sent, rows held, and after the day every row delivered, none lost
//!
//! `cargo run --release --example alert_bench` (BENCHMARKS.md records the figures).

#[allow(unused_macros)]
#[path = "../tests/support/conformance.rs"]
mod conformance;
#[path = "../tests/support/databases.rs"]
mod databases;
#[path = "../tests/support/smtpd.rs"]
mod smtpd;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::*;
use databases::TestDatabase;
use pairing_worker::alerts::transport::{EmailSender, Transports};
use pairing_worker::alerts::{deliver_alerts, AlertsConfig};
use pairing_worker::provider::Registry;
use pairing_worker::queue::{AlertLogFilter, AlertPreferences, Channel, ContactFields, JobKind};
use secrecy::SecretString;
use smtpd::Smtpd;

const REPAIR: &str = "https://dashboard.example.test/repair";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = Arc::new(Registry::from_source_tree().expect("providers/ load"));
    println!("| scenario | figure |\n|---|---|");
    for sink in [Sink::Smtp, Sink::Folder] {
        for dispatchers in [1, 2] {
            let rate = throughput(&registry, sink, dispatchers).await;
            println!(
                "| 200 messages to {}, {dispatchers} dispatcher(s) | {rate:.0} messages/s |",
                sink.name()
            );
        }
    }
    let (p50, p90, max) = latency(&registry).await;
    println!("| verdict committed → email accepted (no digest window), 40 breaks | p50 {p50:.1} ms, p90 {p90:.1} ms, max {max:.1} ms |");
    let burst = burst(&registry).await;
    println!(
        "| 100 breaks, one recipient, cap 5/day | first day: {} emails, {} rows held; a day later: {} emails, {} of 100 rows sent, {} lost |",
        burst.first_emails, burst.held, burst.total_emails, burst.sent, 100 - burst.sent
    );
}

#[derive(Clone, Copy)]
enum Sink {
    Smtp,
    Folder,
}

impl Sink {
    fn name(self) -> &'static str {
        match self {
            Sink::Smtp => "SMTP (aiosmtpd)",
            Sink::Folder => "the folder",
        }
    }
}

fn email_contact(i: usize) -> ContactFields {
    ContactFields {
        name: format!("Manager {i}"),
        language: "en".into(),
        channels: vec![Channel::Email],
        email: Some(format!("manager{i}@merchant.test")),
        phone: None,
        printer: None,
    }
}

fn config(transports: Transports) -> AlertsConfig {
    let mut config = AlertsConfig::new(transports);
    config.from = "Store alerts <alerts@worker.test>".into();
    config
}

fn smtp_transports(smtp: &Smtpd) -> Transports {
    let mut transports = Transports::none();
    transports.email = Some(
        EmailSender::new(
            &SecretString::from(smtp.url()),
            "Store alerts <alerts@worker.test>",
            Duration::from_secs(10),
        )
        .expect("SMTP URL"),
    );
    transports
}

async fn preferences(f: &Fixture, cap_per_day: u32) {
    let preferences = AlertPreferences {
        digest_window: Duration::ZERO,
        cap_per_day,
        repair_url: Some(REPAIR.into()),
        ..Default::default()
    };
    f.queue
        .set_alert_preferences(ORG, &preferences, false)
        .await
        .unwrap();
}

fn start(
    f: &Fixture,
    registry: &Arc<Registry>,
    config: impl Fn() -> AlertsConfig,
    n: usize,
) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for _ in 0..n {
        tokio::spawn(deliver_alerts(
            f.queue.clone(),
            registry.clone(),
            config(),
            stopped.clone(),
        ));
    }
    stop
}

/// An account whose connection works (only a working connection can break).
async fn paired_account(f: &Fixture) -> String {
    let id = account(&f.queue, ORG).await;
    run_to(
        f,
        &id,
        JobKind::Pair,
        pairing_worker::outcome::Outcome::Paired,
    )
    .await;
    id
}

/// Files in a Maildir's `new/` or in the alert folder (`.eml` only).
fn delivered(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !name.starts_with('.') && !name.ends_with(".tmp")
                })
                .count()
        })
        .unwrap_or(0)
}

async fn wait_for(dir: &Path, n: usize, poll: Duration) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered(dir) < n {
        assert!(Instant::now() < deadline, "only {} of {n}", delivered(dir));
        tokio::time::sleep(poll).await;
    }
    Instant::now()
}

async fn throughput(registry: &Arc<Registry>, sink: Sink, dispatchers: usize) -> f64 {
    const CONTACTS: usize = 200;
    let f = fixture(TestDatabase::sqlite()).await;
    preferences(&f, 10).await;
    for i in 0..CONTACTS {
        f.queue.add_contact(ORG, &email_contact(i)).await.unwrap();
    }
    let folder = tempfile::tempdir().unwrap();
    let smtp = matches!(sink, Sink::Smtp).then(Smtpd::start);
    let transports = || match &smtp {
        Some(smtp) => smtp_transports(smtp),
        None => {
            let mut transports = Transports::none();
            transports.folder = Some(folder.path().to_path_buf());
            transports
        }
    };
    let dir = match &smtp {
        Some(smtp) => smtp.maildir.join("new"),
        None => folder.path().to_path_buf(),
    };
    let id = paired_account(&f).await;
    run_to(&f, &id, JobKind::Recheck, WRONG_PASSWORD).await;
    let began = Instant::now();
    let _stop = start(&f, registry, || config(transports()), dispatchers);
    let done = wait_for(&dir, CONTACTS, Duration::from_millis(5)).await;
    CONTACTS as f64 / (done - began).as_secs_f64()
}

async fn latency(registry: &Arc<Registry>) -> (f64, f64, f64) {
    const BREAKS: usize = 40;
    let f = fixture(TestDatabase::sqlite()).await;
    preferences(&f, 1000).await;
    f.queue.add_contact(ORG, &email_contact(0)).await.unwrap();
    let smtp = Smtpd::start();
    let dir = smtp.maildir.join("new");
    let _stop = start(&f, registry, || config(smtp_transports(&smtp)), 1);
    let mut samples = Vec::new();
    for n in 1..=BREAKS {
        let id = paired_account(&f).await;
        f.queue
            .submit(ORG, &id, JobKind::Recheck, false)
            .await
            .unwrap();
        let claimed = f.queue.claim("w1").await.unwrap().expect("ready job");
        let began = Instant::now();
        f.queue
            .finish(&claimed.lease, finished(WRONG_PASSWORD))
            .await
            .unwrap();
        let done = wait_for(&dir, n, Duration::from_micros(500)).await;
        samples.push((done - began).as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(1.0))
}

struct Burst {
    first_emails: usize,
    held: usize,
    total_emails: usize,
    sent: usize,
}

async fn burst(registry: &Arc<Registry>) -> Burst {
    let f = fixture(TestDatabase::sqlite()).await;
    preferences(&f, 5).await;
    f.queue.add_contact(ORG, &email_contact(0)).await.unwrap();
    let smtp = Smtpd::start();
    let dir = smtp.maildir.join("new");
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(paired_account(&f).await);
    }
    let _stop = start(&f, registry, || config(smtp_transports(&smtp)), 1);
    for id in &ids {
        run_to(&f, id, JobKind::Recheck, WRONG_PASSWORD).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first_emails = delivered(&dir);
    let rows = |state: &'static str| {
        let queue = f.queue.clone();
        async move {
            let filter = AlertLogFilter {
                state: Some(state.into()),
                ..Default::default()
            };
            queue.alert_log(ORG, &filter, 500).await.unwrap().len()
        }
    };
    let held = rows("pending").await;
    f.clock.advance(Duration::from_secs(24 * 3600 + 60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows("sent").await < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Burst {
        first_emails,
        held,
        total_emails: delivered(&dir),
        sent: rows("sent").await,
    }
}
