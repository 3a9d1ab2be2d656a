//! One submission through the pipeline: verify → decode → validate → route →
//! commit, ending in a receipt or a rejection.
//!
//! The order is the security argument: the signature, the signer's
//! certificate and the replay record are checked before the body is parsed;
//! the body is decoded with the dialect the *verified* signer's agency is
//! registered for; the document's claimed sender must be that agency. A
//! rejection writes one digest-only entry to the exchange log and nothing
//! else; an acceptance writes everything in one transaction
//! (`Store::commit_document`) and only then returns the receipt.

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::Gateway;
use crate::formats::Dialect;
use crate::model::{CanonicalDocument, MessageType};
use crate::security::digest::sha256_hex;
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::{verify_request, RequestParts, VerifiedRequest};
use crate::security::SecurityError;
use crate::store::{Committed, NewDocument, SignatureEvidence};
use crate::timefmt::{self, unix_ms};
use crate::violation::{Bilingual, Violation, Violations};
use crate::workflow::{handover, routing};
use crate::xlog::{self, LogEvent, LogPosition};

/// A request to submit one document, as captured by the HTTP layer.
#[derive(Debug, Clone)]
pub struct Submission {
    pub parts: RequestParts,
    pub body: bytes::Bytes,
}

/// A document that was accepted now (201) or earlier (200, idempotent resubmission).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub status: u16,
    /// The receipt body (JSON), byte-identical for every resubmission.
    pub receipt: Vec<u8>,
}

/// Why a submission was refused: one top-level problem plus every field problem.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub title: Bilingual,
    pub problems: Violations,
}

impl Rejection {
    fn security(e: &SecurityError) -> Rejection {
        Rejection {
            status: e.http_status(),
            code: e.code(),
            title: e.message(),
            problems: Vec::new(),
        }
    }

    fn invalid(problems: Violations) -> Rejection {
        Rejection {
            status: 422,
            code: "invalid_document",
            title: Bilingual::new(
                "文书内容有误，详见 errors",
                "the document has problems, see errors",
            ),
            problems,
        }
    }

    fn with(status: u16, problem: Violation) -> Rejection {
        Rejection {
            status,
            code: problem.code,
            title: problem.message.clone(),
            problems: vec![problem],
        }
    }

    /// Every code, top-level first, for the exchange log.
    pub fn codes(&self) -> Vec<String> {
        let mut codes = vec![self.code.to_string()];
        for p in &self.problems {
            if !codes.iter().any(|c| c == p.code) {
                codes.push(p.code.to_string());
            }
        }
        codes
    }
}

/// Either outcome can fail to be recorded if the database is down; that is
/// an [`Unavailable`], never a receipt.
#[derive(Debug, thiserror::Error)]
#[error("storage unavailable: {0}")]
pub struct Unavailable(#[from] pub crate::store::StoreError);

/// The receipt (回执) body, as signed and sent to the submitter (protocol.md).
#[derive(Debug, Serialize)]
struct Receipt<'a> {
    receipt_id: &'a str,
    document_id: &'a str,
    sender: &'a str,
    message_type: &'a str,
    document_no: &'a str,
    body_sha256: &'a str,
    received_at: String,
    recipients: &'a [String],
    copies: &'a [String],
    case_id: Option<&'a str>,
    deadlines: Vec<ReceiptDeadline<'a>>,
    log_index: i64,
    leaf_hash: String,
    signer: ReceiptSigner<'a>,
}

#[derive(Debug, Serialize)]
struct ReceiptDeadline<'a> {
    step: &'a str,
    period: &'a str,
    due_at: Option<String>,
    status: &'a str,
}

#[derive(Debug, Serialize)]
struct ReceiptSigner<'a> {
    keyid: &'a str,
    alg: &'a str,
    agency: &'a str,
}

/// Runs one submission. `Ok(Err(rejection))` is a refusal already written to
/// the exchange log; `Err` means storage failed and nothing was promised.
pub async fn submit(
    gw: &Gateway,
    sub: Submission,
) -> Result<Result<Accepted, Rejection>, Unavailable> {
    let now = OffsetDateTime::now_utc();
    let body_sha256 = sha256_hex(&sub.body);
    let mut keyid = None;
    let mut signer = None;
    let outcome = run(gw, &sub, now, &body_sha256, &mut keyid, &mut signer).await?;
    if let Err(rejection) = &outcome {
        let event = LogEvent::SubmissionRejected {
            body_sha256,
            signer,
            keyid,
            status: rejection.status,
            codes: rejection.codes(),
        };
        gw.store.append_log(&xlog::prepare(&event, now)).await?;
    }
    Ok(outcome)
}

