//! One configuration: a TOML file (`--config FILE`, `PAIRING_WORKER_CONFIG`) under the
//! environment under the flags. The file's keys are `serve`'s long flag names (`slots = 8`,
//! `webdriver = ["http://grid:4444"]`, `smtp_url = "…"`); every command reads the keys it has
//! (`db` serves `jobs` and `doctor` too). A key given by a flag or its environment variable
//! keeps that value; otherwise the file's value is parsed and validated exactly as the flag
//! would be, so a bad value is refused at start with the file, the key and the problem named.
//!
//! clap already merges flags, environment and defaults and knows where each value came from
//! ([`clap::parser::ValueSource`]); the file is one more layer beneath the environment. A
//! separate merge crate (figment) would need a second, serde-shaped copy of every setting kept in
//! step with the flags; here the flags stay the one definition of a setting.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The global flag naming the file.
pub const CONFIG_FLAG: &str = "config";

/// Flags that are never settings (and so neither read from the file nor printed).
const NOT_SETTINGS: &[&str] = &["help", "version", CONFIG_FLAG, "print_config"];

/// What a problem with the file says: the file, the key, the problem.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ConfigError {
    file: String,
    problem: String,
}

/// The command line as parsed, with the settings the file gave.
pub struct Parsed {
    pub matches: ArgMatches,
    /// Setting ids whose value came from the file.
    pub from_file: Vec<String>,
}

/// Parses `argv` against `command`, with the settings of the file named by `--config` (or
/// `PAIRING_WORKER_CONFIG`) beneath the environment and the flags.
pub fn matches_with_file(
    command: Command,
    argv: Vec<OsString>,
) -> Result<Parsed, Box<dyn std::error::Error>> {
    let first = command.clone().try_get_matches_from(&argv)?;
    let only_flags = |matches: ArgMatches| Parsed {
        matches,
        from_file: Vec::new(),
    };
    let Some(file) = first.get_one::<std::path::PathBuf>(CONFIG_FLAG).cloned() else {
        return Ok(only_flags(first));
    };
    // The command that runs: `serve`, or `submit` of `jobs submit`.
    let (mut this, mut sub) = (command.clone(), &first);
    while let Some((name, deeper)) = sub.subcommand() {
        this = this
            .find_subcommand(name)
            .expect("the parsed subcommand")
            .clone();
        sub = deeper;
    }
    if std::ptr::eq(sub, &first) {
        return Ok(only_flags(first));
    }
    let fail = |problem: String| ConfigError {
        file: file.display().to_string(),
        problem,
    };
    let table = read_table(&file).map_err(fail)?;
    let reference = settings_command(&command);
    let mut extra = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let id = key.replace('-', "_");
        let named = |command: &Command| -> Option<clap::Arg> {
            settings(command)
                .find(|a| a.get_id() == id.as_str())
                .cloned()
        };
        // `serve`'s flags, and the global ones (`providers`) every command has.
        let Some(known) = named(&reference).or_else(|| named(&command)) else {
            return Err(fail(unknown_key(key, &reference)).into());
        };
        // The file's shape is checked even where this command lacks the setting or a flag
        // overrides it.
        let flag = format!("--{}", known.get_long().expect("settings have long flags"));
        let values = flag_values(&flag, known.get_action(), value)
            .map_err(|problem| fail(format!("`{key}`: {problem}")))?;
        if named(&this).or_else(|| named(&command)).is_none() {
            continue; // a `serve` setting this command does not have
        }
        let given = |matches: &ArgMatches| {
            // Only ids the matches know: asking about any other is a debug-build panic.
            let known = matches.try_get_raw(&id).is_ok();
            known
                && matches!(
                    matches.value_source(&id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        };
        if given(sub) || given(&first) {
            continue; // flags and the environment win over the file
        }
        extra.extend(values);
        from_file.push(id);
    }
    let argv = with_file_args(argv, extra.clone());
    let parsed = command.try_get_matches_from(&argv).map_err(|error| {
        // Name the key when a value from the file is what clap refused.
        let culprit = error
            .get(clap::error::ContextKind::InvalidArg)
            .map(|arg| arg.to_string())
            .and_then(|arg| {
                let long = arg.split([' ', '=']).next()?.to_string();
                extra
                    .iter()
                    .any(|given| given.to_string_lossy().starts_with(&long))
                    .then(|| long.trim_start_matches("--").replace('-', "_"))
            });
        let detail = error.to_string();
        let detail = detail.lines().next().unwrap_or_default();
        let detail = detail.trim_start_matches("error: ").to_string();
        match culprit {
            Some(key) => Box::new(fail(format!("`{key}`: {detail}"))) as Box<dyn std::error::Error>,
            None => Box::new(error),
        }
    })?;
    Ok(Parsed {
        matches: parsed,
        from_file,
    })
}

/// `serve`: its flags are the settings a file may hold.
fn settings_command(command: &Command) -> Command {
    command
        .find_subcommand("serve")
        .expect("serve exists")
        .clone()
}

fn read_table(file: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("not TOML: {}", e.to_string().trim_end()))
}

fn unknown_key(key: &str, reference: &Command) -> String {
    let known: Vec<String> = settings(reference)
        .map(|a| a.get_id().to_string())
        .collect();
    let near = known
        .iter()
        .min_by_key(|candidate| strsim::levenshtein(candidate, &key.replace('-', "_")))
        .filter(|candidate| strsim::levenshtein(candidate, &key.replace('-', "_")) <= 3);
    match near {
        Some(near) => format!("unknown key `{key}` (did you mean `{near}`?)"),
        None => format!(
            "unknown key `{key}`; settings are serve's flags: {}",
            known.join(", ")
        ),
    }
}

