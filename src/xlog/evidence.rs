//! A case's evidence bundle (案件证据包): one JSON file an auditor downloads
//! (web interface) and checks offline with `corrections-gateway log verify
//! FILE` — that these documents, signed by these agencies, were received and
//! answered as the exchange log says, at the time it says.
//!
//! It holds, for each document of the case: the original bytes as signed, the
//! signature evidence (Signature-Input, Signature, the verified signature
//! base), the signer's certificate and its agency's CA certificates, the
//! gateway's receipt and each recipient's signed receipt or ack; every
//! exchange-log entry that names the case or one of its documents, each with
//! an RFC 9162 inclusion proof; the signed checkpoint the proofs lead to, the
//! log's verifier key and the gateway's certificate.
//!
//! [`verify`] checks, naming the first thing that is wrong: the checkpoint's
//! signature; every entry's canonical form and inclusion in the checkpoint's
//! tree; for every document, that its bytes have the digest its
//! `document.accepted` entry records, that the signature over them verifies
//! with the certificate (whose fingerprint is the logged key id, bound to the
//! sender, issued by an included CA), that the receipt names the document,
//! its digest and its entry, and that each recipient's receipt or ack has the
//! digest logged for it. Like [`super::verify`], it uses no database; the
//! signature check is the gateway's own RFC 9421 code (`security`).
//!
//! What it cannot say alone: that the log key and the CA certificates in the
//! bundle are the real ones. The auditor compares the printed key with the
//! log key they hold (`DIR/pki/log.pub`, published) and the CAs with the
//! agencies' own.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::merkle::{self, Hash};
use super::note::{Checkpoint, NoteVerifier};
use crate::security::alg::{Algorithm, VerifyingKey};
use crate::security::digest::{sha256_hex, verify_content_digest};
use crate::security::httpsig::parse_signature;
use crate::security::trust::{agency_of, fingerprint, TrustStore};
use crate::store::{CaseRecord, LogFilter, Store, StoreError, StoredCheckpoint};

/// The `format` of a bundle this module writes and reads.
pub const FORMAT: &str = "corrections-gateway/case-evidence/v1";

/// Most log entries one bundle carries.
const MAX_ENTRIES: i64 = 10_000;

/// The whole bundle (pretty JSON on disk).
#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub case_id: String,
    /// RFC 3339, Beijing time.
    pub exported_at: String,
    /// The exchange log's signed-note verifier key (compare it with yours).
    pub log_key: String,
    /// The gateway's certificate (PEM): it signs receipts.
    pub gateway_certificate: String,
    /// The signed checkpoint every proof leads to.
    pub checkpoint: String,
    pub documents: Vec<Document>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub document_id: String,
    pub sender: String,
    pub message_type: String,
    pub content_type: String,
    /// Hex SHA-256 of the signed request body.
    pub body_sha256: String,
    /// The document's bytes as the sender signed them (base64). For a
    /// `multipart/related` submission, the document part: the signed body
    /// was the whole envelope (then `multipart` is true and the digest and
    /// signature are checked against `body_sha256` only).
    pub original: String,
    #[serde(default)]
    pub multipart: bool,
    /// Retention purged the body (src/retention.rs): `original` is empty and,
    /// as for `multipart`, the signature is checked against `body_sha256`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purged: bool,
    pub signature: Signature,
    /// The sender agency's CA certificates (PEM) as the gateway trusts them.
    pub ca_certificates: Vec<String>,
    /// The gateway's receipt body (base64), as first issued.
    pub receipt: Option<String>,
    /// Each recipient's signed receipt (push) or ack (pull).
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub alg: String,
    pub signature_input: String,
    pub signature: String,
    /// The RFC 9421 signature base the gateway verified.
    pub signature_base: String,
    pub signer_certificate: String,
    /// RFC 3339, Beijing time.
    pub verified_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub delivery_id: String,
    pub recipient: String,
    pub keyid: String,
    pub signature_input: String,
    pub signature: String,
    /// The receipt or ack body (base64).
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    /// The leaf: RFC 8785 canonical JSON (base64).
    pub leaf: String,
    /// The RFC 9162 audit path to the checkpoint's root (hex).
    pub proof: Vec<String>,
}

