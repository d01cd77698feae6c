//! Secrets in every spelling, against real Chromium: a canary portal echoes what was typed in
//! every spelling portals use (case, base64, JSON, DOM text and attributes, character
//! references, percent and form encoding, and nestings of those), and nothing of it may reach a
//! saved page, its metadata, the report, a screenshot's DOM or the logs.
//!
//! Each check runs three ways, so none can pass vacuously: the page before redaction holds
//! every literal spelling listed below (written out by hand); afterwards neither those
//! literals, nor any spelling of the product's generator, nor the secret itself after undoing
//! every encoding we know of (an oracle written here, independent of the generator) remains.
//!
//! Without chromedriver the browser tests are skipped, except under `CI=true`, where they fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Form, Query};
use axum::response::{Html, Redirect};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::codes::NoCodes;
use pairing_worker::engine::pairing::{pair_in_new_session, PairingOptions};
use pairing_worker::kit::sandbox::portal_hosts;
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::Registry;
use pairing_worker::secret::{logs, Credentials, Redactor, SecretString};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

#[path = "support/oracle.rs"]
mod oracle;
use oracle::still_holds;

const USERNAME: &str = "Canary.User+7731@Sandbox.test";
/// Every character serialisers disagree on: `"` with `<`, `>`, `&`, `'`, `\`, `/`, a
/// non-ASCII letter and a no-break space.
const PASSWORD: &str = "Pa\"ss<w>&rd'\\/é\u{a0}7731";

/// The spellings the echo page holds in its DOM (JavaScript's view: entities decoded).
const IN_THE_DOM: &[&str] = &[
    "canary.user+7731@sandbox.test",
    "CANARY.USER+7731@SANDBOX.TEST",
    PASSWORD,
    "pa\"ss<w>&rd'\\/é\u{a0}7731",
    "PA\"SS<W>&RD'\\/É\u{a0}7731",
    "Q2FuYXJ5LlVzZXIrNzczMUBTYW5kYm94LnRlc3Q=",
    "UGEic3M8dz4mcmQnXC/DqcKgNzczMQ==",
    "Q2FuYXJ5LlVzZXIrNzczMUBTYW5kYm94LnRlc3Q.UGEic3M8dz4mcmQnXC_DqcKgNzczMQ",
    "Q2FuYXJ5LlVzZXIrNzczMUBTYW5kYm94LnRlc3Q6UGEic3M8dz4mcmQnXC/DqcKgNzczMQ==",
    "eyJzdWIiOiJDYW5hcnkuVXNlcis3NzMxQFNhbmRib3gudGVzdCIsInB3IjoiUGFcInNzPHc-JnJkJ1xcL8OpwqA3NzMxIiwiaWF0IjoxfQ",
    "Pa\\\"ss<w>&rd'\\\\/é\u{a0}7731",
    "Canary.User%2B7731%40Sandbox.test",
    "Pa%22ss%3Cw%3E%26rd'%5C%2F%C3%A9%C2%A07731",
    "Pa%22ss%3Cw%3E%26rd%27%5C%2F%C3%A9%C2%A07731",
    "Pa%5C%22ss%3Cw%3E%26rd'%5C%5C%2F%C3%A9%C2%A07731",
    "Pa\\\"ss<w>&rd'\\\\\\/\\u00e9\\u00a07731",
    "Pa\\\"ss\\u003cw\\u003e\\u0026rd'\\\\/é\u{a0}7731",
    "Pa&#34;ss&#60;w&#62;&#38;rd&#39;\\\\/&#233;&#160;7731",
];

