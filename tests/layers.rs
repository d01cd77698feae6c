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
                || relative == "ops"
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

/// The product's modules bottom-up: each may import only the modules of the layers below it
/// (and itself). docs/architecture.md draws the same picture.
const LAYERS: &[&[&str]] = &[
    &["outcome", "digits", "secret", "reach", "metrics"],
    &["browser", "codes"],
    &["provider"],
    &["engine"],
    &["queue"],
    &["webhook_delivery", "worker", "alerts"],
    &["api"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level product module a source file belongs to (`src/queue/jobs.rs` → `queue`).
fn module_of(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let relative = path.strip_prefix(&src).unwrap();
    let first = relative.components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The `crate::<module>` paths a line of code names.
fn imported_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.push(name);
    }
    // `use crate::{a, b::c}` names several.
    if let Some(group) = code.split("crate::{").nth(1) {
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

#[test]
fn product_modules_import_only_the_layers_below_them() {
    let mut offenders = Vec::new();
    let mut unplaced = std::collections::BTreeSet::new();
    for path in product_sources() {
        let module = module_of(&path);
        let Some(own) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for imported in imported_modules(code) {
                let allowed =
                    imported == module || layer_of(&imported).is_some_and(|layer| layer < own);
                if !allowed {
                    offenders.push(format!(
                        "{}:{}: {module} imports {imported}",
                        path.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced:?}"
    );
    assert!(
        offenders.is_empty(),
        "imports against the layers:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_layer_scan_reads_imports() {
    assert_eq!(
        imported_modules("use crate::{queue::Queue, outcome};"),
        ["queue", "outcome"]
    );
    assert_eq!(
        imported_modules("let x = crate::engine::pairing::pair(a, crate::browser::X);"),
        ["engine", "browser"]
    );
}
