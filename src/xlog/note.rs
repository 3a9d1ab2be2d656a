//! Signed checkpoints (签名检查点): C2SP `tlog-checkpoint` bodies in C2SP
//! `signed-note` envelopes, with Ed25519 keys (signature type 0x01).
//!
//! A checkpoint is three lines — origin, tree size, base64 root hash — signed
//! as a note: the text, a blank line, then `— <key name> <base64(key id ‖
//! signature)>`. The key id is the first four bytes of
//! `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`; a verifier key is written
//! `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. The key name is the
//! log's origin. Known answers from Go's `golang.org/x/mod/sumdb/note` pin
//! the format below. Parsing never panics on input.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use super::merkle::Hash;

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// Notes larger than this are refused unread (C2SP: implementations may cap).
const MAX_NOTE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the verifier key is malformed")]
    BadVerifierKey,
    #[error("the private key is not an Ed25519 key")]
    BadSigningKey,
    #[error("the key name is not valid (empty, or contains a space or '+')")]
    BadName,
    #[error("the note is malformed: {0}")]
    Malformed(&'static str),
    #[error("the note carries no signature by {0}")]
    NotSigned(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    #[error("the checkpoint is malformed: {0}")]
    BadCheckpoint(&'static str),
    #[error("signing failed")]
    Signing,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`.
pub fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut h = openssl::sha::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(&[ED25519]);
    h.update(public);
    let d = h.finish();
    [d[0], d[1], d[2], d[3]]
}

/// A public key that checks notes.
#[derive(Clone)]
pub struct NoteVerifier {
    pub name: String,
    pub key_id: [u8; 4],
    key: PKey<Public>,
}

impl std::fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NoteVerifier({}+{})",
            self.name,
            hex::encode(self.key_id)
        )
    }
}

impl NoteVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ public key)>` and checks the key id.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let vkey = vkey.trim();
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey);
        };
        if !valid_name(name) || id.len() != 8 {
            return Err(NoteError::BadVerifierKey);
        }
        let id: [u8; 4] = hex::decode(id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::BadVerifierKey)?;
        let key = B64.decode(key).map_err(|_| NoteError::BadVerifierKey)?;
        if key.len() != 33 || key[0] != ED25519 || key_id(name, &key[1..]) != id {
            return Err(NoteError::BadVerifierKey);
        }
        let public = PKey::public_key_from_raw_bytes(&key[1..], Id::ED25519)
            .map_err(|_| NoteError::BadVerifierKey)?;
        Ok(NoteVerifier {
            name: name.to_string(),
            key_id: id,
            key: public,
        })
    }

    /// Opens a signed note: returns its text (with the final newline) if a
    /// signature line by this key verifies. Signatures by other keys are
    /// ignored; a bad signature by this key refuses the note.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(NoteError::Malformed("larger than 1 MiB"));
        }
        if note
            .chars()
            .any(|c| (c.is_ascii_control() && c != '\n') || c == '\u{7f}')
        {
            return Err(NoteError::Malformed("control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(NoteError::Malformed("does not end with a newline"));
        }
        for line in signatures[..signatures.len() - 1].split('\n') {
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
                "a signature line does not start with '— '",
            ))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("a signature line has no signature"))?;
            if !valid_name(name) {
                return Err(NoteError::Malformed(
                    "a signature line names an invalid key",
                ));
            }
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("a signature is too short"));
            }
            if name != self.name || blob[..4] != self.key_id {
                continue;
            }
            let ok = Verifier::new_without_digest(&self.key)
                .and_then(|mut v| v.verify_oneshot(&blob[4..], text.as_bytes()))
                .unwrap_or(false);
            return if ok {
                Ok(text)
            } else {
                Err(NoteError::BadSignature(self.name.clone()))
            };
        }
        Err(NoteError::NotSigned(self.name.clone()))
    }
}

/// The log's private key and its name.
pub struct NoteSigner {
    pub name: String,
    pub key_id: [u8; 4],
    public: [u8; 32],
    key: PKey<Private>,
}

