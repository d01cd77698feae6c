//! Remote WebDriver endpoints (chromedriver, Selenium Grid hubs or nodes) with a ceiling on the
//! sessions this worker holds on each: a job takes the least busy endpoint with room, waits for
//! one when all are full, and ends as an infrastructure error when none frees in time. An
//! endpoint that cannot be reached is set aside for a moment and the next one tried. Sessions
//! older than any job may run (left by a worker that died, or a close that never arrived) are
//! deleted by [`Grid::reap`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BrowserError;

/// How long an endpoint that refused a connection is skipped before it is tried again.
const SET_ASIDE: Duration = Duration::from_secs(5);

/// One WebDriver endpoint and how many sessions this worker may hold on it at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
    /// `None`: as many as the worker's slots ask for.
    #[serde(default)]
    pub max_sessions: Option<usize>,
}

impl Endpoint {
    pub fn new(url: impl Into<String>) -> Endpoint {
        Endpoint {
            url: url.into().trim_end_matches('/').to_string(),
            max_sessions: None,
        }
    }

    /// `URL`, or `URL#max_sessions=N` for an endpoint with its own ceiling (a fragment never
    /// reaches the server, so any WebDriver URL stays as it is).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let (url, max) = match text.split_once('#') {
            None => (text, None),
            Some((url, fragment)) => {
                let max = fragment
                    .strip_prefix("max_sessions=")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("`{text}`: after `#` only `max_sessions=N` (N ≥ 1) is understood")
                    })?;
                (url, Some(max))
            }
        };
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "`{url}`: a WebDriver endpoint is an http(s) URL with a host"
            ));
        }
        Ok(Endpoint::new(url).with_max_sessions(max))
    }

    pub fn with_max_sessions(mut self, max: Option<usize>) -> Endpoint {
        self.max_sessions = max;
        self
    }
}

pub(super) struct Grid {
    endpoints: Vec<EndpointState>,
    /// Rings when a session ends or an endpoint comes back: waiting jobs look again.
    freed: tokio::sync::Notify,
    /// When each session listed by a chromedriver endpoint (which gives no start time) was first
    /// seen: a session is at least as old as that, so it is never reaped early.
    first_seen: Mutex<HashMap<(usize, String), Instant>>,
}

struct EndpointState {
    url: String,
    max: usize,
    open: Mutex<EndpointUse>,
}

#[derive(Default)]
struct EndpointUse {
    sessions: usize,
    set_aside_until: Option<Instant>,
}

/// A place on one endpoint, held for as long as the session opened on it lives.
pub(crate) struct GridSlot {
    grid: Arc<Grid>,
    index: usize,
}

impl GridSlot {
    pub(super) fn url(&self) -> &str {
        &self.grid.endpoints[self.index].url
    }

    /// The endpoint refused or dropped the connection: skip it for a while.
    pub(super) fn set_aside(&self) {
        let endpoint = &self.grid.endpoints[self.index];
        endpoint.open.lock().expect("grid lock").set_aside_until = Some(Instant::now() + SET_ASIDE);
        tracing::warn!(endpoint = %endpoint.url, "WebDriver endpoint unreachable: set aside for {SET_ASIDE:?}");
    }
}

impl Drop for GridSlot {
    fn drop(&mut self) {
        let endpoint = &self.grid.endpoints[self.index];
        let mut open = endpoint.open.lock().expect("grid lock");
        open.sessions = open.sessions.saturating_sub(1);
        drop(open);
        self.grid.freed.notify_waiters();
    }
}

enum Pick {
    Slot(GridSlot),
    /// Every reachable endpoint holds its maximum.
    Full,
    /// Every endpoint is set aside (unreachable lately).
    AllDown,
}

impl Grid {
    /// An endpoint without `max_sessions` takes as many as the worker's slots ask for.
    pub(super) fn new(endpoints: &[Endpoint]) -> Arc<Grid> {
        Arc::new(Grid {
            endpoints: endpoints
                .iter()
                .map(|endpoint| EndpointState {
                    url: endpoint.url.trim_end_matches('/').to_string(),
                    max: endpoint.max_sessions.unwrap_or(usize::MAX).max(1),
                    open: Mutex::default(),
                })
                .collect(),
            freed: tokio::sync::Notify::new(),
            first_seen: Mutex::default(),
        })
    }

