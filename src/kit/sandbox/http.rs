//! The fake portal's HTTP face: which page a GET shows, how a POST moves the session on, and the
//! redirects between a portal's hosts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use super::script::{self, Delivery, Scenario};
use super::{account_key, query_pairs, Outgoing, Portal, Sandbox, Visit};
use crate::outcome::Outcome;

pub(super) async fn index(State(sandbox): State<Arc<Sandbox>>) -> Html<String> {
    let mut out = String::from("<!doctype html><html><head><meta charset=utf-8><title>pairing-worker sandbox</title></head><body><h1>Sandbox portals</h1>");
    for (id, portal) in &sandbox.portals {
        let entry = page_location(portal, &portal.script.entry);
        out.push_str(&format!("<h2><a href=\"{entry}\">{}</a></h2><table border=1><tr><th>scenario</th><th>username</th><th>password</th><th>code</th><th>expected</th></tr>", portal.spec.name));
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

pub(super) async fn portal_request(
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
            answer_get(portal, visit, &path, uri.query().unwrap_or_default())
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

/// A GET: the page the session is on, the entry page (a fresh session), a handoff coming back, or a
/// declared redirect; anything else is not there.
fn answer_get(portal: &Portal, visit: &mut Visit, path: &str, query: &str) -> Response {
    if let Some((via, carried)) = visit.handoff.take() {
        if via == path {
            let arrived = query_pairs(query);
            let lost: Vec<&str> = carried
                .iter()
                .filter(|pair| !arrived.contains(pair))
                .map(|(k, _)| k.as_str())
                .collect();
            if !lost.is_empty() {
                let message = format!("sandbox: the handoff lost {}", lost.join(", "));
                return plain(StatusCode::BAD_REQUEST, message);
            }
            return found(&page_location(portal, &visit.current));
        }
    }
    if !visit.current.is_empty() && portal.path_of(&visit.current).0 == path {
        return serve_page(portal, &visit.current);
    }
    if path == portal.path_of(&portal.script.entry).0 {
        *visit = Visit {
            current: portal.script.entry.clone(),
            entry_query: query.to_string(),
            ..Visit::default()
        };
        return serve_page(portal, &visit.current);
    }
    let declared = portal.script.redirects.iter().find(|r| {
        script::split_host_path(&r.from)
            .is_some_and(|(host, from)| format!("/{host}{from}") == path)
    });
    match declared {
        Some(redirect) => found(&portal.absolute(&portal.location(&redirect.to, visit))),
        None => plain(
            StatusCode::NOT_FOUND,
            format!(
                "sandbox: nothing at /{}{path} in this session",
                portal.spec.id
            ),
        ),
    }
}

fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
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
            let page = scenario
                .wrong_password
                .clone()
                .unwrap_or_else(|| script.wrong_password.clone());
            return (go_to(portal, visit, page), None);
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

/// Moves the session to `case` and sends the browser there, through a handoff when the page is on
/// another host the script hands off to.
fn go_to(portal: &Portal, visit: &mut Visit, case: String) -> Response {
    let (from, to) = (portal.host_of(&visit.current), portal.host_of(&case));
    let handoff = portal.script.handoffs.iter().find(|h| {
        from.as_deref() == Some(h.from_host.as_str()) && to.as_deref() == Some(h.to_host.as_str())
    });
    visit.current = case;
    let location = match handoff {
        Some(handoff) => {
            let under = portal.location(&handoff.via, visit);
            let (path, query) = under.split_once('?').unwrap_or((&under, ""));
            visit.handoff = Some((path.to_string(), query_pairs(query)));
            portal.absolute(&under)
        }
        None => page_location(portal, &visit.current),
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn page_location(portal: &Portal, case: &str) -> String {
    let (path, query) = portal.path_of(case);
    match query.as_str() {
        "" => portal.absolute(&path),
        query => portal.absolute(&format!("{path}?{query}")),
    }
}
