//! The exchange log (交换日志): what happened, recorded so that an auditor can
//! check it without trusting the gateway.
//!
//! This module owns the *content* and *hashing* of log entries: each event is
//! serialised as RFC 8785 canonical JSON (the leaf), hashed as an RFC 9162
//! leaf (`SHA-256(0x00 ‖ leaf)`); the leaves form an RFC 9162 Merkle tree
//! ([`merkle`]) whose complete subtrees the store keeps, with signed
//! checkpoints ([`note`], [`checkpoints`]) and an offline verifier
//! ([`verify`], fed by [`export`]). Appending happens in `store`, inside the
//! same transaction as the event it records. A leaf must never hold personal data: only ids, agency
//! ids, message types, digests, codes and times — the types below have no
//! field that could carry a name, an ID number or an address.

pub mod checkpoints;
pub mod evidence;
pub mod export;
pub mod merkle;
pub mod note;
pub mod verify;

use serde::Serialize;

use crate::timefmt;

/// Version of the leaf format, so a verifier knows how to read old entries.
pub const LEAF_VERSION: u32 = 1;

/// One event of the exchange log.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum LogEvent {
    /// A submission passed every check and was committed.
    #[serde(rename = "document.accepted")]
    DocumentAccepted {
        document_id: String,
        receipt_id: String,
        sender: String,
        message_type: String,
        body_sha256: String,
        keyid: String,
        alg: String,
        recipients: Vec<String>,
        copies: Vec<String>,
        case_id: Option<String>,
        /// The case's state after this document (opened or moved on).
        #[serde(skip_serializing_if = "Option::is_none")]
        case_state: Option<String>,
        /// What the document did to the case's periods: `name:started`,
        /// `name:met`, `name:met_late`, `name:closed`, `name:extended`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        deadline_events: Vec<String>,
        /// The web user id (not the name) who wrote the document in the web
        /// interface and had the gateway sign it for the sender.
        #[serde(skip_serializing_if = "Option::is_none")]
        by_user: Option<String>,
    },
    /// A submission was refused; only its digest and the reasons are kept.
    #[serde(rename = "submission.rejected")]
    SubmissionRejected {
        body_sha256: String,
        /// The verified signer's agency, when verification got that far.
        signer: Option<String>,
        /// The key id the request named, verified or not (a certificate fingerprint).
        keyid: Option<String>,
        status: u16,
        codes: Vec<String>,
        /// The web user id, for a document written in the web interface.
        #[serde(skip_serializing_if = "Option::is_none")]
        by_user: Option<String>,
    },
    /// A legal period ran out unanswered (found by the overdue sweep, once per deadline).
    #[serde(rename = "deadline.missed")]
    DeadlineMissed {
        case_id: String,
        /// The period's name in rules/periods.toml, e.g. `handover.receipt`.
        step: String,
        /// RFC 3339 UTC.
        due_at: String,
    },
    /// A document's bytes or canonical form were handed to an agency.
    #[serde(rename = "document.read")]
    DocumentRead {
        document_id: String,
        reader: String,
        view: String,
    },
    /// A person's ID number was shown in full to a web user (it is masked
    /// unless asked for, src/web/search.rs). Who and which document — never
    /// the number or the name.
    #[serde(rename = "personal_data.read")]
    PersonalDataRead {
        document_id: String,
        /// The web user's id (a UUID, not the user name).
        user_id: String,
        role: String,
        /// The user's agency (clerks) or region (supervisors).
        #[serde(skip_serializing_if = "Option::is_none")]
        agency: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Which field: `subject.id_number`.
        field: String,
    },
    /// An agency read exchange-log entries `[start, end)` (the leaves; proofs
    /// and checkpoints are public and not logged).
    #[serde(rename = "log.read")]
    LogRead {
        /// The agency, or `web` for a page of the auditor's log browser.
        reader: String,
        start: u64,
        end: u64,
        /// The web user's id (a UUID) for the log browser.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// An agency uploaded an attachment on its own (first upload of these
    /// bytes by that agency). File names are never logged: they may name the person.
    #[serde(rename = "attachment.uploaded")]
    AttachmentUploaded {
        sha256: String,
        uploader: String,
        keyid: String,
        size: u64,
    },
    /// An attachment upload was refused; only the digest it claimed and the reasons are kept.
    #[serde(rename = "attachment.rejected")]
    AttachmentRejected {
        /// The SHA-256 named in the request path.
        sha256: String,
        signer: Option<String>,
        keyid: Option<String>,
        status: u16,
        codes: Vec<String>,
    },
    /// An attachment of a document was handed to an agency.
    #[serde(rename = "attachment.read")]
    AttachmentRead {
        document_id: String,
        sha256: String,
        reader: String,
    },
    /// One push attempt of a delivery failed (src/delivery): `outcome` is
    /// its code (docs/errors.md, delivery outcomes), `http_status` the
    /// recipient's answer if it gave one.
    #[serde(rename = "delivery.attempted")]
    DeliveryAttempted {
        delivery_id: String,
        document_id: String,
        recipient: String,
        attempt: u32,
        outcome: String,
        http_status: Option<u16>,
    },
    /// The recipient's signed receipt of a pushed document was verified.
    #[serde(rename = "delivery.receipted")]
    DeliveryReceipted {
        delivery_id: String,
        document_id: String,
        recipient: String,
        attempt: u32,
        http_status: u16,
        /// Hex SHA-256 of the receipt body as the recipient signed it.
        receipt_sha256: String,
        /// The recipient's signing certificate fingerprint.
        keyid: String,
        /// Periods whose clock this receipt started (`name:started`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        deadline_events: Vec<String>,
    },
    /// A pulled document was acknowledged with a signed ack.
    #[serde(rename = "mailbox.acked")]
    MailboxAcked {
        delivery_id: String,
        document_id: String,
        recipient: String,
        /// Hex SHA-256 of the ack body as the recipient signed it.
        ack_sha256: String,
        keyid: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        deadline_events: Vec<String>,
    },
    /// A push delivery ran out of attempts (or cannot be attempted) and waits
    /// for a manual retry.
    #[serde(rename = "delivery.dead_lettered")]
    DeliveryDeadLettered {
        delivery_id: String,
        document_id: String,
        recipient: String,
        attempts: u32,
        last_error: String,
    },
    /// An auditor downloaded a case's evidence bundle (it holds the case's
    /// documents): who, which case, which documents, up to which tree size.
    #[serde(rename = "evidence.exported")]
    EvidenceExported {
        case_id: String,
        /// The web user's id (a UUID).
        user_id: String,
        documents: Vec<String>,
    },
    /// A dead letter was put back in the outbox by hand.
    #[serde(rename = "delivery.retried")]
    DeliveryRetried {
        delivery_id: String,
        document_id: String,
        recipient: String,
        /// The agency that asked (the document's sender), or `operator` (CLI).
        by: String,
    },
    /// Retention purged the bodies, attachments and personal data of these
    /// documents after their period (src/retention.rs). Ids and counts only;
    /// the digests the earlier entries hold stay valid.
    #[serde(rename = "retention.purged")]
    RetentionPurged {
        /// `purge` or `archive`.
        mode: String,
        documents: Vec<String>,
        /// Rows of personal data (the clerks' search index) removed.
        subjects: u64,
        /// Attachment references whose bytes were released (file names blanked).
        attachments: u64,
        /// Archive mode: hex SHA-256 of the archive's `documents.jsonl`, so
        /// the signed log vouches for the archive's content.
        #[serde(skip_serializing_if = "Option::is_none")]
        archive_sha256: Option<String>,
    },
    /// An admin changed a web user in the web interface (src/web/admin.rs).
    /// Ids, role and scope only: never the user name, e-mail or password.
    #[serde(rename = "user.changed")]
    UserChanged {
        /// `created`, `password_reset`, `unlocked`, `disabled` or `enabled`.
        change: String,
        /// The changed user's id (a UUID).
        user_id: String,
        role: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        agency: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The admin's user id (a UUID).
        by_user: String,
    },
}

