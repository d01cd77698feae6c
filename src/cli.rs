//! The command-line tools for adapter developers and operators.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use std::sync::Arc;
use std::time::Duration;

use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::codes::{merchant_codes, AccountCodes, CodeSubmitter, TotpSource};
use pairing_worker::engine::classify::{classify_snapshot, Snapshot};
use pairing_worker::engine::explain::explain;
use pairing_worker::engine::pairing::{pair_in_new_session, PairingOptions};
use pairing_worker::kit::fixtures;
use pairing_worker::kit::sandbox::script::SandboxScript;
use pairing_worker::kit::sandbox::script::ScenarioCard;
use pairing_worker::kit::sandbox::Sandbox;
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::{Files, Registry};
use pairing_worker::queue::{Key, KeyRing, Queue, QueueConfig};
use pairing_worker::secret::Credentials;
use pairing_worker::worker::{Worker, WorkerConfig};

/// `pair` exit codes, documented in `--help` and the README.
pub const EXIT_PAIRED: u8 = 0;
pub const EXIT_NOT_PAIRED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INFRASTRUCTURE: u8 = 3;

/// Logs go to stderr (JSON with `LOG_FORMAT=json`); stdout is kept for results. Crates that log
/// page content or request bodies stay silent whatever `RUST_LOG` says
/// ([`pairing_worker::secret::logs::PAGE_CONTENT_TARGETS`]).
pub fn init_logging() {
    use pairing_worker::secret::logs;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = logs::env_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder
            .json()
            .finish()
            .with(logs::without_page_content())
            .init();
    } else {
        builder.finish().with(logs::without_page_content()).init();
    }
}

#[derive(Args)]
pub struct ProvidersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Print the per-provider quality checklist (Markdown, as in docs/checklist.md).
    #[arg(long, conflicts_with = "json")]
    checklist: bool,
    /// With --checklist: the held-out corpus folder whose figures it reports.
    #[arg(long, requires = "checklist", default_value = "corpus")]
    corpus: PathBuf,
}

pub fn providers(
    registry: &Registry,
    recorded: &Files,
    args: ProvidersArgs,
) -> anyhow::Result<ExitCode> {
    let list = registry.list();
    let pages = |id: &str| pairing_worker::kit::fixtures::count(recorded, id);
    if args.checklist {
        print!(
            "{}",
            pairing_worker::kit::checklist::markdown(
                registry,
                recorded,
                Some(&pairing_worker::provider::Files::Disk(args.corpus.clone()))
                    .filter(|_| args.corpus.is_dir())
            )
            .map_err(|e| anyhow::anyhow!(e))?
        );
    } else if args.json {
        let list: Vec<serde_json::Value> = list
            .iter()
            .map(|p| {
                let mut entry = serde_json::to_value(p)?;
                entry["recorded_pages"] = pages(&p.id).into();
                Ok(entry)
            })
            .collect::<serde_json::Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        println!(
            "{:<15} {:<15} {:<10} {:>6}  {:<12} markets",
            "id", "name", "status", "pages", "languages"
        );
        for p in list {
            let status = serde_json::to_value(p.status)?;
            println!(
                "{:<15} {:<15} {:<10} {:>6}  {:<12} {}",
                p.id,
                p.name,
                status.as_str().unwrap_or_default(),
                pages(&p.id),
                p.languages.join(","),
                p.markets.join(",")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Provider id (see `providers`).
    #[arg(long)]
    provider: String,
    /// The saved HTML page.
    file: PathBuf,
    /// The URL the page was at (default: the provider's entry URL).
    #[arg(long)]
    url: Option<String>,
    /// The HTTP status the page was served with (a 5xx page is an outage whatever it shows).
    #[arg(long)]
    status: Option<u16>,
    /// Explain: each rule's match or near miss, the walls, the message surfaces and the concepts
    /// read in them, every candidate outcome in precedence order and the winner.
    #[arg(long)]
    explain: bool,
    /// With --explain: JSON instead of text.
    #[arg(long, requires = "explain")]
    json: bool,
}

/// Reads a file that must be an HTML page, with one clear error otherwise.
fn read_html(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "{} is not text (UTF-8): give a saved HTML page",
            path.display()
        )
    })?;
    if !text.to_ascii_lowercase().contains("<html") && !text.to_ascii_lowercase().contains("<body")
    {
        bail!(
            "{} does not look like HTML (no <html> or <body>): give a saved HTML page",
            path.display()
        );
    }
    Ok(text)
}

