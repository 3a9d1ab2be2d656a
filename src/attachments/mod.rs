//! Attachments (附件): the scanned judgments, notices and forms a document
//! references by SHA-256 (`attachments: [{kind, file_name, media_type,
//! sha256, size?}]`).
//!
//! This module owns the bytes' way in and their checks: the content-addressed
//! blob store ([`blobs`]), streaming a request body to disk while hashing it
//! ([`spool`]), the `multipart/related` framing ([`multipart`], [`split`]),
//! a separate upload ([`upload`]) and the rule that every reference of a
//! document is backed by bytes its sender brought ([`check_references`]).
//! It must never hold an attachment whole in memory, never log a file name
//! (it may name the person), and never remove a blob that a row names.

pub mod blobs;
pub mod multipart;

use std::io::{self, Write};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use time::OffsetDateTime;

use crate::app::Gateway;
use crate::intake::{Rejection, Unavailable};
use crate::model::Attachment;
use crate::security::digest::{verify_content_digest_of, BodyDigests, StreamDigester};
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::{verify_request, RequestParts};
use crate::security::SecurityError;
use crate::store::{NewAttachment, StoreError, Upload, Uploaded};
use crate::timefmt::unix_ms;
use crate::violation::{Violation, Violations};
use crate::xlog::{self, LogEvent};
pub use blobs::{is_sha256_hex, BlobStore, TempBlob};
use multipart::{MultipartError, MultipartReader};

/// Bytes gathered before one write to the temporary file: bounds the memory a
/// streamed body holds (plus one network chunk) and keeps file writes off the
/// async executor without a thread hop per network chunk.
const FLUSH_BYTES: usize = 1024 * 1024;

/// A request body as it arrives: chunks, read once.
pub type BodyStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>>>>;

/// Why a body could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the body passed the size limit")]
    TooLarge,
    #[error("the body could not be read from the connection")]
    Unreadable,
    #[error("the temporary file could not be written: {0}")]
    Io(#[from] io::Error),
}

/// Streams `body` into a temporary blob, hashing it on the way, and stops
/// with [`SpoolError::TooLarge`] the moment more than `limit` bytes came.
pub async fn spool<S, E>(blobs: &BlobStore, mut body: S, limit: u64) -> Result<TempBlob, SpoolError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut temp = blobs.temp()?;
    let mut pending = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| SpoolError::Unreadable)?;
        if temp.size() + (pending.len() + chunk.len()) as u64 > limit {
            return Err(SpoolError::TooLarge);
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= FLUSH_BYTES {
            temp = write_off_thread(temp, pending.split().freeze()).await?;
        }
    }
    if !pending.is_empty() {
        temp = write_off_thread(temp, pending.freeze()).await?;
    }
    Ok(temp)
}

async fn write_off_thread(mut temp: TempBlob, bytes: Bytes) -> io::Result<TempBlob> {
    tokio::task::spawn_blocking(move || {
        temp.write_all(&bytes)?;
        Ok(temp)
    })
    .await
    .map_err(io::Error::other)?
}

/// Reads the rest of a body only to learn its digest (for the exchange log
/// of a refusal made before the body was needed); keeps nothing.
pub async fn drain_digest<S, E>(mut body: S, limit: u64) -> Option<String>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut digester = StreamDigester::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        digester.update(&chunk);
        if digester.size() > limit {
            return None;
        }
    }
    Some(digester.finish().sha256_hex())
}

/// One attachment part of a multipart submission, in a temporary blob.
#[derive(Debug)]
pub struct ReceivedPart {
    /// 1-based number of the part in the body (the document is part 1).
    pub number: usize,
    pub temp: TempBlob,
    pub sha256: String,
    pub size: u64,
    /// The SHA-256 (hex) the part's own `Content-Digest` header claims, if any.
    pub declared_sha256: Option<String>,
}

/// A `multipart/related` body split into the document and its attachments.
#[derive(Debug)]
pub struct Received {
    pub document: Bytes,
    /// The document part's `Content-Type` (else the multipart `type` parameter).
    pub document_content_type: Option<String>,
    pub parts: Vec<ReceivedPart>,
}

/// Why a multipart body could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("the document part is too large")]
    DocumentTooLarge,
    #[error("attachment part {0} is too large")]
    AttachmentTooLarge(usize),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Splits a spooled multipart body: the first part (the document) into