/// Every `event` a leaf can name, in the order of [`LogEvent`] (the
/// auditor's filter lists them; a test checks the list against the enum).
pub const EVENT_KINDS: &[&str] = &[
    "document.accepted",
    "submission.rejected",
    "deadline.missed",
    "document.read",
    "personal_data.read",
    "log.read",
    "attachment.uploaded",
    "attachment.rejected",
    "attachment.read",
    "delivery.attempted",
    "delivery.receipted",
    "mailbox.acked",
    "delivery.dead_lettered",
    "evidence.exported",
    "delivery.retried",
    "retention.purged",
    "user.changed",
];

/// The leaf as stored and hashed: the event plus its version and time.
#[derive(Debug, Clone, Serialize)]
pub struct Leaf<'a> {
    pub v: u32,
    /// RFC 3339 UTC with milliseconds.
    pub at: String,
    #[serde(flatten)]
    pub event: &'a LogEvent,
}

/// A leaf ready to append: its canonical bytes and RFC 9162 leaf hash.
#[derive(Debug, Clone)]
pub struct PreparedLeaf {
    pub bytes: Vec<u8>,
    pub leaf_hash: [u8; 32],
    pub at_ms: i64,
}

/// Where an entry landed in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    pub index: i64,
    pub leaf_hash: [u8; 32],
}

