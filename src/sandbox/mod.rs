//! The sandbox portal: every provider with recorded pages, served as a stateful fake portal under
//! `/<provider>/<host key>/<path>`, driven by the scenario accounts of `sandbox.toml`.

pub mod script;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};

use crate::fixtures::{self, Fixture};
use crate::outcome::Outcome;
use crate::provider::{ProviderSpec, Registry};
use script::{Delivery, SandboxScript, Scenario, ScenarioCard};

/// One provider's fake portal.
struct Portal {
    spec: Arc<ProviderSpec>,
    script: SandboxScript,
    pages: HashMap<String, Fixture>,
}

impl Portal {
    /// The sandbox path (under `/<provider>`) a recorded page is served at, without its query.
    fn path_of(&self, case: &str) -> (String, String) {
        let page = &self.pages[case];
        let (host, rest) = self.spec.locate(&page.expected.url, None);
        let (path, query) = rest
            .split_once('?')
            .map_or((rest.as_str(), ""), |(p, q)| (p, q));
        (
            format!("/{}{}", host.unwrap_or_default(), path),
            query.to_string(),
        )
    }

    fn scenario_for(&self, username: &str) -> Option<usize> {
        let scenarios = &self.script.scenarios;
        scenarios
            .iter()
            .position(|s| !s.unknown && s.username.eq_ignore_ascii_case(username.trim()))
            .or_else(|| scenarios.iter().position(|s| s.unknown))
    }
}

#[derive(Default)]
struct Visit {
    current: String,
    /// As typed: two-step logins post the password without it.
    username: Option<String>,
    scenario: Option<usize>,
    step: usize,
    /// The fresh code this login attempt was sent.
    issued_code: Option<String>,
}

/// A code the portal "sends" once the response is on its way.
struct Outgoing {
    delivery: Delivery,
    provider: String,
    username: String,
    code: String,
}

/// Where the sandbox appends code emails: one IMAP user per scenario username, one password.
#[derive(Debug, Clone)]
pub struct MailDelivery {
    pub host: String,
    pub port: u16,
    pub ca_file: Option<std::path::PathBuf>,
    pub password: String,
}

/// The portals and everything the sandbox remembers between requests.
pub struct Sandbox {
    portals: BTreeMap<String, Portal>,
    visits: Mutex<HashMap<String, Visit>>,
    attempts: Mutex<BTreeMap<String, LoginAttempts>>,
    /// The last code sent to each `provider/username`, whatever the channel (the SMS "phone").
    issued: Mutex<BTreeMap<String, (String, std::time::Instant)>>,
    /// What happened to an account outside our product since its scenario was written.
    changes: Mutex<HashMap<String, AccountChange>>,
    mail: Option<MailDelivery>,
}

/// A change made in the portal itself, for re-check tests: the merchant followed the external
/// steps (the account now behaves like another scenario), or changed the password there.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub scenario: Option<String>,
    pub password: Option<String>,
}

/// What the sandbox saw of one account's logins: what a platform's lockout counter would see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoginAttempts {
    /// Forms that carried the password.
    pub submitted: u32,
    /// Of those, the ones with a wrong password (what locks accounts).
    pub failed: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("sandbox: {0}")]
pub struct SandboxError(String);

impl Sandbox {
    /// Builds a portal for every supported provider that has recorded pages and a script.
    pub fn from_registry(registry: &Registry) -> Result<Sandbox, SandboxError> {
        let mut portals = BTreeMap::new();
        for spec in registry.supported() {
            let pages = fixtures::load(&registry.fixtures, &spec.id).map_err(SandboxError)?;
            let Some(script) =
                SandboxScript::load(&registry.fixtures, &spec.id, &pages).map_err(SandboxError)?
            else {
                continue;
            };
            let pages = pages.into_iter().map(|p| (p.case.clone(), p)).collect();
            portals.insert(
                spec.id.clone(),
                Portal {
                    spec: spec.clone(),
                    script,
                    pages,
                },
            );
        }
        Ok(Sandbox {
            portals,
            visits: Mutex::default(),
            attempts: Mutex::default(),
            issued: Mutex::default(),
            changes: Mutex::default(),
            mail: None,
        })
    }

    /// Delivers code emails into a real IMAP server.
    pub fn with_mail(mut self, mail: MailDelivery) -> Sandbox {
        self.mail = Some(mail);
        self
    }

    /// The last code the portal sent this account (what the merchant's phone or inbox shows).
    pub fn issued_code(&self, provider: &str, username: &str) -> Option<String> {
        self.issued
            .lock()
            .expect("issued lock")
            .get(&account_key(provider, username))
            .map(|(code, _)| code.clone())
    }