/// Collects a case's evidence up to `checkpoint` (which must cover the
/// entries wanted: publish one first).
pub async fn build(
    store: &Store,
    trust: &TrustStore,
    log_key: &str,
    gateway_certificate: &str,
    case: &CaseRecord,
    checkpoint: &StoredCheckpoint,
    exported_at: String,
) -> Result<Bundle, StoreError> {
    let mut documents = Vec::new();
    let mut ids = vec![case.id.clone()];
    for (id, _, _) in &case.documents {
        ids.push(id.clone());
        let (Some(doc), Some(evidence)) = (
            store.document(id).await?,
            store.document_evidence(id).await?,
        ) else {
            continue;
        };
        let sig = evidence.signature;
        documents.push(Document {
            document_id: doc.id,
            sender: doc.sender.clone(),
            message_type: doc.message_type,
            content_type: doc.content_type,
            body_sha256: doc.body_sha256,
            original: B64.encode(&doc.original),
            multipart: evidence.multipart,
            purged: doc.purged_at_ms.is_some(),
            ca_certificates: trust.ca_certificates(&doc.sender),
            signature: Signature {
                keyid: sig.keyid,
                alg: sig.alg,
                signature_input: sig.signature_input,
                signature: sig.signature,
                signature_base: sig.signature_base,
                signer_certificate: sig.signer_certificate,
                verified_at: crate::timefmt::beijing_ms(sig.verified_at_ms),
            },
            receipt: evidence.receipt.map(|r| B64.encode(r)),
            deliveries: evidence
                .deliveries
                .into_iter()
                .map(|(delivery_id, recipient, e)| Delivery {
                    delivery_id,
                    recipient,
                    keyid: e.keyid,
                    signature_input: e.signature_input,
                    signature: e.signature,
                    body: B64.encode(e.body),
                })
                .collect(),
        });
    }
    // Oldest first: the entries that accepted the documents are never the
    // ones a (very busy) case's limit leaves out.
    let filter = LogFilter {
        any_value: &ids,
        before: Some(checkpoint.tree_size),
        oldest_first: true,
        limit: MAX_ENTRIES,
        ..LogFilter::default()
    };
    let rows = store.log_entries_filtered(&filter).await?;
    if rows.len() as i64 == MAX_ENTRIES {
        tracing::warn!(case_id = %case.id, "evidence bundle holds the first {MAX_ENTRIES} log entries of the case only");
    }
    let mut entries = Vec::with_capacity(rows.len());
    for (row, _) in rows {
        let index = row.index.max(0) as u64;
        let proof = store.inclusion_proof(index, checkpoint.tree_size).await?;
        entries.push(Entry {
            index,
            leaf: B64.encode(&row.leaf),
            proof: proof.path.iter().map(hex::encode).collect(),
        });
    }
    Ok(Bundle {
        format: FORMAT.to_string(),
        case_id: case.id.clone(),
        exported_at,
        log_key: log_key.trim().to_string(),
        gateway_certificate: gateway_certificate.to_string(),
        checkpoint: checkpoint.note.clone(),
        documents,
        entries,
    })
}

/// What a bundle proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub case_id: String,
    pub documents: usize,
    pub entries: usize,
    pub tree_size: u64,
    pub root: Hash,
    /// The log key the checkpoint verified with (to compare with one's own).
    pub log_key: String,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

fn fail<T>(what: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(what.into()))
}

/// Whether `bytes` look like an evidence bundle (a JSON object naming [`FORMAT`]).
pub fn is_bundle(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v["format"] == FORMAT)
}

