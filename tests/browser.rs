//! Real headless Chromium through chromedriver against the sandbox portals: one trial per scenario
//! account (`<provider>::<scenario>`), plus the failure cases a browser brings (unreachable
//! WebDriver, hung page, unrecognised page with secrets on it, sessions left behind).
//!
//! Without chromedriver the trials are ignored, except under `CI=true`, where they fail.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use axum::response::Html;
use axum::routing::{get, post};
use libtest_mimic::{Arguments, Failed, Trial};
use pairing_worker::browser::{Browser, BrowserConfig, BrowserError, Endpoint};
use pairing_worker::codes::NoCodes;
use pairing_worker::engine::pairing::{pair_in_new_session, PairingError, PairingOptions};
use pairing_worker::kit::sandbox::{portal_hosts, run_card, Sandbox};
use pairing_worker::outcome::{InvalidCredentials, Outcome, TwoFactor};
use pairing_worker::provider::Registry;
use pairing_worker::secret::{Credentials, SecretString};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

struct Env {
    registry: Registry,
    sandbox: Arc<Sandbox>,
    base: String,
    browser: Browser,
}

static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

fn env() -> Result<&'static Env, Failed> {
    ENV.get_or_init(|| {
        RUNTIME.block_on(async {
            let registry = Registry::from_source_tree().map_err(|e| e.to_string())?;
            let sandbox = Arc::new(
                Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
                    .map_err(|e| e.to_string())?,
            );
            let (addr, _task) = sandbox
                .clone()
                .serve("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let browser = Browser::launch(BrowserConfig::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(Env {
                registry,
                sandbox,
                base: format!("http://{addr}"),
                browser,
            })
        })
    })
    .as_ref()
    .map_err(|e| Failed::from(e.clone()))
}