pub fn classify(registry: &Registry, args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let spec = registry.get(&args.provider)?;
    let html = read_html(&args.file)?;
    let url = args.url.unwrap_or_else(|| spec.entry_url(None));
    let snapshot = Snapshot::parse(&url, &html).with_status(args.status);
    if args.explain {
        let explanation = explain(&spec, &snapshot, None);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&explanation)?);
        } else {
            print!("{explanation}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match classify_snapshot(&spec, &snapshot, None) {
        Ok(found) => {
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!(
                "{}",
                serde_json::json!({"page": null, "outcome": {"category": "unrecognized_page"}, "error": error.to_string()})
            );
            Ok(ExitCode::from(EXIT_NOT_PAIRED))
        }
    }
}

#[derive(Subcommand)]
pub enum FixtureCommand {
    /// Check every recorded page against its expected classification.
    Check {
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Turn an unrecognised-page artifact folder into a recorded page plus an expected file to fill in.
    Add {
        /// The artifact folder an `unrecognized_page` outcome names.
        artifact: PathBuf,
        #[arg(long)]
        provider: String,
        /// The case name (file stem), e.g. `login_wrong_password_de`.
        #[arg(long)]
        case: String,
        /// The fixtures folder to write into.
        #[arg(long, default_value = "fixtures")]
        into: PathBuf,
    },
}

pub fn fixture(
    registry: &Registry,
    recorded: &Files,
    command: FixtureCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        FixtureCommand::Check { provider } => {
            let specs: Vec<_> = match provider {
                Some(id) => vec![registry.get(&id)?],
                None => registry.supported().cloned().collect(),
            };
            let mut failed = 0;
            let mut passed = 0;
            for spec in specs {
                let pages = fixtures::load(recorded, &spec.id).map_err(anyhow::Error::msg)?;
                match SandboxScript::load(recorded, &spec.id, &pages) {
                    Ok(Some(_)) => passed += 1,
                    Ok(None) => {
                        failed += 1;
                        println!("FAIL {}/sandbox.toml: missing", spec.id);
                    }
                    Err(problem) => {
                        failed += 1;
                        println!("FAIL {problem}");
                    }
                }
                for page in pages {
                    match page.check(&spec) {
                        Ok(_) => passed += 1,
                        Err(problems) => {
                            failed += 1;
                            println!(
                                "FAIL {}/{}:\n  {}",
                                page.provider,
                                page.case,
                                problems.replace('\n', "\n  ")
                            );
                        }
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_PAIRED)
            })
        }
        FixtureCommand::Add {
            artifact,
            provider,
            case,
            into,
        } => {
            registry.get(&provider)?;
            let path = pairing_worker::kit::promote::promote(&artifact, &provider, &case, &into)?;
            println!(
                "wrote {} and its expected file (the portal's URL, HTTP status and the page's language are filled in): set `page` and `outcome`, then check it:\n  pairing-worker --providers providers --fixtures {} fixture check --provider {provider}",
                path.display(),
                into.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Args)]
pub struct PairArgs {
    #[arg(long)]
    provider: String,
    #[arg(long)]
    username: String,
    /// Read the password from the first line of standard input (never from an argument).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Portal base URL (e.g. the sandbox's `http://127.0.0.1:8090/deliveroo`); default: the real portal.
    #[arg(long)]
    base_url: Option<String>,
    /// When the portal asks for a code, read it from standard input (prompting on a terminal).
    #[arg(long)]
    code_stdin: bool,
    /// Read an authenticator secret (base32 or `otpauth://` URL) from the line after the password:
    /// the worker generates the codes itself.
    #[arg(long)]
    totp_stdin: bool,
    /// Use this WebDriver endpoint (chromedriver or Selenium Grid) instead of starting chromedriver.
    #[arg(long, env = "PAIRING_WORKER_WEBDRIVER")]
    webdriver: Option<String>,
    /// Provider store ids that must be on the account (comma-separated).
    #[arg(long, value_delimiter = ',')]
    expect_store: Vec<String>,
    /// Where to keep artifacts of unrecognised pages.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    deadline_secs: u64,
}

pub fn read_secret_line(
    stdin: &mut impl BufRead,
    what: &str,
) -> anyhow::Result<secrecy::SecretString> {
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let value = line.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(secrecy::SecretString::from(value.to_string()))
}

/// The merchant at a terminal (or a pipe): prompted when the portal asks for a code; a code of the
/// wrong shape is refused before it reaches the portal and asked for again.
fn prompt_for_codes(mut submitter: CodeSubmitter) {
    tokio::spawn(async move {
        while let Some(request) = submitter.wait_for_request().await {
            let prompt = format!(
                "enter the {}code sent by {:?}{}: ",
                request
                    .code_length
                    .map(|n| format!("{n}-digit "))
                    .unwrap_or_default(),
                request.channel,
                request
                    .destination
                    .as_deref()
                    .map(|d| format!(" to {d}"))
                    .unwrap_or_default(),
            );
            let line = tokio::task::spawn_blocking(move || {
                if std::io::stdin().is_terminal() {
                    eprint!("{prompt}");
                    let _ = std::io::stderr().flush();
                }
                read_secret_line(&mut std::io::stdin().lock(), "code").ok()
            })
            .await
            .ok()
            .flatten();
            let Some(code) = line else { return };
            if let Err(error) = submitter.submit(code) {
                eprintln!("{error}");
                if !std::io::stdin().is_terminal() {
                    return;
                }
                continue;
            }
            // The same request stays open until the pairing takes the code: do not prompt twice.
            submitter.wait_until_taken().await;
        }
    });
}

pub fn browser_config(
    webdriver: Option<String>,
    isolation: Option<pairing_worker::browser::Isolation>,
) -> BrowserConfig {
    BrowserConfig {
        webdriver,
        isolation,
        ..BrowserConfig::default()
    }
}

pub async fn pair(registry: Registry, args: PairArgs) -> anyhow::Result<ExitCode> {
    let spec = registry.get(&args.provider)?;
    if !args.password_stdin {
        bail!("give the password on standard input with --password-stdin");
    }
    let mut stdin = std::io::stdin().lock();
    let password = read_secret_line(&mut stdin, "password")?;
    let totp = if args.totp_stdin {
        let secret = read_secret_line(&mut stdin, "authenticator secret")?;
        Some(TotpSource::parse(&secret).context("--totp-stdin")?)
    } else {
        None
    };
    drop(stdin);
    let credentials = Credentials {
        username: args.username.clone(),
        password,
    };
    let options = PairingOptions {
        base_url: args.base_url.clone(),
        expected_stores: args.expect_store.clone(),
        deadline: Duration::from_secs(args.deadline_secs),
        artifacts_dir: Some(args.artifacts.clone()),
        ..PairingOptions::default()
    };
    let browser = match Browser::launch(browser_config(args.webdriver.clone(), None)).await {
        Ok(browser) => browser,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_INFRASTRUCTURE));
        }
    };
    let mut codes = AccountCodes {
        totp,
        ..AccountCodes::default()
    };
    if args.code_stdin {
        let (merchant, submitter) = merchant_codes();
        codes.merchant = Some(merchant);
        prompt_for_codes(submitter);
    }
    let result = pair_in_new_session(&browser, &spec, &credentials, &mut codes, &options).await;
    match result {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::from(if report.outcome == Outcome::Paired {
                EXIT_PAIRED
            } else {
                EXIT_NOT_PAIRED
            }))
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(EXIT_INFRASTRUCTURE))
        }
    }
}

