//! Codes from a real mailbox: a throwaway Dovecot (Debian `dovecot-imapd`) on loopback with TLS.
//! Without Dovecot the trials are ignored, except under `CI=true`, where they fail.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/dovecot.rs"]
mod dovecot;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::codes::mailbox::{self, MailboxError};
use pairing_worker::codes::{AccountCodes, EmailCodeRule, MailboxWatch};
use pairing_worker::engine::pairing::{pair_in_new_session, PairingOptions};
use pairing_worker::kit::sandbox::{portal_hosts, MailDelivery, Sandbox};
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::Registry;
use pairing_worker::reach::{parse_range, Policy, Reach};
use pairing_worker::secret::{Credentials, ExposeSecret, SecretString};
use regex::Regex;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

const WATCHED: &str = "watch@sandbox.test";
/// The IDLE trial's own mailbox: trials run at once, and each counts the mail it sees.
const IDLING: &str = "idle@sandbox.test";

fn rule() -> EmailCodeRule {
    EmailCodeRule {
        sender: Regex::new(r"(?i)@uber\.com").unwrap(),
        pattern: Regex::new(r"code is (\d{4})").unwrap(),
    }
}

fn mail(code: Option<&str>) -> Vec<u8> {
    let body = code.map_or("Welcome to Uber Eats Manager.".to_string(), |c| {
        format!("Your code is {c}. It expires in 10 minutes.")
    });
    format!("From: Uber <noreply@uber.com>\r\nTo: {WATCHED}\r\nSubject: Your Uber Verification code\r\n\r\n{body}\r\n").into_bytes()
}

fn loopback() -> Reach {
    Reach::new(Policy::allowing([parse_range("127.0.0.0/8").unwrap()]))
}

/// A DNS answer that points a public-looking name at this host.
struct ToLoopback;

impl pairing_worker::reach::Resolver for ToLoopback {
    fn lookup(
        &self,
        _host: &str,
    ) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<std::net::IpAddr>>> {
        Box::pin(async { Ok(vec![std::net::Ipv4Addr::LOCALHOST.into()]) })
    }
}

/// Loopback ports that are not an IMAP server: closed, speaking HTTP, silent.
fn not_imap_ports() -> Vec<(&'static str, u16)> {
    use std::io::Write;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in http.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    vec![
        ("a closed port", closed_port),
        ("an HTTP server", http_port),
        ("a silent server", silent_port),
    ]
}

fn fail(e: impl std::fmt::Display) -> Failed {
    Failed::from(e.to_string())
}

