//! `PUT /api/v1/attachments/{sha256}` (upload an attachment on its own) and
//! `GET /api/v1/documents/{id}/attachments/{sha256}` (read one of a document's
//! attachments). Bodies are streamed both ways, never held whole in memory.

use actix_web::{web, HttpRequest, HttpResponse};
use tokio::io::AsyncReadExt;

use super::documents::{authorize_read, body_stream, declared_length};
use super::openapi::{Refusals, SignedRead, SignedSubmission};
use super::problem::{signed, Problem};
use super::request_parts;
use crate::app::Gateway;
use crate::attachments::{self, is_sha256_hex};
use crate::security::digest::content_digest_of_sha256;
use crate::violation::Bilingual;
use crate::xlog::{self, LogEvent};

/// Uploads the raw bytes of one attachment, signed like a submission; the
/// answer is the signed `{sha256, size, media_type}`.
#[utoipa::path(
    put,
    path = "/api/v1/attachments/{sha256}",
    tag = "attachments",
    params(
        ("sha256" = String, Path, description = "lowercase hex SHA-256 of the bytes (64 digits)"),
        SignedSubmission
    ),
    request_body(
        description = "The attachment's raw bytes (scanned PDF, image); streamed, at most `max_attachment_bytes`.",
        content((String = "application/pdf"), (String = "image/jpeg"), (String = "image/png"), (String = "application/octet-stream"))
    ),
    responses(
        (status = 201, description = "stored", body = crate::attachments::UploadAnswer),
        (status = 200, description = "the same bytes were already stored", body = crate::attachments::UploadAnswer),
        (status = 413, description = "over `max_attachment_bytes`", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn upload(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    sha256: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    if !is_sha256_hex(&sha256) {
        return Problem::new(
            400,
            "attachment_digest_invalid",
            Bilingual::new(
                "路径中的摘要须为 64 位小写十六进制 SHA-256",
                "the digest in the path must be 64 lower-case hex digits of SHA-256",
            ),
            Vec::new(),
        )
        .response(&gw.identity);
    }
    let limit = gw.settings.max_attachment_bytes;
    if declared_length(&req).is_some_and(|n| n > limit) {
        return attachment_too_large(limit).response(&gw.identity);
    }
    let parts = request_parts(&req);
    match attachments::upload(&gw, &parts, &sha256, body_stream(payload)).await {
        Ok(Ok(stored)) => signed(&gw.identity, stored.status, "application/json", stored.body),
        Ok(Err(rejection)) => {
            tracing::info!(status = rejection.status, codes = ?rejection.codes(), "upload rejected");
            Problem::rejection(rejection).response(&gw.identity)
        }
        Err(e) => {
            tracing::error!(error = %e, "upload could not be stored");
            Problem::unavailable().response(&gw.identity)
        }
    }
}

fn attachment_too_large(limit: u64) -> Problem {
    Problem::new(
        413,
        "attachment_too_large",
        Bilingual::new(
            format!("附件超过上限 {limit} 字节"),
            format!("an attachment exceeds the limit of {limit} bytes"),
        ),
        Vec::new(),
    )
}

/// Streams one attachment of a document to one of the document's parties
/// (anyone else gets the document's 404). The read is logged — document id,
/// digest and reader, never the file name — before the bytes leave. The
/// response is signed like every other: its `Content-Digest` is the blob's
/// name, so it is known before the file is read.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}/attachments/{sha256}",
    tag = "attachments",
    params(
        ("id" = String, Path, description = "the gateway's document id"),
        ("sha256" = String, Path, description = "the attachment's lowercase hex SHA-256"),
        SignedRead
    ),
    responses(
        (status = 200, description = "the attachment's bytes, streamed, with its media type", content(
            (String = "application/pdf"), (String = "application/octet-stream")
        )),
        (status = 404, description = "no such document or attachment, or the caller is not a party", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "the document's retention period ended: body and attachments purged (`document_purged`)", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn read(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, sha256) = path.into_inner();
    let (doc, reader) = match authorize_read(&gw, &req, &id).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    if !is_sha256_hex(&sha256) {
        return Problem::not_found().response(&gw.identity);
    }
    if doc.purged_at_ms.is_some() {
        return Problem::document_purged().response(&gw.identity);
    }
    let attachment = match gw.store.document_attachment(&doc.id, &sha256).await {
        Ok(Some(a)) => a,
        Ok(None) => return Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "reading an attachment record failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    // Absent only when require_attachments = false let a bare reference through.
    let file = match tokio::fs::File::open(gw.blobs.path(&sha256)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Problem::not_found().response(&gw.identity)
        }
        Err(e) => {
            tracing::error!(error = %e, "opening an attachment blob failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let size = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            tracing::error!(error = %e, "reading an attachment blob failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let event = LogEvent::AttachmentRead {
        document_id: doc.id.clone(),
        sha256: sha256.clone(),
        reader,
    };
    if let Err(e) = gw
        .store
        .append_log(&xlog::prepare(&event, gw.clock.now()))
        .await
    {
        tracing::error!(error = %e, "could not log a read; refusing it");
        return Problem::unavailable().response(&gw.identity);
    }
    let mut digest = [0u8; 32];
    if hex::decode_to_slice(&sha256, &mut digest).is_err() {
        return Problem::not_found().response(&gw.identity);
    }
    let mut response = HttpResponse::Ok();
    response.content_type(attachment.media_type.clone());
    match crate::security::response::sign_response_digest(
        &gw.identity,
        200,
        &attachment.media_type,
        content_digest_of_sha256(&digest),
    ) {
        Ok(headers) => {
            for (name, value) in headers {
                response.insert_header((name, value));
            }
        }
        Err(e) => tracing::error!(error = %e, "could not sign a response"),
    }
    response.no_chunking(size);
    response.streaming(file_chunks(file))
}

/// The file as 64 KiB chunks.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
}
