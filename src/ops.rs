//! Operator commands: `serve` (the worker), `keys`, and `accounts` / `jobs` for working with the
//! queue from a shell.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use pairing_worker::api::ApiState;
use pairing_worker::browser::Browser;
use pairing_worker::engine::pairing::PairingOptions;
use pairing_worker::provider::{FileTree, Registry};
use pairing_worker::queue::{
    AccountSecrets, JobKind, Key, KeyError, KeyRing, NewAccount, Queue, QueueConfig, StoreRef,
};
use pairing_worker::secret::Credentials;
use pairing_worker::worker::{Worker, WorkerConfig};

use crate::cli::{browser_config, read_secret_line, PortalArgs};

/// Where the queue lives and the key its secrets are sealed with.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// `sqlite:PATH` (created on first run) or `postgres://USER@HOST/DB` (shared by many workers).
    #[arg(
        long,
        env = "PAIRING_WORKER_DB",
        default_value = "sqlite:pairing-worker.db"
    )]
    pub db: String,
    /// Key file: first line the current key, further lines older keys still readable. Default for
    /// SQLite: `<database>.key`, created together with a new database. `PAIRING_WORKER_KEY`
    /// (and `PAIRING_WORKER_OLD_KEYS`) take precedence.
    #[arg(long, env = "PAIRING_WORKER_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Seconds a claimed job holds without a heartbeat before another worker rescues it.
    #[arg(long, default_value_t = 30)]
    pub lease_secs: u64,
}

impl DatabaseArgs {
    pub async fn open(&self) -> anyhow::Result<Queue> {
        let keys = self.key_ring()?;
        let config = QueueConfig {
            lease: Duration::from_secs(self.lease_secs.max(1)),
            ..QueueConfig::default()
        };
        Ok(Queue::open(&self.db, keys, config).await?)
    }

    fn sqlite_path(&self) -> Option<&Path> {
        let path = self.db.strip_prefix("sqlite:")?;
        let path = path.trim_start_matches("//");
        Some(Path::new(path.split('?').next().unwrap_or(path)))
    }

    fn key_ring(&self) -> Result<KeyRing, KeyError> {
        if let Ok(current) = std::env::var("PAIRING_WORKER_KEY") {
            let older = std::env::var("PAIRING_WORKER_OLD_KEYS").ok();
            return KeyRing::parse(&current, older.as_deref());
        }
        if let Some(file) = &self.key_file {
            return KeyRing::from_file(file);
        }
        let Some(db) = self.sqlite_path() else {
            return Err(KeyError::Missing);
        };
        let file = PathBuf::from(format!("{}.key", db.display()));
        if file.exists() {
            KeyRing::from_file(&file)
        } else if !db.exists() {
            let ring = KeyRing::create_file(&file)?;
            eprintln!(
                "created {} for the new database: back it up; without it the stored credentials are lost",
                file.display()
            );
            Ok(ring)
        } else {
            Err(KeyError::Missing)
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Concurrent pairings (browser sessions).
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// How many of those drive the browser at once (default: twice the CPU count); the others
    /// wait for a turn, and a job waiting for a code gives its turn up.
    #[arg(long)]
    active: Option<usize>,
    /// WebDriver endpoint (chromedriver or Selenium Grid); default: start a local chromedriver.
    #[arg(long, env = "PAIRING_WORKER_WEBDRIVER")]
    webdriver: Option<String>,
    /// How accounts' sessions are kept apart: `context` (a fresh browser context per job in one
    /// shared Chromium; the default with a local chromedriver) or `browser` (a new Chromium per
    /// job; the default with --webdriver, whose browsers this process cannot reach).
    #[arg(long, value_enum)]
    isolation: Option<pairing_worker::browser::Isolation>,
    /// Serve the sandbox portals in-process and log into them instead of the real portals.
    #[arg(long)]
    sandbox: bool,
    #[command(flatten)]
    portals: PortalArgs,
    /// Seconds running jobs get to finish after SIGTERM before they are released.
    #[arg(long, default_value_t = 30)]
    grace_secs: u64,
    /// Logins per minute per provider from this worker.
    #[arg(long, default_value_t = 10)]
    logins_per_minute: u32,
    /// Fresh browser sessions kept started ahead of need (each used once; 0 starts one per job).
    #[arg(long, default_value_t = 2)]
    prestarted_sessions: usize,
    /// Where unrecognised pages are saved.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Address of the HTTP API (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "PAIRING_WORKER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Serve `/metrics` on this address instead of the API's: the counts span every organisation
    /// and need no token, so keep them where only operators (Prometheus) can connect.
    #[arg(long, env = "PAIRING_WORKER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Seconds a client gets to send a request's headers (a new or idle connection is closed after).
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// HTTP connections served at once on each listener (more wait to be accepted).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds between looks for accounts due a scheduled health check (each healthy account
    /// every 6 hours unless its organisation says otherwise: `PUT /v1/health-checks`); 0: this
    /// worker schedules none.
    #[arg(long, default_value_t = 30)]
    health_check_tick_secs: u64,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Where API callers may make the worker connect (webhook endpoints, code mailboxes): public
/// addresses only unless these allow more.
#[derive(Args, Clone)]
pub struct NetworkArgs {
    /// Address ranges webhooks and mailboxes may reach besides public addresses, comma-separated
    /// CIDRs (`10.20.0.0/16,fd00:1::/64`; `127.0.0.0/8,::1` for endpoints on this host).
    #[arg(
        long,
        env = "PAIRING_WORKER_ALLOW_PRIVATE_HOSTS",
        value_delimiter = ',',
        value_parser = pairing_worker::reach::parse_range
    )]
    allow_private_hosts: Vec<pairing_worker::reach::IpNet>,
    /// Let webhooks and mailboxes reach any address, loopback and cloud metadata included: only
    /// where every API token holder is trusted with the worker's network.
    #[arg(
        long,
        env = "PAIRING_WORKER_ALLOW_HOST_NETWORK",
        conflicts_with = "allow_private_hosts"
    )]
    allow_host_network: bool,
}

