//! Encryption at rest: XChaCha20-Poly1305 (RustCrypto) with a random nonce per ciphertext, the
//! row's id as associated data (a ciphertext copied to another row does not decrypt), and a key id
//! stored beside every ciphertext so keys can rotate. Keys come from the environment or a file,
//! never from the database.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// One 256-bit key and its id.
pub struct Key {
    pub id: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no encryption key: set PAIRING_WORKER_KEY or pass --key-file (create one with `pairing-worker keys generate`)")]
    Missing,
    #[error("malformed encryption key `{id}`: expected `ID:BASE64` with 32 bytes of key, as `pairing-worker keys generate` prints")]
    Malformed { id: String },
    #[error("cannot read key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("key file {path} is readable or writable by other users (mode {mode:04o}): run `chmod 600 {path}` (in a container secret mount, set its mode to 0400), or pass the key in PAIRING_WORKER_KEY")]
    Exposed { path: String, mode: u32 },
    #[error("key `{0}` does not decrypt this database's secrets: it is not the key they were encrypted with")]
    WrongKey(String),
    #[error("this database holds secrets under key(s) {0}, which are not configured: add them to PAIRING_WORKER_OLD_KEYS (or the key file) to read them, or `keys rotate` them away")]
    UnknownKeyIds(String),
    #[error("a stored secret does not decrypt (damaged, or moved from another row)")]
    Undecryptable,
}

impl Key {
    /// A fresh random key with a random id.
    pub fn generate() -> Key {
        Key::parse(&Zeroizing::new(Key::generate_line())).expect("a generated key parses")
    }

    /// `ID:BASE64`.
    pub fn parse(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let (id, encoded) = text.split_once(':').ok_or(KeyError::Malformed {
            id: "(no id)".into(),
        })?;
        let malformed = || KeyError::Malformed { id: id.to_string() };
        let valid_id = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_id {
            return Err(malformed());
        }
        let bytes = Zeroizing::new(BASE64.decode(encoded.trim()).map_err(|_| malformed())?);
        let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| malformed())?;
        Ok(Key {
            id: id.to_string(),
            cipher: XChaCha20Poly1305::new(bytes.into()),
        })
    }

    /// The line `keys generate` prints: the only time key material is ever shown.
    pub fn generate_line() -> String {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let mut id = [0u8; 4];
        rand::rng().fill_bytes(&mut id);
        let id = id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        format!("k{id}:{}", BASE64.encode(bytes.as_ref()))
    }

    /// `base64(nonce || ciphertext)`, bound to `context` (the row it belongs to).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64.encode(out)
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let bytes = BASE64.decode(sealed).map_err(|_| KeyError::Undecryptable)?;
        if bytes.len() < 24 {
            return Err(KeyError::Undecryptable);
        }
        let (nonce, body) = bytes.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Undecryptable)
    }
}

/// The current key (everything new is sealed with it) and older keys still readable.
#[derive(Debug)]
pub struct KeyRing {
    pub current: Key,
    pub older: Vec<Key>,
}

impl KeyRing {
    pub fn new(current: Key) -> KeyRing {
        KeyRing {
            current,
            older: Vec::new(),
        }
    }

    /// `current` is one `ID:BASE64`; `older` a comma- or newline-separated list of them.
    pub fn parse(current: &str, older: Option<&str>) -> Result<KeyRing, KeyError> {
        let current = Key::parse(current)?;
        let older = older
            .unwrap_or_default()
            .split([',', '\n'])
            .filter(|line| !line.trim().is_empty())
            .map(Key::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing { current, older })
    }

    /// A key file: the first line is the current key, the rest older ones (`#` comments allowed).
    ///
    /// Refused when its group or others may read or write it, as ssh refuses such a private key:
    /// the key opens every stored credential, a warning in a log nobody reads protects none of
    /// them, and the fix is one `chmod`.
    pub fn from_file(path: &Path) -> Result<KeyRing, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| KeyError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.display().to_string(),
                mode: mode & 0o7777,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?);
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        let current = lines.next().ok_or(KeyError::Missing)?;
        let older = lines.collect::<Vec<_>>().join("\n");
        KeyRing::parse(current, Some(&older))
    }

    /// Writes a new key file readable by its owner only; fails if one exists.
    pub fn create_file(path: &Path) -> Result<KeyRing, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let line = Zeroizing::new(Key::generate_line());
        let failed = |e: std::io::Error| KeyError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        writeln!(
            file,
            "# pairing-worker encryption key: keep it safe; without it the stored credentials are lost\n{}",
            line.as_str()
        )
        .map_err(failed)?;
        KeyRing::parse(&line, None)
    }

    pub fn get(&self, id: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|key| key.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.id.as_str()).chain(self.older.iter().map(|k| k.id.as_str()))
    }

    pub fn open(
        &self,
        key_id: &str,
        sealed: &str,
        context: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.get(key_id)
            .ok_or_else(|| KeyError::UnknownKeyIds(key_id.to_string()))?
            .open(sealed, context)
    }
}

/// What a key seals to prove, later, that a configured key with the same id is the same key.
pub const KEY_CHECK: &[u8] = b"pairing-worker key check";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_row() {
        let key = Key::generate();
        let sealed = key.seal(b"hunter2", "account:a1");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            key.open(&sealed, "account:a1").unwrap().as_slice(),
            b"hunter2"
        );
        assert_eq!(
            key.open(&sealed, "account:a2"),
            Err(KeyError::Undecryptable)
        );
        assert_eq!(
            Key::generate().open(&sealed, "account:a1"),
            Err(KeyError::Undecryptable)
        );
        assert_eq!(
            key.open("not base64!", "account:a1"),
            Err(KeyError::Undecryptable)
        );
        // Same plaintext twice: different nonces, different ciphertexts.
        assert_ne!(sealed, key.seal(b"hunter2", "account:a1"));
    }

    #[test]
    fn keys_parse_from_the_generated_line_and_reject_the_rest() {
        let line = Key::generate_line();
        let key = Key::parse(&line).unwrap();
        assert_eq!(key.id, line.split(':').next().unwrap());
        for bad in [
            "",
            "nocolon",
            ":AAAA",
            "k1:not-base64",
            "k1:AAAA",
            "k 1:AAAA",
        ] {
            assert!(
                matches!(Key::parse(bad), Err(KeyError::Malformed { .. })),
                "{bad}"
            );
        }
        let error = Key::parse("k1:c2hvcnQ=").unwrap_err().to_string();
        assert!(
            !error.contains("c2hvcnQ"),
            "key material in an error: {error}"
        );
    }

    #[test]
    fn key_file_holds_current_then_older_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let created = KeyRing::create_file(&path).unwrap();
        assert!(
            KeyRing::create_file(&path).is_err(),
            "never overwrites a key file"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let old = Key::generate_line();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{old}\n")).unwrap();
        let ring = KeyRing::from_file(&path).unwrap();
        assert_eq!(ring.current.id, created.current.id);
        assert_eq!(ring.older.len(), 1);
        assert!(ring.get(old.split(':').next().unwrap()).is_some());
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        KeyRing::create_file(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match KeyRing::from_file(&path) {
                Err(KeyError::Exposed { mode: got, .. }) => assert_eq!(got, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        let error = KeyRing::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(KeyRing::from_file(&path).is_ok(), "mode {mode:o}");
        }
    }
}
