//! One configuration: a TOML file beneath the environment beneath the flags, validated at start
//! with the file, key and problem named, and shown by `serve --print-config` with secrets masked.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pairing-worker");
const SMTP_PASSWORD: &str = "Smtp-Canary-77";
const SMS_PASSWORD: &str = "Sms-Canary-88";

fn run(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("PAIRING_WORKER_") {
            command.env_remove(name); // only the settings this test gives
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The `key = value  # source` line of a setting.
fn setting<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in\n{printed}"))
}

fn write_config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("worker.toml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_file_lies_beneath_the_environment_which_lies_beneath_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &format!(
            r#"
slots = 8
grace-secs = 45
webdriver = ["http://grid-a:4444#max_sessions=4", "http://grid-b:4444"]
logins_per_minute = 6
sandbox = true
smtp_url = "smtps://alerts:{SMTP_PASSWORD}@mail.example:465"
sms_password = "{SMS_PASSWORD}"
"#
        ),
    );
    let out = run(
        &["--config", &file, "serve", "--print-config", "--slots", "3"],
        &[
            ("PAIRING_WORKER_SESSIONS_PER_ENDPOINT", "2"),
            ("PAIRING_WORKER_WEBDRIVER", "http://env-grid:4444"),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert_eq!(setting(&printed, "slots"), "slots = 3  # flag");
    assert_eq!(
        setting(&printed, "grace_secs"),
        "grace_secs = 45  # config file"
    );
    assert_eq!(
        setting(&printed, "webdriver"),
        r#"webdriver = ["http://env-grid:4444"]  # environment"#
    );
    assert_eq!(
        setting(&printed, "sessions_per_endpoint"),
        "sessions_per_endpoint = 2  # environment"
    );
    assert_eq!(
        setting(&printed, "sandbox"),
        "sandbox = true  # config file"
    );
    assert_eq!(
        setting(&printed, "lease_secs"),
        "lease_secs = 30  # default"
    );
    assert_eq!(
        setting(&printed, "smtp_url"),
        r#"smtp_url = "smtps://alerts:********@mail.example:465"  # config file"#
    );
    assert_eq!(
        setting(&printed, "sms_password"),
        r#"sms_password = "********"  # config file"#
    );
    for secret in [SMTP_PASSWORD, SMS_PASSWORD] {
        assert!(!printed.contains(secret) && !text(&out.stderr).contains(secret));
    }
    assert!(
        !dir.path().join("pairing-worker.db").exists(),
        "printing the settings opens no database"
    );
}

#[test]
fn what_print_config_prints_reads_back_as_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        "slots = 5\nwebdriver = [\"http://grid:4444\"]\n",
    );
    let first = run(
        &["--config", &file, "serve", "--print-config"],
        &[],
        dir.path(),
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let printed = text(&first.stdout);
    let again = write_config(dir.path(), &printed);
    let second = run(
        &["--config", &again, "serve", "--print-config"],
        &[],
        dir.path(),
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    let values = |printed: &str| -> Vec<String> {
        printed
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split("  # ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&printed), values(&text(&second.stdout)));
}

#[test]
fn a_bad_file_stops_the_start_naming_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (body, expected) in [
        (
            "slots = \"many\"\n",
            "`slots`: invalid value 'many' for '--slots <SLOTS>'",
        ),
        ("slot = 3\n", "unknown key `slot` (did you mean `slots`?)"),
        (
            "webdriver = [\"ftp://grid\"]\n",
            "`webdriver`: invalid value 'ftp://grid'",
        ),
        ("slots = [1, 2]\n", "`slots`: takes one value, not a list"),
        ("sandbox = \"yes\"\n", "`sandbox`: expects true or false"),
        ("slots = \n", "not TOML"),
    ] {
        let file = write_config(dir.path(), body);
        // `--print-config`: a file wrongly accepted prints and exits 0 instead of serving; the
        // flag given as well shows the file is checked even where a flag overrides it.
        let out = run(
            &["--config", &file, "serve", "--print-config", "--sandbox"],
            &[],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out.stderr));
        let error = text(&out.stderr);
        assert!(
            error.contains(&format!("error: {file}: ")) && error.contains(expected),
            "{body}: {error}"
        );
        assert!(
            !dir.path().join("pairing-worker.db").exists(),
            "a refused start creates no database"
        );
    }
    let missing = dir.path().join("absent.toml");
    let out = run(
        &["--config", missing.to_str().unwrap(), "serve"],
        &[],
        dir.path(),
    );
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_command_takes_the_settings_it_has_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let file = write_config(
        dir.path(),
        &format!("db = \"sqlite:{}\"\nslots = 4\n", db.display()),
    );
    // `jobs show` has `db` but not `slots`: it reads one and leaves the other.
    let out = run(
        &["--config", &file, "jobs", "show", "job-1"],
        &[],
        dir.path(),
    );
    assert!(
        text(&out.stderr).contains("unknown job"),
        "{}",
        text(&out.stderr)
    );
    assert!(db.exists(), "the file's database was opened");
}
