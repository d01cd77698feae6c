//! The HTTP API on a free loopback port over a SQLite queue, with webhook delivery, and no
//! browser: for tests of the API's edges (network policy, listener limits, errors, tokens).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairing_worker::api::{ApiState, ServeOptions};
use pairing_worker::provider::Registry;
use pairing_worker::queue::{Key, KeyRing, Queue, QueueConfig};
use pairing_worker::reach::{parse_range, Policy, Reach};
use reqwest::StatusCode;
use serde_json::Value;

use super::databases::TestDatabase;

pub const ORG: &str = "org-lite";

pub struct Lite {
    pub base: String,
    pub token: String,
    pub queue: Arc<Queue>,
    pub state: Arc<ApiState>,
    pub client: reqwest::Client,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    _db: TestDatabase,
}

/// What the tests and the sandbox need: endpoints on this host.
pub fn loopback() -> Reach {
    Reach::new(Policy::allowing(
        ["127.0.0.0/8", "::1"].map(|r| parse_range(r).unwrap()),
    ))
}

impl Lite {
    pub async fn start(reach: Reach) -> Lite {
        Lite::start_with(reach, ServeOptions::default()).await
    }

    pub async fn start_with(reach: Reach, options: ServeOptions) -> Lite {
        let db = TestDatabase::sqlite();
        let keys = KeyRing::new(Key::generate());
        let queue = Arc::new(
            Queue::open(&db.url, keys, QueueConfig::default())
                .await
                .unwrap(),
        );
        let state = Arc::new(ApiState {
            queue: queue.clone(),
            registry: Arc::new(Registry::from_source_tree().unwrap()),
            browser: None,
            reach: reach.clone(),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let deliveries = pairing_worker::webhook_delivery::DeliveryConfig {
            poll_interval: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
            backoff_base: Duration::from_secs(60),
            reach,
            ..Default::default()
        };
        tokio::spawn(pairing_worker::webhook_delivery::deliver(
            queue.clone(),
            deliveries,
            stopped,
        ));
        let (addr, server) = pairing_worker::api::serve_with(state.clone(), "127.0.0.1:0", options)
            .await
            .unwrap();
        Lite {
            base: format!("http://{addr}"),
            token: queue.create_token(ORG, "test").await.unwrap(),
            queue,
            state,
            client: reqwest::Client::new(),
            stop,
            server,
            _db: db,
        }
    }

    /// A call as an owner with the credential permission.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with(&self.token, method, path, body).await
    }

    pub async fn call_with(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("X-Acting-User", "owner@restaurant.test")
            .header("X-Can-Update-Credentials", "true");
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

    /// Waits until the organisation's newest delivery has been attempted; returns it.
    pub async fn attempted_delivery(&self) -> pairing_worker::queue::DeliveryRecord {
        let started = Instant::now();
        loop {
            let deliveries = self.queue.deliveries(ORG, 1).await.unwrap();
            if let Some(delivery) = deliveries.into_iter().next() {
                let recorded = delivery.last_error.is_some() || delivery.last_status.is_some();
                if recorded || delivery.state == "delivered" {
                    return delivery;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no delivery attempt recorded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.server.abort();
        self.queue.close().await;
    }
}

/// A webhook receiver on loopback that counts what reaches it.
pub async fn receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("127.0.0.1:{}", addr.port()), seen)
}
