//! Live alerts with real parts: the outbox on SQLite and PostgreSQL, and messages delivered to a
//! real SMTP server (aiosmtpd), an HTTP SMS gateway and a raw-TCP receipt printer on loopback,
//! each parsed back and checked: headers, both bodies, the language, the signed link, the
//! ESC/POS bytes. Plus the digest, the cap, an SMTP outage, and no secret anywhere.

#[path = "support/databases.rs"]
mod databases;
#[macro_use]
#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/lite.rs"]
mod lite;
#[path = "support/smtpd.rs"]
mod smtpd;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::*;
use databases::TestDatabase;
use pairing_worker::alerts::transport::{EmailSender, SmsGateway, Transports};
use pairing_worker::alerts::{links, ticket, AlertsConfig};
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::Registry;
use pairing_worker::queue::{
    AlertKind, AlertLogFilter, AlertPreferences, Channel, ContactFields, JobKind, Printer,
};
use secrecy::SecretString;
use smtpd::Smtpd;

conformance!(
    a_break_owes_one_row_per_contact_and_channel_once,
    store_level_failures_wait_for_the_threshold,
    a_recovery_notice_follows_only_an_alerted_break,
    due_rows_of_a_recipient_are_taken_together_by_one_worker,
);

const MINUTE: Duration = Duration::from_secs(60);

fn contact(name: &str, language: &str, channels: &[Channel]) -> ContactFields {
    ContactFields {
        name: name.into(),
        language: language.into(),
        channels: channels.to_vec(),
        email: Some(format!("{}@merchant.test", name.to_lowercase())),
        phone: Some("+33612345678".into()),
        printer: Some(Printer {
            host: "127.0.0.1".into(),
            port: 9,
            columns: 42,
        }),
    }
}

async fn pending(f: &Fixture) -> Vec<pairing_worker::queue::AlertDelivery> {
    let filter = AlertLogFilter {
        state: Some("pending".into()),
        ..Default::default()
    };
    f.queue.alert_log(ORG, &filter, 500).await.unwrap()
}

async fn a_break_owes_one_row_per_contact_and_channel_once(f: Fixture) {
    f.queue
        .add_contact(ORG, &contact("Ana", "fr", &[Channel::Email, Channel::Sms]))
        .await
        .unwrap();
    f.queue
        .add_contact(ORG, &contact("Bo", "en", &[Channel::Ticket]))
        .await
        .unwrap();
    let id = account(&f.queue, ORG).await;
    run_to(&f, &id, JobKind::Pair, Outcome::Paired).await;
    assert!(
        pending(&f).await.is_empty(),
        "a healthy verdict alerts nobody"
    );
    run_to(&f, &id, JobKind::Recheck, WRONG_PASSWORD).await;
    let rows = pending(&f).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.kind == AlertKind::Broken
        && r.outcome.as_deref() == Some("invalid_credentials/wrong_password")));
    // The same failure again is no new transition.
    new_password(&f, &id).await;
    run_to(&f, &id, JobKind::Pair, WRONG_PASSWORD).await;
    assert_eq!(pending(&f).await.len(), 3);
    // A different failure is (a day later: the failed-login budget is spent).
    f.clock.advance(Duration::from_secs(25 * 3600));
    new_password(&f, &id).await;
    run_to(&f, &id, JobKind::Pair, INACTIVE).await;
    run_to(&f, &id, JobKind::Recheck, INACTIVE).await;
    assert_eq!(pending(&f).await.len(), 6);
}

