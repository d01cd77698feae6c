//! A chromedriver process of our own: a free port, started on demand, killed with its whole
//! process group when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::BrowserError;

pub struct Chromedriver {
    child: tokio::process::Child,
    url: String,
}

/// Where chromedriver lives: `$CHROMEDRIVER`, else the first `chromedriver` on PATH.
fn chromedriver_binary() -> Result<PathBuf, BrowserError> {
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

impl Chromedriver {
    pub async fn start() -> Result<Chromedriver, BrowserError> {
        let binary = chromedriver_binary()?;
        let port = free_port()?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group, so the browsers it starts die with it.
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| BrowserError::DriverStart(format!("{}: {e}", binary.display())))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Chromedriver { child, url });
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

    /// Kills chromedriver and every browser it started (its whole process group).
    pub fn kill(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's process group; no memory is involved.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.kill();
    }
}