fn main() {
    let args = Arguments::from_args();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !dovecot::present() {
        let trial = if in_ci {
            Trial::test("imap::dovecot_present", || {
                Err("CI=true and Dovecot is missing: scripts/install-deps.sh installs dovecot-imapd".into())
            })
        } else {
            eprintln!(
                "dovecot not installed: IMAP trials are ignored (scripts/test.sh installs it)"
            );
            Trial::test("imap::dovecot_present", || Ok(())).with_ignored_flag(true)
        };
        libtest_mimic::run(&args, vec![trial]).exit();
    }
    // Dovecot (and the sandbox's mail delivery to it) is on this host: the operator allows
    // loopback, as `serve --allow-private-hosts 127.0.0.0/8` would.
    pairing_worker::reach::set_global(loopback());
    let registry = Registry::from_source_tree().expect("specs load");
    let sandbox = Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
        .expect("sandbox builds");
    let email_cards: Vec<_> = sandbox
        .scenarios()
        .into_iter()
        .filter(|c| {
            c.delivery == Some(pairing_worker::kit::sandbox::script::Delivery::Email)
                && c.supply_code
        })
        .collect();
    let mut users: Vec<&str> = email_cards.iter().map(|c| c.username.as_str()).collect();
    users.push(WATCHED);
    users.push(IDLING);
    let server = Arc::new(dovecot::Dovecot::start(&users).expect("dovecot starts"));

    let mut trials = Vec::new();
    let s = server.clone();
    trials.push(Trial::test(
        "imap::new_code_is_read_unmarked_and_used_once",
        move || {
            RUNTIME.block_on(async {
                let config = s.mailbox(WATCHED);
                pairing_worker::kit::mailbox::deliver(&config, &mail(Some("1111")))
                    .await
                    .map_err(fail)?; // before the request: ignored
                let mut watch = MailboxWatch::start(&config).await.map_err(fail)?;
                pairing_worker::kit::mailbox::deliver(&config, &mail(None))
                    .await
                    .map_err(fail)?; // no code in it
                pairing_worker::kit::mailbox::deliver(&config, &mail(Some("4821")))
                    .await
                    .map_err(fail)?;
                let code = watch
                    .wait_for_code(&rule(), Duration::from_secs(10))
                    .await
                    .map_err(fail)?
                    .ok_or("no code")?;
                if code.expose_secret() != "4821" {
                    return Err("read the wrong code".into());
                }
                pairing_worker::kit::mailbox::deliver(&config, &mail(Some("4821")))
                    .await
                    .map_err(fail)?; // the same code again
                let again = watch
                    .wait_for_code(&rule(), Duration::from_millis(1500))
                    .await
                    .map_err(fail)?;
                if again.is_some() {
                    return Err("a used code was handed out twice".into());
                }
                watch.close().await;
                // Nothing was marked read.
                let mut session = mailbox::connect(&config, Duration::from_secs(5))
                    .await
                    .map_err(fail)?;
                session.select("INBOX").await.map_err(fail)?;
                let unseen = session.uid_search("UNSEEN").await.map_err(fail)?;
                if unseen.len() != 4 {
                    return Err(format!("expected 4 unseen messages, {} are", unseen.len()).into());
                }
                Ok(())
            })
        },
    ));
    let s = server.clone();
    trials.push(Trial::test(
        "imap::new_mail_is_pushed_by_idle_not_polled_for",
        move || {
            RUNTIME.block_on(async {
                let config = s.mailbox(IDLING);
                let mut watch = MailboxWatch::start(&config).await.map_err(fail)?;
                if !watch.uses_idle() {
                    return Err("Dovecot announces IDLE; the watch did not use it".into());
                }
                let sending = {
                    let config = config.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        pairing_worker::kit::mailbox::deliver(&config, &mail(Some("7315"))).await
                    })
                };
                let code = watch
                    .wait_for_code(&rule(), Duration::from_secs(20))
                    .await
                    .map_err(fail)?
                    .ok_or("no code")?;
                sending.await.map_err(fail)?.map_err(fail)?;
                if code.expose_secret() != "7315" {
                    return Err("read the wrong code".into());
                }
                // The wait ended on the server's word (EXISTS), not on the 5 s look-again.
                if watch.idle_wakeups() == 0 {
                    return Err("the code was found without IDLE announcing it".into());
                }
                watch.close().await;
                Ok(())
            })
        },
    ));
    let s = server.clone();
    trials.push(Trial::test(
        "imap::wrong_mailbox_password_is_not_invalid_credentials",
        move || {
            RUNTIME.block_on(async {
                let mut config = s.mailbox(WATCHED);
                config.password = SecretString::from("Canary-Mailbox-Pass".to_string());
                match MailboxWatch::start(&config).await {
                    Err(e @ MailboxError::Login { .. }) if !e.to_string().contains("Canary") => {
                        Ok(())
                    }
                    Err(other) => Err(format!("wrong error: {other}").into()),
                    Ok(_) => Err("logged in with a wrong password".into()),
                }
            })
        },
    ));
    let s = server.clone();
    trials.push(Trial::test(
        "imap::unreachable_host_tls_failure_and_missing_ca_are_clear",
        move || {
            RUNTIME.block_on(async {
                let mut closed = s.mailbox(WATCHED);
                closed.port = 9;
                if !matches!(
                    MailboxWatch::start(&closed).await,
                    Err(MailboxError::Unreachable { .. })
                ) {
                    return Err("closed port: not Unreachable".into());
                }
                let mut untrusted = s.mailbox(WATCHED);
                untrusted.ca_file = None; // the system bundle does not know the test CA
                if !matches!(
                    MailboxWatch::start(&untrusted).await,
                    Err(MailboxError::Tls { .. })
                ) {
                    return Err("untrusted certificate: not a TLS error".into());
                }
                let mut missing = s.mailbox(WATCHED);
                missing.ca_file = Some("/nonexistent/ca.pem".into());
                match MailboxWatch::start(&missing).await {
                    Err(e @ MailboxError::CaFile { .. })
                        if e.to_string().contains("/nonexistent/ca.pem") =>
                    {
                        Ok(())
                    }
                    other => Err(format!(
                        "missing CA file: {:?}",
                        other.err().map(|e| e.to_string())
                    )
                    .into()),
                }
            })
        },
    ));

    let s = server.clone();
    trials.push(Trial::test(
        "imap::closed_and_non_imap_ports_read_the_same_to_the_caller",
        move || {
            RUNTIME.block_on(async {
                let timeout = Duration::from_millis(1500);
                let mut seen = Vec::new();
                for (what, port) in not_imap_ports() {
                    let mut config = s.mailbox(WATCHED);
                    config.port = port;
                    match mailbox::connect_with(&config, timeout, &loopback()).await {
                        Ok(_) => return Err(format!("{what}: logged in").into()),
                        Err(error) => seen.push((what, port, error.to_string())),
                    }
                }
                // A real TLS server whose certificate is not trusted: open, but not for us.
                let mut untrusted = s.mailbox(WATCHED);
                untrusted.ca_file = None;
                match mailbox::connect_with(&untrusted, timeout, &loopback()).await {
                    Err(error @ MailboxError::Tls { .. }) => {
                        seen.push(("Dovecot, untrusted", s.port, error.to_string()))
                    }
                    other => return Err(format!("untrusted: {:?}", other.err()).into()),
                }
                let first = seen[0].2.clone();
                for (what, port, text) in &seen {
                    if *text != first {
                        return Err(format!("{what} reads differently: {seen:?}").into());
                    }
                    if text.contains(&port.to_string()) {
                        return Err(format!("{what}: the port is in the error: {text}").into());
                    }
                }
                // The right settings still get in (Dovecot may delay logins after another
                // trial's wrong password: a longer wait).
                mailbox::connect_with(&s.mailbox(WATCHED), Duration::from_secs(10), &loopback())
                    .await
                    .map_err(fail)?;
                Ok(())
            })
        },
    ));
    let s = server.clone();
    trials.push(Trial::test(
        "imap::our_network_is_refused_at_connect_time",
        move || {
            RUNTIME.block_on(async {
                let timeout = Duration::from_secs(5);
                let public_only = Reach::default();
                match mailbox::connect_with(&s.mailbox(WATCHED), timeout, &public_only).await {
                    Err(MailboxError::Forbidden { .. }) => {}
                    other => {
                        return Err(
                            format!("127.0.0.1 without the allow-list: {:?}", other.err()).into(),
                        )
                    }
                }
                // A name validated as public that resolves to this host when the worker connects.
                let rebinding = Reach::default().with_resolver(Arc::new(ToLoopback));
                let mut named = s.mailbox(WATCHED);
                named.host = "imap.rebind.test".into();
                match MailboxWatch::start_with(&named, &rebinding).await {
                    Err(MailboxError::Forbidden { .. }) => Ok(()),
                    other => Err(format!(
                        "rebinding name: {:?}",
                        other.err().map(|e| e.to_string())
                    )
                    .into()),
                }
            })
        },
    ));

    // Through the queue: an account whose code source is its mailbox, a background job (nobody to
    // type a code), the worker watching the mailbox from before the login. Its scenario is not also
    // run directly below: two logins of one account at once would mail two codes to one mailbox.
    let (through_queue, direct) = email_cards.split_at(1.min(email_cards.len()));
    if let Some(card) = through_queue.first().cloned() {
        let (s, registry) = (server.clone(), registry.clone());
        trials.push(Trial::test(
            format!("imap::queue::{}::{}", card.provider, card.scenario),
            move || {
                use pairing_worker::queue::{
                    AccountSecrets, JobKind, Key, KeyRing, NewAccount, Queue, QueueConfig,
                };
                use pairing_worker::worker::{Worker, WorkerConfig};
                let sandbox = Arc::new(
                    Sandbox::from_registry(
                        &registry,
                        &pairing_worker::kit::fixtures::source_tree(),
                    )
                    .map_err(fail)?
                    .with_mail(MailDelivery {
                        host: "127.0.0.1".into(),
                        port: s.port,
                        ca_file: Some(s.ca_file()),
                        password: s.password.clone(),
                    }),
                );
                let registry = Arc::new(registry);
                RUNTIME.block_on(async {
                    let (addr, _server) =
                        sandbox.clone().serve("127.0.0.1:0").await.map_err(fail)?;
                    let db = databases::TestDatabase::sqlite();
                    let keys = KeyRing::parse(&Key::generate_line(), None).map_err(fail)?;
                    let queue = Arc::new(
                        Queue::open(&db.url, keys, QueueConfig::default())
                            .await
                            .map_err(fail)?,
                    );
                    let browser = Browser::launch(BrowserConfig::default())
                        .await
                        .map_err(fail)?;
                    let config = WorkerConfig {
                        poll_interval: Duration::from_millis(50),
                        portal_hosts: portal_hosts(&registry, &format!("http://{addr}"))
                            .map_err(fail)?,
                        ..WorkerConfig::default()
                    };
                    let (stop, stopped) = tokio::sync::watch::channel(false);
                    let worker = Worker::new(queue.clone(), registry, browser.clone(), config);
                    let running = tokio::spawn(worker.run(stopped));
                    let account = queue
                        .create_account(NewAccount {
                            organisation: "org-mail".into(),
                            provider: card.provider.clone(),
                            secrets: AccountSecrets {
                                credentials: Credentials {
                                    username: card.username.clone(),
                                    password: SecretString::from(card.password.clone()),
                                },
                                totp: None,
                                mailbox: Some(s.mailbox(&card.username)),
                            },
                            stores: Vec::new(),
                        })
                        .await
                        .map_err(fail)?;
                    let job = queue
                        .submit("org-mail", &account.id, JobKind::Recheck, false)
                        .await
                        .map_err(fail)?
                        .job;
                    let started = std::time::Instant::now();
                    let done = loop {
                        let current = queue.job("org-mail", &job.id).await.map_err(fail)?;
                        let current = current.ok_or("job vanished")?;
                        if current.state.is_final() {
                            break current;
                        }
                        if started.elapsed() > Duration::from_secs(60) {
                            return Err(format!("job stuck: {current:?}").into());
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    let _ = stop.send(true);
                    let _ = running.await;
                    browser.shutdown();
                    if done.outcome != Some(Outcome::Paired) {
                        return Err(
                            format!("expected paired from the mailbox code: {done:?}").into()
                        );
                    }
                    Ok::<_, Failed>(())
                })
            },
        ));
    }

    // The whole flow in the browser: the sandbox portal mails a fresh code into Dovecot, the
    // worker's mailbox watch reads it and types it into the same page.
    for card in direct.iter().cloned() {
        let (s, registry) = (server.clone(), registry.clone());
        trials.push(Trial::test(
            format!("imap::browser::{}::{}", card.provider, card.scenario),
            move || {
                let spec = registry.get(&card.provider).map_err(fail)?;
                let rule = spec
                    .email_code
                    .clone()
                    .ok_or("the provider's spec has no [email_code]")?;
                let sandbox = Arc::new(
                    Sandbox::from_registry(
                        &registry,
                        &pairing_worker::kit::fixtures::source_tree(),
                    )
                    .map_err(fail)?
                    .with_mail(MailDelivery {
                        host: "127.0.0.1".into(),
                        port: s.port,
                        ca_file: Some(s.ca_file()),
                        password: s.password.clone(),
                    }),
                );
                let report = RUNTIME.block_on(async {
                    let (addr, _server) =
                        sandbox.clone().serve("127.0.0.1:0").await.map_err(fail)?;
                    let browser = Browser::launch(BrowserConfig::default())
                        .await
                        .map_err(fail)?;
                    let watch = MailboxWatch::start(&s.mailbox(&card.username))
                        .await
                        .map_err(fail)?;
                    let mut codes = AccountCodes {
                        mailbox: Some((watch, rule)),
                        ..AccountCodes::default()
                    };
                    let credentials = Credentials {
                        username: card.username.clone(),
                        password: SecretString::from(card.password.clone()),
                    };
                    let options = PairingOptions {
                        portal_hosts: portal_hosts(&registry, &format!("http://{addr}"))
                            .map_err(fail)?,
                        code_wait: Duration::from_secs(30),
                        ..PairingOptions::default()
                    };
                    let report =
                        pair_in_new_session(&browser, &spec, &credentials, &mut codes, &options)
                            .await
                            .map_err(fail)?;
                    codes.close().await;
                    Ok::<_, Failed>(report)
                })?;
                let finished = std::time::Instant::now();
                let json = serde_json::to_string(&report).map_err(fail)?;
                if let Some(available) = sandbox.issued_at(&card.provider, &card.username) {
                    // The figure for BENCHMARKS.md: code in the mailbox -> pairing finished.
                    eprintln!(
                        "timing {}::{}: code in mailbox -> paired {} ms",
                        card.provider,
                        card.scenario,
                        finished.duration_since(available).as_millis()
                    );
                }
                if report.outcome != Outcome::Paired {
                    return Err(format!("expected paired, got {json}").into());
                }
                let code = sandbox
                    .issued_code(&card.provider, &card.username)
                    .ok_or("no code was sent")?;
                for secret in [&card.password, &code, &s.password] {
                    if json.contains(secret.as_str()) {
                        return Err(format!("the report leaks a secret: {json}").into());
                    }
                }
                Ok(())
            },
        ));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(server);
    conclusion.exit();
}