async fn store_level_failures_wait_for_the_threshold(f: Fixture) {
    f.queue
        .add_contact(ORG, &contact("Ana", "en", &[Channel::Email]))
        .await
        .unwrap();
    let id = account(&f.queue, ORG).await;
    run_to(&f, &id, JobKind::Pair, Outcome::Paired).await;
    run_to(&f, &id, JobKind::Recheck, INACTIVE).await;
    assert!(pending(&f).await.is_empty(), "one look is not confirmed");
    // The scheduler looks again soon, although the account is not healthy.
    f.clock.advance(16 * MINUTE);
    let checks = f.queue.schedule_due_checks(10).await.unwrap();
    assert!(
        matches!(
            checks.as_slice(),
            [c] if matches!(c.decision, pairing_worker::queue::CheckDecision::Started { .. })
        ),
        "{checks:?}"
    );
    let claimed = f.queue.claim("w1").await.unwrap().unwrap();
    f.queue
        .finish(&claimed.lease, finished(INACTIVE))
        .await
        .unwrap();
    assert_eq!(pending(&f).await.len(), 1, "confirmed: alerted once");
    // Confirmed: no more early looks, and no second alert.
    f.clock.advance(16 * MINUTE);
    let checks = f.queue.schedule_due_checks(10).await.unwrap();
    assert!(
        checks.iter().all(|c| !matches!(
            c.decision,
            pairing_worker::queue::CheckDecision::Started { .. }
        )),
        "{checks:?}"
    );
    run_to(&f, &id, JobKind::Recheck, INACTIVE).await;
    assert_eq!(pending(&f).await.len(), 1);
}

async fn a_recovery_notice_follows_only_an_alerted_break(f: Fixture) {
    let mut preferences = AlertPreferences {
        recovery: true,
        ..Default::default()
    };
    f.queue
        .set_alert_preferences(ORG, &preferences, false)
        .await
        .unwrap();
    let quiet = account(&f.queue, ORG).await;
    // Broke and healed before anyone was a contact: nothing to recover from.
    run_to(&f, &quiet, JobKind::Pair, WRONG_PASSWORD).await;
    f.queue
        .add_contact(ORG, &contact("Ana", "en", &[Channel::Email]))
        .await
        .unwrap();
    new_password(&f, &quiet).await;
    run_to(&f, &quiet, JobKind::Pair, Outcome::Paired).await;
    assert!(pending(&f).await.is_empty());
    let loud = account(&f.queue, ORG).await;
    run_to(&f, &loud, JobKind::Pair, Outcome::Paired).await;
    run_to(&f, &loud, JobKind::Recheck, WRONG_PASSWORD).await;
    new_password(&f, &loud).await;
    run_to(&f, &loud, JobKind::Pair, Outcome::Paired).await;
    let kinds: Vec<AlertKind> = pending(&f).await.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [AlertKind::Recovered, AlertKind::Broken]);
    // Without the preference, no notice.
    preferences.recovery = false;
    f.queue
        .set_alert_preferences(ORG, &preferences, false)
        .await
        .unwrap();
    run_to(&f, &loud, JobKind::Recheck, WRONG_PASSWORD).await;
    new_password(&f, &loud).await;
    run_to(&f, &loud, JobKind::Pair, Outcome::Paired).await;
    assert_eq!(pending(&f).await.len(), 3);
}

async fn due_rows_of_a_recipient_are_taken_together_by_one_worker(f: Fixture) {
    let preferences = AlertPreferences {
        digest_window: MINUTE,
        ..Default::default()
    };
    f.queue
        .set_alert_preferences(ORG, &preferences, false)
        .await
        .unwrap();
    f.queue
        .add_contact(ORG, &contact("Ana", "en", &[Channel::Email, Channel::Sms]))
        .await
        .unwrap();
    for _ in 0..20 {
        let id = account(&f.queue, ORG).await;
        run_to(&f, &id, JobKind::Pair, Outcome::Paired).await;
        run_to(&f, &id, JobKind::Recheck, WRONG_PASSWORD).await;
    }
    let hold = Duration::from_secs(120);
    assert!(
        f.queue.take_due_alerts(hold).await.unwrap().is_none(),
        "the digest window is open"
    );
    f.clock.advance(MINUTE);
    // Three workers at once, then one until nothing is left: each recipient's channel is taken
    // whole, no row twice (a worker that lost the race takes nothing).
    let (a, b, c) = tokio::join!(
        f.queue.take_due_alerts(hold),
        f.queue.take_due_alerts(hold),
        f.queue.take_due_alerts(hold)
    );
    let mut batches: Vec<_> = [a, b, c].into_iter().filter_map(|t| t.unwrap()).collect();
    while let Some(batch) = f.queue.take_due_alerts(hold).await.unwrap() {
        batches.push(batch);
    }
    let mut sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [20, 20], "one batch per channel");
    let mut channels: Vec<Channel> = batches.iter().map(|b| b.channel).collect();
    channels.sort();
    assert_eq!(channels, [Channel::Email, Channel::Sms]);
    // A held batch is not taken again until its hold runs out.
    assert!(f.queue.take_due_alerts(hold).await.unwrap().is_none());
    f.clock.advance(hold + Duration::from_secs(1));
    let again = f.queue.take_due_alerts(hold).await.unwrap().unwrap();
    assert_eq!(
        again.items.len(),
        20,
        "a crashed sender's batch is taken again"
    );
}

