//! `POST /api/v1/documents` (submit: a native document, or `multipart/related`
//! with its attachments) and `GET /api/v1/documents/{id}[/canonical]` (read).

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::openapi::{Refusals, SignedRead, SignedSubmission};
use super::problem::{signed, Problem};
use super::{authenticate_read, request_parts};
use crate::app::Gateway;
use crate::intake::{self, Body, Submission};
use crate::store::StoredDocument;
use crate::xlog::{self, LogEvent};

/// Submits one signed native document; answers with the signed receipt.
#[utoipa::path(
    post,
    path = "/api/v1/documents",
    tag = "documents",
    params(SignedSubmission),
    request_body(
        description = "The partner's native document, byte for byte as signed (XML or JSON; \
            `; charset=` honoured, GB18030 included), or `multipart/related` with the document \
            first and its attachments after it.",
        content(
            (String = "application/xml"),
            (Object = "application/json"),
            (String = "multipart/related")
        )
    ),
    responses(
        (status = 201, description = "accepted: the signed receipt", body = crate::intake::Receipt),
        (status = 200, description = "the same bytes from the same sender again: the original receipt", body = crate::intake::Receipt),
        (status = 413, description = "body over `max_body_bytes` (or `max_multipart_bytes`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the document is not valid: every problem with its path", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn submit(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/related"))
        });
    let body = if multipart {
        // Streamed by intake after the signature checks out; only the declared
        // length can be refused up front.
        let limit = gw.settings.max_multipart_bytes;
        if declared_length(&req).is_some_and(|n| n > limit) {
            return Problem::body_too_large(limit as usize).response(&gw.identity);
        }
        Body::Multipart(body_stream(payload))
    } else {
        match read_limited(&req, payload, gw.settings.max_body_bytes).await {
            Ok(body) => Body::Document(body),
            Err(problem) => return problem.response(&gw.identity),
        }
    };
    let submission = Submission {
        parts: request_parts(&req),
        body,
        by_user: None,
    };
    match intake::submit(&gw, submission).await {
        Ok(Ok(accepted)) => signed(
            &gw.identity,
            accepted.status,
            "application/json",
            accepted.receipt,
        ),
        Ok(Err(rejection)) => {
            tracing::info!(status = rejection.status, codes = ?rejection.codes(), "submission rejected");
            Problem::rejection(rejection).response(&gw.identity)
        }
        Err(e) => {
            tracing::error!(error = %e, "submission could not be stored");
            Problem::unavailable().response(&gw.identity)
        }
    }
}

/// The original bytes exactly as the sender signed them.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "the gateway's document id"), SignedRead),
    responses(
        (status = 200, description = "the original bytes, with the Content-Type they were sent with", content(
            (String = "application/xml"),
            (Object = "application/json")
        )),
        (status = 404, description = "no such document, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "the document's retention period ended: body and attachments purged (`document_purged`)", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn original(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    read(&gw, &req, &id, View::Original).await
}

/// The validated canonical JSON.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}/canonical",
    tag = "documents",
    params(("id" = String, Path, description = "the gateway's document id"), SignedRead),
    responses(
        (status = 200, description = "the canonical document (schemas at /api/v1/schemas)", body = Object),
        (status = 404, description = "no such document, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "the document's retention period ended: body and attachments purged (`document_purged`)", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn canonical(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    read(&gw, &req, &id, View::Canonical).await
}

#[derive(Clone, Copy)]
enum View {
    Original,
    Canonical,
}

/// Only the sender, the recipients and the copies may read a document; any
/// other agency gets the same 404 as for a missing id, so ids leak nothing.
/// Returns the document and the reading agency, or the refusal to send.
pub(super) async fn authorize_read(
    gw: &Gateway,
    req: &HttpRequest,
    id: &str,
) -> Result<(StoredDocument, String), HttpResponse> {
    let reader = match authenticate_read(gw, req) {
        Ok(verified) => verified.signer.agency,
        Err(e) => return Err(Problem::security(&e).response(&gw.identity)),
    };
    let doc = match gw.store.document(id).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return Err(Problem::not_found().response(&gw.identity)),
        Err(e) => {
            tracing::error!(error = %e, "reading a document failed");
            return Err(Problem::unavailable().response(&gw.identity));
        }
    };
    let allowed = doc.sender == reader || doc.parties.iter().any(|(agency, _)| *agency == reader);
    if !allowed {
        return Err(Problem::not_found().response(&gw.identity));
    }
    Ok((doc, reader))
}

/// Each read is written to the exchange log before the bytes leave.
async fn read(gw: &Gateway, req: &HttpRequest, id: &str, view: View) -> HttpResponse {
    let (doc, reader) = match authorize_read(gw, req, id).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    // Past its retention period: the parties learn so, in words (not a 404
    // that would look like a lost document, not a 500).
    if doc.purged_at_ms.is_some() {
        return Problem::document_purged().response(&gw.identity);
    }
    let view_name = match view {
        View::Original => "original",
        View::Canonical => "canonical",
    };
    let event = LogEvent::DocumentRead {
        document_id: doc.id.clone(),
        reader,
        view: view_name.into(),
    };
    if let Err(e) = gw
        .store
        .append_log(&xlog::prepare(&event, gw.clock.now()))
        .await
    {
        tracing::error!(error = %e, "could not log a read; refusing it");
        return Problem::unavailable().response(&gw.identity);
    }
    match view {
        View::Original => signed(&gw.identity, 200, &doc.content_type, doc.original),
        View::Canonical => signed(
            &gw.identity,
            200,
            "application/json",
            doc.canonical.into_bytes(),
        ),
    }
}

/// The declared `Content-Length`, if any.
pub(super) fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The request body as a stream of chunks, for bodies that must not be buffered.
pub(super) fn body_stream(payload: web::Payload) -> crate::attachments::BodyStream {
    Box::pin(payload.map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string()))))
}

/// Reads the body, refusing with 413 as soon as the limit is passed — before
/// buffering when Content-Length already says so.
pub(super) async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, Problem> {
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Problem::body_too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            Problem::new(
                400,
                "body_unreadable",
                crate::violation::Bilingual::new(
                    "请求体读取失败",
                    "the request body could not be read",
                ),
                Vec::new(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::body_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
