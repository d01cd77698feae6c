//! A throwaway Dovecot IMAP server on loopback: its own config, a test CA and server certificate,
//! one mailbox user per name, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub password: String,
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn dovecot_binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/bin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub fn present() -> bool {
    dovecot_binary().is_some()
}

fn id_of(user: &str, flag: &str) -> Result<String, String> {
    let out = Command::new("id")
        .arg(flag)
        .arg(user)
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Dovecot {
    /// Starts Dovecot with a mailbox for each of `users`, all with one password.
    pub fn start(users: &[&str]) -> Result<Dovecot, String> {
        let binary = dovecot_binary()
            .ok_or("dovecot is not installed (Debian dovecot-imapd; scripts/install-deps.sh)")?;
        let dir = tempfile::Builder::new()
            .prefix("pw-dovecot-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        // A test CA and a server certificate it signs: rustls refuses a CA used as the server's own.
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=pairing-worker test CA",
            ])
            .arg("-keyout")
            .arg(d.join("ca.key"))
            .arg("-out")
            .arg(d.join("ca.pem")))?;
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("server.csr")))?;
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| e.to_string())?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(d.join("server.csr"))
            .arg("-CA")
            .arg(d.join("ca.pem"))
            .arg("-CAkey")
            .arg(d.join("ca.key"))
            .arg("-out")
            .arg(d.join("cert.pem"))
            .arg("-extfile")
            .arg(d.join("ext.cnf")))?;

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let (uid, gid) = (id_of("dovecot", "-u")?, id_of("dovecot", "-g")?);
        let password = format!("Mailbox-{:08x}", rand::random::<u32>());
        let mut lines = String::new();
        for user in users {
            let home = d.join("home").join(user);
            std::fs::create_dir_all(home.join("Maildir")).map_err(|e| e.to_string())?;
            lines.push_str(&format!(
                "{user}:{{PLAIN}}{password}:{uid}:{gid}::{}\n",
                home.display()
            ));
        }
        std::fs::write(d.join("users"), lines).map_err(|e| e.to_string())?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(d.join("home")))?;
        let dh = Path::new("/usr/share/dovecot/dh.pem");
        let config = format!(
            "base_dir = {d}/run\nlog_path = {d}/dovecot.log\ninfo_log_path = {d}/dovecot.log\n\
             listen = 127.0.0.1\nprotocols = imap\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n\
             ssl = required\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n{dh}\
             auth_mechanisms = plain\nmail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/users\n}}\n",
            d = d.display(),
            dh = if dh.is_file() { format!("ssl_dh = <{}\n", dh.display()) } else { String::new() },
        );
        std::fs::write(d.join("dovecot.conf"), config).map_err(|e| e.to_string())?;
        // It daemonises: no pipes for it to inherit, or waiting on them never ends.
        let status = Command::new(binary)
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            let log = std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default();
            return Err(format!(
                "dovecot exited with {status}: {log} (check `doveconf -c {}`)",
                d.join("dovecot.conf").display()
            ));
        }
        // Ready when it listens.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Dovecot {
                    dir,
                    port,
                    password,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default();
        Err(format!("dovecot did not listen on {port}: {log}"))
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn mailbox(&self, user: &str) -> pairing_worker::codes::MailboxConfig {
        pairing_worker::codes::MailboxConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            username: user.into(),
            password: secrecy::SecretString::from(self.password.clone()),
            ca_file: Some(self.ca_file()),
            folder: "INBOX".into(),
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("run/master.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}
