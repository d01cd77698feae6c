//! `serve` as a child process, for tests that kill it.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

pub struct Serve {
    pub child: Child,
    pub log: std::path::PathBuf,
}

pub fn serve(db: &str, key: &str, webdriver: &str, portal: &str, log: std::path::PathBuf) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .args([
            "serve",
            "--slots",
            "2",
            "--lease-secs",
            "2",
            "--grace-secs",
            "20",
        ])
        .args([
            "--db",
            db,
            "--webdriver",
            webdriver,
            "--portal-base",
            portal,
            "--listen",
            "127.0.0.1:0",
        ])
        .env("PAIRING_WORKER_KEY", key)
        .env("RUST_LOG", "pairing_worker=trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("serve starts");
    Serve { child, log }
}