/// memory, up to `max_document` bytes; every further part streamed into its
/// own temporary blob, hashed, up to `max_attachment` bytes. Blocking: run it
/// with `spawn_blocking`.
pub fn split(
    tmp_dir: &Path,
    spooled: &Path,
    boundary: &str,
    root_type: Option<&str>,
    max_document: usize,
    max_attachment: u64,
) -> Result<Received, SplitError> {
    let file = std::fs::File::open(spooled)?;
    let mut reader = MultipartReader::new(file, boundary);
    let map = |e: MultipartError, too_large: SplitError| match e {
        MultipartError::Malformed(m) => SplitError::Malformed(m),
        MultipartError::TooLarge => too_large,
        MultipartError::Io(e) => SplitError::Io(e),
    };
    let Some(headers) = reader
        .next_part()
        .map_err(|e| map(e, SplitError::DocumentTooLarge))?
    else {
        return Err(SplitError::Malformed("the multipart body has no parts"));
    };
    let mut document = Vec::new();
    reader
        .read_content(&mut document, max_document as u64)
        .map_err(|e| map(e, SplitError::DocumentTooLarge))?;
    let document_content_type = headers
        .get("content-type")
        .map(str::to_string)
        .or_else(|| root_type.map(str::to_string));
    let mut parts = Vec::new();
    let mut number = 1;
    while let Some(headers) = reader
        .next_part()
        .map_err(|e| map(e, SplitError::AttachmentTooLarge(number + 1)))?
    {
        number += 1;
        let mut temp = TempBlob::new_in(tmp_dir)?;
        reader
            .read_content(&mut temp, max_attachment)
            .map_err(|e| map(e, SplitError::AttachmentTooLarge(number)))?;
        let digests = temp.digests();
        let declared_sha256 = headers.get("content-digest").map(|h| {
            // Report what the part claims only when the claim is wrong.
            match verify_content_digest_of(h, &digests) {
                Ok(()) => digests.sha256_hex(),
                Err(_) => declared_sha256_of(h).unwrap_or_default(),
            }
        });
        parts.push(ReceivedPart {
            number,
            sha256: digests.sha256_hex(),
            size: digests.size,
            temp,
            declared_sha256,
        });
    }
    Ok(Received {
        document: Bytes::from(document),
        document_content_type,
        parts,
    })
}

/// The `sha-256` member of a `Content-Digest` header, as hex.
fn declared_sha256_of(header: &str) -> Option<String> {
    let dict = sfv::Parser::parse_dictionary(header.as_bytes()).ok()?;
    match dict.get("sha-256")? {
        sfv::ListEntry::Item(sfv::Item {
            bare_item: sfv::BareItem::ByteSeq(bytes),
            ..
        }) => Some(hex::encode(bytes)),
        _ => None,
    }
}

/// What a multipart part contributes to the reference check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSummary {
    pub number: usize,
    pub sha256: String,
    pub size: u64,
    pub declared_sha256: Option<String>,
}

impl From<&ReceivedPart> for PartSummary {
    fn from(p: &ReceivedPart) -> Self {
        PartSummary {
            number: p.number,
            sha256: p.sha256.clone(),
            size: p.size,
            declared_sha256: p.declared_sha256.clone(),
        }
    }
}