    pub(super) fn urls(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|endpoint| endpoint.url.as_str())
    }

    /// Sessions this worker holds on each endpoint now, in configuration order.
    pub(super) fn in_use(&self) -> Vec<usize> {
        self.endpoints
            .iter()
            .map(|endpoint| endpoint.open.lock().expect("grid lock").sessions)
            .collect()
    }

    /// The least busy endpoint (by share of its maximum) that has room and is not set aside.
    fn pick(self: &Arc<Self>) -> Pick {
        let now = Instant::now();
        let mut best: Option<(usize, f64)> = None;
        let mut reachable = false;
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let open = endpoint.open.lock().expect("grid lock");
            if open.set_aside_until.is_some_and(|until| until > now) {
                continue;
            }
            reachable = true;
            if open.sessions >= endpoint.max {
                continue;
            }
            let share = open.sessions as f64 / endpoint.max as f64;
            if best.is_none_or(|(_, lowest)| share < lowest) {
                best = Some((index, share));
            }
        }
        match best {
            Some((index, _)) => {
                let mut open = self.endpoints[index].open.lock().expect("grid lock");
                if open.sessions >= self.endpoints[index].max {
                    return Pick::Full; // taken meanwhile: the caller looks again
                }
                open.sessions += 1;
                Pick::Slot(GridSlot {
                    grid: self.clone(),
                    index,
                })
            }
            None if reachable => Pick::Full,
            None => Pick::AllDown,
        }
    }

    /// A place on an endpoint, now if one has room, else as soon as one frees within `wait`.
    pub(super) async fn take(self: &Arc<Self>, wait: Duration) -> Result<GridSlot, BrowserError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.pick() {
                Pick::Slot(slot) => return Ok(slot),
                Pick::AllDown => {
                    return Err(BrowserError::Unreachable {
                        url: self.urls().collect::<Vec<_>>().join(", "),
                        reason:
                            "every WebDriver endpoint refused a connection in the last few seconds"
                                .into(),
                    })
                }
                Pick::Full => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(BrowserError::NoFreeSession {
                    waited: wait,
                    in_use: self.in_use(),
                });
            }
            // Set-aside endpoints come back on their own: look again at least that often.
            let _ = tokio::time::timeout((deadline - now).min(SET_ASIDE), freed).await;
        }
    }

    /// A place now, or `None` (for sessions started ahead of need, which must not queue).
    pub(super) fn try_take(self: &Arc<Self>) -> Option<GridSlot> {
        match self.pick() {
            Pick::Slot(slot) => Some(slot),
            Pick::Full | Pick::AllDown => None,
        }
    }

    /// Deletes every session on every endpoint that is older than `max_age`; returns how many.
    /// A Selenium Grid says when each session started (`GET /status`); a chromedriver lists its
    /// sessions (`GET /sessions`) without times, so their age counts from when this worker first
    /// saw them. The endpoints are the workers' own: any session that old is a leak.
    pub(super) async fn reap(&self, max_age: Duration) -> usize {
        let client = http_client();
        let mut reaped = 0;
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let stale = match self.stale_sessions(&client, index, max_age).await {
                Ok(stale) => stale,
                Err(error) => {
                    tracing::debug!(endpoint = %endpoint.url, %error, "listing sessions to reap failed");
                    continue;
                }
            };
            for id in stale {
                let deleted = client
                    .delete(format!("{}/session/{id}", endpoint.url))
                    .send()
                    .await;
                if deleted.is_ok() {
                    reaped += 1;
                    tracing::warn!(endpoint = %endpoint.url, session = %id, "reaped a browser session older than any job");
                    self.first_seen
                        .lock()
                        .expect("grid lock")
                        .remove(&(index, id));
                }
            }
        }
        reaped
    }

    async fn stale_sessions(
        &self,
        client: &reqwest::Client,
        index: usize,
        max_age: Duration,
    ) -> Result<Vec<String>, reqwest::Error> {
        let ids = match list_sessions(client, &self.endpoints[index].url).await? {
            Listed::Grid(nodes) => {
                return Ok(grid_sessions_older_than(
                    &nodes,
                    max_age,
                    chrono::Utc::now(),
                ))
            }
            Listed::Driver(ids) => ids,
        };
        let now = Instant::now();
        let mut seen = self.first_seen.lock().expect("grid lock");
        seen.retain(|(at, id), _| *at != index || ids.contains(id));
        Ok(ids
            .into_iter()
            .filter(|id| {
                let first = *seen.entry((index, id.clone())).or_insert(now);
                now.duration_since(first) >= max_age
            })
            .collect())
    }

    /// Sessions open on every endpoint, whoever opened them (for checks that none leaked).
    pub(super) async fn sessions_open(&self) -> Result<usize, BrowserError> {
        let mut open = 0;
        for url in self.urls() {
            open += sessions_open_on(url).await?;
        }
        Ok(open)
    }
}

