//! A running product for end-to-end tests: the sandbox portals, a SQLite queue, a local
//! chromedriver and the worker polling every 50 ms. `stop` ends the worker and the browser.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use pairing_worker::browser::{Browser, BrowserConfig, Endpoint};
use pairing_worker::kit::sandbox::{portal_hosts, Sandbox};
use pairing_worker::provider::Registry;
use pairing_worker::queue::{Key, KeyRing, Queue, QueueConfig};
use pairing_worker::worker::{Worker, WorkerConfig};

use super::databases::TestDatabase;

pub struct Rig {
    pub queue: Arc<Queue>,
    pub sandbox: Arc<Sandbox>,
    pub registry: Arc<Registry>,
    pub browser: Browser,
    /// Turns true when the rig stops: give it to other loops (webhook delivery).
    pub stopped: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
    _db: TestDatabase,
}

/// What a test may change about the rig.
#[derive(Default)]
pub struct RigOptions {
    /// A WebDriver endpoint for the worker (a fault-injecting proxy); `None` starts chromedriver.
    pub webdriver: Option<String>,
    pub queue: Option<QueueConfig>,
    /// A sandbox the test already holds (a fault rule may read its counters).
    pub sandbox: Option<Arc<Sandbox>>,
    /// The whole browser configuration (WebDriver endpoints with ceilings); overrides `webdriver`.
    pub browser: Option<BrowserConfig>,
    /// Worker slots (default: the worker's).
    pub slots: Option<usize>,
    /// Sessions started ahead of need (default: the worker's).
    pub prestarted_sessions: Option<usize>,
}

impl Rig {
    pub async fn start() -> Rig {
        Rig::start_with(RigOptions::default()).await
    }

    pub async fn start_with(options: RigOptions) -> Rig {
        let registry = Arc::new(Registry::from_source_tree().unwrap());
        let sandbox = options.sandbox.unwrap_or_else(|| {
            Arc::new(
                Sandbox::from_registry(&registry, &pairing_worker::kit::fixtures::source_tree())
                    .unwrap(),
            )
        });
        let (portal, _) = sandbox.clone().serve("127.0.0.1:0").await.unwrap();
        let db = TestDatabase::sqlite();
        let keys = KeyRing::parse(&Key::generate_line(), None).unwrap();
        let queue = Queue::open(&db.url, keys, options.queue.unwrap_or_default())
            .await
            .unwrap();
        let queue = Arc::new(queue);
        let browser = Browser::launch(options.browser.unwrap_or_else(|| BrowserConfig {
            endpoints: options.webdriver.into_iter().map(Endpoint::new).collect(),
            ..BrowserConfig::default()
        }))
        .await
        .unwrap();
        let config = WorkerConfig {
            slots: options.slots.unwrap_or(WorkerConfig::default().slots),
            prestarted_sessions: options
                .prestarted_sessions
                .unwrap_or(WorkerConfig::default().prestarted_sessions),
            poll_interval: Duration::from_millis(50),
            portal_hosts: portal_hosts(&registry, &format!("http://{portal}")).unwrap(),
            ..WorkerConfig::default()
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = Worker::new(queue.clone(), registry.clone(), browser.clone(), config);
        let worker = tokio::spawn(worker.run(stopped.clone()));
        Rig {
            queue,
            sandbox,
            registry,
            browser,
            stopped,
            stop,
            worker,
            _db: db,
        }
    }

    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.worker.await.unwrap();
        self.browser.shutdown();
    }
}
