//! The provider registry is data: a sixteenth portal is a line in `registry.toml`, a spec and
//! its recorded pages. A scratch provider in a temporary folder is listed, its pages checked and
//! its sandbox scenarios paired in real Chromium by the binary as built — no rebuild.

use std::path::Path;
use std::process::Command;

const SCRATCH: &str = "scratchpie";

/// A new portal in `root`: Deliveroo's spec and pages under another id (the shape of a real
/// portal is what matters here, not its name), with two of its sandbox scenarios.
fn scratch_provider(root: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let providers = root.join("providers");
    let pages = root.join("fixtures").join(SCRATCH);
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::write(
        providers.join("registry.toml"),
        format!(
            "[[provider]]\nid = \"{SCRATCH}\"\nname = \"Scratch Pie\"\nmarkets = [\"GB\"]\nstatus = \"supported\"\n"
        ),
    )
    .unwrap();
    let spec = std::fs::read_to_string(source.join("providers/deliveroo.toml")).unwrap();
    let spec = spec.replacen("id = \"deliveroo\"", &format!("id = \"{SCRATCH}\""), 1);
    assert!(spec.contains(SCRATCH), "the spec names its id");
    std::fs::write(providers.join(format!("{SCRATCH}.toml")), spec).unwrap();
    for page in std::fs::read_dir(source.join("fixtures/deliveroo"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(page.path(), pages.join(page.file_name())).unwrap();
    }
    let script = std::fs::read_to_string(pages.join("sandbox.toml")).unwrap();
    let mut script: toml::Table = toml::from_str(&script).unwrap();
    let scenarios = script["scenarios"].as_array_mut().unwrap();
    scenarios.retain(|s| matches!(s["name"].as_str(), Some("good_login" | "wrong_password")));
    assert_eq!(scenarios.len(), 2);
    std::fs::write(
        pages.join("sandbox.toml"),
        toml::to_string(&script).unwrap(),
    )
    .unwrap();
}

fn worker(root: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pairing-worker"))
        .arg("--providers")
        .arg(root.join("providers"))
        .arg("--fixtures")
        .arg(root.join("fixtures"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_new_portal_is_a_line_a_spec_and_pages() {
    let root = tempfile::tempdir().unwrap();
    scratch_provider(root.path());
    let (ok, listed) = worker(root.path(), &["providers", "--json"]);
    assert!(ok, "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["id"], SCRATCH);
    assert_eq!(listed[0]["status"], "supported");
    assert_eq!(listed[0]["markets"], serde_json::json!(["GB"]));
    let (ok, checked) = worker(root.path(), &["fixture", "check", "--provider", SCRATCH]);
    assert!(ok, "every recorded page checks: {checked}");
    if std::env::var_os("CI").is_none() && which_chromedriver().is_none() {
        eprintln!("no chromedriver: the browser half is skipped outside CI");
        return;
    }
    let (ok, demo) = worker(root.path(), &["demo", "--provider", SCRATCH]);
    assert!(ok, "{demo}");
    assert!(
        demo.contains("good_login") && demo.contains("paired"),
        "{demo}"
    );
    assert!(
        demo.contains("0 scenario(s) did not end as expected"),
        "{demo}"
    );
}

#[test]
fn a_spec_without_its_line_or_a_line_without_its_spec_is_refused() {
    let root = tempfile::tempdir().unwrap();
    scratch_provider(root.path());
    let catalog = root.path().join("providers/registry.toml");
    std::fs::write(
        &catalog,
        "[[provider]]\nid = \"other\"\nname = \"Other\"\nstatus = \"planned\"\n",
    )
    .unwrap();
    let (ok, text) = worker(root.path(), &["providers"]);
    assert!(!ok);
    assert!(
        text.contains("is not in registry.toml: add a line for it"),
        "{text}"
    );
    std::fs::write(
        &catalog,
        format!("[[provider]]\nid = \"{SCRATCH}\"\nname = \"S\"\nstatus = \"planned\"\n"),
    )
    .unwrap();
    let (ok, text) = worker(root.path(), &["providers"]);
    assert!(!ok && text.contains("mark it `supported`"), "{text}");
    std::fs::remove_file(root.path().join(format!("providers/{SCRATCH}.toml"))).unwrap();
    std::fs::write(
        &catalog,
        format!("[[provider]]\nid = \"{SCRATCH}\"\nname = \"S\"\nstatus = \"supported\"\n"),
    )
    .unwrap();
    let (ok, text) = worker(root.path(), &["providers"]);
    assert!(!ok && text.contains("has no spec"), "{text}");
    std::fs::write(
        &catalog,
        "[[provider]]\nid = \"Bad Id\"\nname = \"S\"\nstatus = \"planned\"\n",
    )
    .unwrap();
    let (ok, text) = worker(root.path(), &["providers"]);
    assert!(!ok && text.contains("provider[0].id"), "{text}");
}

fn which_chromedriver() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|p| p.is_file())
    })
}

#[test]
fn two_providers_on_one_origin_are_refused() {
    // The host map that points portals at a sandbox is keyed by origin: a shared origin would
    // send one provider's pages to another's portal.
    let root = tempfile::tempdir().unwrap();
    scratch_provider(root.path());
    let providers = root.path().join("providers");
    let spec = std::fs::read_to_string(providers.join(format!("{SCRATCH}.toml"))).unwrap();
    std::fs::write(
        providers.join("twinpie.toml"),
        spec.replacen(&format!("id = \"{SCRATCH}\""), "id = \"twinpie\"", 1),
    )
    .unwrap();
    std::fs::write(
        providers.join("registry.toml"),
        format!(
            "[[provider]]\nid = \"{SCRATCH}\"\nname = \"S\"\nstatus = \"supported\"\n\n[[provider]]\nid = \"twinpie\"\nname = \"T\"\nstatus = \"supported\"\n"
        ),
    )
    .unwrap();
    let (ok, text) = worker(root.path(), &["providers"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("is already a host of `") && text.contains("one origin, one provider"),
        "{text}"
    );
}