impl NoteSigner {
    pub fn new(name: &str, key: PKey<Private>) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadName);
        }
        if key.id() != Id::ED25519 {
            return Err(NoteError::BadSigningKey);
        }
        let public: [u8; 32] = key
            .raw_public_key()
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or(NoteError::BadSigningKey)?;
        Ok(NoteSigner {
            name: name.to_string(),
            key_id: key_id(name, &public),
            public,
            key,
        })
    }

    /// From a PKCS#8 PEM file's bytes.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<NoteSigner, NoteError> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| NoteError::BadSigningKey)?;
        NoteSigner::new(name, key)
    }

    /// `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ED25519];
        key.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(key)
        )
    }

    /// Signs `text` (non-empty, ending in a newline, no blank line) as a note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() || !text.ends_with('\n') || text.contains("\n\n") {
            return Err(NoteError::Malformed(
                "the text must be lines ending in '\\n'",
            ));
        }
        let signature = Signer::new_without_digest(&self.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(text.as_bytes()))
            .map_err(|_| NoteError::Signing)?;
        let mut blob = self.key_id.to_vec();
        blob.extend(signature);
        Ok(format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

/// A checkpoint body (C2SP tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint text (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::BadCheckpoint("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| s.len() == 1 || !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::BadCheckpoint(
                "the size line is not a decimal number",
            ))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::BadCheckpoint(
                "the root line is not a base64 SHA-256 hash",
            ))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Opens a signed checkpoint with `verifier` and parses it; the origin
    /// must be the key's name.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
        let checkpoint = Checkpoint::parse(verifier.open(note)?)?;
        if checkpoint.origin != verifier.name {
            return Err(NoteError::BadCheckpoint(
                "the origin is not the log key's name",
            ));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note, note.go documentation and note_test.go.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                              then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter() -> NoteSigner {
        let seed = B64.decode(PETER_SEED).unwrap();
        let key = PKey::private_key_from_raw_bytes(&seed[1..], Id::ED25519).unwrap();
        NoteSigner::new("PeterNeumann", key).unwrap()
    }

    #[test]
    fn the_go_sumdb_note_example_signs_and_verifies_byte_for_byte() {
        let signer = peter();
        assert_eq!(signer.verifier_key(), PETER_VKEY);
        let note = signer.sign(PETER_TEXT).unwrap();
        assert_eq!(note, format!("{PETER_TEXT}\n{PETER_SIG}"));
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), PETER_TEXT);
    }

    #[test]
    fn tampered_notes_and_keys_are_refused_without_panicking() {
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        let note = format!("{PETER_TEXT}\n{PETER_SIG}");
        let changed = note.replace("cryptography", "cryptographs");
        assert_eq!(
            verifier.open(&changed).unwrap_err(),
            NoteError::BadSignature("PeterNeumann".into())
        );
        let other = note.replace("PeterNeumann x08", "Enoch x08");
        assert!(matches!(
            verifier.open(&other),
            Err(NoteError::NotSigned(_))
        ));
        assert!(verifier.open(PETER_TEXT).is_err());
        assert!(verifier.open("").is_err());
        assert!(verifier.open("a\n\n\u{2014} PeterNeumann !!\n").is_err());
        assert!(verifier.open("a\n\n\u{2014} PeterNeumann xw==\n").is_err());
        for bad in [
            "",
            "PeterNeumann",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpjZQ==",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
        }
        // Every truncation of a valid note is handled.
        for end in 0..note.len() {
            if note.is_char_boundary(end) {
                let _ = verifier.open(&note[..end]);
            }
        }
    }

    #[test]
    fn checkpoints_round_trip_and_bind_the_origin() {
        let key = PKey::generate_ed25519().unwrap();
        let signer = NoteSigner::new("corrections-gateway.example/log", key).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let cp = Checkpoint {
            origin: signer.name.clone(),
            size: 42,
            root: crate::xlog::merkle::leaf_hash(b"x"),
        };
        let note = signer.sign(&cp.text()).unwrap();
        assert!(note.starts_with("corrections-gateway.example/log\n42\n"));
        assert_eq!(Checkpoint::open(&note, &verifier).unwrap(), cp);
        let foreign = Checkpoint {
            origin: "elsewhere.example/log".into(),
            ..cp
        };
        let note = signer.sign(&foreign.text()).unwrap();
        assert!(Checkpoint::open(&note, &verifier).is_err());
        assert!(Checkpoint::parse("o\n01\nAA==\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAA==\n").is_err());
    }
}
