//! One submission through the pipeline: verify → decode → validate → route →
//! commit, ending in a receipt or a rejection.
//!
//! The order is the security argument: the signature and the signer's
//! certificate are checked before the body is parsed; the body is decoded
//! with the dialect the *verified* signer's agency is registered for; the
//! document's claimed sender must be that agency. A rejection writes one
//! digest-only entry to the exchange log and nothing else; an acceptance
//! writes everything in one transaction (`Store::commit_document`) and only
//! then returns the receipt.
//!
//! The replay record and the earlier receipt of the same bytes are looked up
//! where they decide something, not in front of every document: the group
//! commit checks both in its transaction for the whole group at once
//! (`store/rows.rs`, `write_group`), and a submission about to be refused
//! looks them up first ([`earlier_answer`]), so a replay is still refused as
//! a replay and a re-sent document still gets its first receipt, whatever
//! else about it would now be refused. Only an authenticated, in-window
//! replay reaches the parser this way (docs/decisions.md).
//!
//! A `multipart/related` submission (document + attachments) follows the same
//! order: its signature is verified from the headers *before* the body is read,
//! the body is then spooled to disk while hashed and checked against
//! `Content-Digest`, and only then split into the document part (processed
//! exactly like a plain body) and attachment parts (temporary blobs). Every
//! attachment the document references must be backed by bytes its sender
//! brought (`attachments::check_references`); blobs are moved into the store
//! just before the commit and removed again if the commit does not reference them.

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::Gateway;
use crate::attachments::{self, BodyStream, PartSummary, Received, SplitError, SpoolError};
use crate::formats::Dialect;
use crate::model::{CanonicalDocument, Flow};
use crate::security::digest::{sha256_hex, verify_content_digest_of};
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::{verify_request, RequestParts, VerifiedRequest};
use crate::security::SecurityError;
use crate::store::{
    CaseUpdate, CaseWrite, Committed, NewAttachment, NewDocument, NewEnvelope, NewSubject,
    SignatureEvidence, StoreError,
};
use crate::timefmt::{self, unix_ms};
use crate::violation::{Bilingual, Violation, Violations};
use crate::workflow::cases::{self, CaseRef, NOT_CASE_PARTY};
use crate::workflow::deadlines::{self, Deadline, DeadlineEvent};
use crate::workflow::flows::{self, OUT_OF_ORDER_STEP};
use crate::workflow::routing;

/// `in_reply_to` names a document the gateway does not have, or one outside any case.
pub const UNKNOWN_IN_REPLY_TO: &str = "unknown_in_reply_to";
use crate::xlog::{self, LogEvent, LogPosition};

/// A request to submit one document, as captured by the HTTP layer.
#[derive(Debug)]
pub struct Submission {
    pub parts: RequestParts,
    pub body: Body,
    /// The web user (id) who wrote the document and had the gateway sign it
    /// with their agency's key (src/web/actions.rs); `None` for a partner
    /// system's POST. Recorded in the exchange log, never used to decide.
    pub by_user: Option<String>,
}

