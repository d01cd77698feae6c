//! The developer kit's commands: recorded pages (`fixture`), the sandbox portals (`sandbox`) and
//! the whole product run against them (`demo`). Built with the `kit` feature only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use pairing_worker::browser::Browser;
use pairing_worker::engine::pairing::PairingOptions;
use pairing_worker::kit::fixtures;
use pairing_worker::kit::sandbox::script::{SandboxScript, ScenarioCard};
use pairing_worker::kit::sandbox::{run_card_through_queue, Sandbox};
use pairing_worker::provider::{FileTree, Registry};
use pairing_worker::queue::{Key, KeyRing, Queue, QueueConfig};
use pairing_worker::worker::{Worker, WorkerConfig};

use crate::cli::{WebDriverArgs, EXIT_NOT_PAIRED};

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
    recorded: &FileTree,
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
    recorded: &FileTree,
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
        eprintln!("  pairing-worker pair --provider {provider} --sandbox-url http://{addr} --username ... --password-stdin");
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = task => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    webdriver: WebDriverArgs,
    /// Only this provider.
    #[arg(long)]
    provider: Option<String>,
    /// How many browsers run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Print the results as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Where the live-alert scene writes the email, SMS and ticket a health check's alert
    /// became (emptied first).
    #[arg(long, default_value = "demo-alerts")]
    alerts: std::path::PathBuf,
}

pub async fn demo(
    registry: Registry,
    recorded: &FileTree,
    args: DemoArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(provider) = &args.provider {
        registry.get(provider)?;
    }
    let sandbox = Arc::new(Sandbox::from_registry(&registry, recorded)?);
    let (addr, _server) = sandbox.clone().serve("127.0.0.1:0").await?;
    let browser = Browser::launch(args.webdriver.browser_config(None)).await?;
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
        portal_hosts: sandbox.portal_hosts(&format!("http://{addr}")),
        pairing: PairingOptions {
            // The demo's merchant answers at once or never: no need to wait five minutes.
            code_wait: Duration::from_secs(4),
            ..PairingOptions::default()
        },
        ..WorkerConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(
        Worker::new(queue.clone(), registry.clone(), browser.clone(), config).run(stopped),
    );
    let scene_card = pairing_worker::kit::alerts_demo::pairing_card(&cards).cloned();
    let bar = indicatif::ProgressBar::new(cards.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
            .expect("static template"),
    );
    let mut runs = tokio::task::JoinSet::new();
    for (index, card) in cards.into_iter().enumerate() {
        let (queue, bar, sandbox) = (queue.clone(), bar.clone(), sandbox.clone());
        runs.spawn(async move {
            let result = run_card_through_queue(&queue, &sandbox, &card).await;
            bar.inc(1);
            bar.set_message(format!("{}/{}", card.provider, card.scenario));
            (index, card, result)
        });
    }
    let mut results = runs.join_all().await;
    bar.finish_and_clear();
    // Live alerts: a health check finds a broken connection; its alerts land in files.
    let scene = match &scene_card {
        Some(card) => {
            let _ = std::fs::remove_dir_all(&args.alerts);
            Some(
                pairing_worker::kit::alerts_demo::run(
                    queue.clone(),
                    registry.clone(),
                    card,
                    &args.alerts,
                )
                .await,
            )
        }
        None => None,
    };
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
    match scene {
        Some(Ok(scene)) if !args.json => {
            println!(
                "live alerts: a health check found {}; the alerts it became:",
                scene.check
            );
            for file in &scene.files {
                println!("  {}", file.display());
            }
        }
        Some(Err(error)) => {
            eprintln!("live-alert scene failed: {error:#}");
            failures += 1;
        }
        _ => {}
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_PAIRED)
    })
}