async fn run(
    gw: &Gateway,
    sub: &Submission,
    now: OffsetDateTime,
    body_sha256: &str,
    keyid_seen: &mut Option<String>,
    signer_seen: &mut Option<String>,
) -> Result<Result<Accepted, Rejection>, Unavailable> {
    // verify
    let verified = match verify_request(
        &sub.parts,
        Some(&sub.body),
        &REQUEST_COMPONENTS,
        &gw.trust,
        gw.settings.signature_window_secs,
        now.unix_timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => {
            if let Some(input) = &sub.parts.signature_input {
                *keyid_seen = crate::security::httpsig::parse_signature(
                    input,
                    sub.parts.signature.as_deref().unwrap_or(""),
                )
                .ok()
                .map(|(p, _)| p.keyid);
            }
            return Ok(Err(Rejection::security(&e)));
        }
    };
    *keyid_seen = Some(verified.params.keyid.clone());
    *signer_seen = Some(verified.signer.agency.clone());
    if gw
        .store
        .signature_seen(&verified.params.keyid, &verified.signature_sha256)
        .await?
    {
        return Ok(Err(Rejection::security(&SecurityError::ReplayedSignature)));
    }
    let agency = verified.signer.agency.as_str();
    let Some(registered) = gw.registry.get(agency) else {
        return Ok(Err(Rejection::with(
            403,
            Violation::new(
                "agency_not_registered",
                "",
                "签名机构未在机构名录中登记",
                "the signing agency is not registered with the gateway",
            ),
        )));
    };
    let dialect = registered.dialect;
    let charset = match media_type_for(dialect, sub.parts.content_type.as_deref()) {
        Ok(charset) => charset,
        Err(problem) => return Ok(Err(Rejection::with(415, problem))),
    };
    if let Some(receipt) = gw.store.receipt_for(agency, body_sha256).await? {
        return Ok(Ok(Accepted {
            status: 200,
            receipt,
        }));
    }
    // decode → validate
    let canonical = match gw.formats.decode(dialect, &sub.body, charset.as_deref()) {
        Ok(value) => value,
        Err(problems) => return Ok(Err(Rejection::invalid(problems))),
    };
    let doc = match gw.validator.validate(&canonical) {
        Ok(doc) => doc,
        Err(problems) => return Ok(Err(Rejection::invalid(problems))),
    };
    if doc.envelope.sender.as_str() != agency {
        return Ok(Err(Rejection::with(
            403,
            Violation::new(
                "sender_not_signer",
                "/sender",
                "文书的发送机关与签名证书所属机构不一致",
                "the document's sender is not the agency whose certificate signed it",
            ),
        )));
    }
    // route
    let route = match routing::route(&doc, &gw.registry) {
        Ok(route) => route,
        Err(problems) => {
            let status = if problems
                .iter()
                .any(|p| p.code == "message_type_not_permitted")
            {
                403
            } else {
                422
            };
            return Ok(Err(Rejection {
                status,
                ..Rejection::invalid(problems)
            }));
        }
    };
    // commit
    let record = build_record(gw, sub, &verified, &doc, &route, dialect, body_sha256, now);
    let event = LogEvent::DocumentAccepted {
        document_id: record.id.clone(),
        receipt_id: record.receipt_id.clone(),
        sender: record.sender.clone(),
        message_type: record.message_type.clone(),
        body_sha256: body_sha256.to_string(),
        keyid: verified.params.keyid.clone(),
        alg: verified.params.alg.as_str().to_string(),
        recipients: route.recipients.clone(),
        copies: route.copies.clone(),
        case_id: record.case.as_ref().map(|c| c.id.clone()),
    };
    let leaf = xlog::prepare(&event, now);
    let committed = gw
        .store
        .commit_document(&record, &leaf, |position| {
            receipt_body(&record, &verified, position)
        })
        .await?;
    Ok(match committed {
        Committed::New { receipt, .. } => Ok(Accepted {
            status: 201,
            receipt,
        }),
        Committed::Duplicate { receipt } => Ok(Accepted {
            status: 200,
            receipt,
        }),
        Committed::Replayed => Err(Rejection::security(&SecurityError::ReplayedSignature)),
    })
}