/// The body of a submission.
pub enum Body {
    /// A native document (`application/xml` / `application/json`), read whole
    /// within `max_body_bytes`.
    Document(bytes::Bytes),
    /// A `multipart/related` body, still on the wire: it is read only after
    /// the signature checks out, and never held whole in memory.
    Multipart(BodyStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Document(b) => write!(f, "Document({} bytes)", b.len()),
            Body::Multipart(_) => f.write_str("Multipart(..)"),
        }
    }
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
    pub(crate) fn security(e: &SecurityError) -> Rejection {
        Rejection {
            status: e.http_status(),
            code: e.code(),
            title: e.message(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn invalid(problems: Violations) -> Rejection {
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

    pub(crate) fn with(status: u16, problem: Violation) -> Rejection {
        Rejection {
            status,
            code: problem.code,
            title: problem.message.clone(),
            problems: vec![problem],
        }
    }

    pub(crate) fn agency_not_registered() -> Rejection {
        Rejection::with(
            403,
            Violation::new(
                "agency_not_registered",
                "",
                "签名机构未在机构名录中登记",
                "the signing agency is not registered with the gateway",
            ),
        )
    }

    pub(crate) fn body_too_large(limit: u64) -> Rejection {
        Rejection::with(
            413,
            Violation::new(
                "body_too_large",
                "",
                format!("请求体超过上限 {limit} 字节"),
                format!("the request body exceeds the limit of {limit} bytes"),
            ),
        )
    }

    pub(crate) fn attachment_too_large(limit: u64) -> Rejection {
        Rejection::with(
            413,
            Violation::new(
                "attachment_too_large",
                "",
                format!("附件超过上限 {limit} 字节"),
                format!("an attachment exceeds the limit of {limit} bytes"),
            ),
        )
    }

    pub(crate) fn body_unreadable() -> Rejection {
        Rejection::with(
            400,
            Violation::new(
                "body_unreadable",
                "",
                "请求体读取失败",
                "the request body could not be read",
            ),
        )
    }

    fn multipart_malformed(detail: &str) -> Rejection {
        Rejection::with(
            400,
            Violation::new(
                "multipart_malformed",
                "",
                "multipart/related 请求体格式有误",
                format!("the multipart/related body is malformed: {detail}"),
            ),
        )
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
pub struct Unavailable(#[from] pub StoreError);

/// The receipt (回执) body, as signed and sent to the submitter (protocol.md).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Receipt<'a> {
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
    /// The attachments received with or before the document (digests only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<ReceiptAttachment<'a>>,
    log_index: i64,
    leaf_hash: String,
    signer: ReceiptSigner<'a>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptDeadline<'a> {
    step: &'a str,
    period: &'a str,
    due_at: Option<String>,
    status: &'a str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptAttachment<'a> {
    sha256: &'a str,
    size: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptSigner<'a> {
    keyid: &'a str,
    alg: &'a str,
    agency: &'a str,
}

/// What the exchange log may say about a refusal: filled in as the pipeline
/// gets that far.
#[derive(Debug, Default)]
struct Trace {
    keyid: Option<String>,
    signer: Option<String>,
    /// The verified signature's digest, once the signature checked out:
    /// what a refusal looks up first ([`earlier_answer`]).
    signature_sha256: Option<String>,
    /// Whether the submission was sent before is settled already: looked up
    /// (a multipart body's, once spooled), or beside the point (bytes that
    /// do not match their signed digest).
    earlier_settled: bool,
    /// `None` only when the body could not be read in full (413, a broken
    /// connection): such refusals are not logged, as before attachments.
    body_sha256: Option<String>,
}

/// Runs one submission. `Ok(Err(rejection))` is a refusal already written to
/// the exchange log; `Err` means storage failed and nothing was promised.
pub async fn submit(
    gw: &Gateway,
    sub: Submission,
) -> Result<Result<Accepted, Rejection>, Unavailable> {
    let now = gw.clock.now();
    let by_user = sub.by_user.clone();
    let mut trace = Trace::default();
    if let Body::Document(body) = &sub.body {
        trace.body_sha256 = Some(sha256_hex(body));
    }
    let outcome = match run(gw, sub, now, &mut trace).await? {
        Err(rejection) => earlier_answer(gw, &trace, rejection).await?,
        accepted => accepted,
    };
    crate::metrics::submission(match &outcome {
        Ok(accepted) => Ok(accepted.status),
        Err(rejection) => Err(rejection.code),
    });
    if let (Err(rejection), Some(body_sha256)) = (&outcome, trace.body_sha256) {
        let event = LogEvent::SubmissionRejected {
            body_sha256,
            signer: trace.signer,
            keyid: trace.keyid,
            status: rejection.status,
            codes: rejection.codes(),
            by_user,
        };
        gw.store.append_log(&xlog::prepare(&event, now)).await?;
    }
    Ok(outcome)
}

/// What the signer check found out about a request, before its body is used.
struct Signed {
    verified: VerifiedRequest,
    dialect: Dialect,
    /// Plain body: the `charset` parameter. Multipart: unused.
    charset: Option<String>,
    multipart: Option<attachments::multipart::MultipartType>,
}

/// What a submission about to be refused is answered instead, if its
/// signature verified ([`sent_before`]). Made only for refusals: an accepted
/// document's replay and resubmission checks run in the group's
/// transaction, for the whole group.
async fn earlier_answer(
    gw: &Gateway,
    trace: &Trace,
    rejection: Rejection,
) -> Result<Result<Accepted, Rejection>, Unavailable> {
    if trace.earlier_settled || rejection.code == SecurityError::ReplayedSignature.code() {
        return Ok(Err(rejection));
    }
    Ok(sent_before(gw, trace).await?.unwrap_or(Err(rejection)))
}

/// Whether a submission whose signature verified was sent before, in one
/// query and one snapshot: a signature used before is a replay, refused as
/// one (had these very bytes been accepted under it, that is still a replay,
/// not a resubmission, which carries a signature of its own); bytes the same
/// sender had accepted before get their first receipt (200), as the group
/// commit answers them. `None`: neither, or the signature was not verified.
async fn sent_before(
    gw: &Gateway,
    trace: &Trace,
) -> Result<Option<Result<Accepted, Rejection>>, Unavailable> {
    let (Some(keyid), Some(signature_sha256), Some(signer)) =
        (&trace.keyid, &trace.signature_sha256, &trace.signer)
    else {
        return Ok(None);
    };
    let body = trace
        .body_sha256
        .as_deref()
        .map(|sha| (signer.as_str(), sha));
    let prior = gw
        .store
        .prior_submission(keyid, signature_sha256, body)
        .await?;
    Ok(if prior.replayed {
        Some(Err(Rejection::security(&SecurityError::ReplayedSignature)))
    } else {
        prior.receipt.map(|receipt| {
            Ok(Accepted {
                status: 200,
                receipt,
            })
        })
    })
}

/// Verify, from the headers (and for a plain body, the body digest): the
/// signature, replay, registration and media type. Nothing here reads a
/// multipart body.
async fn check_signer(
    gw: &Gateway,
    parts: &RequestParts,
    body: &Body,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> Result<Result<Signed, Rejection>, Unavailable> {
    let digest_checked = match body {
        Body::Document(bytes) => Some(bytes.as_ref()),
        Body::Multipart(_) if parts.content_digest.is_none() => {
            return Ok(Err(Rejection::security(
                &SecurityError::MissingContentDigest,
            )))
        }
        // The digest is checked once the body is spooled.
        Body::Multipart(_) => None,
    };
    let verified = match verify_request(
        parts,
        digest_checked,
        &REQUEST_COMPONENTS,
        &gw.trust,
        gw.settings.signature_window_secs,
        now.unix_timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => {
            if let Some(input) = &parts.signature_input {
                trace.keyid = crate::security::httpsig::parse_signature(
                    input,
                    parts.signature.as_deref().unwrap_or(""),
                )
                .ok()
                .map(|(p, _)| p.keyid);
            }
            return Ok(Err(Rejection::security(&e)));
        }
    };
    trace.keyid = Some(verified.params.keyid.clone());
    trace.signer = Some(verified.signer.agency.clone());
    trace.signature_sha256 = Some(verified.signature_sha256.clone());
    let Some(registered) = gw.registry.get(verified.signer.agency.as_str()) else {
        return Ok(Err(Rejection::agency_not_registered()));
    };
    let dialect = registered.dialect;
    let (charset, multipart) = match body {
        Body::Document(_) => match media_type_for(dialect, parts.content_type.as_deref()) {
            Ok(charset) => (charset, None),
            Err(problem) => return Ok(Err(Rejection::with(415, problem))),
        },
        Body::Multipart(_) => {
            let content_type = parts.content_type.as_deref().unwrap_or("");
            match attachments::multipart::parse_content_type(content_type) {
                Some(Ok(m)) => {
                    // The root part's declared type must suit the dialect too.
                    if let Some(root) = &m.root_type {
                        if let Err(problem) = media_type_for(dialect, Some(root)) {
                            return Ok(Err(Rejection::with(415, problem)));
                        }
                    }
                    (None, Some(m))
                }
                Some(Err(detail)) => return Ok(Err(Rejection::multipart_malformed(detail))),
                None => {
                    return Ok(Err(Rejection::multipart_malformed(
                        "the Content-Type is not multipart/related",
                    )))
                }
            }
        }
    };
    Ok(Ok(Signed {
        verified,
        dialect,
        charset,
        multipart,
    }))
}

/// A body once read: a plain document, or a multipart body on disk.
enum Arrived {
    Document(bytes::Bytes),
    Spooled(
        Box<attachments::TempBlob>,
        attachments::multipart::MultipartType,
    ),
}

/// The document and attachment parts of a submission, once read.
struct Contents {
    document: bytes::Bytes,
    content_type: String,
    charset: Option<String>,
    parts: Vec<attachments::ReceivedPart>,
    /// Multipart only: the spooled signed body and its Content-Type.
    envelope: Option<(attachments::TempBlob, NewEnvelope)>,
}

async fn run(
    gw: &Gateway,
    sub: Submission,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> Result<Result<Accepted, Rejection>, Unavailable> {
    let Submission {
        parts,
        body,
        by_user,
    } = sub;
    // verify
    let signed = match check_signer(gw, &parts, &body, now, trace).await? {
        Ok(signed) => signed,
        Err(rejection) => {
            if let Body::Multipart(stream) = body {
                // Read (not stored) only so the log can name the body's digest.
                trace.body_sha256 =
                    attachments::drain_digest(stream, gw.settings.max_multipart_bytes).await;
            }
            return Ok(Err(rejection));
        }
    };
    let Signed {
        verified,
        dialect,
        charset,
        multipart,
    } = signed;
    let agency = verified.signer.agency.clone();
    // receive: a multipart body is spooled and its digest checked before use
    let received = match (body, &multipart) {
        (Body::Document(bytes), _) => Arrived::Document(bytes),
        (Body::Multipart(stream), Some(m)) => {
            let limit = gw.settings.max_multipart_bytes;
            let temp = match attachments::spool(&gw.blobs, stream, limit).await {
                Ok(temp) => temp,
                Err(SpoolError::TooLarge) => return Ok(Err(Rejection::body_too_large(limit))),
                Err(SpoolError::Unreadable) => return Ok(Err(Rejection::body_unreadable())),
                Err(SpoolError::Io(e)) => return Err(Unavailable(StoreError::Blobs(e))),
            };
            let digests = temp.digests();
            trace.body_sha256 = Some(digests.sha256_hex());
            let header = parts.content_digest.as_deref().unwrap_or("");
            if let Err(e) = verify_content_digest_of(header, &digests) {
                trace.earlier_settled = true;
                return Ok(Err(Rejection::security(&e)));
            }
            Arrived::Spooled(Box::new(temp), m.clone())
        }
        (Body::Multipart(_), None) => {
            return Ok(Err(Rejection::multipart_malformed("no boundary")));
        }
    };
    let body_sha256 = trace.body_sha256.clone().unwrap_or_default();
    // A plain body's earlier answer is the group commit's ([`earlier_answer`]
    // if refused). A multipart body's is looked up now, before its parts are
    // split and their blobs stored, so a re-sent one touches none of them.
    if let Arrived::Spooled(..) = &received {
        trace.earlier_settled = true;
        if let Some(answer) = sent_before(gw, trace).await? {
            return Ok(answer);
        }
    }
    let contents = match received {
        Arrived::Document(document) => Contents {
            document,
            content_type: parts.content_type.clone().unwrap_or_default(),
            charset,
            parts: Vec::new(),
            envelope: None,
        },
        Arrived::Spooled(temp, m) => match split_multipart(gw, *temp, &m, &parts, dialect).await? {
            Ok(contents) => contents,
            Err(rejection) => return Ok(Err(rejection)),
        },
    };
    // decode → validate
    let canonical =
        match gw
            .formats
            .decode(dialect, &contents.document, contents.charset.as_deref())
        {
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
    // attachments: every reference backed by bytes the sender brought
    let references = &doc.envelope.attachments;
    let uploaded = if references.is_empty() {
        Vec::new()
    } else {
        let shas: Vec<&str> = references.iter().map(|a| a.sha256.as_str()).collect();
        gw.store.uploads_by(&agency, &shas).await?
    };
    let summaries: Vec<PartSummary> = contents.parts.iter().map(PartSummary::from).collect();
    let attachment_rows = match attachments::check_references(
        references,
        &uploaded,
        &summaries,
        gw.settings.require_attachments,
    ) {
        Ok(rows) => rows,
        Err(problems) => return Ok(Err(Rejection::invalid(problems))),
    };
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
    // the case: opened by this document, or moved on by it
    let case = match plan_case(gw, &doc, &route, now).await? {
        Ok(case) => case,
        Err(rejection) => return Ok(Err(rejection)),
    };
    // commit
    let Contents {
        document,
        content_type,
        parts: received,
        envelope,
        ..
    } = contents;
    let (spool, envelope) = match envelope {
        Some((spool, envelope)) => (Some(spool), Some(envelope)),
        None => (None, None),
    };
    let (case, case_state, mut deadline_events, from_receipt) = match case {
        Some(planned) => (
            Some(planned.write),
            Some(planned.state),
            planned.events,
            planned.from_receipt,
        ),
        None => (None, None, Vec::new(), Vec::new()),
    };
    let mut record = build_record(
        Original {
            parts: &parts,
            document,
            content_type,
            body_sha256: &body_sha256,
            attachments: attachment_rows,
            envelope,
        },
        case,
        &verified,
        &doc,
        &route,
        dialect,
        now,
    );
    // deliver: the outbox rows commit with the document; the periods counted
    // from receipt wait for the primary recipient's receipt/ack (protocol.md).
    record.deliveries = crate::delivery::plan(&route, &gw.registry);
    if record.deliveries.iter().any(|d| d.starts_clock) {
        let rows = match record.case.as_mut() {
            Some(CaseWrite::Open(c)) => c.deadlines.as_mut_slice(),
            Some(CaseWrite::Advance(u)) => u.deadlines.as_mut_slice(),
            None => &mut [],
        };
        let awaiting =
            deadlines::await_delivery(rows, &from_receipt, &record.id, record.received_at_ms);
        for label in deadline_events.iter_mut() {
            if let Some(name) = label.strip_suffix(":started") {
                if awaiting.iter().any(|a| a == name) {
                    *label = format!("{name}:awaiting_delivery");
                }
            }
        }
    }
    let event = LogEvent::DocumentAccepted {
        document_id: record.id.clone(),
        receipt_id: record.receipt_id.clone(),
        sender: record.sender.clone(),
        message_type: record.message_type.clone(),
        body_sha256: body_sha256.clone(),
        keyid: verified.params.keyid.clone(),
        alg: verified.params.alg.as_str().to_string(),
        recipients: route.recipients.clone(),
        copies: route.copies.clone(),
        case_id: record.case.as_ref().map(|c| c.id().to_string()),
        case_state,
        deadline_events,
        by_user,
    };
    let leaf = xlog::prepare(&event, now);
    // Blobs move to their content address under the shared removal lock, which
    // is held until the rows naming them are committed.
    let shared = gw.blobs.gc.read().await;
    let mut created = Vec::new();
    let mut blobs: Vec<(attachments::TempBlob, String)> =
        received.into_iter().map(|p| (p.temp, p.sha256)).collect();
    if let Some(spool) = spool {
        blobs.push((spool, body_sha256.clone()));
    }
    let mut promoted = Ok(());
    for (temp, sha) in blobs {
        match gw.blobs.promote(temp, &sha).await {
            Ok(true) => created.push(sha),
            Ok(false) => {}
            Err(e) => {
                promoted = Err(e);
                break;
            }
        }
    }
    // An upload whose blob retention removed (every document naming it was
    // purged, src/retention.rs) no longer backs a reference: the sender is
    // asked to upload it again. Checked under the shared lock, which the
    // removal takes exclusively.
    let gone: Vec<usize> = record
        .attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| a.size.is_some() && !gw.blobs.exists(&a.sha256))
        .map(|(i, _)| i)
        .collect();
    if promoted.is_ok() && !gone.is_empty() && gw.settings.require_attachments {
        drop(shared);
        attachments::remove_orphans(gw, &created).await;
        let problems = gone
            .into_iter()
            .map(|i| {
                Violation::new(
                    "attachment_missing",
                    format!("/attachments/{i}/sha256"),
                    "未收到该附件：请先上传，或随文书以 multipart/related 一并提交",
                    "the attachment was not received: upload it first or send it in the multipart/related body",
                )
            })
            .collect();
        return Ok(Err(Rejection::invalid(problems)));
    }
    let committed = match promoted {
        Ok(()) => {
            let signer = ReceiptSignerOwned {
                keyid: verified.params.keyid.clone(),
                alg: verified.params.alg.as_str(),
                agency: verified.signer.agency.clone(),
            };
            gw.store
                .commit_document(
                    record,
                    leaf,
                    Box::new(move |record, position| receipt_body(record, &signer, position)),
                )
                .await
        }
        Err(e) => Err(StoreError::Blobs(e)),
    };
    drop(shared);
    if !matches!(committed, Ok(Committed::New { .. })) {
        attachments::remove_orphans(gw, &created).await;
    }
    Ok(match committed? {
        Committed::New { receipt, .. } => Ok(Accepted {
            status: 201,
            receipt,
        }),
        Committed::Duplicate { receipt } => Ok(Accepted {
            status: 200,
            receipt,
        }),
        Committed::Replayed => Err(Rejection::security(&SecurityError::ReplayedSignature)),
        Committed::CaseMoved => Err(Rejection::with(
            409,
            Violation::new(
                OUT_OF_ORDER_STEP,
                "/in_reply_to",
                "案件状态刚被另一份文书改变，请重新签名后再次提交",
                "another document moved the case first; re-sign and submit again",
            ),
        )),
    })
}

/// What the document does to its case.
struct PlannedCase {
    write: CaseWrite,
    state: String,
    events: Vec<String>,
    /// The periods the step starts that count from the document's receipt.
    from_receipt: Vec<&'static str>,
}

/// Finds the case a document opens or answers and runs the flow's state
/// machine on it (src/workflow/flows.rs). An answer names the document it
/// answers in `in_reply_to`; an opening document opens a new case. A
/// non-opening document without `in_reply_to` (a committal answered by
/// ruling number only) is accepted without a case.
async fn plan_case(
    gw: &Gateway,
    doc: &CanonicalDocument,
    route: &routing::Route,
    now: OffsetDateTime,
) -> Result<Result<Option<PlannedCase>, Rejection>, Unavailable> {
    let refused = |v: Violation| {
        let status = match v.code {
            OUT_OF_ORDER_STEP => 409,
            NOT_CASE_PARTY | "message_type_not_permitted" => 403,
            _ => 422,
        };
        Err(Rejection::with(status, v))
    };
    let Some(answered) = &doc.envelope.in_reply_to else {
        if !flows::opens_case(doc.envelope.message_type) {
            return Ok(Ok(None));
        }
        let opened = match cases::open(
            uuid::Uuid::now_v7().to_string(),
            doc,
            route,
            now,
            &gw.calendar,
            &gw.periods,
        ) {
            Ok(opened) => opened,
            Err(v) => return Ok(refused(v)),
        };
        let state = opened.case.state.clone();
        return Ok(Ok(Some(PlannedCase {
            from_receipt: deadlines::counted_from_receipt(opened.step),
            events: describe(&opened.events),
            state,
            write: CaseWrite::Open(opened.case),
        })));
    };
    let Some(case) = gw.store.case_of_document(answered).await? else {
        return Ok(refused(Violation::new(
            UNKNOWN_IN_REPLY_TO,
            "/in_reply_to",
            "所答复的文书不存在或不属于任何案件",
            "the document answered is unknown to the gateway or belongs to no case",
        )));
    };
    let flow = [Flow::Handover, Flow::Assessment, Flow::Revocation]
        .into_iter()
        .find(|f| f.as_str() == case.flow);
    let Some(flow) = flow else {
        return Ok(refused(Violation::new(
            "unknown_case_state",
            "/in_reply_to",
            "案件的流程类型无法识别",
            "the case's flow is not one the gateway knows",
        )));
    };
    let mut deadlines: Vec<Deadline> = case.deadlines.iter().map(Deadline::from_row).collect();
    let case_ref = CaseRef {
        flow,
        state: &case.state,
        corrections_agency: &case.corrections_agency,
        parties: &case.parties,
    };
    let advanced = match cases::advance(
        &case_ref,
        &mut deadlines,
        doc,
        now,
        &gw.calendar,
        &gw.periods,
    ) {
        Ok(advanced) => advanced,
        Err(v) => return Ok(refused(v)),
    };
    let mut parties = vec![doc.envelope.sender.as_str().to_string()];
    parties.extend(route.recipients.iter().cloned());
    parties.extend(route.copies.iter().cloned());
    Ok(Ok(Some(PlannedCase {
        from_receipt: deadlines::counted_from_receipt(advanced.step),
        events: describe(&advanced.events),
        state: advanced.state.to_string(),
        write: CaseWrite::Advance(CaseUpdate {
            id: case.id,
            from_state: case.state,
            to_state: advanced.state.to_string(),
            parties,
            deadlines: deadlines.iter().map(|d| d.to_row(now)).collect(),
        }),
    })))
}

/// Deadline events as the exchange log records them (`name:what`).
fn describe(events: &[DeadlineEvent]) -> Vec<String> {
    events.iter().map(DeadlineEvent::log_label).collect()
}

/// Splits a spooled multipart body (off the async executor) into the
/// document part, checked against the dialect's media type, and attachment
/// parts in temporary blobs.
async fn split_multipart(
    gw: &Gateway,
    spool: attachments::TempBlob,
    m: &attachments::multipart::MultipartType,
    parts: &RequestParts,
    dialect: Dialect,
) -> Result<Result<Contents, Rejection>, Unavailable> {
    let tmp_dir = gw.blobs.tmp_dir();
    let spool_path = spool.path().to_path_buf();
    let boundary = m.boundary.clone();
    let root_type = m.root_type.clone();
    let max_document = gw.settings.max_body_bytes;
    let max_attachment = gw.settings.max_attachment_bytes;
    let split = tokio::task::spawn_blocking(move || {
        attachments::split(
            &tmp_dir,
            &spool_path,
            &boundary,
            root_type.as_deref(),
            max_document,
            max_attachment,
        )
    })
    .await
    .map_err(|e| Unavailable(StoreError::Blobs(std::io::Error::other(e))))?;
    let Received {
        document,
        document_content_type,
        parts: received,
    } = match split {
        Ok(received) => received,
        Err(SplitError::Malformed(detail)) => {
            return Ok(Err(Rejection::multipart_malformed(detail)))
        }
        Err(SplitError::DocumentTooLarge) => {
            return Ok(Err(Rejection::body_too_large(max_document as u64)))
        }
        Err(SplitError::AttachmentTooLarge(_)) => {
            return Ok(Err(Rejection::attachment_too_large(max_attachment)))
        }
        Err(SplitError::Io(e)) => return Err(Unavailable(StoreError::Blobs(e))),
    };
    let charset = match media_type_for(dialect, document_content_type.as_deref()) {
        Ok(charset) => charset,
        Err(problem) => return Ok(Err(Rejection::with(415, problem))),
    };
    let size = spool.size();
    let body_sha256 = spool.digests().sha256_hex();
    Ok(Ok(Contents {
        document,
        content_type: document_content_type.unwrap_or_default(),
        charset,
        parts: received,
        envelope: Some((
            spool,
            NewEnvelope {
                content_type: parts.content_type.clone().unwrap_or_default(),
                body_sha256,
                size,
            },
        )),
    }))
}

/// The bytes of an accepted document as they are kept.
struct Original<'a> {
    parts: &'a RequestParts,
    /// The native document (the whole body, or the multipart's first part).
    document: bytes::Bytes,
    content_type: String,
    /// Digest of the signed request body.
    body_sha256: &'a str,
    attachments: Vec<NewAttachment>,
    envelope: Option<NewEnvelope>,
}

fn build_record(
    original: Original<'_>,
    case: Option<CaseWrite>,
    verified: &VerifiedRequest,
    doc: &CanonicalDocument,
    route: &routing::Route,
    dialect: Dialect,
    now: OffsetDateTime,
) -> NewDocument {
    let sub = original.parts;
    let id = uuid::Uuid::now_v7().to_string();
    let canonical = serde_json_canonicalizer::to_string(&doc.to_json()).unwrap_or_default();
    NewDocument {
        id,
        receipt_id: uuid::Uuid::now_v7().to_string(),
        sender: doc.envelope.sender.as_str().to_string(),
        message_type: doc.envelope.message_type.as_str().to_string(),
        dialect: dialect.as_str().to_string(),
        content_type: original.content_type,
        body_sha256: original.body_sha256.to_string(),
        original: original.document.to_vec(),
        canonical,
        document_no: doc.envelope.document_no.clone(),
        received_at_ms: unix_ms(now),
        recipients: route.recipients.clone(),
        copies: route.copies.clone(),
        signature: SignatureEvidence {
            keyid: verified.params.keyid.clone(),
            alg: verified.params.alg.as_str().to_string(),
            signature_input: sub.signature_input.clone().unwrap_or_default(),
            signature: sub.signature.clone().unwrap_or_default(),
            signature_base: verified.signature_base.clone(),
            signature_sha256: verified.signature_sha256.clone(),
            signer_agency: verified.signer.agency.clone(),
            signer_certificate: verified.signer.certificate_pem.clone(),
            verified_at_ms: unix_ms(now),
        },
        case,
        attachments: original.attachments,
        envelope: original.envelope,
        deliveries: Vec::new(),
        subject: doc.subject.as_ref().map(|s| NewSubject {
            name: s.name.clone(),
            id_number: s.id_number.as_str().to_string(),
        }),
    }
}

/// Who signed a document, as its receipt names them.
struct ReceiptSignerOwned {
    keyid: String,
    alg: &'static str,
    agency: String,
}

fn receipt_body(
    record: &NewDocument,
    signer: &ReceiptSignerOwned,
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
        case_id: record.case.as_ref().map(|c| c.id()),
        deadlines: record
            .case
            .iter()
            .flat_map(|c| c.deadlines().iter())
            .map(|d| ReceiptDeadline {
                step: &d.step,
                period: &d.period,
                due_at: d.due_at_ms.map(timefmt::beijing_ms),
                status: &d.status,
            })
            .collect(),
        attachments: record
            .attachments
            .iter()
            .map(|a| ReceiptAttachment {
                sha256: &a.sha256,
                size: a.size,
            })
            .collect(),
        log_index: position.index,
        leaf_hash: position.leaf_hash_hex(),
        signer: ReceiptSigner {
            keyid: &signer.keyid,
            alg: signer.alg,
            agency: &signer.agency,
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
