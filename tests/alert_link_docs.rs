//! The repair-link checker that docs/alerts.md gives the dashboard backend in Python, run with
//! the machine's python3 against tokens the worker signs: the documented format is the real one.

use std::process::Command;

use pairing_worker::alerts::links;

const SECRET: &str = "alert-link-secret-for-the-docs-test";

/// The ```python block of docs/alerts.md.
fn documented_verify() -> String {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.md"))
        .expect("docs/alerts.md");
    let start = docs.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + docs[start..].find("```").expect("the block ends");
    docs[start..end].to_string()
}

/// What the documented function says of `token` at `now`: its result, or the error's message.
fn python_verify(token: &str, now: i64) -> String {
    let script = format!(
        "{}\nimport sys\ntry:\n    print(verify(sys.argv[1], sys.argv[2], int(sys.argv[3])))\n\
         except ValueError as e:\n    print('error:', e)\n",
        documented_verify()
    );
    let out = Command::new("python3")
        .args(["-c", &script, SECRET, token, &now.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_documented_python_checker_agrees_with_the_worker() {
    let alert = [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f];
    let expires = 1_800_000_000;
    // The worker's own ids (packed) and any other id (carried as text).
    for account in ["3f2a9c0e5b7d41e8a6c2f0b9d4e1a7c3", "store-42/uber"] {
        let token = links::sign(SECRET, account, alert, expires);
        assert!(links::verify(SECRET, &token, expires - 1).is_ok());
        assert_eq!(
            python_verify(&token, expires - 1),
            format!("('{account}', '0a1b2c3d4e5f', {expires})")
        );
        assert_eq!(python_verify(&token, expires), "error: expired");
        // One character changed in the signature's part.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(links::verify(SECRET, &tampered, expires - 1).is_err());
        assert_eq!(
            python_verify(&tampered, expires - 1),
            "error: bad signature"
        );
    }
}
