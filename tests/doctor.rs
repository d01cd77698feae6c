//! `pairing-worker doctor` against real parts: Debian's Chromium and chromedriver, SQLite and the
//! PostgreSQL server, aiosmtpd, an HTTP gateway and a printer port on loopback — what is ready
//! passes, what is wrong is named with what to do, exit 1, and no secret is printed.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/smtpd.rs"]
mod smtpd;

use std::process::Output;

use databases::TestDatabase;
use pairing_worker::queue::{
    AccountSecrets, Channel, ContactFields, Key, KeyRing, NewAccount, Printer, Queue, QueueConfig,
};
use pairing_worker::secret::Credentials;
use secrecy::SecretString;
use smtpd::Smtpd;

const BIN: &str = env!("CARGO_BIN_EXE_pairing-worker");
const SMTP_PASSWORD: &str = "Canary-Smtp-Pass-5e1";
const ORG: &str = "org-doctor";

async fn doctor(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = tokio::process::Command::new(BIN);
    command.arg("doctor").args(args);
    for name in [
        "PAIRING_WORKER_KEY",
        "PAIRING_WORKER_WEBDRIVER",
        "PAIRING_WORKER_SMTP_URL",
    ] {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("doctor runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(
        !text.contains(SMTP_PASSWORD) && !text.contains("Canary-Password"),
        "a secret in doctor's output:\n{text}"
    );
    (status.success(), text)
}

fn line<'a>(text: &'a str, mark: &str, check: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(mark) && l[6..].starts_with(check))
        .unwrap_or_else(|| panic!("no `{mark} {check}` line in:\n{text}"))
}

/// A database with a sealed account (so its key is in use) and a contact printing on `printer`.
async fn database(db: &TestDatabase, key_line: &str, printer_port: u16) {
    let queue = Queue::open(
        &db.url,
        KeyRing::parse(key_line, None).unwrap(),
        QueueConfig::default(),
    )
    .await
    .unwrap();
    queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: "deliveroo".into(),
            secrets: AccountSecrets {
                credentials: Credentials {
                    username: "owner@example.test".into(),
                    password: SecretString::from("Canary-Password-d0c".to_string()),
                },
                totp: None,
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await
        .unwrap();
    let contact = ContactFields {
        name: "Front desk".into(),
        language: "en".into(),
        channels: vec![Channel::Ticket],
        email: None,
        phone: None,
        printer: Some(Printer {
            host: "127.0.0.1".into(),
            port: printer_port,
            columns: 42,
        }),
    };
    queue.add_contact(ORG, &contact).await.unwrap();
    queue.close().await;
}

/// A port that accepts connections (a printer, or an HTTP gateway answering 405 to a GET).
async fn listening(answer: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.write_all(answer).await;
            let _ = stream.shutdown().await;
        }
    });
    port
}