fn chromedriver_present() -> bool {
    std::env::var_os("CHROMEDRIVER").is_some()
        || std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join("chromedriver").is_file())
        })
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Everything the worker logs during the run, at TRACE, for the secrets check at the end.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let args = Arguments::from_args();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("pairing_worker=trace,fantoccini=trace")
        .without_time()
        .with_writer(move || writer.clone())
        .init();
    let present = chromedriver_present();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let registry = Registry::from_source_tree().expect("specs load");
    let cards = Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
        .expect("sandbox builds")
        .scenarios();

    let mut trials: Vec<Trial> = cards
        .into_iter()
        .map(|card| {
            Trial::test(format!("{}::{}", card.provider, card.scenario), move || {
                let env = env()?;
                let report = RUNTIME
                    .block_on(run_card(
                        &env.browser,
                        &env.registry,
                        &env.sandbox,
                        &card,
                        &env.base,
                    ))
                    .map_err(|e| e.to_string())?;
                check(report.outcome == card.expected, || {
                    format!(
                        "expected {}, got {}: {}",
                        card.expected,
                        report.outcome,
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    )
                })?;
                if report.outcome == Outcome::Paired {
                    check(!report.stores.is_empty(), || "paired with no stores".into())?;
                }
                if report.outcome == Outcome::TwoFactor(TwoFactor::CodeRequired) {
                    check(report.code_request.is_some(), || {
                        "code_required without the code request".into()
                    })?;
                }
                let json = serde_json::to_string(&report).expect("report serialises");
                for secret in [Some(&card.password), card.code.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    check(!json.contains(secret.as_str()), || {
                        format!("the report contains a secret: {json}")
                    })?;
                }
                // What locks accounts: a wrong password is submitted once, and never more.
                let attempts = env.sandbox.attempts(&card.provider, &card.username);
                let wrong_password =
                    card.expected == Outcome::InvalidCredentials(InvalidCredentials::WrongPassword);
                check(attempts.failed == u32::from(wrong_password), || {
                    format!("{attempts:?} for one pairing")
                })?;
                Ok(())
            })
        })
        .collect();

    trials.push(Trial::test("failure::unreachable_webdriver", || {
        let error = RUNTIME
            .block_on(Browser::launch(BrowserConfig {
                endpoints: vec![Endpoint::new("http://127.0.0.1:9")],
                ..BrowserConfig::default()
            }))
            .err()
            .ok_or("launching against a closed port succeeded")?;
        check(matches!(error, BrowserError::Unreachable { .. }), || {
            format!("wrong error: {error}")
        })?;
        check(error.to_string().contains("127.0.0.1:9"), || {
            format!("the error does not name the URL: {error}")
        })
    }));

    trials.push(Trial::test(
        "failure::contexts_over_several_endpoints_are_refused",
        || {
            let error = RUNTIME
                .block_on(Browser::launch(BrowserConfig {
                    endpoints: vec![
                        Endpoint::new("http://a:4444"),
                        Endpoint::new("http://b:4444"),
                    ],
                    isolation: Some(pairing_worker::browser::Isolation::Context),
                    ..BrowserConfig::default()
                }))
                .err()
                .ok_or("one shared browser over two endpoints was accepted")?;
            check(matches!(error, BrowserError::Misconfigured(_)), || {
                format!("wrong error: {error}")
            })?;
            check(error.to_string().contains("--isolation browser"), || {
                format!("the error does not say what to do: {error}")
            })
        },
    ));

    trials.push(Trial::test(
        "failure::hung_page_is_infrastructure_not_an_outcome",
        || {
            let env = env()?;
            RUNTIME.block_on(async {
                let app = axum::Router::new().fallback(get(|| async {
                    Html("<html><body><script>for(;;){}</script></body></html>")
                }));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                tokio::spawn(async move { axum::serve(listener, app).await });
                // Its own chromedriver: the hung renderer dies with that driver's process group.
                let browser = Browser::launch(BrowserConfig {
                    endpoints: Vec::new(),
                    command_timeout: Duration::from_secs(3),
                    ..BrowserConfig::default()
                })
                .await
                .map_err(|e| e.to_string())?;
                let spec = env.registry.get("deliveroo").map_err(|e| e.to_string())?;
                let credentials = Credentials {
                    username: "hung@sandbox.test".into(),
                    password: SecretString::from("Hung-Pass-1".to_string()),
                };
                let options = PairingOptions {
                    portal_hosts: portal_hosts(&env.registry, &format!("http://{addr}")).unwrap(),
                    ..PairingOptions::default()
                };
                let result =
                    pair_in_new_session(&browser, &spec, &credentials, &mut NoCodes, &options)
                        .await;
                match result {
                    Err(PairingError::Browser(BrowserError::Timeout { .. })) => Ok(()),
                    other => Err(format!("expected a WebDriver timeout, got {other:?}").into()),
                }
            })
        },
    ));

    trials.push(Trial::test("failure::unrecognized_page_keeps_redacted_artifacts", || {
        let env = env()?;
        RUNTIME.block_on(async {
            let sandbox_login = format!("{}/deliveroo", env.base);
            // The real login page, then a page no rule knows that echoes what was typed.
            let entry = reqwest_get(&format!("{sandbox_login}/hub/login")).await?;
            let app = axum::Router::new()
                .route("/deliveroo/hub/login", get(move || async move { Html(entry) }).post(|body: String| async move {
                    Html(format!("<html><body><h1>Brand new portal design</h1><p>Welcome back {body}</p><input value=\"{body}\"></body></html>"))
                }))
                .fallback(post(|| async { "?" }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let spec = env.registry.get("deliveroo").map_err(|e| e.to_string())?;
            let credentials = Credentials {
                username: "canary-user@sandbox.test".into(),
                password: SecretString::from("Canary-Pass-7731".to_string()),
            };
            let options = PairingOptions {
                portal_hosts: portal_hosts(&env.registry, &format!("http://{addr}")).unwrap(),
                artifacts_dir: Some(dir.path().to_path_buf()),
                ..PairingOptions::default()
            };
            let report = pair_in_new_session(&env.browser, &spec, &credentials, &mut NoCodes, &options).await.map_err(|e| e.to_string())?;
            check(report.outcome == Outcome::UnrecognizedPage, || format!("got {}", report.outcome))?;
            let folder = report.artifacts.clone().ok_or("no artifacts folder")?;
            let html = std::fs::read_to_string(folder.join("page.html")).map_err(|e| e.to_string())?;
            check(folder.join("screenshot.png").is_file(), || "no screenshot".into())?;
            check(html.contains("Brand new portal design"), || "the saved page is not the page".into())?;
            let report_json = serde_json::to_string(&report).expect("serialises");
            for secret in ["Canary-Pass-7731", "canary-user@sandbox.test", "canary-user%40sandbox.test"] {
                check(!html.contains(secret), || format!("saved HTML leaks {secret}"))?;
                check(!report_json.contains(secret), || format!("report leaks {secret}"))?;
            }
            // The artifact names the portal's real URL (not the sandbox's), and `fixture add`
            // turns it into a fixture with that URL, the served status and the page's language.
            let meta = std::fs::read_to_string(folder.join("meta.json")).map_err(|e| e.to_string())?;
            check(meta.contains("https://partner-hub.deliveroo.com/login"), || format!("meta.json has no portal URL: {meta}"))?;
            check(meta.contains("\"status\": 200"), || format!("meta.json has no status: {meta}"))?;
            let into = tempfile::tempdir().map_err(|e| e.to_string())?;
            let page = pairing_worker::kit::promote::promote(&folder, "deliveroo", "new_design", into.path()).map_err(|e| e.to_string())?;
            let expected = std::fs::read_to_string(page.with_extension("toml")).map_err(|e| e.to_string())?;
            check(expected.contains("url = \"https://partner-hub.deliveroo.com/login\"") && expected.contains("status = 200"), || format!("fixture add wrote {expected}"))?;
            Ok(())
        })
    }));

    trials.push(Trial::test(
        "failure::action_selector_matching_nothing_is_unrecognized",
        || {
            let env = env()?;
            RUNTIME.block_on(async {
                // The login page as the spec knows it, but the portal renamed its submit button: an
                // outcome with the artifact, never an infrastructure error the queue would retry.
                let entry = reqwest_get(&format!("{}/deliveroo/hub/login", env.base))
                    .await?
                    .replace(
                        "data-testid=\"login-submit\"",
                        "data-testid=\"login-continue\"",
                    );
                check(entry.contains("login-continue"), || {
                    "the login page has no submit button to rename".into()
                })?;
                let app = axum::Router::new().route(
                    "/deliveroo/hub/login",
                    get(move || async move { Html(entry) }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                tokio::spawn(async move { axum::serve(listener, app).await });
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let spec = env.registry.get("deliveroo").map_err(|e| e.to_string())?;
                let credentials = Credentials {
                    username: "renamed@sandbox.test".into(),
                    password: SecretString::from("Renamed-Pass-1".to_string()),
                };
                let options = PairingOptions {
                    portal_hosts: portal_hosts(&env.registry, &format!("http://{addr}")).unwrap(),
                    artifacts_dir: Some(dir.path().to_path_buf()),
                    ..PairingOptions::default()
                };
                let report =
                    pair_in_new_session(&env.browser, &spec, &credentials, &mut NoCodes, &options)
                        .await
                        .map_err(|e| format!("expected an outcome, got the error {e}"))?;
                check(report.outcome == Outcome::UnrecognizedPage, || {
                    format!("got {}", report.outcome)
                })?;
                check(report.artifacts.is_some(), || "no artifact".into())?;
                check(
                    report
                        .raw_message
                        .as_deref()
                        .unwrap_or_default()
                        .contains("button[data-testid=login-submit]"),
                    || {
                        format!(
                            "the message does not name the selector: {:?}",
                            report.raw_message
                        )
                    },
                )
            })
        },
    ));

    trials.push(Trial::test("failure::no_session_left_open", || {
        let env = env()?;
        // Runs after a pairing of its own so there was something to clean up.
        let card = env
            .sandbox
            .scenarios()
            .into_iter()
            .next()
            .ok_or("no scenarios")?;
        RUNTIME.block_on(async {
            let own = Browser::launch(BrowserConfig::default())
                .await
                .map_err(|e| e.to_string())?;
            run_card(&own, &env.registry, &env.sandbox, &card, &env.base)
                .await
                .map_err(|e| e.to_string())?;
            // Its browser context is gone once the pairing is over...
            let contexts = own
                .isolated_sessions_open()
                .await
                .map_err(|e| e.to_string())?;
            check(contexts == 0, || {
                format!("{contexts} browser contexts left open")
            })?;
            // ...and nothing is left in chromedriver once the shared browser is stopped.
            own.stop_shared().await;
            let sessions = reqwest_get(&format!("{}/sessions", own.endpoint())).await?;
            check(sessions.contains("\"value\":[]"), || {
                format!("sessions left open: {sessions}")
            })
        })
    }));

    if !present {
        if in_ci {
            trials = vec![Trial::test("browser::chromedriver_present", || {
                Err("CI=true and chromedriver is missing: run scripts/install-deps.sh (Debian chromium + chromium-driver)".into())
            })];
        } else {
            eprintln!(
                "chromedriver not found: browser trials are ignored (scripts/test.sh installs it)"
            );
            trials = trials
                .into_iter()
                .map(|t| t.with_ignored_flag(true))
                .collect();
        }
    }
    let all_cards =
        Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
            .expect("sandbox builds")
            .scenarios();
    let conclusion = libtest_mimic::run(&args, trials);
    // The shared browser lives in a static, which is never dropped: stop its chromedriver here.
    if let Some(Ok(env)) = ENV.get() {
        env.browser.shutdown();
    }
    // Canary check over every log line of the run: passwords and TOTP secrets never appear.
    // (Random 4–6 digit codes are left out: digits in log lines would make that check flaky.)
    let captured = String::from_utf8_lossy(&logs.0.lock().expect("log buffer")).to_string();
    for card in &all_cards {
        for secret in [Some(&card.password), card.totp_secret.as_ref()]
            .into_iter()
            .flatten()
        {
            if captured.contains(secret.as_str()) {
                eprintln!(
                    "secrets: the logs contain a secret of {}::{}",
                    card.provider, card.scenario
                );
                std::process::exit(101);
            }
        }
    }
    conclusion.exit();
}

/// A tiny HTTP/1.1 GET over loopback (no HTTP client crate needed for tests). Reads exactly
/// Content-Length bytes: chromedriver keeps connections open whatever the request says.
async fn reqwest_get(url: &str) -> Result<String, Failed> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n",
            url.path()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = Vec::new();
        match length {
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body).await?;
            }
            None => {
                reader.read_to_end(&mut body).await?;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&body).to_string())
    };
    match tokio::time::timeout(Duration::from_secs(10), fetch).await {
        Ok(result) => result.map_err(|e| Failed::from(e.to_string())),
        Err(_) => Err(format!("GET {url} did not answer within 10 s").into()),
    }
}