impl LogPosition {
    pub fn leaf_hash_hex(&self) -> String {
        hex::encode(self.leaf_hash)
    }
}

/// Serialises an event canonically (RFC 8785) and computes its leaf hash.
pub fn prepare(event: &LogEvent, at: time::OffsetDateTime) -> PreparedLeaf {
    let at_ms = timefmt::unix_ms(at);
    let leaf = Leaf {
        v: LEAF_VERSION,
        at: timefmt::utc_ms(at_ms),
        event,
    };
    // Serialising a struct of strings, numbers and lists cannot fail.
    let bytes = serde_json_canonicalizer::to_vec(&leaf).unwrap_or_default();
    let leaf_hash = leaf_hash(&bytes);
    PreparedLeaf {
        bytes,
        leaf_hash,
        at_ms,
    }
}

/// RFC 9162 §2.1.1: the hash of a leaf is SHA-256 over 0x00 followed by the leaf.
pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    merkle::leaf_hash(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_list_every_event_of_the_enum_in_order() {
        let source = include_str!("mod.rs");
        let enum_body = &source[source.find("pub enum LogEvent").unwrap()..];
        let enum_body = &enum_body[..enum_body.find("\n}\n").unwrap()];
        let renamed: Vec<&str> = enum_body
            .split("#[serde(rename = \"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
            .collect();
        assert_eq!(renamed, EVENT_KINDS);
    }

    #[test]
    fn leaf_is_canonical_json_with_sorted_keys_and_rfc9162_hash() {
        let event = LogEvent::DocumentRead {
            document_id: "d1".into(),
            reader: "court.620102".into(),
            view: "original".into(),
        };
        let at = time::macros::datetime!(2026-11-23 06:43:14.123 UTC);
        let leaf = prepare(&event, at);
        assert_eq!(
            String::from_utf8(leaf.bytes.clone()).unwrap(),
            r#"{"at":"2026-11-23T06:43:14.123Z","document_id":"d1","event":"document.read","reader":"court.620102","v":1,"view":"original"}"#
        );
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(&leaf.bytes);
        assert_eq!(leaf.leaf_hash, crate::security::digest::sha256(&prefixed));
        assert_eq!(leaf.at_ms, 1_795_416_194_123);
    }
}
