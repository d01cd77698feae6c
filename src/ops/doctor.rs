//! `doctor`: what `serve` needs, checked with `serve`'s own flags and environment — the browser
//! and its driver, the WebDriver endpoint, the database and its key, the alert transports — each
//! with what was found or what to do. Exits 1 when something is wrong. A missing database is
//! reported, not created; one that needs migrating is not migrated; an up-to-date one is opened as
//! `serve` opens it (which records the current key's check value).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use pairing_worker::browser::{chromedriver_binary, chromium_binary, Browser, BrowserConfig};
use pairing_worker::queue::{DatabaseState, PrinterOf, Queue, QueueConfig};

use super::alerting::AlertArgs;
use super::serve::NetworkArgs;
use super::DatabaseArgs;
use crate::cli::WebDriverArgs;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The WebDriver endpoints `serve` will use (default: a local chromedriver, started and
    /// stopped for the check): each must start a session.
    #[command(flatten)]
    webdriver: WebDriverArgs,
    #[command(flatten)]
    network: NetworkArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Not wrong now, but worth knowing (no database yet, a printer that is off).
    Note,
    Fail,
}

struct Finding {
    check: &'static str,
    verdict: Verdict,
    detail: String,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Ok,
            detail: detail.into(),
        }
    }
    fn note(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Note,
            detail: detail.into(),
        }
    }
    fn fail(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
        }
    }
}

