//! Bad input at the command line: each gives one clear error line naming what to fix.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pairing-worker");

fn run(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .ok();
    child.wait_with_output().expect("binary finishes")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn error_line(output: &Output) -> String {
    stderr(output)
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string()
}

/// Runs `classify --provider PROVIDER` on a temporary file holding `contents`.
fn classify_contents(provider: &str, contents: &[u8]) -> Output {
    let page = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(page.path(), contents).unwrap();
    run(
        &[
            "classify",
            "--provider",
            provider,
            page.path().to_str().unwrap(),
        ],
        "",
        &[],
    )
}

fn providers_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("providers")
        .display()
        .to_string()
}

#[test]
fn unknown_provider_names_the_known_ones() {
    let out = classify_contents("uber", b"<html><body></body></html>");
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.contains("unknown provider `uber`") && line.contains("ubereats"),
        "{line}"
    );
}

#[test]
fn provider_without_spec_says_so() {
    // Every portal of the shipped registry has a spec: a scratch registry lists one that has not.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("registry.toml"),
        "[[provider]]\nid = \"nextportal\"\nname = \"Next Portal\"\nmarkets = [\"GB\"]\nstatus = \"planned\"\n",
    )
    .unwrap();
    let page = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(page.path(), "<html><body></body></html>").unwrap();
    let out = run(
        &[
            "--providers",
            root.path().to_str().unwrap(),
            "classify",
            "--provider",
            "nextportal",
            page.path().to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        error_line(&out).contains("has no spec yet"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreadable_and_non_html_files_are_refused() {
    let out = run(
        &[
            "classify",
            "--provider",
            "deliveroo",
            "/nonexistent/page.html",
        ],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        error_line(&out).contains("cannot read /nonexistent/page.html"),
        "{}",
        stderr(&out)
    );

    let out = classify_contents("deliveroo", &[0u8, 159, 146, 150, 255, 0]);
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("is not text"), "{}", stderr(&out));

    let out = classify_contents("deliveroo", "just some notes".as_bytes());
    assert!(
        error_line(&out).contains("does not look like HTML"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn garbage_html_is_an_unrecognized_page_not_a_crash() {
    let out = classify_contents(
        "deliveroo",
        "<html><body><<<>>>&&&<div<p></html>\u{fffd}".as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["outcome"]["category"], "unrecognized_page");
}

#[test]
fn a_bad_spec_names_file_field_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(Path::new(&providers_dir()).join("deliveroo.toml")).unwrap();
    let broken = spec.replacen("present = [\"", "present = [\"[[broken ", 1);
    std::fs::write(dir.path().join("deliveroo.toml"), broken).unwrap();
    let out = run(
        &["--providers", dir.path().to_str().unwrap(), "providers"],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.contains("deliveroo.toml")
            && line.contains("present[0]")
            && line.contains("invalid CSS selector"),
        "{line}"
    );

    let bad_regex = spec.replacen("\nurl = \"", "\nurl = \"(unclosed", 1);
    std::fs::write(dir.path().join("deliveroo.toml"), bad_regex).unwrap();
    let out = run(
        &["--providers", dir.path().to_str().unwrap(), "providers"],
        "",
        &[],
    );
    let line = error_line(&out);
    assert!(
        line.contains("deliveroo.toml") && line.contains(".url") && line.contains("invalid regex"),
        "{line}"
    );
}

#[test]
fn missing_providers_folder_is_named() {
    let out = run(
        &["--providers", "/nonexistent/providers", "providers"],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        error_line(&out).contains("/nonexistent/providers"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreachable_webdriver_is_an_infrastructure_error() {
    let out = run(
        &[
            "pair",
            "--provider",
            "deliveroo",
            "--username",
            "a@sandbox.test",
            "--password-stdin",
            "--webdriver",
            "http://127.0.0.1:9",
        ],
        "Secret-Pass-1\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(
        line.contains("cannot reach WebDriver at http://127.0.0.1:9"),
        "{line}"
    );
    assert!(!stderr(&out).contains("Secret-Pass-1"));
}

#[test]
fn missing_chromedriver_says_how_to_install_it() {
    let out = run(
        &[
            "pair",
            "--provider",
            "deliveroo",
            "--username",
            "a@sandbox.test",
            "--password-stdin",
        ],
        "Secret-Pass-1\n",
        &[
            ("PATH", "/nonexistent"),
            ("CHROMEDRIVER", "/nonexistent/chromedriver"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(
        line.contains("chromedriver not found") && line.contains("chromium-driver"),
        "{line}"
    );
}

#[test]
fn password_only_from_stdin() {
    let out = run(
        &[
            "pair",
            "--provider",
            "deliveroo",
            "--username",
            "a@sandbox.test",
            "--password-stdin",
        ],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        error_line(&out).contains("no password on standard input"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn providers_lists_all_fifteen() {
    let out = run(&["providers", "--json"], "", &[]);
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 15);
    for id in ["ubereats", "doordash", "deliveroo"] {
        let entry = list.iter().find(|p| p["id"] == id).unwrap();
        assert_eq!(entry["status"], "supported", "{id}");
        assert!(entry["recorded_pages"].as_u64().unwrap() >= 10, "{id}");
    }
}

#[test]
fn readme_shows_the_real_decision_table() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = pairing_worker::outcome::decision_table_markdown();
    assert!(
        readme.contains(&table),
        "README.md's outcome table is stale; paste `pairing-worker outcomes`:\n{table}"
    );
}

#[test]
fn provider_checklist_is_regenerated() {
    let registry = pairing_worker::provider::Registry::from_source_tree().unwrap();
    let corpus = pairing_worker::provider::FileTree::Disk(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
    );
    let generated = pairing_worker::kit::checklist::markdown(
        &registry,
        &pairing_worker::kit::fixtures::source_tree(),
        Some(&corpus),
    )
    .expect("every page, script and corpus file loads");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checklist.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "docs/checklist.md is stale: run `cargo run -- --providers providers --fixtures fixtures providers --checklist --corpus corpus > docs/checklist.md`");
}

#[test]
fn malformed_totp_secret_is_a_clear_error_before_any_browser() {
    for (secret, says) in [
        ("not base32 at all!", "base32"),
        ("otpauth://totp/x?secret=", "too short"),
    ] {
        let output = run(
            &[
                "pair",
                "--provider",
                "doordash",
                "--username",
                "u@example.test",
                "--password-stdin",
                "--totp-stdin",
                "--webdriver",
                "http://127.0.0.1:9",
            ],
            &format!("Canary-Pass-1\n{secret}\n"),
            &[],
        );
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let error = error_line(&output);
        assert!(error.contains("--totp-stdin"), "{error}");
        assert!(error.to_lowercase().contains(says), "{error}");
        assert!(!error.contains("Canary-Pass-1"), "{error}");
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn tokens_are_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("queue.db").display());
    let key = stdout(&run(&["keys", "generate"], "", &[]));
    let env = [("PAIRING_WORKER_KEY", key.trim())];
    let created = run(
        &["tokens", "create", "--db", &db, "--organisation", "acme"],
        "",
        &env,
    );
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let token = stdout(&created).trim().to_string();
    let id = stderr(&created)
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .expect("the token id is named")
        .to_string();
    let second = run(
        &["tokens", "create", "--db", &db, "--organisation", "acme"],
        "",
        &env,
    );
    let second = stdout(&second).trim().to_string();
    let list = run(&["tokens", "list", "--db", &db], "", &env);
    let listing = stdout(&list);
    assert!(
        listing.contains(&id) && listing.contains("acme"),
        "{listing}"
    );
    assert!(
        !listing.contains(&token) && !listing.contains(&second),
        "tokens shown: {listing}"
    );
    let revoked = run(&["tokens", "revoke", "--db", &db, &id], "", &env);
    assert_eq!(revoked.status.code(), Some(0), "{}", stderr(&revoked));
    let listing = stdout(&run(&["tokens", "list", "--db", &db], "", &env));
    assert!(!listing.contains(&id), "{listing}");
    let again = run(&["tokens", "revoke", "--db", &db, &id], "", &env);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        error_line(&again).contains("no such token"),
        "{}",
        stderr(&again)
    );
    // A leaked token whose id nobody noted: given on standard input, never as an argument.
    let by_token = run(
        &["tokens", "revoke", "--db", &db, "--stdin"],
        &format!("{second}\n"),
        &env,
    );
    assert_eq!(by_token.status.code(), Some(0), "{}", stderr(&by_token));
    let listing = stdout(&run(&["tokens", "list", "--db", &db], "", &env));
    assert_eq!(
        listing.lines().count(),
        1,
        "only the header is left: {listing}"
    );
}

#[test]
fn a_key_file_other_users_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("queue.db").display());
    let key_file = dir.path().join("worker.key");
    std::fs::write(&key_file, stdout(&run(&["keys", "generate"], "", &[]))).unwrap();
    let list = |mode: u32| {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        Command::new(BIN)
            .args(["tokens", "list", "--db", &db, "--key-file"])
            .arg(&key_file)
            .env_remove("PAIRING_WORKER_KEY")
            .output()
            .expect("binary runs")
    };
    let exposed = list(0o644);
    assert_eq!(exposed.status.code(), Some(2), "{}", stderr(&exposed));
    let line = error_line(&exposed);
    assert!(
        line.contains("chmod 600") && line.contains("0644"),
        "{line}"
    );
    let private = list(0o600);
    assert_eq!(private.status.code(), Some(0), "{}", stderr(&private));
}

#[test]
fn a_bad_host_map_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let db_arg = format!("sqlite:{}", db.display());
    // Not an origin (a path), not an entry at all, and two ways of pointing the portals at once.
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--portal-host",
                "https://auth.uber.com/v2=http://127.0.0.1:9",
            ],
            "the origin is a scheme and host only",
        ),
        (
            &["--portal-host", "https://auth.uber.com"],
            "expected ORIGIN=URL",
        ),
        (
            &[
                "--sandbox",
                "--portal-host",
                "https://auth.uber.com=http://127.0.0.1:9",
            ],
            "--sandbox serves the portals here",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["serve", "--db", &db_arg, "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let out = run(&all, "", &[]);
        assert!(!out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!db.exists(), "{args:?} created the database");
        assert!(
            !dir.path().join("queue.db.key").exists(),
            "{args:?} created a key"
        );
    }
}
