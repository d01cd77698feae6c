//! A chromedriver process of our own: a free port, started on demand, replaced when it dies, and
//! killed with its whole process group when dropped — or, when the worker itself is killed
//! (SIGKILL leaves no destructor), by a reaper that notices its parent is gone. Stale drivers,
//! browsers and profiles of a worker that died anyway are swept at start.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::BrowserError;

/// Folders of ours under the temp dir are `pairing-worker-<pid>-<random>`: the pid says whether
/// their owner still lives.
const ROOT_PREFIX: &str = "pairing-worker-";

pub struct Chromedriver {
    child: Mutex<tokio::process::Child>,
    pid: u32,
    url: String,
    /// Every browser profile of this driver lives here (and its log), so one `rm -rf` and one
    /// look at `/proc/*/cmdline` find all of them.
    root: tempfile::TempDir,
    /// The write end of the reaper's stdin: it closes when this process dies, however it dies,
    /// and the reaper then kills the driver's process group and removes `root`.
    _reaper: Option<std::process::ChildStdin>,
}

/// Where chromedriver lives: `$CHROMEDRIVER`, else the first `chromedriver` on PATH.
pub fn chromedriver_binary() -> Result<PathBuf, BrowserError> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(BrowserError::DriverMissing(format!(
                "$CHROMEDRIVER={} does not exist",
                path.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| BrowserError::DriverMissing("no `chromedriver` on PATH".into()))
}

/// Debian's `/usr/bin/chromium` wrapper, or `$CHROMIUM`.
pub fn chromium_binary() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn free_port() -> Result<u16, BrowserError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BrowserError::DriverStart(e.to_string()))?;
    Ok(listener
        .local_addr()
        .map_err(|e| BrowserError::DriverStart(e.to_string()))?
        .port())
}

fn start_error(e: impl std::fmt::Display) -> BrowserError {
    BrowserError::DriverStart(e.to_string())
}