impl NetworkArgs {
    pub fn reach(&self) -> pairing_worker::reach::Reach {
        use pairing_worker::reach::{Policy, Reach};
        Reach::new(if self.allow_host_network {
            Policy::host_network()
        } else {
            Policy::allowing(self.allow_private_hosts.iter().copied())
        })
    }
}

/// Runs the worker until SIGTERM or Ctrl-C: stops claiming, lets running jobs finish within the
/// grace period (or releases them), deletes browser sessions, exits 0.
pub async fn serve(
    registry: Registry,
    recorded: Option<&FileTree>,
    args: ServeArgs,
) -> anyhow::Result<ExitCode> {
    let reach = args.network.reach();
    // The worker's mailbox connections read the process's policy.
    pairing_worker::reach::set_global(reach.clone());
    let registry = Arc::new(registry);
    // Held until the worker stops: the in-process sandbox serves while it lives.
    let mut _sandbox_task: Option<tokio::task::JoinHandle<()>> = None;
    if args.sandbox && args.portals.is_set() {
        bail!("--sandbox serves the portals here: give it without --portal-host or --sandbox-url");
    }
    let portal_hosts = if args.sandbox {
        #[cfg(not(feature = "kit"))]
        {
            let _ = recorded;
            anyhow::bail!("--sandbox needs the developer kit: build with `--features kit`");
        }
        #[cfg(feature = "kit")]
        {
            let recorded = recorded.context("the kit's recorded pages")?;
            let sandbox = Arc::new(pairing_worker::kit::sandbox::Sandbox::from_registry(
                &registry, recorded,
            )?);
            let (addr, task) = sandbox.clone().serve("127.0.0.1:0").await?;
            _sandbox_task = Some(task);
            eprintln!("sandbox portals on http://{addr}/");
            sandbox.portal_hosts(&format!("http://{addr}"))
        }
    } else {
        args.portals.hosts(&registry)?
    };
    if !portal_hosts.is_real() {
        tracing::info!(hosts = %portal_hosts, "portals reached through the host map");
    }
    // Opened once the arguments are known good: a refused start creates no database or key.
    let queue = Arc::new(args.database.open().await?);
    let browser = Browser::launch(browser_config(args.webdriver.clone(), args.isolation))
        .await
        .context("starting the browser")?;
    let config = WorkerConfig {
        slots: args.slots,
        active_pairings: args
            .active
            .unwrap_or(WorkerConfig::default().active_pairings),
        grace: Duration::from_secs(args.grace_secs),
        logins_per_minute: NonZeroU32::new(args.logins_per_minute)
            .context("--logins-per-minute must be at least 1")?,
        prestarted_sessions: args.prestarted_sessions,
        health_check_tick: (args.health_check_tick_secs > 0)
            .then(|| Duration::from_secs(args.health_check_tick_secs)),
        portal_hosts,
        pairing: PairingOptions {
            artifacts_dir: Some(args.artifacts.clone()),
            ..PairingOptions::default()
        },
        ..WorkerConfig::default()
    };
    let api = Arc::new(ApiState {
        queue: queue.clone(),
        registry: registry.clone(),
        browser: Some(browser.clone()),
        reach: reach.clone(),
    });
    let limits = pairing_worker::api::listener::Limits {
        header_read_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        max_connections: args.max_connections.max(1),
    };
    let options = pairing_worker::api::ServeOptions {
        limits,
        metrics: args.metrics_listen.is_none(),
    };
    let (api_addr, api_task) = pairing_worker::api::serve_with(api.clone(), &args.listen, options)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_task = match &args.metrics_listen {
        Some(addr) => {
            let (bound, task) = pairing_worker::api::serve_metrics(api, addr, limits)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
            eprintln!("metrics on http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = Worker::new(queue.clone(), registry, browser.clone(), config);
    let running = tokio::spawn(worker.run(stop.clone()));
    let webhooks = tokio::spawn(pairing_worker::webhook_delivery::deliver(
        queue.clone(),
        pairing_worker::webhook_delivery::DeliveryConfig {
            reach,
            ..Default::default()
        },
        stop,
    ));
    eprintln!(
        "worker ready: {} slots on {}; HTTP API on http://{api_addr}/",
        args.slots,
        browser.endpoint()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "stopping: no new jobs; running jobs have {}s",
        args.grace_secs
    );
    let _ = stop_tx.send(true);
    let _ = running.await;
    let _ = webhooks.await;
    api_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    browser.shutdown();
    queue.close().await;
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new key line (`ID:BASE64`) for PAIRING_WORKER_KEY or a key file.
    Generate,
    /// Re-encrypt every stored secret under the current key (older keys must still be configured).
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Generate => {
            println!("{}", zeroize::Zeroizing::new(Key::generate_line()).as_str())
        }
        KeysCommand::Rotate { database } => {
            let queue = database.open().await?;
            let rotated = queue.rotate_keys().await?;
            let in_use = queue.key_ids_in_use().await?;
            println!(
                "re-encrypted {rotated} secret(s); key ids in use: {}",
                in_use.join(", ")
            );
            queue.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Store an account: the password (and an authenticator secret with --totp-stdin) are read
    /// from standard input, one per line. Prints the account as JSON.
    Add {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "default")]
        organisation: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        username: String,
        /// A store the connection feeds: `STORE_ID:LOCATION:BRAND` (repeatable).
        #[arg(long)]
        store: Vec<String>,
        /// Read a TOTP secret (base32 or otpauth:// URL) from the line after the password.
        #[arg(long)]
        totp_stdin: bool,
    },
    /// List accounts with their health.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "default")]
        organisation: String,
    },
}

fn parse_store(text: &str) -> anyhow::Result<StoreRef> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(location), Some(brand)) if !id.is_empty() => Ok(StoreRef {
            id: id.into(),
            location: location.into(),
            brand: brand.into(),
        }),
        _ => bail!("--store `{text}`: expected STORE_ID:LOCATION:BRAND"),
    }
}