/// The spellings Chromium's serialisation of that DOM holds (what the engine snapshots).
const IN_THE_PAGE: &[&str] = &[
    "canary.user+7731@sandbox.test",
    "CANARY.USER+7731@SANDBOX.TEST",
    "Pa\"ss&lt;w&gt;&amp;rd'\\/é&nbsp;7731",
    "pa\"ss&lt;w&gt;&amp;rd'\\/é&nbsp;7731",
    "PA\"SS&lt;W&gt;&amp;RD'\\/É&nbsp;7731",
    // Attributes: Chromium 156 escapes `<` and `>` there too (the standard since 2025).
    "Pa&quot;ss&lt;w&gt;&amp;rd'\\/é&nbsp;7731",
    "PA&quot;SS&lt;W&gt;&amp;RD'\\/É&nbsp;7731",
    "Pa\\&quot;ss&lt;w&gt;&amp;rd'\\\\/é&nbsp;7731",
    "Pa\\\"ss&lt;w&gt;&amp;rd'\\\\/é&nbsp;7731",
    "Q2FuYXJ5LlVzZXIrNzczMUBTYW5kYm94LnRlc3Q=",
    "UGEic3M8dz4mcmQnXC/DqcKgNzczMQ==",
    "Q2FuYXJ5LlVzZXIrNzczMUBTYW5kYm94LnRlc3Q6UGEic3M8dz4mcmQnXC/DqcKgNzczMQ==",
    "eyJzdWIiOiJDYW5hcnkuVXNlcis3NzMxQFNhbmRib3gudGVzdCIsInB3IjoiUGFcInNzPHc-JnJkJ1xcL8OpwqA3NzMxIiwiaWF0IjoxfQ",
    "Canary.User%2B7731%40Sandbox.test",
    "Pa%22ss%3Cw%3E%26rd'%5C%2F%C3%A9%C2%A07731",
    "Pa%22ss%3Cw%3E%26rd%27%5C%2F%C3%A9%C2%A07731",
    "Pa%5C%22ss%3Cw%3E%26rd'%5C%5C%2F%C3%A9%C2%A07731",
    "Pa\\\"ss<w>&rd'\\\\/é\u{a0}7731",
    "Pa\\\"ss<w>&rd'\\\\\\/\\u00e9\\u00a07731",
    "Pa\\\"ss\\u003cw\\u003e\\u0026rd'\\\\/é\u{a0}7731",
    "Pa&#34;ss&#60;w&#62;&#38;rd&#39;\\\\/&#233;&#160;7731",
];

/// Builds every spelling in the browser with the browser's own encoders.
const ECHO_JS: &str = r#"
const {u, p} = JSON.parse(document.getElementById('typed').textContent);
const b64 = s => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const b64url = s => b64(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const out = document.getElementById('out');
const line = (label, text) => { const e = document.createElement('p'); e.textContent = label + ': ' + text; out.append(e); };
line('lower', u.toLowerCase()); line('upper', u.toUpperCase());
line('secret', p); line('secret lower', p.toLowerCase()); line('secret upper', p.toUpperCase());
line('b64', b64(u) + ' ' + b64(p)); line('b64url', b64url(u) + '.' + b64url(p));
line('basic', 'Basic ' + b64(u + ':' + p)); line('token', b64url(JSON.stringify({sub: u, pw: p, iat: 1})));
line('json', JSON.stringify({u, p}));
const link = (label, href) => { const a = document.createElement('a'); a.href = href; a.textContent = label; out.append(a); };
link('next', '/next?u=' + encodeURIComponent(u) + '&p=' + encodeURIComponent(p));
link('form', '/form?' + new URLSearchParams({u, p}));
link('state', '/state?s=' + encodeURIComponent(JSON.stringify({p})));
const box = document.createElement('div');
box.setAttribute('data-user', u); box.setAttribute('title', p);
box.setAttribute('aria-label', p.toUpperCase()); box.setAttribute('data-state', JSON.stringify({u, p}));
out.append(box);
const state = document.createElement('script');
state.textContent = 'window.__STATE__ = ' + JSON.stringify({user: u, pass: p}) + ';';
document.body.append(state);
const area = document.createElement('textarea'); area.textContent = p; out.append(area);
const field = document.createElement('input'); field.value = u.toUpperCase(); out.append(field);
const host = document.createElement('div'); out.append(host);
const shadow = document.createElement('span'); shadow.textContent = 'shadow ' + p + ' ' + b64(u);
host.attachShadow({mode: 'open'}).append(shadow);
document.title = 'Welcome ' + u.toUpperCase();
"#;

/// Every string the DOM holds where a screenshot could show it, with where it was.
const READ_BACK_JS: &str = r#"
const found = [['title', document.title], ['innerText', document.body.innerText]];
const visit = root => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT | NodeFilter.SHOW_COMMENT);
  for (let node = walker.currentNode; node; node = walker.nextNode()) {
    if (node.nodeType !== Node.ELEMENT_NODE) { if (node.nodeValue) found.push(['text', node.nodeValue]); continue; }
    for (const attr of node.attributes) found.push(['@' + attr.name, attr.value]);
    if ('value' in node && typeof node.value === 'string' && node.value) found.push(['value', node.value]);
    if (node.shadowRoot) { found.push(['shadow innerHTML', node.shadowRoot.innerHTML]); visit(node.shadowRoot); }
  }
};
visit(document);
return found;
"#;