#[allow(clippy::too_many_arguments)]
fn build_record(
    gw: &Gateway,
    sub: &Submission,
    verified: &VerifiedRequest,
    doc: &CanonicalDocument,
    route: &routing::Route,
    dialect: Dialect,
    body_sha256: &str,
    now: OffsetDateTime,
) -> NewDocument {
    let id = uuid::Uuid::now_v7().to_string();
    let case = (doc.envelope.message_type == MessageType::HandoverNotice).then(|| {
        handover::open_case(
            uuid::Uuid::now_v7().to_string(),
            doc,
            route,
            now,
            &gw.calendar,
            &gw.periods,
        )
    });
    let canonical = serde_json_canonicalizer::to_string(&doc.to_json()).unwrap_or_default();
    NewDocument {
        id,
        receipt_id: uuid::Uuid::now_v7().to_string(),
        sender: doc.envelope.sender.as_str().to_string(),
        message_type: doc.envelope.message_type.as_str().to_string(),
        dialect: dialect.as_str().to_string(),
        content_type: sub.parts.content_type.clone().unwrap_or_default(),
        body_sha256: body_sha256.to_string(),
        original: sub.body.to_vec(),
        canonical,
        document_no: doc.envelope.document_no.clone(),
        received_at_ms: unix_ms(now),
        recipients: route.recipients.clone(),
        copies: route.copies.clone(),
        signature: SignatureEvidence {
            keyid: verified.params.keyid.clone(),
            alg: verified.params.alg.as_str().to_string(),
            signature_input: sub.parts.signature_input.clone().unwrap_or_default(),
            signature: sub.parts.signature.clone().unwrap_or_default(),
            signature_base: verified.signature_base.clone(),
            signature_sha256: verified.signature_sha256.clone(),
            signer_agency: verified.signer.agency.clone(),
            signer_certificate: verified.signer.certificate_pem.clone(),
            verified_at_ms: unix_ms(now),
        },
        case,
    }
}

fn receipt_body(
    record: &NewDocument,
    verified: &VerifiedRequest,
    position: &LogPosition,
) -> Vec<u8> {
    let receipt = Receipt {
        receipt_id: &record.receipt_id,
        document_id: &record.id,
        sender: &record.sender,
        message_type: &record.message_type,
        document_no: &record.document_no,
        body_sha256: &record.body_sha256,
        received_at: timefmt::beijing_ms(record.received_at_ms),
        recipients: &record.recipients,
        copies: &record.copies,
        case_id: record.case.as_ref().map(|c| c.id.as_str()),
        deadlines: record
            .case
            .iter()
            .flat_map(|c| c.deadlines.iter())
            .map(|d| ReceiptDeadline {
                step: &d.step,
                period: &d.period,
                due_at: d.due_at_ms.map(timefmt::beijing_ms),
                status: &d.status,
            })
            .collect(),
        log_index: position.index,
        leaf_hash: position.leaf_hash_hex(),
        signer: ReceiptSigner {
            keyid: &verified.params.keyid,
            alg: verified.params.alg.as_str(),
            agency: &verified.signer.agency,
        },
    };
    serde_json::to_vec_pretty(&receipt).unwrap_or_default()
}

/// Checks the Content-Type against the syntax of the signer's dialect and
/// returns its `charset` parameter, if any.
fn media_type_for(
    dialect: Dialect,
    content_type: Option<&str>,
) -> Result<Option<String>, Violation> {
    let content_type = content_type.unwrap_or("");
    let mut pieces = content_type.split(';');
    let essence = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = pieces
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string());
    let expected = match dialect {
        Dialect::Corrections | Dialect::Police => "application/json",
        Dialect::Court | Dialect::Procuratorate | Dialect::Prison => "application/xml",
    };
    if essence == expected || (expected == "application/xml" && essence == "text/xml") {
        Ok(charset)
    } else {
        Err(Violation::new(
            "unsupported_media_type",
            "",
            format!("该机构的文书格式须以 {expected} 提交"),
            format!("this agency's documents must be submitted as {expected}"),
        ))
    }
}