    /// When the last code reached the merchant (for "code available → paired" timings).
    pub fn issued_at(&self, provider: &str, username: &str) -> Option<std::time::Instant> {
        self.issued
            .lock()
            .expect("issued lock")
            .get(&account_key(provider, username))
            .map(|(_, at)| *at)
    }

    /// Sends a code the way the scenario says: always recorded, appended to IMAP for email.
    async fn send(&self, out: Outgoing) {
        self.issued.lock().expect("issued lock").insert(
            account_key(&out.provider, &out.username),
            (out.code.clone(), std::time::Instant::now()),
        );
        let (Delivery::Email, Some(mail)) = (out.delivery, &self.mail) else {
            return;
        };
        let Some(template) = self
            .portals
            .get(&out.provider)
            .and_then(|p| p.script.email.as_ref())
        else {
            return;
        };
        let message = code_email(template, &out.username, &out.code);
        let config = crate::codes::MailboxConfig {
            host: mail.host.clone(),
            port: mail.port,
            username: out.username.clone(),
            password: secrecy::SecretString::from(mail.password.clone()),
            ca_file: mail.ca_file.clone(),
            folder: "INBOX".into(),
        };
        match crate::codes::mailbox::deliver(&config, message.as_bytes()).await {
            // The code is available once it is in the mailbox.
            Ok(()) => {
                let key = account_key(&out.provider, &out.username);
                if let Some(entry) = self.issued.lock().expect("issued lock").get_mut(&key) {
                    entry.1 = std::time::Instant::now();
                }
            }
            Err(error) => tracing::warn!(%error, "sandbox could not deliver a code email"),
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.portals.keys().map(String::as_str)
    }

    /// Every scenario account of every portal.
    pub fn scenarios(&self) -> Vec<ScenarioCard> {
        self.portals
            .iter()
            .flat_map(|(id, portal)| portal.script.scenarios.iter().map(|s| s.card(id)))
            .collect()
    }

    pub fn scenario(&self, provider: &str, name: &str) -> Option<&Scenario> {
        self.portals
            .get(provider)?
            .script
            .scenarios
            .iter()
            .find(|s| s.name == name)
    }

    /// From now on `provider/username` behaves as `change` says (see [`AccountChange`]).
    pub fn change_account(&self, provider: &str, username: &str, change: AccountChange) {
        self.changes
            .lock()
            .expect("changes lock")
            .insert(account_key(provider, username), change);
    }

    fn change_of(&self, provider: &str, username: &str) -> AccountChange {
        self.changes
            .lock()
            .expect("changes lock")
            .get(&account_key(provider, username))
            .cloned()
            .unwrap_or_default()
    }

    /// Login attempts seen for `provider/username` (for lockout tests).
    pub fn attempts(&self, provider: &str, username: &str) -> LoginAttempts {
        self.attempts
            .lock()
            .expect("attempts lock")
            .get(&account_key(provider, username))
            .copied()
            .unwrap_or_default()
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(index))
            .route(
                "/_sandbox/scenarios",
                get(|State(s): State<Arc<Sandbox>>| async move { Json(s.scenarios()) }),
            )
            .route(
                "/_sandbox/attempts",
                get(|State(s): State<Arc<Sandbox>>| async move {
                    Json(s.attempts.lock().expect("attempts lock").clone())
                }),
            )
            .route("/{provider}/{*rest}", any(portal_request))
            .with_state(self)
    }

    /// Serves on `addr` until the task is dropped; returns the bound address.
    pub async fn serve(
        self: Arc<Self>,
        addr: &str,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // Headers and body leave in separate writes: without NODELAY each page stalls ~40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((bound, task))
    }
}

