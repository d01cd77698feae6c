//! A WebDriver endpoint in front of a real chromedriver that answers some commands with the
//! error a failing browser gives (HTTP 500, `unknown error`) instead of forwarding them: bad luck
//! on demand, with real Chromium behind every command it lets through.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// Decides, for each command (method and path), whether it fails.
pub type FaultRule = Arc<dyn Fn(&Method, &str) -> bool + Send + Sync>;

/// Serves the proxy on a loopback port; returns its URL.
pub async fn start(upstream: &str, fail: FaultRule) -> String {
    let upstream = upstream.trim_end_matches('/').to_string();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let (client, upstream, fail) = (client.clone(), upstream.clone(), fail.clone());
        async move { forward(&client, &upstream, &fail, method, uri, body).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    fail: &FaultRule,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if fail(&method, path) {
        let error = serde_json::json!({"value": {
            "error": "unknown error",
            "message": "injected fault: the browser went away",
            "stacktrace": "",
        }});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error)).into_response();
    }
    let request = client
        .request(method, format!("{upstream}{path}"))
        .header("content-type", "application/json")
        .body(body);
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