/// Verifies an evidence bundle's bytes.
pub fn verify(bytes: &[u8]) -> Result<Verified, Failure> {
    let bundle: Bundle =
        serde_json::from_slice(bytes).or_else(|e| fail(format!("not an evidence bundle: {e}")))?;
    if bundle.format != FORMAT {
        return fail(format!("format {:?} is not {FORMAT}", bundle.format));
    }
    let verifier =
        NoteVerifier::parse(&bundle.log_key).or_else(|e| fail(format!("log_key: {e}")))?;
    let checkpoint = Checkpoint::open(&bundle.checkpoint, &verifier)
        .or_else(|e| fail(format!("checkpoint: {e}")))?;
    if openssl::x509::X509::from_pem(bundle.gateway_certificate.as_bytes()).is_err() {
        return fail("gateway_certificate: not a PEM certificate");
    }

    // Every entry is in the signed tree; keep the leaves by index.
    let mut leaves: HashMap<u64, (Value, Hash)> = HashMap::new();
    for entry in &bundle.entries {
        let at = format!("entry {}", entry.index);
        let leaf = B64
            .decode(&entry.leaf)
            .or_else(|_| fail(format!("{at}: the leaf is not base64")))?;
        super::verify::check_canonical(&leaf).or_else(|what| fail(format!("{at}: {what}")))?;
        let proof: Vec<Hash> = entry
            .proof
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|h| h.try_into().ok()))
            .collect::<Option<_>>()
            .map_or_else(
                || fail(format!("{at}: a proof hash is not 32 bytes of hex")),
                Ok,
            )?;
        let hash = merkle::leaf_hash(&leaf);
        merkle::verify_inclusion(
            entry.index,
            checkpoint.size,
            &hash,
            &proof,
            &checkpoint.root,
        )
        .or_else(|e| {
            fail(format!(
                "{at}: not included in the checkpoint's tree of {} entries ({e})",
                checkpoint.size
            ))
        })?;
        let value: Value = serde_json::from_slice(&leaf).unwrap_or(Value::Null);
        leaves.insert(entry.index, (value, hash));
    }
    let accepted = |document_id: &str| {
        leaves
            .values()
            .find(|(v, _)| v["event"] == "document.accepted" && v["document_id"] == document_id)
    };
    for doc in &bundle.documents {
        let at = format!("document {}", doc.document_id);
        let Some((leaf, _)) = accepted(&doc.document_id) else {
            return fail(format!("{at}: no document.accepted entry for it"));
        };
        for (field, value) in [
            ("body_sha256", &doc.body_sha256),
            ("sender", &doc.sender),
            ("message_type", &doc.message_type),
            ("keyid", &doc.signature.keyid),
            ("alg", &doc.signature.alg),
        ] {
            if leaf[field] != value.as_str() {
                return fail(format!(
                    "{at}: its {field} is not the one its log entry records"
                ));
            }
        }
        let original = B64
            .decode(&doc.original)
            .or_else(|_| fail(format!("{at}: the original is not base64")))?;
        if !doc.multipart && !doc.purged && sha256_hex(&original) != doc.body_sha256 {
            return fail(format!(
                "{at}: the original bytes do not have the logged SHA-256"
            ));
        }
        check_signature(doc, &original).or_else(|what| fail(format!("{at}: {what}")))?;
        if let Some(receipt) = &doc.receipt {
            let receipt = B64
                .decode(receipt)
                .ok()
                .and_then(|r| serde_json::from_slice::<Value>(&r).ok())
                .map_or_else(|| fail(format!("{at}: the receipt is not JSON")), Ok)?;
            let index = receipt["log_index"].as_u64();
            let entry = index.and_then(|i| leaves.get(&i));
            let named = receipt["document_id"] == doc.document_id.as_str()
                && receipt["body_sha256"] == doc.body_sha256.as_str()
                && entry.is_some_and(|(_, hash)| receipt["leaf_hash"] == hex::encode(hash));
            if !named {
                return fail(format!(
                    "{at}: the receipt does not name the document, its digest and its log entry"
                ));
            }
        }
        for d in &doc.deliveries {
            let body = B64
                .decode(&d.body)
                .or_else(|_| fail(format!("{at}: delivery {}: not base64", d.delivery_id)))?;
            let digest = sha256_hex(&body);
            let logged = leaves.values().any(|(v, _)| {
                v["delivery_id"] == d.delivery_id.as_str()
                    && (v["receipt_sha256"] == digest.as_str()
                        || v["ack_sha256"] == digest.as_str())
            });
            if !logged {
                return fail(format!(
                    "{at}: {}'s receipt or ack is not the one logged for delivery {}",
                    d.recipient, d.delivery_id
                ));
            }
        }
    }
    Ok(Verified {
        case_id: bundle.case_id,
        documents: bundle.documents.len(),
        entries: bundle.entries.len(),
        tree_size: checkpoint.size,
        root: checkpoint.root,
        log_key: bundle.log_key,
    })
}

/// The sender's RFC 9421 signature over the document, re-verified.
fn check_signature(doc: &Document, original: &[u8]) -> Result<(), String> {
    let sig = &doc.signature;
    let cert = openssl::x509::X509::from_pem(sig.signer_certificate.as_bytes())
        .map_err(|_| "the signer certificate is not PEM".to_string())?;
    if fingerprint(&cert) != sig.keyid {
        return Err("the signer certificate's fingerprint is not the key id".into());
    }
    if agency_of(&cert).as_deref() != Some(doc.sender.as_str()) {
        return Err("the signer certificate is not bound to the sender".into());
    }
    let public = cert
        .public_key()
        .map_err(|_| "the signer certificate has no usable key".to_string())?;
    if !doc.ca_certificates.is_empty() {
        let issued = doc.ca_certificates.iter().any(|pem| {
            openssl::x509::X509::from_pem(pem.as_bytes())
                .ok()
                .and_then(|ca| ca.public_key().ok())
                .is_some_and(|key| cert.verify(&key).unwrap_or(false))
        });
        if !issued {
            return Err("the signer certificate was issued by none of the CA certificates".into());
        }
    }
    let (params, signature) = parse_signature(&sig.signature_input, &sig.signature)
        .map_err(|e| format!("the signature headers: {e}"))?;
    if params.keyid != sig.keyid || params.alg.as_str() != sig.alg {
        return Err("the signature headers name another key or algorithm".into());
    }
    let expected_tail = format!("\"@signature-params\": {}", params.serialized());
    if !sig.signature_base.ends_with(&expected_tail) {
        return Err("the signature base is not the one of the signature headers".into());
    }
    let digest = sig
        .signature_base
        .lines()
        .find_map(|l| l.strip_prefix("\"content-digest\": "))
        .ok_or("the signature does not cover content-digest")?;
    if !doc.multipart && !doc.purged {
        verify_content_digest(digest, original).map_err(|_| {
            "the signed Content-Digest is not the digest of the original".to_string()
        })?;
    } else if !digest.contains(&B64.encode(hex::decode(&doc.body_sha256).unwrap_or_default())) {
        return Err("the signed Content-Digest is not the logged body digest".into());
    }
    let alg = Algorithm::parse(&sig.alg).ok_or("unknown signature algorithm")?;
    VerifyingKey::new(public)
        .and_then(|key| key.verify(alg, sig.signature_base.as_bytes(), &signature))
        .map_err(|_| "the signature does not verify with the signer certificate".to_string())
}
