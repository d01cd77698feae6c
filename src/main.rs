use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use pairing_worker::provider::{FileTree, Registry};

mod cli;
#[cfg(feature = "kit")]
mod kit_cli;
mod lexicon_cli;
mod ops;

/// Logs restaurants back into their delivery-platform merchant portals with a real browser.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file of settings (serve's flag names as keys) beneath the environment and the
    /// flags; `serve --print-config` shows the result.
    #[arg(long, global = true, env = "PAIRING_WORKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    sources: Sources,
    #[command(subcommand)]
    command: Command,
}

/// Where provider specs and recorded pages come from (default: compiled into the binary).
#[derive(Args, Clone)]
pub struct Sources {
    /// Read provider specs from this folder instead of the embedded ones.
    #[arg(long, global = true, env = "PAIRING_WORKER_PROVIDERS")]
    providers: Option<PathBuf>,
    /// Read recorded pages from this folder instead of the embedded ones.
    #[cfg(feature = "kit")]
    #[arg(long, global = true, env = "PAIRING_WORKER_FIXTURES")]
    fixtures: Option<PathBuf>,
}

impl Sources {
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let providers = self
            .providers
            .clone()
            .map_or_else(FileTree::embedded_providers, FileTree::Disk);
        Ok(Registry::load(providers)?)
    }

    /// The developer kit's recorded pages (the sandbox, the checklist, fixture checks).
    #[cfg(feature = "kit")]
    pub fn recorded(&self) -> FileTree {
        self.fixtures
            .clone()
            .map_or_else(pairing_worker::kit::fixtures::embedded, FileTree::Disk)
    }
}

#[derive(Subcommand)]
enum Command {
    /// List all fifteen providers with their support status.
    Providers(cli::ProvidersArgs),
    /// Print the outcome taxonomy and what follows each outcome.
    Outcomes,
    /// Say which page rule a saved page matches and what outcome it means.
    Classify(cli::ClassifyArgs),
    /// Log into one portal in a real browser and print the outcome as JSON.
    Pair(cli::PairArgs),
    /// Serve the recorded pages as stateful fake portals.
    #[cfg(feature = "kit")]
    Sandbox(kit_cli::SandboxArgs),
    /// Start the sandbox and run every scenario of every supported provider in the browser.
    #[cfg(feature = "kit")]
    Demo(kit_cli::DemoArgs),
    /// Recorded pages: check them, or turn an unrecognised page into a new one.
    #[cfg(feature = "kit")]
    #[command(subcommand)]
    Fixture(kit_cli::FixtureCommand),
    /// Run the worker: claim pairing jobs from the queue until SIGTERM.
    Serve(Box<ops::ServeArgs>),
    /// Check what `serve` needs (browser, driver, WebDriver, database, key, alert transports),
    /// with `serve`'s flags; says what to fix and exits 1 when something is wrong.
    Doctor(Box<ops::DoctorArgs>),
    /// Encryption keys for stored secrets: generate one, or rotate everything to the current one.
    #[command(subcommand)]
    Keys(ops::KeysCommand),
    /// Accounts in the queue's database.
    #[command(subcommand)]
    Accounts(ops::AccountsCommand),
    /// Pairing jobs: submit, show, hand over a code.
    #[command(subcommand)]
    Jobs(ops::JobsCommand),
    /// Bearer tokens for the HTTP API.
    #[command(subcommand)]
    Tokens(ops::TokensCommand),
    /// The shared lexicon: what it reads in a text, and its size.
    #[command(subcommand)]
    Lexicon(lexicon_cli::LexiconCommand),
}

fn main() -> ExitCode {
    // A closed pipe (`classify … | head`) ends the process quietly, as for any Unix tool, instead
    // of a panic inside `println!`.
    // SAFETY: called first, before any thread exists; SIG_DFL is always a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let command = Cli::command();
    let parsed =
        match ops::config::matches_with_file(command.clone(), std::env::args_os().collect()) {
            Ok(parsed) => parsed,
            Err(error) => match error.downcast::<clap::Error>() {
                Ok(error) => error.exit(),
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(cli::EXIT_USAGE);
                }
            },
        };
    let matches = &parsed.matches;
    let cli = Cli::from_arg_matches(matches).unwrap_or_else(|error| error.exit());
    if let (Command::Serve(args), Some(sub)) = (&cli.command, matches.subcommand_matches("serve")) {
        if args.print_config {
            let serve = command.find_subcommand("serve").expect("serve exists");
            print!(
                "{}",
                ops::config::print_effective(serve, sub, &parsed.from_file)
            );
            return ExitCode::SUCCESS;
        }
    }
    // An operator's log pipeline reads JSON; a developer at a terminal reads text.
    cli::init_logging(matches!(cli.command, Command::Serve(_)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        let registry = cli.sources.registry().context("loading provider specs")?;
        #[cfg(feature = "kit")]
        let kit_pages = cli.sources.recorded();
        #[cfg(feature = "kit")]
        let recorded = Some(&kit_pages);
        #[cfg(not(feature = "kit"))]
        let recorded: Option<&FileTree> = None;
        match cli.command {
            Command::Providers(args) => cli::providers(&registry, recorded, args),
            Command::Outcomes => {
                print!("{}", pairing_worker::outcome::decision_table_markdown());
                Ok(ExitCode::SUCCESS)
            }
            Command::Classify(args) => cli::classify(&registry, args),
            Command::Pair(args) => cli::pair(registry, args).await,
            #[cfg(feature = "kit")]
            Command::Sandbox(args) => kit_cli::sandbox(registry, &kit_pages, args).await,
            #[cfg(feature = "kit")]
            Command::Demo(args) => kit_cli::demo(registry, &kit_pages, args).await,
            #[cfg(feature = "kit")]
            Command::Fixture(command) => kit_cli::fixture(&registry, &kit_pages, command),
            Command::Serve(args) => ops::serve(registry, recorded, *args).await,
            Command::Doctor(args) => ops::doctor(*args).await,
            Command::Keys(command) => ops::keys(command).await,
            Command::Accounts(command) => ops::accounts(&registry, command).await,
            Command::Jobs(command) => ops::jobs(command).await,
            Command::Tokens(command) => ops::tokens(command).await,
            Command::Lexicon(command) => lexicon_cli::lexicon(&registry, command),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}
