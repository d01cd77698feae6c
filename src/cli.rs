//! The command-line tools for adapter developers and operators.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use std::time::Duration;

use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::codes::{merchant_codes, AccountCodes, CodeSubmitter, TotpSource};
use pairing_worker::engine::classify::{classify_snapshot, Snapshot};
use pairing_worker::engine::explain::explain;
use pairing_worker::engine::pairing::{pair_in_new_session, PairingOptions};
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::{FileTree, PortalHosts, Registry};
use pairing_worker::secret::Credentials;

/// `pair` exit codes, documented in `--help` and the README.
pub const EXIT_PAIRED: u8 = 0;
pub const EXIT_NOT_PAIRED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INFRASTRUCTURE: u8 = 3;

/// Logs go to stderr, as JSON lines when `json_by_default` (`serve`) or `LOG_FORMAT=json`, as
/// text with `LOG_FORMAT=text`; stdout is kept for results. Crates that log page content or
/// request bodies stay silent whatever `RUST_LOG` says
/// ([`pairing_worker::secret::logs::PAGE_CONTENT_TARGETS`]).
pub fn init_logging(json_by_default: bool) {
    use pairing_worker::secret::logs;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = logs::env_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => json_by_default,
    };
    if json {
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
    recorded: Option<&FileTree>,
    args: ProvidersArgs,
) -> anyhow::Result<ExitCode> {
    let list = registry.list();
    let pages = |id: &str| recorded_pages(recorded, id);
    if args.checklist {
        #[cfg(not(feature = "kit"))]
        bail!("the checklist needs the developer kit: build with `--features kit`");
        #[cfg(feature = "kit")]
        print!(
            "{}",
            pairing_worker::kit::checklist::markdown(
                registry,
                recorded.expect("built with the kit"),
                Some(&pairing_worker::provider::FileTree::Disk(
                    args.corpus.clone()
                ))
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

/// Pages recorded for a provider (none in a binary built without the developer kit).
fn recorded_pages(recorded: Option<&FileTree>, id: &str) -> usize {
    #[cfg(feature = "kit")]
    if let Some(files) = recorded {
        return pairing_worker::kit::fixtures::count(files, id);
    }
    let _ = (recorded, id);
    0
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
    let url = args
        .url
        .unwrap_or_else(|| spec.entry_url(&PortalHosts::real()));
    let snapshot = Snapshot::parse(&url, &html).with_status(args.status);
    if args.explain {
        let explanation = explain(&spec, &snapshot, &PortalHosts::real());
        if args.json {
            println!("{}", serde_json::to_string_pretty(&explanation)?);
        } else {
            print!("{explanation}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match classify_snapshot(&spec, &snapshot, &PortalHosts::real()) {
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

/// Where the portals are reached: their real hosts unless these point them elsewhere.
#[derive(Args, Clone, Default)]
pub struct PortalArgs {
    /// Reach a portal origin at another URL, `ORIGIN=URL` (repeatable, or comma-separated in the
    /// variable): `--portal-host https://auth.uber.com=http://10.0.0.5:8090/ubereats/auth`.
    #[arg(
        long = "portal-host",
        value_name = "ORIGIN=URL",
        env = "PAIRING_WORKER_PORTAL_HOSTS",
        value_delimiter = ',',
        value_parser = parse_portal_host
    )]
    portal_hosts: Vec<(String, String)>,
    /// Developer kit: every portal's hosts pointed at a sandbox served at `http://HOST:PORT`
    /// (`pairing-worker sandbox`), which serves host `K` of provider `P` under `/P/K`.
    #[cfg(feature = "kit")]
    #[arg(long, value_name = "URL")]
    sandbox_url: Option<String>,
}

fn parse_portal_host(entry: &str) -> Result<(String, String), String> {
    PortalHosts::parse_entry(entry).map_err(|error| error.to_string())
}

impl PortalArgs {
    /// The host map these arguments describe (a `--portal-host` wins over `--sandbox-url`).
    pub fn hosts(&self, registry: &Registry) -> anyhow::Result<PortalHosts> {
        #[allow(unused_mut)]
        let mut hosts = PortalHosts::real();
        #[cfg(feature = "kit")]
        if let Some(base) = &self.sandbox_url {
            hosts = pairing_worker::kit::sandbox::portal_hosts(registry, base)
                .context("--sandbox-url")?;
        }
        #[cfg(not(feature = "kit"))]
        let _ = registry;
        for (origin, base) in &self.portal_hosts {
            hosts.insert(origin, base)?;
        }
        Ok(hosts)
    }

    /// Whether any portal is pointed away from its real host.
    pub fn is_set(&self) -> bool {
        #[cfg(feature = "kit")]
        if self.sandbox_url.is_some() {
            return true;
        }
        !self.portal_hosts.is_empty()
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
    #[command(flatten)]
    portals: PortalArgs,
    /// When the portal asks for a code, read it from standard input (prompting on a terminal).
    #[arg(long)]
    code_stdin: bool,
    /// Read an authenticator secret (base32 or `otpauth://` URL) from the line after the password:
    /// the worker generates the codes itself.
    #[arg(long)]
    totp_stdin: bool,
    #[command(flatten)]
    webdriver: WebDriverArgs,
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

/// Where browser sessions are opened: a local chromedriver, or WebDriver endpoints with a
/// ceiling each.
#[derive(Args, Clone, Default)]
pub struct WebDriverArgs {
    /// WebDriver endpoints (chromedriver, Selenium Grid), comma-separated, instead of starting
    /// chromedriver here; `URL#max_sessions=N` gives one its own ceiling.
    #[arg(
        long,
        env = "PAIRING_WORKER_WEBDRIVER",
        value_delimiter = ',',
        value_parser = pairing_worker::browser::Endpoint::parse
    )]
    pub webdriver: Vec<pairing_worker::browser::Endpoint>,
    /// Most sessions this worker holds at once on each endpoint without a ceiling of its own
    /// (default: as many as its slots ask for).
    #[arg(long, env = "PAIRING_WORKER_SESSIONS_PER_ENDPOINT")]
    pub sessions_per_endpoint: Option<usize>,
    /// Seconds a job waits for a session while every endpoint holds its ceiling; then it ends as
    /// an infrastructure error, retried later (never a merchant's error).
    #[arg(long, default_value_t = 60)]
    pub session_wait_secs: u64,
}

impl WebDriverArgs {
    pub fn browser_config(
        &self,
        isolation: Option<pairing_worker::browser::Isolation>,
    ) -> BrowserConfig {
        let ceiling = self.sessions_per_endpoint.filter(|n| *n > 0);
        BrowserConfig {
            endpoints: self
                .webdriver
                .iter()
                .map(|endpoint| {
                    let max = endpoint.max_sessions.or(ceiling);
                    endpoint.clone().with_max_sessions(max)
                })
                .collect(),
            session_wait: std::time::Duration::from_secs(self.session_wait_secs),
            isolation,
            ..BrowserConfig::default()
        }
    }

    /// Where sessions go, for messages.
    pub fn describe(&self) -> String {
        if self.webdriver.is_empty() {
            "a local chromedriver".into()
        } else {
            let urls: Vec<&str> = self.webdriver.iter().map(|e| e.url.as_str()).collect();
            urls.join(", ")
        }
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
        portal_hosts: args.portals.hosts(&registry)?,
        expected_stores: args.expect_store.clone(),
        deadline: Duration::from_secs(args.deadline_secs),
        artifacts_dir: Some(args.artifacts.clone()),
        ..PairingOptions::default()
    };
    let browser = match Browser::launch(args.webdriver.browser_config(None)).await {
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
