//! The API's smaller holes, closed: half-sent requests cannot hold the listener, errors name the
//! field and never the value, a revoked token is refused at once, and `/metrics` can live on an
//! operator's listener of its own. Real HTTP on loopback.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/lite.rs"]
mod lite;

use std::time::{Duration, Instant};

use lite::Lite;
use pairing_worker::api::listener::Limits;
use pairing_worker::api::ServeOptions;
use pairing_worker::queue::Queue;
use pairing_worker::reach::Reach;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn options(header_read_timeout: Duration, max_connections: usize) -> ServeOptions {
    ServeOptions {
        limits: Limits {
            header_read_timeout,
            max_connections,
        },
        metrics: true,
    }
}

async fn half_sent(base: &str) -> TcpStream {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    // The head never ends: no blank line.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    stream
}

/// True when the server closed the connection (EOF or reset) before `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buffer = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An error response (408) may come first; the close follows.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_while_others_are_served() {
    let timeout = Duration::from_millis(1500);
    let api = Lite::start_with(Reach::default(), options(timeout, 400)).await;
    let opened = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..300 {
        streams.push(half_sent(&api.base).await);
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        api.client.get(format!("{}/healthz", api.base)).send(),
    )
    .await
    .expect("a normal request is answered while 300 half-sent ones are open")
    .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(3);
    let mut open = 0;
    for stream in &mut streams {
        if !closed_by(stream, deadline).await {
            open += 1;
        }
    }
    assert_eq!(
        open,
        0,
        "half-sent requests still open after {:?}",
        opened.elapsed()
    );
    assert!(
        opened.elapsed() >= timeout,
        "closed before the timeout: the test proves nothing"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    let timeout = Duration::from_millis(1000);
    let api = Lite::start_with(Reach::default(), options(timeout, 2)).await;
    let _held = [half_sent(&api.base).await, half_sent(&api.base).await];
    let started = Instant::now();
    let request = api.client.get(format!("{}/healthz", api.base)).send();
    let answer = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "served at once: the two half-sent connections did not hold the only slots ({:?})",
        started.elapsed()
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_field_and_what_is_allowed_never_the_value() {
    let api = Lite::start(Reach::default()).await;
    let credentials = json!({"username": "u", "password": "Canary-Pw-0"});
    let account = |extra: serde_json::Value| {
        let mut body = json!({"provider": "deliveroo", "credentials": credentials});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let jobs = "/v1/accounts/no-such-account/jobs";
    // (what, method, path, body, status, field, a word the message must carry)
    let cases = [
        (
            "unknown provider",
            Method::POST,
            "/v1/accounts",
            account(json!({"provider": "Canary-Provider-1"})),
            422,
            "provider",
            "deliveroo",
        ),
        (
            "unknown job kind",
            Method::POST,
            jobs,
            Some(json!({"kind": "Canary-Kind-2"})),
            422,
            "kind",
            "`recheck`",
        ),
        (
            "number for a string",
            Method::POST,
            "/v1/accounts",
            account(json!({"stores": [{"id": 987654321, "location": "x", "brand": "y"}]})),
            422,
            "stores[0].id",
            "a string",
        ),
        (
            "string for a boolean",
            Method::POST,
            jobs,
            Some(json!({"kind": "recheck", "interactive": "Canary-Bool-3"})),
            422,
            "interactive",
            "a boolean",
        ),
        (
            "port out of range",
            Method::POST,
            "/v1/accounts",
            account(
                json!({"mailbox": {"host": "h", "port": 7654321, "username": "u", "password": "p"}}),
            ),
            422,
            "mailbox.port",
            "u16",
        ),
        (
            "unknown field",
            Method::POST,
            "/v1/accounts",
            account(json!({"Canary-Field-4": 1})),
            422,
            "",
            "`provider`",
        ),
        (
            "query of the wrong type",
            Method::GET,
            "/v1/jobs/x?wait=Canary-Wait-5",
            None,
            400,
            "wait",
            "",
        ),
        (
            "query date",
            Method::GET,
            "/v1/jobs/x?after=Canary-After-6",
            None,
            400,
            "after",
            "",
        ),
    ];
    for (what, method, path, body, status, field, allowed) in cases {
        let (got, answer) = api.call(method, path, body).await;
        assert_eq!(got.as_u16(), status, "{what}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        }
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(allowed),
            "{what}: say what is allowed: {answer}"
        );
        let text = answer.to_string();
        for canary in ["Canary", "987654321", "7654321"] {
            assert!(!text.contains(canary), "{what} echoed the value: {text}");
        }
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_gets_401_at_once() {
    let api = Lite::start(Reach::default()).await;
    let other = api.queue.create_token(lite::ORG, "other").await.unwrap();
    let (status, _) = api.call(Method::GET, "/v1/accounts", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = api.queue.tokens(Some(lite::ORG)).await.unwrap();
    let id = Queue::token_id(&api.token);
    assert!(listed.iter().any(|t| t.id == id), "{listed:?}");
    assert!(
        !format!("{listed:?}").contains(&api.token),
        "a listing shows no token"
    );
    assert!(api.queue.revoke_token(&id).await.unwrap());
    let (status, body) = api.call(Method::GET, "/v1/accounts", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, _) = api
        .call_with(&other, Method::GET, "/v1/accounts", None)
        .await;
    assert_eq!(status, StatusCode::OK, "only that token is revoked");
    assert!(!api.queue.revoke_token(&id).await.unwrap(), "already gone");
    assert!(
        api.queue.revoke_token(&other).await.unwrap(),
        "by the token itself"
    );
    let (status, _) = api
        .call_with(&other, Method::GET, "/v1/accounts", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_live_on_an_operator_listener_of_their_own() {
    let apart = ServeOptions {
        metrics: false,
        ..ServeOptions::default()
    };
    let api = Lite::start_with(Reach::default(), apart).await;
    let (metrics_addr, task) =
        pairing_worker::api::serve_metrics(api.state.clone(), "127.0.0.1:0", Limits::default())
            .await
            .unwrap();
    let get = |url: String| {
        let client = api.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, _) = get(format!("{}/metrics", api.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not on the API listener");
    let (status, text) = get(format!("http://{metrics_addr}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("# TYPE pairing_"), "{text}");
    let (status, _) = get(format!("http://{metrics_addr}/v1/accounts")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the API is not on the metrics listener"
    );
    let (status, _) = get(format!("{}/healthz", api.base)).await;
    assert_eq!(status, StatusCode::OK);
    task.abort();
    api.stop().await;
}
