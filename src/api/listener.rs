//! The HTTP listener: hyper's HTTP/1 server with a header-read timeout and a cap on open
//! connections. `axum::serve` has neither, so a few hundred half-sent requests held sockets open
//! forever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use super::ApiState;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection that has not sent a whole request head by then (a new one, or an idle
    /// keep-alive one) is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Binds `addr` and serves `app` until the returned task is aborted (which closes every
/// connection it holds); returns the bound address.
pub async fn serve_router(
    app: Router,
    addr: &str,
    limits: Limits,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(accept(listener, app, limits));
    Ok((bound, task))
}

async fn accept(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Owned here so aborting the server task drops (closes) its connections too.
    let mut connections = JoinSet::new();
    loop {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(%error, "accepting an API connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), service);
        connections.spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
}

/// How `serve` listens.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub limits: Limits,
    /// False when `/metrics` has a listener of its own (`serve --metrics-listen`).
    pub metrics: bool,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            limits: Limits::default(),
            metrics: true,
        }
    }
}

/// Serves the API until the task is aborted; returns the bound address.
pub async fn serve(
    state: Arc<ApiState>,
    addr: &str,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(state, addr, ServeOptions::default()).await
}

pub async fn serve_with(
    state: Arc<ApiState>,
    addr: &str,
    options: ServeOptions,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_router(super::routes(state, options.metrics), addr, options.limits).await
}

/// `/metrics` alone, for an operator's listener apart from the API: the counts span every
/// organisation and need no token, so they belong on an address API callers do not reach.
pub async fn serve_metrics(
    state: Arc<ApiState>,
    addr: &str,
    limits: Limits,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/metrics", axum::routing::get(super::metrics))
        .fallback(|| async { super::ApiError::not_found("route") })
        .with_state(state);
    serve_router(app, addr, limits).await
}
