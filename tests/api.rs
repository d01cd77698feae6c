//! The HTTP API end to end: the dashboard's repair flows against the sandbox portals in real
//! Chromium, through a SQLite queue and the worker; and every kind of bad request.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/rig.rs"]
mod rig;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use pairing_worker::api::{ApiState, BODY_LIMIT};
use pairing_worker::kit::sandbox::AccountChange;

const PASSWORD: &str = "Sandbox-Pass-1";

struct Api {
    base: String,
    token: String,
    other_token: String,
    client: reqwest::Client,
    rig: rig::Rig,
}

impl std::ops::Deref for Api {
    type Target = rig::Rig;
    fn deref(&self) -> &rig::Rig {
        &self.rig
    }
}

/// How the dashboard calls: a token, and the acting user with or without credential permission.
#[derive(Clone, Copy)]
enum As {
    Admin,
    Viewer,
    OtherOrganisation,
    Anonymous,
}

impl Api {
    /// The rig, plus webhook delivery (fast retries) and the API on a free port. The webhook
    /// receiver and the mailbox are on this host: the operator allows loopback.
    async fn start() -> Api {
        let rig = rig::Rig::start().await;
        let loopback =
            ["127.0.0.0/8", "::1"].map(|r| pairing_worker::reach::parse_range(r).unwrap());
        let reach =
            pairing_worker::reach::Reach::new(pairing_worker::reach::Policy::allowing(loopback));
        let deliveries = pairing_worker::webhook_delivery::DeliveryConfig {
            poll_interval: Duration::from_millis(50),
            backoff_base: Duration::from_millis(200),
            reach: reach.clone(),
            ..Default::default()
        };
        let delivering = pairing_worker::webhook_delivery::deliver(
            rig.queue.clone(),
            deliveries,
            rig.stopped.clone(),
        );
        tokio::spawn(delivering);
        let state = Arc::new(ApiState {
            queue: rig.queue.clone(),
            registry: rig.registry.clone(),
            browser: Some(rig.browser.clone()),
            reach,
        });
        let (addr, _) = pairing_worker::api::serve(state, "127.0.0.1:0")
            .await
            .unwrap();
        Api {
            base: format!("http://{addr}"),
            token: rig.queue.create_token("org-a", "test").await.unwrap(),
            other_token: rig.queue.create_token("org-b", "test").await.unwrap(),
            client: reqwest::Client::new(),
            rig,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str, who: As) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        let request = match who {
            As::Admin | As::Viewer => request.bearer_auth(&self.token),
            As::OtherOrganisation => request.bearer_auth(&self.other_token),
            As::Anonymous => request,
        };
        match who {
            As::Admin | As::OtherOrganisation => request
                .header("X-Acting-User", "owner@restaurant.test")
                .header("X-Can-Update-Credentials", "true"),
            As::Viewer => request.header("X-Acting-User", "waiter@restaurant.test"),
            As::Anonymous => request,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: As,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, who);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create_account(&self, username: &str, password: &str, stores: Value) -> String {
        let (status, account) = self
            .call(
                reqwest::Method::POST,
                "/v1/accounts",
                As::Admin,
                Some(json!({
                    "provider": "deliveroo",
                    "credentials": {"username": username, "password": password},
                    "stores": stores,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        assert!(!account.to_string().contains(password), "secret echoed");
        account["id"].as_str().unwrap().to_string()
    }

    /// Long-polls a job until `done` holds.
    async fn follow(&self, job: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        let mut after = String::new();
        loop {
            let path = format!("/v1/jobs/{job}?wait=10&after={}", urlencode(&after));
            let (status, current) = self
                .call(reqwest::Method::GET, &path, As::Admin, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{current}");
            if done(&current) {
                return current;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "stuck: {current}"
            );
            after = current["updated_at"].as_str().unwrap().to_string();
        }
    }

    async fn start_job(&self, account: &str, body: Value) -> Value {
        let path = format!("/v1/accounts/{account}/jobs");
        let (status, job) = self
            .call(reqwest::Method::POST, &path, As::Admin, Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        job
    }

    async fn alerts(&self, who: As, lang: &str) -> Vec<Value> {
        let path = format!("/v1/repair-alerts?lang={lang}");
        let (status, body) = self.call(reqwest::Method::GET, &path, who, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["alerts"].as_array().unwrap().clone()
    }

    async fn stop(self) {
        self.rig.stop().await;
    }
}

/// The dashboard backend's webhook endpoint: records every delivery, and fails the first one
/// (so a retry must follow).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        use axum::http::{HeaderMap, StatusCode as Status};
        let receiver = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let receiver = receiver.clone();
                async move {
                    let signature = headers
                        .get(pairing_worker::webhook_delivery::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut seen = receiver.seen.lock().unwrap();
                    seen.push((signature, body));
                    if seen.len() == 1 {
                        Status::INTERNAL_SERVER_ERROR
                    } else {
                        Status::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    /// Waits for an event matching `wanted`; every delivery seen must verify with `secret`.
    async fn wait_for(&self, secret: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let seen = self.seen.lock().unwrap().clone();
            for (signature, body) in &seen {
                let now = chrono::Utc::now().timestamp();
                let tolerance = Duration::from_secs(300);
                assert!(
                    pairing_worker::webhook_delivery::verify(
                        secret,
                        signature,
                        body.as_bytes(),
                        now,
                        tolerance
                    ),
                    "bad signature on {body}"
                );
            }
            if let Some(event) = seen
                .iter()
                .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
                .find(|event| wanted(event))
            {
                return event;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no such webhook in {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn is_final(job: &Value) -> bool {
    ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_after_a_wrong_password_through_a_code_to_paired() {
    let api = Api::start().await;
    let username = "merchant.sms@sandbox.test";
    let stores = json!([{"id": "219384", "location": "Shoreditch", "brand": "Bao & Co"}]);
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let (status, registered) = api
        .call(
            reqwest::Method::PUT,
            "/v1/webhook",
            As::Admin,
            Some(json!({"url": hook})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let secret = registered["secret"].as_str().unwrap().to_string();
    let account = api
        .create_account(username, "Old-Password-0", json!([]))
        .await;
    // The connection breaks: the stored password no longer works.
    let job = api
        .start_job(&account, json!({"kind": "recheck", "interactive": false}))
        .await;
    let job = api.follow(job["id"].as_str().unwrap(), is_final).await;
    assert_eq!(job["outcome"], "invalid_credentials/wrong_password");
    let alerts = api.alerts(As::Admin, "en").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["prompt"], "reconnect");
    assert_eq!(alerts[0]["category"], "invalid_credentials");
    let viewer = api.alerts(As::Viewer, "en").await;
    assert_eq!(
        viewer[0]["prompt"], "unauthorized",
        "no credential form without permission"
    );
    // The viewer cannot Reconnect; the owner can.
    let path = format!("/v1/accounts/{account}/jobs");
    let reconnect = json!({
        "kind": "pair",
        "credentials": {"username": username, "password": PASSWORD},
    });
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &path,
            As::Viewer,
            Some(reconnect.clone()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let patch = json!({"stores": stores});
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/accounts/{account}"),
            As::Admin,
            Some(patch),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let job = api.start_job(&account, reconnect.clone()).await;
    let id = job["id"].as_str().unwrap().to_string();
    // A second click while it runs: 409 with the running job.
    let (status, busy) = api
        .call(reqwest::Method::POST, &path, As::Admin, Some(reconnect))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        (busy["error"]["code"].as_str(), busy["job"]["id"].as_str()),
        (Some("account_busy"), Some(id.as_str()))
    );
    let waiting = api
        .follow(&id, |job| job["state"] == "awaiting_code" || is_final(job))
        .await;
    assert_eq!(waiting["state"], "awaiting_code", "{waiting}");
    assert_eq!(waiting["code_request"]["channel"], "sms");
    let code = api
        .sandbox
        .issued_code("deliveroo", username)
        .expect("code texted");
    let code_path = format!("/v1/jobs/{id}/code");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &code_path,
            As::Admin,
            Some(json!({"code": "12"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "code");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &code_path,
            As::OtherOrganisation,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another organisation cannot submit: {body}"
    );
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &code_path,
            As::Admin,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = api.follow(&id, is_final).await;
    assert_eq!(
        (done["state"].as_str(), done["outcome"].as_str()),
        (Some("succeeded"), Some("paired")),
        "{done}"
    );
    assert!(api.alerts(As::Admin, "en").await.is_empty(), "alert gone");
    // The dashboard heard it all, signed: the account broke, the job asked for a code, it paired,
    // the account is healthy again. The first delivery failed and was retried.
    let unhealthy = receiver
        .wait_for(&secret, |e| e["type"] == "account.unhealthy")
        .await;
    assert_eq!(
        unhealthy["data"]["health"]["error"],
        "invalid_credentials/wrong_password"
    );
    receiver
        .wait_for(&secret, |e| {
            e["type"] == "job.updated" && e["data"]["job"]["state"] == "awaiting_code"
        })
        .await;
    receiver
        .wait_for(&secret, |e| {
            e["type"] == "job.updated" && e["data"]["job"]["outcome"] == "paired"
        })
        .await;
    receiver
        .wait_for(&secret, |e| e["type"] == "account.healthy")
        .await;
    let (_, webhook) = api
        .call(reqwest::Method::GET, "/v1/webhook", As::Admin, None)
        .await;
    let deliveries = webhook["deliveries"].as_array().unwrap();
    let retried = |d: &&Value| d["attempts"].as_i64() >= Some(2) && d["state"] == "delivered";
    assert!(deliveries.iter().any(|d| retried(&d)), "{webhook}");
    let (status, metrics) = api
        .call(reqwest::Method::GET, "/metrics", As::Anonymous, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        "pairing_jobs_finished_total{provider=\"deliveroo\",outcome=\"paired\"} 1",
        "pairing_jobs_finished_total{provider=\"deliveroo\",outcome=\"invalid_credentials/wrong_password\"} 1",
        "# TYPE pairing_browser_sessions_open gauge",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(
        metrics.contains("pairing_duration_seconds_count"),
        "{metrics}"
    );
    let all = receiver.seen.lock().unwrap().clone();
    let leaked = all
        .iter()
        .any(|(_, body)| body.contains(PASSWORD) || body.contains(&code));
    assert!(!leaked, "secret in a webhook");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &code_path,
            As::Admin,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_awaiting_code"))
    );
    // Every credential change, login and code submission is audited, never with the secret.
    let audit = api.queue.audit_log("org-a", 50).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "credentials.create",
        "credentials.update",
        "job.pair",
        "login",
        "code.submit",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    let text = format!("{audit:?}");
    assert!(!text.contains(PASSWORD) && !text.contains(&code));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_steps_then_i_have_completed_these_steps_resolves() {
    let api = Api::start().await;
    let username = "inactive@sandbox.test";
    let stores = json!([{"id": "219391", "location": "King's Cross", "brand": "Bao & Co"}]);
    let account = api.create_account(username, PASSWORD, json!([])).await;
    let job = api
        .start_job(&account, json!({"kind": "recheck", "interactive": false}))
        .await;
    api.follow(job["id"].as_str().unwrap(), is_final).await;
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/accounts/{account}"),
            As::Viewer,
            Some(json!({"stores": stores})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "stores are not credentials");
    let alerts = api.alerts(As::Admin, "fr-FR").await;
    let alert = &alerts[0];
    assert_eq!(alert["error"], "invalid_store_config/restaurant_inactive");
    assert_eq!(alert["prompt"], "external_steps");
    assert_eq!(alert["external_steps"]["language"], "fr");
    assert!(alert["external_steps"]["steps"][0]
        .as_str()
        .unwrap()
        .contains("Partner Hub"));
    assert_eq!(alert["impacted_stores"][0]["location"], "King's Cross");
    assert_eq!(
        api.alerts(As::Viewer, "en").await[0]["prompt"],
        "learn_more"
    );
    // "I have completed these steps" before doing them: unchanged.
    let job = api.start_job(&account, json!({"kind": "recheck"})).await;
    api.follow(job["id"].as_str().unwrap(), is_final).await;
    assert_eq!(api.alerts(As::Admin, "en").await[0]["recheck"], "unchanged");
    // The merchant reactivates the site in Partner Hub, then clicks again: resolved.
    let fixed = AccountChange {
        scenario: Some("good_login".into()),
        password: None,
    };
    api.sandbox.change_account("deliveroo", username, fixed);
    let job = api.start_job(&account, json!({"kind": "recheck"})).await;
    let done = api.follow(job["id"].as_str().unwrap(), is_final).await;
    assert_eq!(done["outcome"], "paired", "{done}");
    assert!(api.alerts(As::Admin, "en").await.is_empty());
    let (_, view) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/accounts/{account}"),
            As::Admin,
            None,
        )
        .await;
    assert_eq!(view["health"]["status"], "healthy", "{view}");
    api.stop().await;
}

/// (what, method, path, caller, body, expected status, error code, field)
type BadRequest<'a> = (
    &'a str,
    reqwest::Method,
    &'a str,
    As,
    Option<Value>,
    StatusCode,
    &'a str,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    use reqwest::Method;
    let api = Api::start().await;
    let account = api
        .create_account("owner@sandbox.test", PASSWORD, json!([]))
        .await;
    let on_account = format!("/v1/accounts/{account}");
    let jobs = format!("{on_account}/jobs");
    let creds = json!({"username": "u", "password": "Canary-Pw-3"});
    let create = |extra: Value| {
        let mut body = json!({"provider": "deliveroo", "credentials": creds});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let cases: Vec<BadRequest> = vec![
        (
            "no token",
            Method::GET,
            "/v1/accounts",
            As::Anonymous,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        (
            "foreign account",
            Method::GET,
            &on_account,
            As::OtherOrganisation,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            "job on a foreign account",
            Method::POST,
            &jobs,
            As::OtherOrganisation,
            Some(json!({"kind": "recheck"})),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            "unknown job",
            Method::GET,
            "/v1/jobs/no-such-job",
            As::Admin,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            "unknown provider",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"provider": "pizzaportal"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_provider",
            Some("provider"),
        ),
        (
            "missing password",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"credentials": {"username": "u"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("credentials"),
        ),
        (
            "credentials of the wrong type",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"credentials": "Canary-Pw-4"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("credentials"),
        ),
        (
            "mistyped store field",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(
                json!({"stores": [{"id": "a", "location": "x", "brand": "y"}, {"id": "b", "location": 5, "brand": "y"}]}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("stores[1].location"),
        ),
        (
            "bad TOTP secret",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"totp_secret": "not base32!"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("totp_secret"),
        ),
        (
            "mailbox without a host",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"mailbox": {"host": " ", "username": "u", "password": "Canary-Pw-5"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("mailbox.host"),
        ),
        (
            "body too large",
            Method::POST,
            "/v1/accounts",
            As::Admin,
            create(json!({"credentials": {"username": "u", "password": "x".repeat(BODY_LIMIT)}})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
        (
            "viewer creates",
            Method::POST,
            "/v1/accounts",
            As::Viewer,
            create(json!({})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        ),
        (
            "viewer deletes",
            Method::DELETE,
            &on_account,
            As::Viewer,
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        ),
        (
            "secret in the query",
            Method::GET,
            "/v1/repair-alerts?password=hunter2",
            As::Admin,
            None,
            StatusCode::BAD_REQUEST,
            "secret_in_query",
            Some("password"),
        ),
        (
            "pair without credentials",
            Method::POST,
            &jobs,
            As::Admin,
            Some(json!({"kind": "pair"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("credentials"),
        ),
        (
            "unknown job kind",
            Method::POST,
            &jobs,
            As::Admin,
            Some(json!({"kind": "dance"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
    ];
    for (what, method, path, who, body, status, code, field) in cases {
        let (got, answer) = api.call(method, path, who, body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{what}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("Canary-Pw") && !text.contains("hunter2"),
            "{what} echoed a secret: {text}"
        );
    }
    let guessed = api
        .client
        .get(format!("{}/v1/accounts", api.base))
        .bearer_auth("pwk_guessed")
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), StatusCode::UNAUTHORIZED);
    let malformed = api
        .request(Method::POST, "/v1/accounts", As::Admin)
        .header("content-type", "application/json")
        .body("{\"provider\": \"deliveroo\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    // Nothing above created anything.
    let (_, accounts) = api.call(Method::GET, "/v1/accounts", As::Admin, None).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert!(api
        .queue
        .jobs_of_account("org-a", &account)
        .await
        .unwrap()
        .is_empty());
    let (status, ready) = api.call(Method::GET, "/readyz", As::Anonymous, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    api.stop().await;
}

/// Every operation the OpenAPI document describes is routed, and the document is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_routes_there_are() {
    let api = Api::start().await;
    let (status, doc) = api
        .call(reqwest::Method::GET, "/openapi.json", As::Anonymous, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{}", paths.len());
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let concrete = path.replace("{id}", "no-such-id");
            let response = api
                .request(method.clone(), &concrete, As::Admin)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no such route"),
                "{method} {path} is not routed"
            );
        }
    }
    api.stop().await;
}

/// Code sources go in with the account (TOTP secret, codes mailbox), are sealed with it, and can
/// be replaced or removed; none of it is ever shown back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_source_settings_round_trip_sealed() {
    use secrecy::ExposeSecret;
    let api = Api::start().await;
    let body = json!({
        "provider": "deliveroo",
        "credentials": {"username": "owner@sandbox.test", "password": PASSWORD},
        "totp_secret": "JBSWY3DPEHPK3PXP",
        "mailbox": {"host": "localhost", "username": "codes@example.test", "password": "Mailbox-Pw-6"},
    });
    let (status, account) = api
        .call(reqwest::Method::POST, "/v1/accounts", As::Admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let text = account.to_string();
    assert!(
        !text.contains("Mailbox-Pw-6") && !text.contains("JBSWY3DP"),
        "{text}"
    );
    let id = account["id"].as_str().unwrap();
    let stored = api.queue.account_secrets(id).await.unwrap().unwrap();
    let mailbox = stored.mailbox.expect("mailbox stored");
    assert_eq!(
        (mailbox.host.as_str(), mailbox.port, mailbox.folder.as_str()),
        ("localhost", 993, "INBOX")
    );
    assert_eq!(mailbox.password.expose_secret(), "Mailbox-Pw-6");
    assert!(stored.totp.is_some());
    let path = format!("/v1/accounts/{id}");
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            As::Viewer,
            Some(json!({"mailbox": null})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "code sources are credentials"
    );
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            As::Admin,
            Some(json!({"mailbox": null, "totp_secret": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored = api.queue.account_secrets(id).await.unwrap().unwrap();
    assert!(stored.mailbox.is_none() && stored.totp.is_none());
    assert_eq!(
        stored.credentials.password.expose_secret(),
        PASSWORD,
        "credentials kept"
    );
    api.stop().await;
}

/// The organisation's health-check schedule: the default until it sets one, its own after, off
/// at 0; an out-of-range period is refused and changes nothing; another organisation's is apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_sets_its_health_check_schedule() {
    let api = Api::start().await;
    let get = |who| api.call(reqwest::Method::GET, "/v1/health-checks", who, None);
    let put = |minutes: Value| {
        api.call(
            reqwest::Method::PUT,
            "/v1/health-checks",
            As::Admin,
            Some(json!({ "every_minutes": minutes })),
        )
    };
    assert_eq!(
        get(As::Admin).await,
        (
            StatusCode::OK,
            json!({"every_minutes": 360, "enabled": true})
        )
    );
    assert_eq!(
        put(json!(60)).await,
        (
            StatusCode::OK,
            json!({"every_minutes": 60, "enabled": true})
        )
    );
    for bad in [json!(5), json!(20000), json!(-1), json!("hourly")] {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "every_minutes", "{bad}: {body}");
    }
    assert_eq!(
        get(As::Admin).await.1["every_minutes"],
        60,
        "a refused change changes nothing"
    );
    assert_eq!(get(As::OtherOrganisation).await.1["every_minutes"], 360);
    assert_eq!(get(As::Anonymous).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        put(json!(0)).await,
        (
            StatusCode::OK,
            json!({"every_minutes": 0, "enabled": false})
        )
    );
    api.stop().await;
}