pub async fn accounts(registry: &Registry, command: AccountsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountsCommand::Add {
            database,
            organisation,
            provider,
            username,
            store,
            totp_stdin,
        } => {
            registry.get(&provider)?;
            let stores = store
                .iter()
                .map(|s| parse_store(s))
                .collect::<Result<_, _>>()?;
            let mut stdin = std::io::stdin().lock();
            let password = read_secret_line(&mut stdin, "password")?;
            let totp = if totp_stdin {
                let secret = read_secret_line(&mut stdin, "TOTP secret")?;
                pairing_worker::codes::TotpSource::parse(&secret)?;
                Some(secret)
            } else {
                None
            };
            let queue = database.open().await?;
            let account = queue
                .create_account(NewAccount {
                    organisation,
                    provider,
                    secrets: AccountSecrets {
                        credentials: Credentials { username, password },
                        totp,
                        mailbox: None,
                    },
                    stores,
                })
                .await?;
            println!("{}", serde_json::to_string_pretty(&account)?);
            queue.close().await;
        }
        AccountsCommand::List {
            database,
            organisation,
        } => {
            let queue = database.open().await?;
            let mut out = Vec::new();
            for account in queue.accounts(&organisation).await? {
                let health = queue.health(&account.id).await?;
                out.push(serde_json::json!({ "account": account, "health": health }));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            queue.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Queue a job for an account (or print its live job): `pair` or `recheck`.
    Submit {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "default")]
        organisation: String,
        account: String,
        #[arg(long, value_parser = parse_kind, default_value = "recheck")]
        kind: JobKind,
        /// Nobody is at the dashboard to type a code (a scheduled health check).
        #[arg(long)]
        background: bool,
    },
    /// Print a job as JSON.
    Show {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "default")]
        organisation: String,
        job: String,
    },
    /// Submit the verification code a job is waiting for (read from standard input).
    Code {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "default")]
        organisation: String,
        job: String,
    },
}

