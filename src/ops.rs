//! Operator commands: `serve` (the worker), `keys`, and `accounts` / `jobs` for working with the
//! queue from a shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use pairing_worker::provider::Registry;
use pairing_worker::queue::{
    AccountSecrets, JobKind, Key, KeyError, KeyRing, NewAccount, Queue, QueueConfig, StoreRef,
};
use pairing_worker::secret::Credentials;

use crate::cli::read_secret_line;

mod alerting;
pub mod config;
mod doctor;
mod serve;
pub use doctor::{doctor, DoctorArgs};
pub use serve::{serve, ServeArgs};

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
