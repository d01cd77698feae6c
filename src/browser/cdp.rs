//! A minimal Chrome DevTools Protocol client on the browser's own endpoint: just what WebDriver
//! cannot do from a page, which is making and disposing isolated browser contexts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::BrowserError;

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// One DevTools connection to a browser (not to a page). Closed when dropped.
pub struct Cdp {
    outgoing: mpsc::UnboundedSender<Message>,
    waiting: Waiting,
    next_id: AtomicU64,
    timeout: Duration,
    /// A call went unanswered: the browser is hung, and is replaced rather than trusted again.
    hung: AtomicBool,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

fn failed(reason: impl ToString) -> BrowserError {
    BrowserError::Command {
        command: "devtools",
        reason: reason.to_string(),
    }
}

impl Cdp {
    /// Connects to the browser behind `debugger_address` (`host:port`, as chromedriver reports
    /// it in `goog:chromeOptions.debuggerAddress`).
    pub async fn connect(debugger_address: &str, timeout: Duration) -> Result<Cdp, BrowserError> {
        let version_url = format!("http://{debugger_address}/json/version");
        let version: Value = tokio::time::timeout(timeout, async {
            reqwest::get(&version_url).await?.json::<Value>().await
        })
        .await
        .map_err(|_| failed("the browser's DevTools endpoint did not answer"))?
        .map_err(failed)?;
        let ws_url = version["webSocketDebuggerUrl"]
            .as_str()
            .ok_or_else(|| failed("no webSocketDebuggerUrl in /json/version"))?;
        let (socket, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(ws_url))
            .await
            .map_err(|_| failed("the browser's DevTools socket did not open"))?
            .map_err(failed)?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let waiting: Waiting = Arc::default();
        let replies = waiting.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(reply) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                // Events (no id) are not subscribed to; only replies matter.
                let Some(id) = reply["id"].as_u64() else {
                    continue;
                };
                let Some(waiter) = replies.lock().expect("cdp lock").remove(&id) else {
                    continue;
                };
                let result = match reply.get("error") {
                    Some(error) => Err(error["message"].as_str().unwrap_or("error").to_string()),
                    None => Ok(reply["result"].clone()),
                };
                let _ = waiter.send(result);
            }
            // The browser went away: fail everything still waiting.
            replies.lock().expect("cdp lock").clear();
        });
        Ok(Cdp {
            outgoing,
            waiting,
            next_id: AtomicU64::new(1),
            timeout,
            hung: AtomicBool::new(false),
            tasks: [writer, reader],
        })
    }

    /// Whether the browser is alive and answering.
    pub fn is_open(&self) -> bool {
        !self.tasks[1].is_finished() && !self.hung.load(Ordering::Relaxed)
    }

    pub async fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.waiting.lock().expect("cdp lock").insert(id, reply);
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        if self.outgoing.send(Message::text(message)).is_err() {
            self.waiting.lock().expect("cdp lock").remove(&id);
            return Err(failed("the browser's DevTools connection is closed"));
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(message))) => Err(failed(format!("{method}: {message}"))),
            Ok(Err(_)) => Err(failed("the browser's DevTools connection closed")),
            Err(_) => {
                self.waiting.lock().expect("cdp lock").remove(&id);
                self.hung.store(true, Ordering::Relaxed);
                Err(BrowserError::Timeout {
                    command: "devtools",
                    timeout: self.timeout,
                })
            }
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
