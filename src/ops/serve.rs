//! `serve`: the worker, its HTTP API, webhook and alert delivery, until SIGTERM.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use pairing_worker::api::ApiState;
use pairing_worker::browser::Browser;
use pairing_worker::engine::pairing::PairingOptions;
use pairing_worker::provider::{FileTree, Registry};
use pairing_worker::worker::{Worker, WorkerConfig};

use super::alerting::AlertArgs;
use super::DatabaseArgs;
use crate::cli::{PortalArgs, WebDriverArgs};

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
    #[command(flatten)]
    webdriver: WebDriverArgs,
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
    /// Logins per minute per provider, shared by every worker on this database (a burst of that
    /// many, then one per 60/N seconds).
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
    #[command(flatten)]
    alerts: AlertArgs,
    /// Print the effective settings (flags, environment, --config file, defaults) as TOML with
    /// secrets masked, and exit.
    #[arg(long)]
    pub print_config: bool,
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
    let alerts = args.alerts.config(reach.clone())?;
    // Opened once the arguments are known good: a refused start creates no database or key.
    let queue = Arc::new(args.database.open().await?);
    let browser = Browser::launch(args.webdriver.browser_config(args.isolation))
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
    let worker = Worker::new(queue.clone(), registry.clone(), browser.clone(), config);
    let running = tokio::spawn(worker.run(stop.clone()));
    let alerting = tokio::spawn(pairing_worker::alerts::deliver_alerts(
        queue.clone(),
        registry.clone(),
        alerts,
        stop.clone(),
    ));
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
        browser.endpoints().join(", ")
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
    let _ = alerting.await;
    api_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    browser.shutdown();
    queue.close().await;
    Ok(ExitCode::SUCCESS)
}