async fn index(State(sandbox): State<Arc<Sandbox>>) -> Html<String> {
    let mut out = String::from("<!doctype html><html><head><meta charset=utf-8><title>pairing-worker sandbox</title></head><body><h1>Sandbox portals</h1>");
    for (id, portal) in &sandbox.portals {
        let (path, query) = portal.path_of(&portal.script.entry);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        out.push_str(&format!("<h2><a href=\"/{id}{path}{query}\">{}</a></h2><table border=1><tr><th>scenario</th><th>username</th><th>password</th><th>code</th><th>expected</th></tr>", portal.spec.name));
        for s in &portal.script.scenarios {
            let card = s.card(id);
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                card.scenario,
                card.username,
                card.password,
                card.code.unwrap_or_default(),
                card.expected
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    Html(out)
}

fn account_key(provider: &str, username: &str) -> String {
    format!("{provider}/{}", username.trim().to_lowercase())
}

/// A realistic provider email: multipart with a plain and an HTML part.
fn code_email(template: &script::EmailTemplate, to: &str, code: &str) -> String {
    let html = template.html.replace("{code}", code);
    let text: String = {
        let without_tags = regex::Regex::new(r"<[^>]+>")
            .expect("static regex")
            .replace_all(&html, " ");
        without_tags
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let boundary = format!("=_sandbox_{:016x}", rand::random::<u64>());
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id:x}@sandbox.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n",
        from = template.from,
        subject = template.subject.replace("{code}", code),
        id = rand::random::<u64>(),
    )
}

fn cookie_name(provider: &str) -> String {
    format!("pw_sandbox_{provider}")
}

fn visit_id(headers: &HeaderMap, provider: &str) -> Option<String> {
    let name = cookie_name(provider);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn portal_request(
    State(sandbox): State<Arc<Sandbox>>,
    Path((provider, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(portal) = sandbox.portals.get(&provider) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("sandbox: no portal `{provider}`"),
        );
    };
    let path = format!("/{rest}");
    let (visit_key, new_visit) = match visit_id(&headers, &provider) {
        Some(id) => (id, false),
        None => (format!("{:032x}", rand::random::<u128>()), true),
    };
    let (response, outgoing) = {
        let mut visits = sandbox.visits.lock().expect("visits lock");
        let mut outgoing = None;
        let response = if method == Method::POST {
            let fields: Vec<(String, String)> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let visit = visits.entry(visit_key.clone()).or_default();
            let (response, out) = post(portal, &sandbox, &provider, visit, &fields);
            outgoing = out;
            response
        } else {
            let visit = visits.entry(visit_key.clone()).or_default();
            let (entry_path, _) = portal.path_of(&portal.script.entry);
            if !visit.current.is_empty() && portal.path_of(&visit.current).0 == path {
                serve_page(portal, &visit.current)
            } else if path == entry_path {
                *visit = Visit {
                    current: portal.script.entry.clone(),
                    ..Visit::default()
                };
                serve_page(portal, &visit.current)
            } else {
                plain(
                    StatusCode::NOT_FOUND,
                    format!("sandbox: nothing at {} in this session", uri.path()),
                )
            }
        };
        (response, outgoing)
    };
    if let Some(out) = outgoing {
        sandbox.send(out).await;
    }
    let mut response = response;
    if new_visit {
        let cookie = format!(
            "{}={visit_key}; Path=/{provider}; HttpOnly; SameSite=Lax",
            cookie_name(&provider)
        );
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn serve_page(portal: &Portal, case: &str) -> Response {
    let page = &portal.pages[case];
    let status = StatusCode::from_u16(page.expected.status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.html.clone(),
    )
        .into_response()
}

fn post(
    portal: &Portal,
    sandbox: &Sandbox,
    provider: &str,
    visit: &mut Visit,
    fields: &[(String, String)],
) -> (Response, Option<Outgoing>) {
    let script = &portal.script;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(username) = field(&script.username_field) {
        let change = sandbox.change_of(provider, username);
        let bound = match &change.scenario {
            Some(name) => portal.script.scenarios.iter().position(|s| &s.name == name),
            None => portal.scenario_for(username),
        };
        visit.username = Some(username.to_string());
        if bound != visit.scenario {
            visit.scenario = bound;
            visit.step = 0;
            visit.issued_code = None;
        }
    }
    let Some(scenario) = visit.scenario.map(|i| &script.scenarios[i]) else {
        let message = "sandbox: a form was posted before any username".to_string();
        return (plain(StatusCode::BAD_REQUEST, message), None);
    };
    if let Some(password) = field(&script.password_field) {
        let username = visit.username.clone().unwrap_or(scenario.username.clone());
        let expected = sandbox
            .change_of(provider, &username)
            .password
            .unwrap_or_else(|| scenario.password.clone());
        let wrong = !scenario.unknown && password != expected;
        let mut attempts = sandbox.attempts.lock().expect("attempts lock");
        let seen = attempts
            .entry(account_key(provider, &username))
            .or_default();
        seen.submitted += 1;
        seen.failed += u32::from(wrong);
        drop(attempts);
        if wrong {
            return (go_to(portal, visit, script.wrong_password.clone()), None);
        }
    }
    // `code`, or split boxes `code1`..`code6`; not `code_challenge` and the like.
    let is_code_field = |name: &str| {
        name.strip_prefix(script.code_field.as_str())
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
    };
    let mut code_parts: Vec<&(String, String)> =
        fields.iter().filter(|(k, _)| is_code_field(k)).collect();
    code_parts.sort_by(|a, b| a.0.cmp(&b.0));
    if !code_parts.is_empty() {
        let typed: String = code_parts.iter().map(|(_, v)| v.trim()).collect();
        if !code_matches(scenario, visit, &typed) {
            let Some(wrong) = script.wrong_code.clone() else {
                let message = "sandbox: a code was posted but this portal has no wrong_code page";
                return (plain(StatusCode::BAD_REQUEST, message.into()), None);
            };
            return (go_to(portal, visit, wrong), None);
        }
    }
    let Some(next) = scenario.steps.get(visit.step).cloned() else {
        let message = format!(
            "sandbox: scenario `{}` has no step after {}",
            scenario.name, visit.step
        );
        return (plain(StatusCode::BAD_REQUEST, message), None);
    };
    visit.step += 1;
    // Arriving on a code page: the portal sends a fresh code for this login attempt.
    let code_page = Some(Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired));
    let asks_code = portal.pages[&next].expected.outcome == code_page;
    let outgoing = match scenario.delivery {
        Some(delivery @ (Delivery::Email | Delivery::Sms))
            if asks_code && visit.issued_code.is_none() =>
        {
            let length = scenario.code.as_ref().map_or(6, |c| c.len());
            let code: String = (0..length)
                .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
                .collect();
            visit.issued_code = Some(code.clone());
            let username = scenario.username.clone();
            Some(Outgoing {
                delivery,
                provider: provider.to_string(),
                username,
                code,
            })
        }
        _ => None,
    };
    (go_to(portal, visit, next), outgoing)
}

/// Whether a typed code is the one the portal expects now.
fn code_matches(scenario: &Scenario, visit: &Visit, typed: &str) -> bool {
    use secrecy::ExposeSecret;
    match scenario.delivery {
        Some(Delivery::Email | Delivery::Sms) => visit.issued_code.as_deref() == Some(typed),
        Some(Delivery::Totp) => {
            let Some(secret) = &scenario.totp_secret else {
                return false;
            };
            let secret = secrecy::SecretString::from(secret.clone());
            let Ok(totp) = crate::codes::TotpSource::parse(&secret) else {
                return false;
            };
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            // The window before, now and after, as portals allow for clock drift.
            [now.saturating_sub(30), now, now + 30]
                .iter()
                .any(|t| totp.code_at(*t).0.expose_secret() == typed)
        }
        None => scenario.code.as_deref() == Some(typed),
    }
}

fn go_to(portal: &Portal, visit: &mut Visit, case: String) -> Response {
    let (path, query) = portal.path_of(&case);
    visit.current = case;
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let location = format!("/{}{path}{query}", portal.spec.id);
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Drives one scenario account through its portal in a fresh browser session, with the code
/// sources the scenario calls for: its TOTP secret; the merchant typing the code the portal sent
/// (read from the sandbox, as from their phone), after a wrong one first if the scenario says so;
/// a merchant who never answers (`code_timeout`); or nothing at all.
pub async fn run_card(
    browser: &crate::browser::Browser,
    registry: &Registry,
    sandbox: &Arc<Sandbox>,
    card: &ScenarioCard,
    base_url: &str,
) -> Result<crate::engine::pairing::PairingReport, crate::engine::pairing::PairingError> {
    use crate::codes::{merchant_codes, AccountCodes, OneCode, TotpSource};
    use crate::engine::pairing::{pair_in_new_session, PairingOptions};
    use crate::outcome::TwoFactor;
    let spec = registry
        .get(&card.provider)
        .expect("scenario of a supported provider");
    let credentials = crate::secret::Credentials {
        username: card.username.clone(),
        password: secrecy::SecretString::from(card.password.clone()),
    };
    let mut options = PairingOptions {
        base_url: Some(base_url.to_string()),
        ..PairingOptions::default()
    };
    let silent_merchant = card.expected == Outcome::TwoFactor(TwoFactor::CodeTimeout);
    if silent_merchant {
        options.code_wait = std::time::Duration::from_secs(2);
    }
    let Some(delivery) = card.delivery else {
        let mut codes = OneCode(card.code.clone().map(secrecy::SecretString::from));
        return pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await;
    };
    let mut codes = AccountCodes::default();
    if let (Delivery::Totp, Some(secret)) = (delivery, &card.totp_secret) {
        codes.totp = TotpSource::parse(&secrecy::SecretString::from(secret.clone())).ok();
    }
    if card.supply_code || silent_merchant {
        let (merchant, mut submitter) = merchant_codes();
        codes.merchant = Some(merchant);
        let (sandbox, provider, username) = (
            sandbox.clone(),
            card.provider.clone(),
            card.username.clone(),
        );
        let mut first_wrong = card.wrong_code_first.clone();
        tokio::spawn(async move {
            while submitter.wait_for_request().await.is_some() {
                if silent_merchant {
                    // Present but never answering: keep the line open until the request expires.
                    submitter.wait_until_taken().await;
                    continue;
                }
                let code = first_wrong
                    .take()
                    .or_else(|| sandbox.issued_code(&provider, &username));
                let Some(code) = code else { return };
                if submitter.submit(secrecy::SecretString::from(code)).is_err() {
                    return;
                }
                submitter.wait_until_taken().await;
            }
        });
    }
    pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await
}