// ------------------------------------------------------------------ real parts

const REPAIR: &str = "https://dash.example/repair";

/// One request a gateway saw: its Authorization header and its form fields.
type GatewayRequest = (Option<String>, Vec<(String, String)>);

struct Gateway {
    url: String,
    seen: Arc<Mutex<Vec<GatewayRequest>>>,
}

/// A Twilio-compatible gateway on loopback, recording each request's auth header and form.
async fn gateway() -> Gateway {
    use axum::extract::State;
    use axum::http::HeaderMap;
    let seen: Arc<Mutex<Vec<GatewayRequest>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(
                |State(seen): State<Arc<Mutex<Vec<_>>>>,
                 headers: HeaderMap,
                 axum::Form(form): axum::Form<Vec<(String, String)>>| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string());
                    seen.lock().unwrap().push((auth, form));
                    (axum::http::StatusCode::CREATED, "{\"sid\":\"SM1\"}")
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gateway { url, seen }
}

/// A receipt printer on loopback: every connection's bytes.
async fn printer() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let printed: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = printed.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut bytes = Vec::new();
            stream.read_to_end(&mut bytes).await.unwrap();
            sink.lock().unwrap().push(bytes);
        }
    });
    (port, printed)
}

fn config(smtp: &str, gateway: Option<&Gateway>) -> AlertsConfig {
    let timeout = Duration::from_secs(5);
    let mut transports = Transports::none();
    transports.printers.reach = lite::loopback();
    transports.email = Some(
        EmailSender::new(
            &SecretString::from(smtp.to_string()),
            "Store alerts <alerts@worker.test>",
            timeout,
        )
        .unwrap(),
    );
    transports.sms = gateway.map(|g| {
        SmsGateway::twilio(
            &g.url,
            "AC123",
            SecretString::from("Canary-Sms-Token-77".to_string()),
            "+15005550006".into(),
            timeout,
        )
    });
    let mut config = AlertsConfig::new(transports);
    config.poll_interval = Duration::from_millis(20);
    config.backoff_base = Duration::from_secs(10);
    config.from = "Store alerts <alerts@worker.test>".into();
    config
}

async fn dispatch(f: &Fixture, config: AlertsConfig) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registry = Arc::new(Registry::from_source_tree().unwrap());
    tokio::spawn(pairing_worker::alerts::deliver_alerts(
        f.queue.clone(),
        registry,
        config,
        stopped,
    ));
    stop
}

