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
use crate::provider::{ProviderSpec, Registry};
use script::{SandboxScript, Scenario, ScenarioCard};

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
    scenario: Option<usize>,
    step: usize,
}

/// The portals and everything the sandbox remembers between requests.
pub struct Sandbox {
    portals: BTreeMap<String, Portal>,
    visits: Mutex<HashMap<String, Visit>>,
    attempts: Mutex<BTreeMap<String, LoginAttempts>>,
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
        })
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

    /// Login attempts seen for `provider/username` (for lockout tests).
    pub fn attempts(&self, provider: &str, username: &str) -> LoginAttempts {
        self.attempts
            .lock()
            .expect("attempts lock")
            .get(&format!("{provider}/{}", username.to_lowercase()))
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
    let mut visits = sandbox.visits.lock().expect("visits lock");
    let response = if method == Method::POST {
        let fields: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let visit = visits.entry(visit_key.clone()).or_default();
        post(portal, &sandbox, &provider, visit, &fields)
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
    drop(visits);
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
) -> Response {
    let script = &portal.script;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(username) = field(&script.username_field) {
        let bound = portal.scenario_for(username);
        if bound != visit.scenario {
            visit.scenario = bound;
            visit.step = 0;
        }
    }
    let Some(scenario) = visit.scenario.map(|i| &script.scenarios[i]) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "sandbox: a form was posted before any username".into(),
        );
    };
    if let Some(password) = field(&script.password_field) {
        let wrong = !scenario.unknown && password != scenario.password;
        let key = format!("{provider}/{}", scenario.username.to_lowercase());
        let mut attempts = sandbox.attempts.lock().expect("attempts lock");
        let seen = attempts.entry(key).or_default();
        seen.submitted += 1;
        seen.failed += u32::from(wrong);
        drop(attempts);
        if wrong {
            return go_to(portal, visit, script.wrong_password.clone());
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
        if scenario.code.as_deref() != Some(typed.as_str()) {
            let Some(wrong) = script.wrong_code.clone() else {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "sandbox: a code was posted but this portal has no wrong_code page".into(),
                );
            };
            return go_to(portal, visit, wrong);
        }
    }
    let Some(next) = scenario.steps.get(visit.step).cloned() else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "sandbox: scenario `{}` has no step after {}",
                scenario.name, visit.step
            ),
        );
    };
    visit.step += 1;
    go_to(portal, visit, next)
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

/// Drives one scenario account through its portal in a fresh browser session.
pub async fn run_card(
    browser: &crate::browser::Browser,
    registry: &Registry,
    card: &ScenarioCard,
    base_url: &str,
) -> Result<crate::engine::pairing::PairingReport, crate::engine::pairing::PairingError> {
    use crate::engine::pairing::{pair_in_new_session, OneCode, PairingOptions};
    let spec = registry
        .get(&card.provider)
        .expect("scenario of a supported provider");
    let credentials = crate::secret::Credentials {
        username: card.username.clone(),
        password: secrecy::SecretString::from(card.password.clone()),
    };
    let options = PairingOptions {
        base_url: Some(base_url.to_string()),
        ..PairingOptions::default()
    };
    let mut codes = OneCode(card.code.clone().map(secrecy::SecretString::from));
    pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await
}
