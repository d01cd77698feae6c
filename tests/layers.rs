//! Layers point one way: the developer kit (`src/kit/`: recorded pages, sandbox, corpus,
//! checklist, fixture promotion) imports the product; the product never imports the kit.

use std::path::{Path, PathBuf};

/// Every module of the product library (everything but `kit/`, and the binary's composition root).
fn product_sources() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .to_string();
            // The kit itself, and the binary that composes product and kit for the command line.
            if relative == "kit"
                || [
                    "main.rs",
                    "cli.rs",
                    "kit_cli.rs",
                    "ops.rs",
                    "lexicon_cli.rs",
                ]
                .contains(&relative.as_str())
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if relative.ends_with(".rs") && relative != "lib.rs" {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn the_product_never_imports_the_developer_kit() {
    let sources = product_sources();
    assert!(sources.len() > 40, "the scan found {} files", sources.len());
    let mut offenders = Vec::new();
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if [
                "crate::kit",
                "super::kit",
                "pairing_worker::kit",
                "indicatif",
            ]
            .iter()
            .any(|kit| code.contains(kit))
            {
                offenders.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the product imports the kit:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scan_sees_an_import_of_the_kit() {
    // The kit does import the product: the same scan, run over it, finds product paths (so the
    // check above is looking at real `use` lines, not at nothing).
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kit/sandbox/mod.rs");
    let text = std::fs::read_to_string(kit).unwrap();
    assert!(text.contains("crate::provider"));
}