fn portal_json(value: &serde_json::Value) -> String {
    // As Next.js and Go inline state: safe inside a <script>.
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// PHP's `json_encode` defaults, as a server-side template writes a string.
fn php_json(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out
}

/// A template that writes markup characters as decimal references, inside a JS string.
fn references_in_script(text: &str) -> String {
    let refs: String = text
        .chars()
        .map(|c| match c {
            '&' | '<' | '>' | '"' | '\'' => format!("&#{};", c as u32),
            c if !c.is_ascii() => format!("&#{};", c as u32),
            c => c.to_string(),
        })
        .collect();
    refs.replace('\\', "\\\\")
}

fn echo_page(user: &str, password: &str) -> String {
    let typed = portal_json(&serde_json::json!({"u": user, "p": password}));
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Welcome</title></head>
<body><h1>Brand new portal design</h1><main id="out"></main>
<script type="application/json" id="typed">{typed}</script>
<script>window.__CFG__ = {{"user": "{}", "secret": "{}", "tpl": "<b>{}</b>"}};</script>
<script>{ECHO_JS}</script></body></html>"#,
        php_json(user),
        php_json(password),
        references_in_script(password)
    )
}

/// Where the canary portal sends a login: the typed values in the query, form-encoded, and as
/// a base64url token, as some portals do.
fn welcome_path(user: &str, password: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("u", user)
        .append_pair("p", password)
        .append_pair("t", &URL_SAFE_NO_PAD.encode(format!("{user}:{password}")))
        .finish();
    format!("/deliveroo/hub/welcome?{query}")
}

/// The Deliveroo login page as recorded; its form posts back to itself.
async fn canary_portal() -> String {
    let login = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/deliveroo/login.html"),
    )
    .expect("the recorded login page");
    let app = axum::Router::new()
        .route(
            "/deliveroo/hub/login",
            get(move || async move { Html(login) }).post(
                |Form(form): Form<HashMap<String, String>>| async move {
                    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
                    Redirect::to(&welcome_path(&field("email"), &field("password")))
                },
            ),
        )
        .route(
            "/deliveroo/hub/welcome",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let field = |k: &str| q.get(k).cloned().unwrap_or_default();
                Html(echo_page(&field("u"), &field("p")))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Fails with every way `text` (from `place`) still holds a secret.
fn assert_clean(place: &str, text: &str, redactor: &Redactor) {
    for literal in IN_THE_DOM.iter().chain(IN_THE_PAGE) {
        assert!(!text.contains(literal), "{place} holds {literal:?}");
    }
    assert_eq!(redactor.find(text), None, "{place} holds a spelling");
    assert_eq!(still_holds(text, &[USERNAME, PASSWORD]), None, "{place}");
}

// ------------------------------------------------------------------------------------ set-up

/// Two logs of everything the test process emits at TRACE: `raw` unfiltered, `product` through
/// the product's filters (`RUST_LOG=trace` with attempts to re-enable the silenced crates).
struct Logs {
    raw: Captured,
    product: Captured,
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).to_string()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const HOSTILE_RUST_LOG: &str = "trace,html5ever=trace,html5ever::tree_builder=trace,selectors::matching=trace,hyper=trace,fantoccini=trace";

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let (raw, product) = (Captured::default(), Captured::default());
        let (r, p) = (raw.clone(), product.clone());
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(move || r.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || p.clone())
                    .with_filter(logs::env_filter(Some(HOSTILE_RUST_LOG)))
                    .with_filter(logs::without_page_content()),
            )
            .try_init()
            .expect("the only subscriber of this test binary");
        Logs { raw, product }
    })
}