const HTTP_405: &[u8] =
    b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_machine_passes_every_check() {
    let db = TestDatabase::sqlite();
    let key = Key::generate_line();
    let printer = listening(b"").await;
    database(&db, &key, printer).await;
    let smtp = Smtpd::start();
    // aiosmtpd as the tests run it offers no AUTH: a relay on this host, plain.
    let smtp_url = smtp.url();
    let gateway = format!("http://127.0.0.1:{}/send", listening(HTTP_405).await);
    let (ok, text) = doctor(
        &[
            "--db",
            &db.url,
            "--allow-private-hosts",
            "127.0.0.0/8",
            "--sms-gateway",
            "http",
            "--sms-url",
            &gateway,
            "--sms-field",
            "To={{ to }}",
        ],
        &[
            ("PAIRING_WORKER_KEY", &key),
            ("PAIRING_WORKER_SMTP_URL", &smtp_url),
        ],
    )
    .await;
    assert!(ok, "{text}");
    for check in [
        "chromium",
        "chromedriver",
        "webdriver",
        "database",
        "key",
        "smtp",
        "sms",
        "printer",
    ] {
        line(&text, "ok  ", check);
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(line(&text, "ok  ", "sms").contains("HTTP 405"), "{text}");
    // Checked, and nothing sent: the relay got no message.
    assert!(smtp.messages().is_empty());
    // Credentials the relay has no login for: said so (and the password never shown).
    let with_login = format!("smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{}", smtp.port);
    let (ok, text) = doctor(
        &["--db", &db.url, "--webdriver", "http://127.0.0.1:1"],
        &[
            ("PAIRING_WORKER_KEY", &key),
            ("PAIRING_WORKER_SMTP_URL", &with_login),
        ],
    )
    .await;
    assert!(!ok);
    assert!(line(&text, "FAIL", "smtp").contains("no login"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_wrong_is_named_with_what_to_do() {
    let db = TestDatabase::sqlite();
    let key = Key::generate_line();
    let printer_off = smtpd::free_port();
    database(&db, &key, printer_off).await;
    let closed = smtpd::free_port();
    let webdriver = format!("http://127.0.0.1:{closed}");
    let smtp_url = format!("smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{closed}");
    // Another key than the one that sealed the account.
    let (ok, text) = doctor(
        &[
            "--db",
            &db.url,
            "--webdriver",
            &webdriver,
            "--allow-private-hosts",
            "127.0.0.0/8",
        ],
        &[
            ("PAIRING_WORKER_KEY", &Key::generate_line()),
            ("PAIRING_WORKER_SMTP_URL", &smtp_url),
        ],
    )
    .await;
    assert!(!ok, "{text}");
    assert!(line(&text, "FAIL", "webdriver").contains("check --webdriver"));
    assert!(
        line(&text, "FAIL", "key").contains("not configured"),
        "{text}"
    );
    assert!(line(&text, "note", "key").contains("wrong key"));
    assert!(line(&text, "FAIL", "smtp").contains("--smtp-url"));
    assert!(text.contains("check(s) failed"), "{text}");
    // A remote endpoint: this machine's browser is not what serve would use.
    assert!(!text.contains("chromium "), "{text}");

    // The right key: only the endpoint and the relay are wrong; a printer that is off is the
    // store's to switch on, noted, not failed.
    let (ok, text) = doctor(
        &["--db", &db.url, "--allow-private-hosts", "127.0.0.0/8"],
        &[("PAIRING_WORKER_KEY", &key)],
    )
    .await;
    assert!(ok, "{text}");
    line(&text, "ok  ", "key");
    line(&text, "note", "printer");

    // A printer on our own network, without the operator's leave.
    let (_, text) = doctor(&["--db", &db.url], &[("PAIRING_WORKER_KEY", &key)]).await;
    assert!(
        line(&text, "note", "printer").contains("may not reach"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromedriver_of_another_major_version_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("chromedriver");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'ChromeDriver 120.0.6099.109 (3419140ab665596f21b385ce136419fde0924272)'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = TestDatabase::sqlite();
    let (ok, text) = doctor(
        &["--db", &db.url],
        &[("CHROMEDRIVER", fake.to_str().unwrap())],
    )
    .await;
    assert!(!ok, "{text}");
    let mismatch = line(&text, "FAIL", "versions");
    assert!(mismatch.contains("chromedriver 120"), "{mismatch}");
    // A database that does not exist yet is reported, not created.
    line(&text, "note", "database");
    assert!(!std::path::Path::new(db.url.trim_start_matches("sqlite:")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_is_checked_before_and_after_its_migrations() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let key = Key::generate_line();
    let args = ["--db", db.url.as_str(), "--webdriver", "http://127.0.0.1:1"];
    let (_, text) = doctor(&args, &[("PAIRING_WORKER_KEY", &key)]).await;
    assert!(
        line(&text, "note", "database").contains("migration(s) pending"),
        "{text}"
    );
    database(&db, &key, smtpd::free_port()).await;
    let (_, text) = doctor(&args, &[("PAIRING_WORKER_KEY", &key)]).await;
    assert!(
        line(&text, "ok  ", "database").contains("migrated"),
        "{text}"
    );
    line(&text, "ok  ", "key");
}