#[derive(Args)]
pub struct SandboxArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Print the scenario accounts and their expected outcomes instead of serving.
    #[arg(long)]
    scenarios: bool,
    /// With --scenarios: print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn sandbox(
    registry: Registry,
    recorded: &Files,
    args: SandboxArgs,
) -> anyhow::Result<ExitCode> {
    let sandbox = Arc::new(Sandbox::from_registry(&registry, recorded)?);
    if args.scenarios {
        let cards = sandbox.scenarios();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&cards)?);
        } else {
            println!(
                "{:<10} {:<26} {:<34} {:<20} {:<8} expected",
                "provider", "scenario", "username", "password", "code"
            );
            for c in cards {
                println!(
                    "{:<10} {:<26} {:<34} {:<20} {:<8} {}",
                    c.provider,
                    c.scenario,
                    c.username,
                    c.password,
                    c.code.unwrap_or_default(),
                    c.expected
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (addr, task) = sandbox
        .clone()
        .serve(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "sandbox portals on http://{addr}/ ({}); Ctrl-C stops",
        sandbox.providers().collect::<Vec<_>>().join(", ")
    );
    for provider in sandbox.providers() {
        eprintln!("  pairing-worker pair --provider {provider} --base-url http://{addr}/{provider} --username ... --password-stdin");
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = task => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct DemoArgs {
    /// Use this WebDriver endpoint instead of starting chromedriver.
    #[arg(long, env = "PAIRING_WORKER_WEBDRIVER")]
    webdriver: Option<String>,
    /// Only this provider.
    #[arg(long)]
    provider: Option<String>,
    /// How many browsers run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Print the results as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn demo(
    registry: Registry,
    recorded: &Files,
    args: DemoArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(provider) = &args.provider {
        registry.get(provider)?;
    }
    let sandbox = Arc::new(Sandbox::from_registry(&registry, recorded)?);
    let (addr, _server) = sandbox.clone().serve("127.0.0.1:0").await?;
    let browser = Browser::launch(browser_config(args.webdriver.clone(), None)).await?;
    let cards: Vec<ScenarioCard> = sandbox
        .scenarios()
        .into_iter()
        .filter(|c| args.provider.as_deref().is_none_or(|p| p == c.provider))
        .collect();
    // The whole product on its embedded defaults: a SQLite queue, the worker, the sandbox.
    let scratch = tempfile::tempdir()?;
    let db = format!("sqlite:{}", scratch.path().join("demo.db").display());
    // One run per job: a scenario's first outcome is what it demonstrates (the retry schedule of
    // transient outcomes is the queue suite's business).
    let once = QueueConfig {
        max_attempts: 1,
        ..QueueConfig::default()
    };
    let queue = Arc::new(Queue::open(&db, KeyRing::new(Key::generate()), once).await?);
    let registry = Arc::new(registry);
    let config = WorkerConfig {
        slots: args.jobs.max(1),
        poll_interval: Duration::from_millis(50),
        // The sandbox has no rate limit to respect; real portals get the default.
        logins_per_minute: std::num::NonZeroU32::new(10_000).expect("non-zero"),
        portal_base: Some(format!("http://{addr}")),
        pairing: PairingOptions {
            // The demo's merchant answers at once or never: no need to wait five minutes.
            code_wait: Duration::from_secs(4),
            ..PairingOptions::default()
        },
        ..WorkerConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker =
        tokio::spawn(Worker::new(queue.clone(), registry, browser.clone(), config).run(stopped));
    let bar = indicatif::ProgressBar::new(cards.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
            .expect("static template"),
    );
    let mut runs = tokio::task::JoinSet::new();
    for (index, card) in cards.into_iter().enumerate() {
        let (queue, bar, sandbox) = (queue.clone(), bar.clone(), sandbox.clone());
        runs.spawn(async move {
            let result = demo_card(&queue, &sandbox, &card).await;
            bar.inc(1);
            bar.set_message(format!("{}/{}", card.provider, card.scenario));
            (index, card, result)
        });
    }
    let mut results = runs.join_all().await;
    bar.finish_and_clear();
    let _ = stop.send(true);
    let _ = worker.await;
    results.sort_by_key(|(index, ..)| *index);
    let mut failures = 0;
    if !args.json {
        println!(
            "{:<10} {:<26} {:<44} {:<44} {:>7}",
            "provider", "scenario", "outcome", "expected", "time"
        );
    }
    for (_, card, result) in results {
        let (got, ms) = match &result {
            Ok((outcome, ms)) => (outcome.to_string(), *ms),
            Err(error) => (format!("error: {error:#}"), 0),
        };
        let ok = got == card.expected.to_string();
        failures += usize::from(!ok);
        if args.json {
            println!(
                "{}",
                serde_json::json!({"provider": card.provider, "scenario": card.scenario, "outcome": got, "expected": card.expected.to_string(), "ok": ok, "ms": ms})
            );
        } else {
            println!(
                "{:<10} {:<26} {:<44} {:<44} {:>5}ms {}",
                card.provider,
                card.scenario,
                got,
                card.expected.to_string(),
                ms,
                if ok { "ok" } else { "MISMATCH" }
            );
        }
    }
    if !args.json {
        println!("{failures} scenario(s) did not end as expected");
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_PAIRED)
    })
}

/// One scenario account through the queue, with a merchant at the dashboard who behaves as the
/// scenario says: types the code the portal sent (or a wrong one first), types a fixed code once,
/// or never answers. A merchant with no code left gives up (cancels) and the portal's verdict on
/// the last code is the result. Returns the outcome and the job's time from submit to end.
async fn demo_card(
    queue: &Queue,
    sandbox: &Sandbox,
    card: &ScenarioCard,
) -> anyhow::Result<(Outcome, u64)> {
    use pairing_worker::kit::sandbox::script::Delivery;
    use pairing_worker::queue::{AccountSecrets, JobKind, JobState, NewAccount};
    const ORG: &str = "demo";
    let silent =
        card.expected == Outcome::TwoFactor(pairing_worker::outcome::TwoFactor::CodeTimeout);
    let totp = match (card.delivery, &card.totp_secret) {
        (Some(Delivery::Totp), Some(secret)) => Some(secrecy::SecretString::from(secret.clone())),
        _ => None,
    };
    let account = queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: card.provider.clone(),
            secrets: AccountSecrets {
                credentials: Credentials {
                    username: card.username.clone(),
                    password: secrecy::SecretString::from(card.password.clone()),
                },
                totp,
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await?;
    let interactive = card.code.is_some() || card.supply_code || silent;
    let job = queue
        .submit(ORG, &account.id, JobKind::Pair, interactive)
        .await?
        .job;
    let mut scripted = card
        .wrong_code_first
        .iter()
        .chain(&card.code)
        .cloned()
        .collect::<Vec<_>>();
    scripted.reverse();
    let mut answered = None;
    // When a worker first had the job: a job the merchant cancels reports no time of its own, and
    // the time it spent queued behind other scenarios is not the pairing's.
    let mut started: Option<std::time::Instant> = None;
    loop {
        let current = queue
            .job(ORG, &job.id)
            .await?
            .context("the demo's job vanished")?;
        if current.state != JobState::Queued {
            started.get_or_insert_with(std::time::Instant::now);
        }
        // The pairing's own time when it reports one.
        let ms = current
            .result
            .as_ref()
            .and_then(|report| report.get("elapsed_ms"))
            .and_then(|ms| ms.as_u64())
            .unwrap_or_else(|| started.map_or(0, |at| at.elapsed().as_millis() as u64));
        if current.state.is_final() {
            let outcome = current.outcome.with_context(|| {
                current
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("job {:?}", current.state))
            })?;
            return Ok((outcome, ms));
        }
        let fresh_ask =
            current.state == JobState::AwaitingCode && answered != Some(current.updated_at);
        if fresh_ask && !silent {
            let texted = || match (card.delivery, card.supply_code) {
                (Some(_), true) => sandbox.issued_code(&card.provider, &card.username),
                _ => None,
            };
            let Some(code) = scripted.pop().or_else(texted) else {
                queue.cancel(ORG, &job.id).await?;
                let verdict = current
                    .code_verdict
                    .context("asked for a code nobody has")?;
                return Ok((verdict, ms));
            };
            queue
                .submit_code(ORG, &job.id, &secrecy::SecretString::from(code))
                .await?;
            answered = Some(current.updated_at);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