fn settings(command: &Command) -> impl Iterator<Item = &clap::Arg> {
    command
        .get_arguments()
        .filter(|a| !NOT_SETTINGS.contains(&a.get_id().as_str()) && a.get_long().is_some())
}

/// The arguments one file value stands for.
fn flag_values(
    flag: &str,
    action: &ArgAction,
    value: &toml::Value,
) -> Result<Vec<OsString>, String> {
    use toml::Value as V;
    let scalar = |value: &V| -> Result<String, String> {
        match value {
            V::String(s) => Ok(s.clone()),
            V::Integer(n) => Ok(n.to_string()),
            V::Float(f) => Ok(f.to_string()),
            V::Boolean(b) => Ok(b.to_string()),
            other => Err(format!("a {} is not a value here", other.type_str())),
        }
    };
    if !action.takes_values() {
        return match value {
            V::Boolean(true) => Ok(vec![flag.into()]),
            V::Boolean(false) => Ok(Vec::new()),
            other => Err(format!("expects true or false, not {other}")),
        };
    }
    match value {
        V::Array(items) => {
            if !matches!(action, ArgAction::Append) && items.len() > 1 {
                return Err("takes one value, not a list".into());
            }
            items
                .iter()
                .map(|item| Ok(format!("{flag}={}", scalar(item)?).into()))
                .collect()
        }
        value => Ok(vec![format!("{flag}={}", scalar(value)?).into()]),
    }
}

/// `argv` with `extra` at its end (options may follow the innermost subcommand's positionals),
/// before a `--` if there is one.
fn with_file_args(argv: Vec<OsString>, extra: Vec<OsString>) -> Vec<OsString> {
    let at = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let mut out = argv[..at].to_vec();
    out.extend(extra);
    out.extend_from_slice(&argv[at..]);
    out
}

/// The effective settings of `sub` (the matches of `command`) as a TOML file a `--config` could
/// read, each with where it came from; secrets masked.
pub fn print_effective(command: &Command, sub: &ArgMatches, from_file: &[String]) -> String {
    let mut out = String::from(
        "# Effective settings (flag > environment > --config file > default); secrets masked.\n",
    );
    for arg in settings(command) {
        let id = arg.get_id().as_str();
        let source = match sub.value_source(id) {
            _ if from_file.iter().any(|f| f == id) => "config file",
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            Some(_) => "set",
            None => "unset",
        };
        let value = if !arg.get_action().takes_values() {
            Some(toml::Value::Boolean(sub.get_flag(id)))
        } else {
            sub.get_raw(id).map(|raw| {
                let values: Vec<toml::Value> = raw
                    .map(|v| typed(&mask(id, &v.to_string_lossy())))
                    .collect();
                match (arg.get_action(), values.len()) {
                    (ArgAction::Append, _) => toml::Value::Array(values),
                    (_, 1) => values.into_iter().next().expect("one"),
                    _ => toml::Value::Array(values),
                }
            })
        };
        match value {
            Some(value) => out.push_str(&format!("{id} = {value}  # {source}\n")),
            None => out.push_str(&format!("# {id} =  (unset)\n")),
        }
    }
    out
}

/// A number stays a number; everything else is a string.
fn typed(value: &str) -> toml::Value {
    value
        .parse::<i64>()
        .map(toml::Value::Integer)
        .unwrap_or_else(|_| toml::Value::String(value.to_string()))
}

/// Settings that are secrets whole, by name; and any URL's password, whatever the setting.
fn mask(id: &str, value: &str) -> String {
    const MASK: &str = "********";
    if ["password", "token", "secret"]
        .iter()
        .any(|s| id.contains(s))
    {
        return MASK.into();
    }
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(MASK));
            url.to_string()
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_and_secret_settings_are_masked() {
        assert_eq!(
            mask("smtp_url", "smtps://alerts:hunter2@mail.example:465"),
            "smtps://alerts:********@mail.example:465"
        );
        assert_eq!(mask("sms_password", "tok-123"), "********");
        assert_eq!(
            mask("db", "postgres://worker@db/pairing"),
            "postgres://worker@db/pairing"
        );
        assert_eq!(mask("slots", "8"), "8");
    }

    #[test]
    fn file_values_become_the_flags_they_stand_for() {
        let list = toml::Value::Array(vec!["http://a".into(), "http://b".into()]);
        assert_eq!(
            flag_values("--webdriver", &ArgAction::Append, &list).unwrap(),
            vec![
                OsString::from("--webdriver=http://a"),
                "--webdriver=http://b".into()
            ]
        );
        assert_eq!(
            flag_values("--sandbox", &ArgAction::SetTrue, &true.into()).unwrap(),
            vec![OsString::from("--sandbox")]
        );
        assert!(flag_values("--sandbox", &ArgAction::SetTrue, &"yes".into()).is_err());
        assert!(flag_values("--slots", &ArgAction::Set, &list).is_err());
        assert_eq!(
            with_file_args(
                vec!["pw".into(), "x".into(), "--".into(), "y".into()],
                vec!["--db=sqlite:x".into()]
            ),
            vec![
                OsString::from("pw"),
                "x".into(),
                "--db=sqlite:x".into(),
                "--".into(),
                "y".into()
            ]
        );
    }
}