/// Sessions open on one endpoint, by its own account: a grid's busy slots, a chromedriver's list.
pub(super) async fn sessions_open_on(url: &str) -> Result<usize, BrowserError> {
    let listed =
        list_sessions(&http_client(), url)
            .await
            .map_err(|e| BrowserError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
    Ok(match listed {
        Listed::Grid(nodes) => nodes
            .iter()
            .filter_map(|node| node["slots"].as_array())
            .flatten()
            .filter(|slot| slot["session"].is_object())
            .count(),
        Listed::Driver(ids) => ids.len(),
    })
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// What an endpoint says is open on it.
enum Listed {
    /// A Selenium Grid's nodes (`GET /status`), each slot with its session and start time.
    Grid(Vec<Value>),
    /// A chromedriver's session ids (`GET /sessions`).
    Driver(Vec<String>),
}

async fn list_sessions(client: &reqwest::Client, url: &str) -> Result<Listed, reqwest::Error> {
    let status: Value = client
        .get(format!("{url}/status"))
        .send()
        .await?
        .json()
        .await?;
    if let Some(nodes) = status["value"]["nodes"].as_array() {
        return Ok(Listed::Grid(nodes.clone()));
    }
    let listed: Value = client
        .get(format!("{url}/sessions"))
        .send()
        .await?
        .json()
        .await?;
    Ok(Listed::Driver(
        listed["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|session| session["id"].as_str().map(str::to_string))
            .collect(),
    ))
}

/// Sessions in a Selenium Grid `/status` node list that started more than `max_age` before `now`.
fn grid_sessions_older_than(
    nodes: &[Value],
    max_age: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    nodes
        .iter()
        .filter_map(|node| node["slots"].as_array())
        .flatten()
        .filter_map(|slot| {
            let session = &slot["session"];
            let id = session["sessionId"].as_str()?;
            let started = chrono::DateTime::parse_from_rfc3339(session["start"].as_str()?).ok()?;
            (now - started.with_timezone(&chrono::Utc) >= max_age).then(|| id.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_parse_with_an_optional_ceiling() {
        assert_eq!(
            Endpoint::parse("http://grid:4444/wd/hub/").unwrap(),
            Endpoint::new("http://grid:4444/wd/hub")
        );
        assert_eq!(
            Endpoint::parse("http://node-a:4444#max_sessions=8")
                .unwrap()
                .max_sessions,
            Some(8)
        );
        for bad in [
            "grid:4444",
            "ftp://grid",
            "http://grid#max_sessions=0",
            "http://grid#8",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grid_status_sessions_are_stale_only_past_the_age() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let nodes = vec![json!({"slots": [
            {"session": {"sessionId": "old", "start": "2026-12-07T11:49:59.5Z"}},
            {"session": {"sessionId": "young", "start": "2026-12-07T11:55:00.123456789Z"}},
            {"session": null},
            {"session": {"sessionId": "no-start"}},
        ]})];
        let stale = grid_sessions_older_than(&nodes, Duration::from_secs(600), now);
        assert_eq!(stale, vec!["old".to_string()]);
    }

    #[tokio::test]
    async fn the_least_busy_endpoint_with_room_is_taken_and_a_full_grid_waits() {
        let grid = Grid::new(&[
            Endpoint::new("http://a:4444").with_max_sessions(Some(2)),
            Endpoint::new("http://b:4444").with_max_sessions(Some(1)),
        ]);
        let first = grid.try_take().expect("room");
        let second = grid.try_take().expect("room");
        assert_ne!(first.url(), second.url(), "spread over both");
        let third = grid.try_take().expect("a has a second place");
        assert_eq!(third.url(), "http://a:4444");
        assert!(grid.try_take().is_none(), "3 of 3 places taken");
        let waited = grid.take(Duration::from_millis(30)).await;
        assert!(matches!(waited, Err(BrowserError::NoFreeSession { .. })));
        let freeing = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(second);
        });
        let fourth = grid.take(Duration::from_secs(5)).await.expect("freed");
        freeing.await.unwrap();
        assert_eq!(grid.in_use().iter().sum::<usize>(), 3);
        drop((first, third, fourth));
        assert_eq!(grid.in_use(), vec![0, 0]);
    }

    #[tokio::test]
    async fn endpoints_set_aside_are_skipped_and_all_down_is_an_error_not_a_wait() {
        let grid = Grid::new(&[Endpoint::new("http://a"), Endpoint::new("http://b")]);
        let a = grid.try_take().unwrap();
        a.set_aside();
        let index_a = a.index;
        drop(a);
        let b = grid.try_take().unwrap();
        assert_ne!(b.index, index_a);
        b.set_aside();
        drop(b);
        // A wait would end with a place once the set-aside passed (5 s), not with this error.
        assert!(matches!(
            grid.take(Duration::from_secs(30)).await,
            Err(BrowserError::Unreachable { .. })
        ));
    }
}