async fn settled(f: &Fixture, sent: usize) -> Vec<pairing_worker::queue::AlertDelivery> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = f
            .queue
            .alert_log(ORG, &AlertLogFilter::default(), 500)
            .await
            .unwrap();
        if log.iter().filter(|r| r.state == "sent").count() >= sent {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not sent in time: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn link_in(text: &str) -> String {
    // HTML escapes the link's `/` and `&` (still the same URL to a browser).
    let text = text.replace("&#x2f;", "/").replace("&amp;", "&");
    let start = text
        .find(REPAIR)
        .unwrap_or_else(|| panic!("a repair link in {text}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_string()
}

fn token(link: &str) -> String {
    link.split("r=").nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_reaches_email_sms_and_the_printer_with_a_link_that_verifies() {
    let f = fixture(TestDatabase::sqlite()).await;
    let smtp = Smtpd::start();
    let sms = gateway().await;
    let (printer_port, printed) = printer().await;
    let secret = f
        .queue
        .set_alert_preferences(
            ORG,
            &AlertPreferences {
                digest_window: Duration::ZERO,
                repair_url: Some(REPAIR.into()),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap()
        .expect("the first repair URL makes the link secret");
    let mut fields = contact(
        "Ana",
        "fr",
        &[Channel::Email, Channel::Sms, Channel::Ticket],
    );
    fields.printer.as_mut().unwrap().port = printer_port;
    f.queue.add_contact(ORG, &fields).await.unwrap();
    let id = account(&f.queue, ORG).await;
    run_to(&f, &id, JobKind::Pair, Outcome::Paired).await;
    let _stop = dispatch(&f, config(&smtp.url(), Some(&sms))).await;
    run_to(&f, &id, JobKind::Recheck, WRONG_PASSWORD).await;
    let log = settled(&f, 3).await;
    assert!(log.iter().all(|r| r.state == "sent"), "{log:#?}");

    // Email: headers, both bodies, in French, with the link.
    let raw = smtp.messages();
    assert_eq!(raw.len(), 1);
    let message = mail_parser::MessageParser::default()
        .parse(&raw[0])
        .unwrap();
    let subject = message.subject().unwrap();
    assert!(
        subject.contains("Deliveroo") && subject.contains("Camden (Burger Lab)"),
        "{subject}"
    );
    assert_eq!(
        message.from().unwrap().first().unwrap().address().unwrap(),
        "alerts@worker.test"
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address().unwrap(),
        "ana@merchant.test"
    );
    let text = message.body_text(0).unwrap();
    let html = message.body_html(0).unwrap();
    assert!(text.contains("mot de passe"), "French words: {text}");
    assert!(html.contains("lang=\"fr\""), "{html}");
    assert!(html.contains("Camden (Burger Lab)"));
    let link = link_in(&text);
    assert_eq!(link, link_in(&html), "one link in both bodies");
    let now = f.clock.now_ms() / 1000;
    let verified = links::verify(&secret, &token(&link), now).expect("the link verifies");
    assert_eq!(verified.account_id, id);
    assert_eq!(
        links::verify(&secret, &token(&link), now + 72 * 3600),
        Err(links::LinkError::Expired),
        "expires after 72 hours"
    );
    assert!(links::verify("alsec_other", &token(&link), now).is_err());

    // SMS: Twilio's form, the account SID and token as basic auth, the link in the body.
    let seen = sms.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (auth, form) = &seen[0];
    let field = |name: &str| form.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(field("To"), "+33612345678");
    assert_eq!(field("From"), "+15005550006");
    // Each message carries its own link (one alert, one link), for the same account.
    let sms_link = link_in(&field("Body"));
    assert_ne!(sms_link, link);
    let sms_verified = links::verify(&secret, &token(&sms_link), now).unwrap();
    assert_eq!(sms_verified.account_id, id);
    assert!(auth.as_deref().unwrap().starts_with("Basic "));

    // Ticket: ESC/POS bytes decoded back, the store and the QR code of the link.
    let bytes = printed.lock().unwrap().clone();
    assert_eq!(bytes.len(), 1);
    let ticket = ticket::decode(&bytes[0]).expect("valid ESC/POS");
    let lines = ticket.lines.join("\n");
    assert!(lines.contains("Camden (Burger Lab)"), "{lines}");
    assert!(lines.contains("Deliveroo"));
    assert_eq!(ticket.qr.len(), 1);
    assert_eq!(
        links::verify(&secret, &token(&ticket.qr[0]), now)
            .unwrap()
            .account_id,
        id
    );
    assert!(ticket.cut);

    // No secret in any message: the account's password and TOTP secret, the gateway token.
    let sms_body = field("Body");
    let everything = [
        String::from_utf8_lossy(&raw[0]).to_string(),
        sms_body,
        String::from_utf8_lossy(&bytes[0]).to_string(),
        format!("{log:?}"),
    ];
    for canary in [
        "Canary-Password-8c1f",
        "JBSWY3DPEHPK3PXP",
        "Canary-Sms-Token-77",
    ] {
        for text in &everything {
            assert!(!text.contains(canary), "{canary} leaked");
        }
    }
    // The link secret is sealed at rest like every other secret.
    let path = f.db.url.trim_start_matches("sqlite:");
    let stored = std::fs::read(path).unwrap();
    let wal = std::fs::read(format!("{path}-wal")).unwrap_or_default();
    for bytes in [stored, wal] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "the link secret is stored in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_stores_breaking_at_once_make_one_digest_per_recipient_within_the_cap() {
    let f = fixture(TestDatabase::sqlite()).await;
    let smtp = Smtpd::start();
    f.queue
        .set_alert_preferences(
            ORG,
            &AlertPreferences {
                digest_window: Duration::from_secs(30),
                cap_per_day: 2,
                repair_url: Some(REPAIR.into()),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    for name in ["Ana", "Bo"] {
        f.queue
            .add_contact(ORG, &contact(name, "en", &[Channel::Email]))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(account(&f.queue, ORG).await);
    }
    let _stop = dispatch(&f, config(&smtp.url(), None)).await;
    for id in &ids {
        run_to(&f, id, JobKind::Pair, Outcome::Paired).await;
    }
    for id in &ids {
        run_to(&f, id, JobKind::Recheck, WRONG_PASSWORD).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty(), "the digest window is open");
    f.clock.advance(Duration::from_secs(31));
    settled(&f, 40).await;
    let raw = smtp.messages();
    assert_eq!(raw.len(), 2, "one digest per recipient");
    for bytes in &raw {
        let message = mail_parser::MessageParser::default().parse(bytes).unwrap();
        assert!(
            message.subject().unwrap().starts_with("20 "),
            "{:?}",
            message.subject()
        );
        let text = message.body_text(0).unwrap();
        assert_eq!(text.matches(REPAIR).count(), 20, "a link per account");
    }
    // Two more breaks, one at a time: the second message fills the cap, the third waits.
    for (i, id) in ids[..2].iter().enumerate() {
        new_password(&f, id).await;
        run_to(&f, id, JobKind::Pair, Outcome::Paired).await;
        run_to(&f, id, JobKind::Recheck, INACTIVE).await;
        run_to(&f, id, JobKind::Recheck, INACTIVE).await; // confirmed
        f.clock.advance(Duration::from_secs(31));
        if i == 0 {
            settled(&f, 42).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 4, "two per recipient in 24 hours");
    // A day later the held one goes out.
    f.clock.advance(Duration::from_secs(24 * 3600));
    settled(&f, 44).await;
    assert_eq!(smtp.messages().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_loses_nothing() {
    let f = fixture(TestDatabase::sqlite()).await;
    let port = smtpd::free_port();
    f.queue
        .set_alert_preferences(
            ORG,
            &AlertPreferences {
                digest_window: Duration::ZERO,
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    f.queue
        .add_contact(ORG, &contact("Ana", "de", &[Channel::Email]))
        .await
        .unwrap();
    let id = account(&f.queue, ORG).await;
    run_to(&f, &id, JobKind::Pair, Outcome::Paired).await;
    let _stop = dispatch(&f, config(&format!("smtp://127.0.0.1:{port}"), None)).await;
    run_to(&f, &id, JobKind::Recheck, WRONG_PASSWORD).await;
    // Refused while the server is down: kept, with why, for a later attempt.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = f
            .queue
            .alert_log(ORG, &AlertLogFilter::default(), 10)
            .await
            .unwrap();
        if log[0].last_error.is_some() {
            assert_eq!(log[0].state, "pending");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A minute later the server is back.
    let smtp = Smtpd::start_on(port);
    f.clock.advance(MINUTE);
    let log = settled(&f, 1).await;
    assert!(log[0].attempts >= 2, "{log:?}");
    let raw = smtp.messages();
    assert_eq!(raw.len(), 1);
    let message = mail_parser::MessageParser::default()
        .parse(&raw[0])
        .unwrap();
    assert!(message.body_text(0).unwrap().contains("Passwort"), "German");
}