impl Chromedriver {
    pub async fn start() -> Result<Chromedriver, BrowserError> {
        let binary = chromedriver_binary()?;
        let port = free_port()?;
        let root = tempfile::Builder::new()
            .prefix(&format!("{ROOT_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(start_error)?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Also puts the root in the driver's command line, where a sweep finds it.
            .arg(format!(
                "--log-path={}",
                root.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group, so the browsers it starts die with it.
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| BrowserError::DriverStart(format!("{}: {e}", binary.display())))?;
        let pid = child.id().unwrap_or_default();
        let reaper = spawn_reaper(pid, root.path());
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Chromedriver {
                    child: Mutex::new(child),
                    pid,
                    url,
                    root,
                    _reaper: reaper,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(BrowserError::DriverStart(format!(
                    "{} exited with {status}",
                    binary.display()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(BrowserError::DriverStart(format!(
                    "{} did not listen on port {port} within 15 s",
                    binary.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where this driver's browser profiles go.
    pub fn profiles(&self) -> &Path {
        self.root.path()
    }

    fn exited(&self) -> bool {
        let mut child = self.child.lock().expect("driver lock");
        !matches!(child.try_wait(), Ok(None))
    }

    /// Kills chromedriver and every browser it started (its whole process group).
    pub fn kill(&self) {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe {
            libc::kill(-(self.pid as i32), libc::SIGKILL);
        }
        let _ = self.child.lock().expect("driver lock").try_wait(); // reap it
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `$1`: the driver's process group; `$2`: its folder. Kills the group, then whatever still
/// names the folder (Chromium's crashpad handler leaves the group), then removes the folder.
/// POSIX sh: dash's `kill` takes no `--`.
const REAPER_SCRIPT: &str = r#"cat >/dev/null
kill -KILL "-$1" 2>/dev/null
sleep 1
for p in /proc/[0-9]*; do
  [ "${p#/proc/}" = "$$" ] && continue
  if tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qF -- "$2"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
done
rm -rf -- "$2""#;

/// A watcher in its own process: it blocks reading a pipe only we hold the write end of (close
/// on exec, so no browser inherits it). When we die — SIGKILL included — the pipe closes and it
/// kills the driver's process group and removes the profiles. `None` if it cannot start: the
/// sweep at the next start is then the only cleanup.
fn spawn_reaper(driver_pid: u32, root: &Path) -> Option<std::process::ChildStdin> {
    let spawned = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(REAPER_SCRIPT)
        .arg("pairing-worker-reaper")
        .arg(driver_pid.to_string())
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut reaper) => {
            let stdin = reaper.stdin.take();
            // It exits when the driver is dropped (or outlives us, then init reaps it).
            std::thread::spawn(move || reaper.wait());
            stdin
        }
        Err(error) => {
            tracing::warn!(%error, "no reaper for chromedriver: a killed worker leaves it behind until the next start");
            None
        }
    }
}

/// Our chromedriver, replaced when it dies. `generation` counts replacements, so sessions and
/// the shared browser of an older driver are known to be dead.
pub struct LocalDriver {
    current: RwLock<Arc<Chromedriver>>,
    replacing: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Shut down on purpose: never replaced again.
    stopped: std::sync::atomic::AtomicBool,
}

impl LocalDriver {
    pub async fn start() -> Result<LocalDriver, BrowserError> {
        let swept = sweep_stale();
        if swept > 0 {
            tracing::warn!(
                swept,
                "removed browsers and profiles left by a worker that died"
            );
        }
        Ok(LocalDriver {
            current: RwLock::new(Arc::new(Chromedriver::start().await?)),
            replacing: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Checks every 500 ms that chromedriver still runs and replaces it the moment it exits, so
    /// pre-started sessions of the dead one are dropped before a job takes them. Ends with the
    /// driver's owner.
    pub fn watch(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let driver = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(driver) = driver.upgrade() else {
                    return;
                };
                if driver.stopped.load(Ordering::SeqCst) {
                    return;
                }
                if driver.current().exited() {
                    if let Err(error) = driver.heal(driver.generation()).await {
                        tracing::warn!(%error, "replacing chromedriver failed; retrying");
                    }
                }
            }
        });
    }

    pub fn current(&self) -> Arc<Chromedriver> {
        self.current.read().expect("driver lock").clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Replaces chromedriver if it exited or stopped answering; `true` when it was replaced.
    /// Concurrent callers wait for one replacement.
    pub async fn heal(&self, seen_generation: u64) -> Result<bool, BrowserError> {
        let _one = self.replacing.lock().await;
        if self.stopped.load(Ordering::SeqCst) {
            return Err(BrowserError::DriverStart(
                "the browser was shut down".into(),
            ));
        }
        if self.generation() != seen_generation {
            return Ok(true); // someone replaced it meanwhile
        }
        let old = self.current();
        if !old.exited() && answers(old.url()).await {
            return Ok(false);
        }
        tracing::warn!(
            pid = old.pid(),
            "chromedriver died or stopped answering; starting a new one"
        );
        old.kill();
        let new = Chromedriver::start().await?;
        *self.current.write().expect("driver lock") = Arc::new(new);
        self.generation.fetch_add(1, Ordering::SeqCst);
        crate::metrics::METRICS.webdriver_replaced();
        Ok(true)
    }

    /// Stops for good: kills chromedriver and its browsers, and replaces nothing after.
    pub fn kill(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.current().kill();
    }

    /// Kills only the chromedriver process, as a crash would (for tests of the replacement).
    pub fn crash(&self) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe {
            libc::kill(self.current().pid() as i32, libc::SIGKILL);
        }
    }
}

/// Whether a WebDriver endpoint says it can start sessions (`GET /status`, `value.ready`), within
/// a short deadline: a hung, failing or connection-dropping endpoint is not ready.
pub async fn answers(url: &str) -> bool {
    status(url).await.is_ok()
}

/// `GET {url}/status` within 3 s; `Ok` only when it answers 200 with `value.ready: true`.
pub async fn status(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let answer = client
        .get(format!("{}/status", url.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the WebDriver endpoint did not answer within 3 s".to_string()
            } else {
                "the WebDriver endpoint could not be reached".to_string()
            }
        })?;
    if !answer.status().is_success() {
        return Err(format!(
            "the WebDriver endpoint answered {}",
            answer.status()
        ));
    }
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|_| "the WebDriver endpoint's status is not JSON".to_string())?;
    match body["value"]["ready"].as_bool() {
        Some(true) => Ok(()),
        _ => Err("the WebDriver endpoint says it is not ready".into()),
    }
}

/// Kills what a dead worker's drivers left (processes whose command line names one of its
/// folders) and removes those folders. Returns how many folders were swept.
pub fn sweep_stale() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(owner) = name
            .strip_prefix(ROOT_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if process_alive(owner) {
            continue;
        }
        let path = entry.path();
        kill_processes_naming(&path);
        if std::fs::remove_dir_all(&path).is_ok() {
            swept += 1;
        }
    }
    swept
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// SIGKILLs every process whose command line mentions `folder`.
fn kill_processes_naming(folder: &Path) {
    let needle = folder.to_string_lossy().to_string();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return;
    };
    for process in processes.flatten() {
        let Ok(pid) = process.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: kill(2) with a pid read from /proc; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