/// Checks every attachment reference of a document against the bytes its
/// sender brought: `uploaded` (sha256, size) earlier by the same agency, and
/// the `parts` of this request. Returns the rows to store, or one violation
/// per missing or mismatching reference and per part nothing references.
pub fn check_references(
    references: &[Attachment],
    uploaded: &[(String, u64)],
    parts: &[PartSummary],
    require: bool,
) -> Result<Vec<NewAttachment>, Violations> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (i, r) in references.iter().enumerate() {
        let found = parts
            .iter()
            .find(|p| p.sha256 == r.sha256)
            .map(|p| p.size)
            .or_else(|| {
                uploaded
                    .iter()
                    .find(|(sha, _)| *sha == r.sha256)
                    .map(|(_, size)| *size)
            });
        match found {
            Some(size) if r.size.is_some_and(|declared| declared != size) => {
                problems.push(Violation::new(
                    "attachment_size_mismatch",
                    format!("/attachments/{i}/size"),
                    "附件大小与所收到的文件不一致",
                    "the attachment's size differs from the bytes received",
                ));
            }
            Some(size) => rows.push(row(r, Some(size))),
            None if parts
                .iter()
                .any(|p| p.declared_sha256.as_deref() == Some(r.sha256.as_str())) =>
            {
                problems.push(Violation::new(
                    "attachment_digest_mismatch",
                    format!("/attachments/{i}/sha256"),
                    "附件内容的 SHA-256 与文书所列摘要不一致",
                    "the attachment's bytes do not have the SHA-256 the document lists",
                ));
            }
            None if require => problems.push(Violation::new(
                "attachment_missing",
                format!("/attachments/{i}/sha256"),
                "未收到该附件：请先上传，或随文书以 multipart/related 一并提交",
                "the attachment was not received: upload it first or send it in the multipart/related body",
            )),
            None => rows.push(row(r, None)),
        }
    }
    for p in parts {
        let referenced = references.iter().any(|r| {
            r.sha256 == p.sha256 || p.declared_sha256.as_deref() == Some(r.sha256.as_str())
        });
        if !referenced {
            problems.push(Violation::new(
                "attachment_unreferenced",
                "",
                format!("第 {} 部分不是文书所列的任何附件", p.number),
                format!(
                    "multipart part {} is not an attachment the document lists",
                    p.number
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

fn row(r: &Attachment, size: Option<u64>) -> NewAttachment {
    NewAttachment {
        sha256: r.sha256.clone(),
        kind: r.kind.clone(),
        file_name: r.file_name.clone(),
        media_type: r.media_type.clone(),
        size,
    }
}

/// Removes those of `created` (blobs this request brought into the store)
/// that no row names, after a refusal or a failed commit. Holds the removal
/// lock so no promote-then-commit runs in between.
pub async fn remove_orphans(gw: &Gateway, created: &[String]) {
    if created.is_empty() {
        return;
    }
    let _exclusive = gw.blobs.gc.write().await;
    for sha in created {
        match gw.store.blob_referenced(sha).await {
            Ok(false) => {
                if let Err(e) = gw.blobs.remove(sha) {
                    tracing::warn!(sha256 = %sha, error = %e, "could not remove an orphan blob");
                }
            }
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(sha256 = %sha, error = %e, "could not check a blob; kept it")
            }
        }
    }
}

/// The answer to an upload, signed by the HTTP layer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadAnswer<'a> {
    sha256: &'a str,
    size: u64,
    media_type: &'a str,
}

/// An accepted upload: `201` (first time) or `200` (the same bytes again).
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `PUT /api/v1/attachments/{sha256}` after the cheap checks (digest syntax,
/// declared length): verifies the signature *before* reading the body, then
/// streams the body to a temporary blob while hashing, checks it against
/// `Content-Digest` and the path, and moves it to its content address. A
/// refusal is written to the exchange log with the claimed digest only.
pub async fn upload(
    gw: &Gateway,
    parts: &RequestParts,
    sha256: &str,
    body: BodyStream,
) -> Result<Result<Stored, Rejection>, Unavailable> {
    let now = gw.clock.now();
    let mut keyid = None;
    let mut signer = None;
    let outcome = upload_inner(gw, parts, sha256, body, now, &mut keyid, &mut signer).await?;
    if let Err(rejection) = &outcome {
        let event = LogEvent::AttachmentRejected {
            sha256: sha256.to_string(),
            signer,
            keyid,
            status: rejection.status,
            codes: rejection.codes(),
        };
        gw.store.append_log(&xlog::prepare(&event, now)).await?;
    }
    Ok(outcome)
}

async fn upload_inner(
    gw: &Gateway,
    parts: &RequestParts,
    sha256: &str,
    body: BodyStream,
    now: OffsetDateTime,
    keyid_seen: &mut Option<String>,
    signer_seen: &mut Option<String>,
) -> Result<Result<Stored, Rejection>, Unavailable> {
    let Some(content_digest) = parts.content_digest.as_deref() else {
        return Ok(Err(Rejection::security(
            &SecurityError::MissingContentDigest,
        )));
    };
    let verified = match verify_request(
        parts,
        None,
        &REQUEST_COMPONENTS,
        &gw.trust,
        gw.settings.signature_window_secs,
        now.unix_timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => {
            *keyid_seen = parts.signature_input.as_deref().and_then(|input| {
                crate::security::httpsig::parse_signature(
                    input,
                    parts.signature.as_deref().unwrap_or(""),
                )
                .ok()
                .map(|(p, _)| p.keyid)
            });
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
    let agency = verified.signer.agency.clone();
    if gw.registry.get(&agency).is_none() {
        return Ok(Err(Rejection::agency_not_registered()));
    }
    let media_type = match upload_media_type(parts.content_type.as_deref()) {
        Ok(m) => m,
        Err(problem) => return Ok(Err(Rejection::with(415, problem))),
    };
    let limit = gw.settings.max_attachment_bytes;
    let temp = match spool(&gw.blobs, body, limit).await {
        Ok(temp) => temp,
        Err(SpoolError::TooLarge) => return Ok(Err(Rejection::attachment_too_large(limit))),
        Err(SpoolError::Unreadable) => return Ok(Err(Rejection::body_unreadable())),
        Err(SpoolError::Io(e)) => return Err(Unavailable(StoreError::Blobs(e))),
    };
    let digests: BodyDigests = temp.digests();
    if let Err(e) = verify_content_digest_of(content_digest, &digests) {
        return Ok(Err(Rejection::security(&e)));
    }
    if digests.sha256_hex() != sha256 {
        return Ok(Err(Rejection::with(
            422,
            Violation::new(
                "attachment_digest_mismatch",
                "",
                "上传内容的 SHA-256 与请求路径中的摘要不一致",
                "the uploaded bytes do not have the SHA-256 named in the path",
            ),
        )));
    }
    let upload = Upload {
        sha256: sha256.to_string(),
        uploader: agency.clone(),
        size: digests.size,
        media_type: media_type.clone(),
        keyid: verified.params.keyid.clone(),
        signature_sha256: verified.signature_sha256.clone(),
        uploaded_at_ms: unix_ms(now),
    };
    let event = LogEvent::AttachmentUploaded {
        sha256: sha256.to_string(),
        uploader: agency,
        keyid: verified.params.keyid.clone(),
        size: digests.size,
    };
    let shared = gw.blobs.gc.read().await;
    let created = gw
        .blobs
        .promote(temp, sha256)
        .await
        .map_err(|e| Unavailable(StoreError::Blobs(e)))?;
    let recorded = gw
        .store
        .record_upload(&upload, &xlog::prepare(&event, now))
        .await;
    drop(shared);
    let (status, media_type) = match recorded {
        Ok(Uploaded::New { .. }) => (201, media_type),
        Ok(Uploaded::Existing { media_type }) => (200, media_type),
        Ok(Uploaded::Replayed) => {
            if created {
                remove_orphans(gw, &[sha256.to_string()]).await;
            }
            return Ok(Err(Rejection::security(&SecurityError::ReplayedSignature)));
        }
        Err(e) => {
            if created {
                remove_orphans(gw, &[sha256.to_string()]).await;
            }
            return Err(e.into());
        }
    };
    let body = serde_json::to_vec_pretty(&UploadAnswer {
        sha256,
        size: digests.size,
        media_type: &media_type,
    })
    .unwrap_or_default();
    Ok(Ok(Stored { status, body }))
}

/// The essence of an upload's `Content-Type`, which must look like the
/// canonical `media_type` (`type/subtype`).
fn upload_media_type(content_type: Option<&str>) -> Result<String, Violation> {
    let essence = content_type
        .map(|c| multipart::split_params(c).0)
        .unwrap_or_default();
    let ok = essence.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty()
            && t.bytes().all(|b| b.is_ascii_lowercase())
            && !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+_-".contains(&b))
    });
    if ok && !essence.starts_with("multipart/") {
        Ok(essence)
    } else {
        Err(Violation::new(
            "unsupported_media_type",
            "",
            "附件须以其媒体类型（如 application/pdf）上传",
            "an attachment must be uploaded with its media type (e.g. application/pdf)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(sha: char, size: Option<u64>) -> Attachment {
        Attachment {
            kind: "judgment".into(),
            file_name: "判决书.pdf".into(),
            media_type: "application/pdf".into(),
            sha256: sha.to_string().repeat(64),
            size,
        }
    }

    fn part(number: usize, sha: char, size: u64, declared: Option<char>) -> PartSummary {
        PartSummary {
            number,
            sha256: sha.to_string().repeat(64),
            size,
            declared_sha256: declared.map(|c| c.to_string().repeat(64)),
        }
    }

    #[test]
    fn every_reference_needs_bytes_and_every_part_a_reference() {
        let refs = [
            att('a', Some(3)),
            att('b', None),
            att('c', None),
            att('d', Some(9)),
        ];
        let uploaded = [("a".repeat(64), 3), ("d".repeat(64), 8)];
        let parts = [
            part(2, 'b', 5, None),
            part(3, 'e', 1, None),
            part(4, 'f', 1, Some('c')),
        ];
        let problems = check_references(&refs, &uploaded, &parts, true).unwrap_err();
        let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.code, p.path.as_str())).collect();
        assert_eq!(
            got,
            [
                ("attachment_digest_mismatch", "/attachments/2/sha256"),
                ("attachment_size_mismatch", "/attachments/3/size"),
                ("attachment_unreferenced", ""),
            ]
        );
        let rows = check_references(&refs[..2], &uploaded, &parts[..1], true).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.size).collect::<Vec<_>>(),
            [Some(3), Some(5)]
        );
        let missing = check_references(&refs[2..3], &[], &[], true).unwrap_err();
        assert_eq!(missing[0].code, "attachment_missing");
        assert_eq!(missing[0].path, "/attachments/0/sha256");
        let lenient = check_references(&refs[2..3], &[], &[], false).unwrap();
        assert_eq!(lenient[0].size, None);
    }

    #[test]
    fn upload_media_types() {
        assert_eq!(
            upload_media_type(Some("application/pdf")).unwrap(),
            "application/pdf"
        );
        assert_eq!(
            upload_media_type(Some("Image/JPEG; q=1")).unwrap(),
            "image/jpeg"
        );
        assert!(upload_media_type(None).is_err());
        assert!(upload_media_type(Some("multipart/related; boundary=x")).is_err());
        assert!(upload_media_type(Some("pdf")).is_err());
    }
}