pub async fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut findings = Vec::new();
    if args.webdriver.webdriver.is_empty() {
        findings.extend(browser_binaries());
    }
    if findings.iter().any(|f| f.verdict == Verdict::Fail) {
        findings.push(Finding::note(
            "webdriver",
            "not tried: fix the browser first",
        ));
    } else {
        findings.extend(webdriver_sessions(&args.webdriver).await);
    }
    let queue = database(&args.database, &mut findings).await;
    transports(&args, queue.as_ref(), &mut findings).await;
    for finding in &findings {
        let mark = match finding.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Note => "note",
            Verdict::Fail => "FAIL",
        };
        println!("{mark}  {:<13} {}", finding.check, finding.detail);
    }
    let failed = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    if failed > 0 {
        eprintln!("doctor: {failed} check(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAME 156.0.8078.73 …` → the version and its major.
fn version_of(output: &str) -> Option<(String, u32)> {
    let version = output.split_whitespace().find(|word| {
        word.split('.').count() >= 3 && word.split('.').all(|p| p.parse::<u32>().is_ok())
    })?;
    let major = version.split('.').next()?.parse().ok()?;
    Some((version.to_string(), major))
}

fn run_version(binary: &std::path::Path) -> Result<(String, u32), String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("{} does not run: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    version_of(&text).ok_or_else(|| format!("{} --version printed no version", binary.display()))
}

fn browser_binaries() -> Vec<Finding> {
    const INSTALL: &str =
        "install Debian's `chromium` and `chromium-driver` (scripts/install-deps.sh)";
    let chromium = chromium_binary();
    let browser = run_version(&chromium);
    let driver = chromedriver_binary()
        .map_err(|e| e.to_string())
        .and_then(|path| run_version(&path).map(|v| (path, v)));
    let mut findings = vec![
        match &browser {
            Ok((version, _)) => {
                Finding::ok("chromium", format!("{version} ({})", chromium.display()))
            }
            Err(error) => {
                Finding::fail("chromium", format!("{error}: {INSTALL}, or set $CHROMIUM"))
            }
        },
        match &driver {
            Ok((path, (version, _))) => {
                Finding::ok("chromedriver", format!("{version} ({})", path.display()))
            }
            Err(error) => Finding::fail(
                "chromedriver",
                format!("{error}: {INSTALL}, or set $CHROMEDRIVER"),
            ),
        },
    ];
    if let (Ok((_, browser)), Ok((_, (_, driver)))) = (&browser, &driver) {
        if browser != driver {
            findings.push(Finding::fail(
                "versions",
                format!("Chromium {browser} with chromedriver {driver}: a driver drives only its own major version; install both from the same source"),
            ));
        }
    }
    findings
}

/// Every endpoint (or the local chromedriver) checked on its own.
async fn webdriver_sessions(args: &WebDriverArgs) -> Vec<Finding> {
    if args.webdriver.is_empty() {
        return vec![webdriver_session(args).await];
    }
    let mut findings = Vec::new();
    for endpoint in &args.webdriver {
        let one = WebDriverArgs {
            webdriver: vec![endpoint.clone()],
            ..args.clone()
        };
        findings.push(webdriver_session(&one).await);
    }
    findings
}

/// Starts one session, loads a blank page, ends it: what every job does first.
async fn webdriver_session(args: &WebDriverArgs) -> Finding {
    let started = Instant::now();
    let where_ = args.describe();
    let config = BrowserConfig {
        session_wait: Duration::ZERO,
        ..args.browser_config(None)
    };
    let attempt = async {
        let browser = Browser::launch(config).await?;
        let session = browser.session().await;
        let outcome = match session {
            Ok(session) => session.close().await,
            Err(error) => Err(error),
        };
        browser.shutdown();
        outcome
    };
    match tokio::time::timeout(Duration::from_secs(60), attempt).await {
        Ok(Ok(())) => Finding::ok(
            "webdriver",
            format!(
                "a session started and ended on {where_} in {} ms",
                started.elapsed().as_millis()
            ),
        ),
        Ok(Err(error)) => Finding::fail("webdriver", format!("{where_}: {error}")),
        Err(_) => Finding::fail(
            "webdriver",
            format!(
                "{where_}: no session within 60 s (a full grid, or a browser that does not start)"
            ),
        ),
    }
}

async fn database(args: &DatabaseArgs, findings: &mut Vec<Finding>) -> Option<Queue> {
    if let Some(path) = args.sqlite_path() {
        if !path.exists() {
            findings.push(Finding::note(
                "database",
                format!(
                    "{} does not exist yet: `serve` creates it, and its key beside it",
                    path.display()
                ),
            ));
            return None;
        }
    }
    let state = match Queue::database_state(&args.db).await {
        Ok(state) => state,
        Err(error) => {
            findings.push(Finding::fail(
                "database",
                format!("{error}: check --db / PAIRING_WORKER_DB"),
            ));
            return None;
        }
    };
    match &state {
        DatabaseState {
            newer: Some(version),
            ..
        } => {
            findings.push(Finding::fail(
                "database",
                format!("migrated by a newer pairing-worker (version {version}): run that release, or restore a backup"),
            ));
            return None;
        }
        DatabaseState { pending, .. } if !pending.is_empty() => {
            findings.push(Finding::note(
                "database",
                format!(
                    "reachable; {} migration(s) pending, which `serve` applies on start",
                    pending.len()
                ),
            ));
            return None;
        }
        _ => findings.push(Finding::ok(
            "database",
            format!("reachable and migrated ({} migrations)", state.applied),
        )),
    }
    let keys = match args.key_ring() {
        Ok(keys) => keys,
        Err(error) => {
            findings.push(Finding::fail(
                "key",
                format!("{error}: set PAIRING_WORKER_KEY or --key-file"),
            ));
            return None;
        }
    };
    if !state.key_ids.is_empty() && !state.key_ids.contains(&keys.current.id) {
        findings.push(Finding::note(
            "key",
            format!(
                "the current key {} has sealed nothing here (keys that have: {}); unless this is a rotation, it is the wrong key",
                keys.current.id,
                state.key_ids.join(", ")
            ),
        ));
    }
    let config = QueueConfig {
        lease: Duration::from_secs(args.lease_secs.max(1)),
        ..QueueConfig::default()
    };
    // Opening checks every key id in use against the configured keys, and each key against the
    // check value it sealed first.
    match Queue::open(&args.db, keys, config).await {
        Ok(queue) => {
            findings.push(Finding::ok(
                "key",
                "opens the stored check values; every key in use is configured",
            ));
            Some(queue)
        }
        Err(error) => {
            findings.push(Finding::fail("key", error.to_string()));
            None
        }
    }
}

async fn transports(args: &DoctorArgs, queue: Option<&Queue>, findings: &mut Vec<Finding>) {
    let config = match args.alerts.config(args.network.reach()) {
        Ok(config) => config,
        Err(error) => {
            findings.push(Finding::fail("alerts", format!("{error:#}")));
            return;
        }
    };
    let transports = &config.transports;
    if let Some(folder) = &transports.folder {
        findings.push(Finding::note(
            "alerts",
            format!("written to {} instead of sent", folder.display()),
        ));
    }
    findings.push(match &transports.email {
        None => Finding::note(
            "smtp",
            "not configured: email alerts wait in the outbox (--smtp-url)",
        ),
        Some(email) => match email.check().await {
            Ok(()) => Finding::ok("smtp", "the relay answers and accepts our greeting"),
            Err(error) => Finding::fail(
                "smtp",
                format!("{error}: check --smtp-url / PAIRING_WORKER_SMTP_URL"),
            ),
        },
    });
    findings.push(match &transports.sms {
        None => Finding::note(
            "sms",
            "not configured: SMS alerts wait in the outbox (--sms-gateway)",
        ),
        Some(sms) => match sms.check().await {
            Ok(status) => Finding::ok("sms", format!("the gateway answers (HTTP {status})")),
            Err(error) => Finding::fail("sms", format!("{error}: check --sms-url")),
        },
    });
    let Some(queue) = queue else { return };
    let printers = match queue.printers().await {
        Ok(printers) => printers,
        Err(error) => {
            findings.push(Finding::fail("printers", error.to_string()));
            return;
        }
    };
    for printer in printers {
        let PrinterOf {
            organisation,
            contact,
            printer,
        } = printer;
        let name = format!(
            "{}:{} ({organisation}, {contact})",
            printer.host, printer.port
        );
        // A printer that is off is the store's to switch on, not a fault of this machine.
        findings.push(match transports.printers.send(&printer, &[]).await {
            Ok(()) => Finding::ok("printer", format!("{name} accepts a connection")),
            Err(error) => Finding::note("printer", format!("{name}: {error}")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn versions_are_read_from_what_the_binaries_print() {
        assert_eq!(
            version_of("Chromium 156.0.8078.73 built on Debian GNU/Linux 12 (bookworm)\n"),
            Some(("156.0.8078.73".into(), 156))
        );
        assert_eq!(
            version_of(
                "ChromeDriver 156.0.8078.73 (8bd5e3a8d3b6c3c0-refs/branch-heads/7543@{#1})\n"
            ),
            Some(("156.0.8078.73".into(), 156))
        );
        assert_eq!(version_of("command not found"), None);
    }
}
