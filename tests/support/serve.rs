//! `serve` as a child process, for tests that kill it, and the parts it runs against: the
//! sandbox portals in-process, a chromedriver the test owns (so a killed worker's orphaned
//! sessions die with it), a SQLite queue and its key.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::kit::sandbox::Sandbox;
use pairing_worker::provider::Registry;
use pairing_worker::queue::{AccountSecrets, Key, KeyRing, NewAccount, Queue, QueueConfig};
use pairing_worker::secret::Credentials;
use secrecy::SecretString;

use super::databases::TestDatabase;

pub struct Stage {
    pub sandbox: Arc<Sandbox>,
    pub portal: String,
    pub browser: Browser,
    pub db: TestDatabase,
    pub key: String,
    pub queue: Queue,
}

impl Stage {
    pub async fn start() -> Stage {
        Stage::start_on(TestDatabase::sqlite()).await
    }

    pub async fn start_on(db: TestDatabase) -> Stage {
        let registry = Registry::from_source_tree().unwrap();
        let sandbox = Arc::new(
            Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
                .unwrap(),
        );
        let (addr, _) = sandbox.clone().serve("127.0.0.1:0").await.unwrap();
        let browser = Browser::launch(BrowserConfig::default()).await.unwrap();
        let key = Key::generate_line();
        let keys = KeyRing::parse(&key, None).unwrap();
        let queue = Queue::open(&db.url, keys, QueueConfig::default())
            .await
            .unwrap();
        Stage {
            sandbox,
            portal: format!("http://{addr}"),
            browser,
            db,
            key,
            queue,
        }
    }

    /// `serve` on this stage's database, chromedriver and portals, logging to `log`.
    pub fn serve(&self, log: std::path::PathBuf) -> Serve {
        self.serve_with(log, &[])
    }

    /// The same, with more flags.
    pub fn serve_with(&self, log: std::path::PathBuf, extra: &[&str]) -> Serve {
        serve(
            &self.db.url,
            &self.key,
            &self.browser.endpoint(),
            &self.portal,
            log,
            extra,
        )
    }
}

pub struct Serve {
    pub child: Child,
    pub log: std::path::PathBuf,
}

pub fn serve(
    db: &str,
    key: &str,
    webdriver: &str,
    portal: &str,
    log: std::path::PathBuf,
    extra: &[&str],
) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .args([
            "serve",
            "--slots",
            "2",
            "--lease-secs",
            "2",
            "--grace-secs",
            "20",
        ])
        .args([
            "--db",
            db,
            "--webdriver",
            webdriver,
            "--sandbox-url",
            portal,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("PAIRING_WORKER_KEY", key)
        .env("RUST_LOG", "pairing_worker=trace")
        .env_remove("LOG_FORMAT") // serve's default: JSON lines
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("serve starts");
    Serve { child, log }
}

/// An account of `organisation` on `provider` logging in as `username` (password only).
pub async fn password_account(
    queue: &Queue,
    organisation: &str,
    provider: &str,
    username: &str,
    password: &str,
) -> String {
    queue
        .create_account(NewAccount {
            organisation: organisation.into(),
            provider: provider.into(),
            secrets: AccountSecrets {
                credentials: Credentials {
                    username: username.into(),
                    password: SecretString::from(password.to_string()),
                },
                totp: None,
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await
        .unwrap()
        .id
}