fn parse_kind(text: &str) -> Result<JobKind, String> {
    text.parse()
        .map_err(|_| format!("unknown job kind `{text}`: expected pair or recheck"))
}

pub async fn jobs(command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::Submit {
            database,
            organisation,
            account,
            kind,
            background,
        } => {
            let queue = database.open().await?;
            let submitted = queue
                .submit(&organisation, &account, kind, !background)
                .await?;
            println!("{}", serde_json::to_string_pretty(&submitted.job)?);
            queue.close().await;
        }
        JobsCommand::Show {
            database,
            organisation,
            job,
        } => {
            let queue = database.open().await?;
            let found = queue
                .job(&organisation, &job)
                .await?
                .with_context(|| format!("unknown job {job}"))?;
            println!("{}", serde_json::to_string_pretty(&found)?);
            queue.close().await;
        }
        JobsCommand::Code {
            database,
            organisation,
            job,
        } => {
            let code = read_secret_line(&mut std::io::stdin().lock(), "code")?;
            let queue = database.open().await?;
            queue.submit_code(&organisation, &job, &code).await?;
            eprintln!("code handed to the job");
            queue.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a bearer token for an organisation; printed once, stored hashed.
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        organisation: String,
        /// What the token is for (for your records).
        #[arg(long, default_value = "dashboard")]
        label: String,
    },
    /// List tokens (id, organisation, label, created): never the tokens themselves.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Revoke a token: requests with it get 401 from the next one on.
    Revoke {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The token's id from `tokens list` (or `tokens create`'s message).
        #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
        id: Option<String>,
        /// Read the token itself from standard input instead (a leaked token, id unknown).
        #[arg(long)]
        stdin: bool,
    },
}

pub async fn tokens(command: TokensCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokensCommand::Create {
            database,
            organisation,
            label,
        } => {
            if organisation.trim().is_empty() {
                bail!("--organisation must not be empty");
            }
            let queue = database.open().await?;
            let token = zeroize::Zeroizing::new(queue.create_token(&organisation, &label).await?);
            println!("{}", token.as_str());
            eprintln!(
                "token id {} (revoke with `pairing-worker tokens revoke {}`)",
                Queue::token_id(&token),
                Queue::token_id(&token)
            );
            queue.close().await;
        }
        TokensCommand::List {
            database,
            organisation,
        } => {
            let queue = database.open().await?;
            let tokens = queue.tokens(organisation.as_deref()).await?;
            println!(
                "{:<16}  {:<20}  {:<20}  created",
                "id", "organisation", "label"
            );
            for token in tokens {
                println!(
                    "{:<16}  {:<20}  {:<20}  {}",
                    token.id,
                    token.organisation,
                    token.label,
                    token.created_at.to_rfc3339()
                );
            }
            queue.close().await;
        }
        TokensCommand::Revoke {
            database,
            id,
            stdin,
        } => {
            let named = match id {
                Some(id) => secrecy::SecretString::from(id),
                None if stdin => read_secret_line(&mut std::io::stdin().lock(), "token")?,
                None => bail!("give the token id, or the token on standard input with --stdin"),
            };
            let queue = database.open().await?;
            let revoked = queue
                .revoke_token(secrecy::ExposeSecret::expose_secret(&named))
                .await?;
            queue.close().await;
            if !revoked {
                bail!("no such token (see `pairing-worker tokens list`)");
            }
            eprintln!("token revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