/// One browser test at a time: the machine has two cores.
static BROWSER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn browser_available() -> bool {
    let present = std::env::var_os("CHROMEDRIVER").is_some()
        || std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join("chromedriver").is_file())
        });
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(present || !in_ci, "chromedriver is required under CI");
    if !present {
        eprintln!("chromedriver not found: skipped (scripts/test.sh installs it)");
    }
    present
}

fn credentials() -> Credentials {
    Credentials {
        username: USERNAME.into(),
        password: SecretString::from(PASSWORD.to_string()),
    }
}

// ------------------------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_portal_leaves_no_spelling_in_artifacts_report_or_logs() {
    if !browser_available() {
        return;
    }
    let logs = logs();
    let _turn = BROWSER_TURN.lock().await;
    let base = canary_portal().await;
    let browser = Browser::launch(BrowserConfig::default()).await.unwrap();
    let redactor = Redactor::new(&[USERNAME, PASSWORD]);

    // The page as the engine will snapshot it holds every spelling, before redaction.
    let session = browser.session().await.unwrap();
    session
        .goto(&format!("{base}{}", welcome_path(USERNAME, PASSWORD)))
        .await
        .unwrap();
    let before = session.snapshot().await.unwrap().html;
    session.close().await.unwrap();
    for literal in IN_THE_PAGE {
        assert!(before.contains(literal), "the echo page lacks {literal:?}");
    }
    let found_before = redactor.count(&before);
    assert!(found_before >= IN_THE_PAGE.len(), "{found_before} found");

    let registry = Registry::from_source_tree().unwrap();
    let spec = registry.get("deliveroo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = PairingOptions {
        portal_hosts: portal_hosts(&registry, &base).unwrap(),
        artifacts_dir: Some(dir.path().to_path_buf()),
        ..PairingOptions::default()
    };
    let report = pair_in_new_session(&browser, &spec, &credentials(), &mut NoCodes, &options)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::UnrecognizedPage, "{report:?}");
    let folder = report.artifacts.clone().expect("an artifacts folder");
    let page = std::fs::read_to_string(folder.join("page.html")).unwrap();
    let meta = std::fs::read_to_string(folder.join("meta.json")).unwrap();
    assert!(folder.join("screenshot.png").is_file());
    // The saved page is the echo page after its script ran, and meta.json the URL that
    // carried the typed values.
    assert!(page.contains("Brand new portal design") && page.contains("basic: "));
    assert!(meta.contains("/welcome?u="), "{meta}");
    let report_json = serde_json::to_string(&report).unwrap();
    browser.shutdown();

    // Everything the test process logged, unfiltered, holds the password: html5ever and
    // selectors print the pages they parse. Through the product's filters, nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw = logs.raw.text();
    assert!(
        Redactor::new(&[PASSWORD]).find(&raw).is_some(),
        "the unfiltered log never held the password: this test proves nothing"
    );
    let product = logs.product.text();
    assert!(
        product.contains("pairing_worker"),
        "the product log is empty"
    );

    let places = [
        ("page.html", page),
        ("meta.json", meta),
        ("the report", report_json),
        ("the product log", product),
    ];
    for (place, text) in &places {
        assert_clean(place, text, &redactor);
    }
    eprintln!(
        "figures: {} spellings x {} places (+ {} literals and the decoding oracle); \
         {found_before} occurrences before redaction, 0 after",
        redactor.spellings().len(),
        places.len(),
        IN_THE_DOM.len() + IN_THE_PAGE.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_scrub_leaves_no_spelling_in_the_dom() {
    if !browser_available() {
        return;
    }
    let _turn = BROWSER_TURN.lock().await;
    let base = canary_portal().await;
    let browser = Browser::launch(BrowserConfig::default()).await.unwrap();
    let redactor = Redactor::new(&[USERNAME, PASSWORD]);
    let session = browser.session().await.unwrap();
    session
        .goto(&format!("{base}{}", welcome_path(USERNAME, PASSWORD)))
        .await
        .unwrap();
    let read_back = || async {
        let found = session.execute(READ_BACK_JS, vec![]).await.unwrap();
        let pairs: Vec<(String, String)> = serde_json::from_value(found).unwrap();
        pairs
    };

    let before = read_back().await;
    let all_before: String = before.iter().map(|(_, v)| format!("{v}\n")).collect();
    for literal in IN_THE_DOM {
        assert!(all_before.contains(literal), "the DOM lacks {literal:?}");
    }
    assert!(before
        .iter()
        .any(|(p, v)| p == "title" && v.contains("CANARY.USER")));
    assert!(before
        .iter()
        .any(|(p, v)| p == "shadow innerHTML" && v.contains("Q2FuYXJ5")));

    let png = session
        .scrubbed_screenshot(&pairing_worker::secret::Redactor::new(&[
            USERNAME, PASSWORD,
        ]))
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    let after = read_back().await;
    for (place, text) in &after {
        assert_clean(place, text, &redactor);
    }
    let title = &after.iter().find(|(p, _)| p == "title").unwrap().1;
    assert_eq!(title, "Welcome [REDACTED]");
    session.close().await.unwrap();
    eprintln!(
        "figures: {} spellings x {} DOM places after the scrub, 0 found",
        redactor.spellings().len(),
        after.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_command_at_trace_logs_no_spelling() {
    if !browser_available() {
        return;
    }
    let _turn = BROWSER_TURN.lock().await;
    let base = canary_portal().await;
    let artifacts = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .args(["pair", "--provider", "deliveroo", "--username", USERNAME])
        .args(["--password-stdin", "--sandbox-url", &base])
        .arg("--artifacts")
        .arg(artifacts.path())
        .env("RUST_LOG", HOSTILE_RUST_LOG)
        .env_remove("PAIRING_WORKER_WEBDRIVER")
        .env_remove("LOG_FORMAT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .await
            .unwrap();
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("pair finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("unrecognized_page"), "{stdout}");
    // Logging really ran at TRACE: the engine's own events are there.
    assert!(
        stderr.contains("TRACE") && stderr.contains("pairing_worker"),
        "{stderr}"
    );
    let redactor = Redactor::new(&[USERNAME, PASSWORD]);
    let mut places = vec![("stderr".to_string(), stderr), ("stdout".into(), stdout)];
    for entry in std::fs::read_dir(artifacts.path()).unwrap() {
        for file in std::fs::read_dir(entry.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "html" || e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                places.push((path.display().to_string(), text));
            }
        }
    }
    assert_eq!(places.len(), 4, "no page.html and meta.json saved");
    for (place, text) in &places {
        assert_clean(place, text, &redactor);
    }
    eprintln!(
        "figures: {} spellings x {} places of `pair` at RUST_LOG=trace, 0 found",
        redactor.spellings().len(),
        places.len()
    );
}

/// No browser needed: html5ever really prints page content at debug (the unfiltered log holds
/// the canary), and neither the product's filters nor the `classify` binary at `RUST_LOG=trace`
/// let it through.
#[test]
fn page_content_logged_by_the_parser_never_reaches_the_product_log() {
    let logs = logs();
    let canary = "Canary-Parsed-5519";
    let page = format!("<html><body><h1>Hello</h1><p>{canary}</p></body></html>");
    let parsed = scraper::Html::parse_document(&page);
    assert!(parsed.root_element().html().contains(canary));
    assert!(logs.raw.text().contains(canary), "html5ever logged nothing");
    assert!(!logs.product.text().contains(canary));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &page).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .args(["classify", "--provider", "deliveroo"])
        .arg(file.path())
        .env("RUST_LOG", HOSTILE_RUST_LOG)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(String::from_utf8_lossy(&output.stdout).contains("unrecognized_page"));
    assert!(!stderr.contains(canary), "{stderr}");
}
