//! The pull side of delivery (protocol.md "Delivering to a partner"):
//!
//! - `GET /api/v1/mailbox?cursor=&limit=`: a signed read (like every GET)
//!   answered with the signing agency's pending pull deliveries, oldest
//!   first, each with the document already translated into the agency's
//!   dialect (base64, with its Content-Type and SHA-256), and an opaque
//!   `next_cursor`. Handing out a document is a read: each item is written
//!   to the exchange log (`document.read`, view `mailbox`) before the page is sent.
//! - `POST /api/v1/mailbox/{delivery_id}/ack`: signed like a submission
//!   (`Content-Digest`, signature over `@method @path content-type
//!   content-digest`), body `{"document_id": "…"}`. The first ack records
//!   the evidence, starts the periods the document's receipt starts and is
//!   logged (`mailbox.acked`), all in one transaction; a later ack with a
//!   fresh signature gets the byte-identical answer. Another agency's
//!   delivery answers `404` like an unknown one.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::openapi::{Refusals, SignedRead, SignedSubmission};
use super::problem::{signed, Problem};
use super::{authenticate_read, request_parts};
use crate::app::Gateway;
use crate::security::digest::sha256_hex;
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::verify_request;
use crate::security::SecurityError;
use crate::store::{Acked, Evidence, NewDeadline};
use crate::timefmt::{self, unix_ms};
use crate::violation::Bilingual;
use crate::workflow::deadlines;
use crate::xlog::{self, LogEvent, LogPosition};

/// Items per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// Largest ack body read.
const MAX_ACK_BYTES: usize = 64 * 1024;
const CURSOR_PREFIX: &str = "m1:";

/// Unknown parameters are refused like malformed ones (as for `/cases`): a
/// misspelt `limt=` must not silently give the default page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailboxQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Page {
    agency: String,
    items: Vec<Item>,
    /// Pass as `cursor` for the next page; `null` when this page is the last.
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Item {
    delivery_id: String,
    document_id: String,
    message_type: String,
    sender: String,
    role: String,
    case_id: Option<String>,
    queued_at: String,
    ack: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// Set instead of the body when the document cannot be expressed in the
    /// agency's dialect; the canonical form stays readable at
    /// `/api/v1/documents/{id}/canonical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ItemError {
    code: &'static str,
    message: Bilingual,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct AckBody {
    document_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AckAnswer<'a> {
    delivery_id: &'a str,
    document_id: &'a str,
    agency: &'a str,
    acked_at: String,
    ack_sha256: &'a str,
    log_index: i64,
    leaf_hash: String,
}

fn bad_request(code: &'static str, zh: &str, en: &str) -> Problem {
    Problem::new(400, code, Bilingual::new(zh, en), Vec::new())
}

fn invalid_cursor() -> Problem {
    bad_request(
        "invalid_cursor",
        "cursor 参数无效，请使用上一页返回的 next_cursor",
        "the cursor is not one this mailbox returned; use the previous page's next_cursor",
    )
}

fn encode_cursor(delivery_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{delivery_id}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let id = text.strip_prefix(CURSOR_PREFIX)?;
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_owned())
}

/// `GET /api/v1/mailbox`.
#[utoipa::path(
    get,
    path = "/api/v1/mailbox",
    tag = "delivery",
    params(
        ("cursor" = Option<String>, Query, description = "the previous page's `next_cursor`"),
        ("limit" = Option<u32>, Query, description = "items per page, 1–100 (default 20)"),
        SignedRead
    ),
    responses(
        (status = 200, description = "the caller's pending pull deliveries, oldest first, each translated into its dialect (each hand-out is logged)", body = Page),
        Refusals
    ),
)]
pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let agency = match authenticate_read(&gw, &req) {
        Ok(verified) => verified.signer.agency,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let Ok(query) = web::Query::<MailboxQuery>::from_query(req.query_string()) else {
        return bad_request(
            "invalid_query",
            "查询参数无法解析",
            "the query string cannot be parsed",
        )
        .response(&gw.identity);
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return bad_request(
                    "invalid_limit",
                    "limit 须为 1 到 100 之间的整数",
                    "limit must be a whole number from 1 to 100",
                )
                .response(&gw.identity)
            }
        },
    };
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => match decode_cursor(cursor) {
            Some(id) => Some(id),
            None => return invalid_cursor().response(&gw.identity),
        },
    };
    let mut rows = match gw
        .store
        .mailbox(&agency, after.as_deref(), i64::from(limit) + 1)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "reading a mailbox failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let now = gw.clock.now();
    let mut items = Vec::with_capacity(rows.len());
    let mut reads = Vec::new();
    for row in rows {
        let mut item = Item {
            ack: format!("/api/v1/mailbox/{}/ack", row.delivery_id),
            delivery_id: row.delivery_id,
            document_id: row.document_id,
            message_type: row.message_type,
            sender: row.sender,
            role: row.role,
            case_id: row.case_id,
            queued_at: timefmt::beijing_ms(row.queued_at_ms),
            content_type: None,
            body_sha256: None,
            body_base64: None,
            error: None,
        };
        match crate::delivery::translate(&gw, &agency, &row.canonical) {
            Ok((bytes, content_type)) => {
                item.body_sha256 = Some(sha256_hex(&bytes));
                item.body_base64 = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
                item.content_type = Some(content_type);
                reads.push(xlog::prepare(
                    &LogEvent::DocumentRead {
                        document_id: item.document_id.clone(),
                        reader: agency.clone(),
                        view: "mailbox".into(),
                    },
                    now,
                ));
            }
            Err(problems) => {
                tracing::warn!(delivery_id = %item.delivery_id, codes = ?problems.iter().map(|p| p.code).collect::<Vec<_>>(), "a mailbox item cannot be translated");
                item.error = Some(ItemError {
                    code: crate::delivery::push::TRANSLATION_FAILED,
                    message: Bilingual::new(
                        "该文书无法转换为本机构的格式，请读取规范格式",
                        "the document cannot be expressed in this agency's format; read its canonical form",
                    ),
                });
            }
        }
        items.push(item);
    }
    let logged = match reads.is_empty() {
        true => Ok(()),
        false => gw.store.append_logs(&reads).await.map(drop),
    };
    if let Err(e) = logged {
        tracing::error!(error = %e, "could not log mailbox reads; refusing them");
        return Problem::unavailable().response(&gw.identity);
    }
    let next_cursor = if more {
        items.last().map(|i| encode_cursor(&i.delivery_id))
    } else {
        None
    };
    let page = Page {
        agency,
        items,
        next_cursor,
    };
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&page).unwrap_or_default(),
    )
}

/// `POST /api/v1/mailbox/{delivery_id}/ack`.
#[utoipa::path(
    post,
    path = "/api/v1/mailbox/{id}/ack",
    tag = "delivery",
    params(("id" = String, Path, description = "the mailbox item's `delivery_id`"), SignedSubmission),
    request_body(content = AckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "acknowledged (the same answer for a repeated ack); starts the periods counted from receipt", body = AckAnswer),
        (status = 404, description = "no such delivery in the caller's mailbox", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: an ack is application/json", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn ack(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let body = match super::documents::read_limited(&req, payload, MAX_ACK_BYTES).await {
        Ok(body) => body,
        Err(problem) => return problem.response(&gw.identity),
    };
    let parts = request_parts(&req);
    let now = gw.clock.now();
    let verified = match verify_request(
        &parts,
        Some(&body),
        &REQUEST_COMPONENTS,
        &gw.trust,
        gw.settings.signature_window_secs,
        now.unix_timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let agency = verified.signer.agency.clone();
    if gw.registry.get(&agency).is_none() {
        return Problem::rejection(crate::intake::Rejection::agency_not_registered())
            .response(&gw.identity);
    }
    let essence = parts
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if essence.as_deref() != Some("application/json") {
        return Problem::new(
            415,
            "unsupported_media_type",
            Bilingual::new(
                "确认回执须以 application/json 提交",
                "an ack must be sent as application/json",
            ),
            Vec::new(),
        )
        .response(&gw.identity);
    }
    let Ok(ack) = serde_json::from_slice::<AckBody>(&body) else {
        return bad_request(
            "ack_malformed",
            "确认回执须为含 document_id 的 JSON 对象",
            "an ack must be a JSON object with the document_id",
        )
        .response(&gw.identity);
    };
    let delivery = match gw.store.delivery(&id).await {
        Ok(Some(d)) if d.agency_id == agency && d.mode == "pull" => d,
        Ok(_) => return Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "reading a delivery failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    if ack.document_id != delivery.document_id {
        return Problem::new(
            422,
            "ack_document_mismatch",
            Bilingual::new(
                "确认回执中的 document_id 与该投递的文书不符",
                "the ack's document_id is not the document of this delivery",
            ),
            Vec::new(),
        )
        .response(&gw.identity);
    }
    let ack_sha256 = sha256_hex(&body);
    let evidence = Evidence {
        keyid: verified.params.keyid.clone(),
        signature_input: parts.signature_input.clone().unwrap_or_default(),
        signature: parts.signature.clone().unwrap_or_default(),
        body: body.to_vec(),
        sha256: ack_sha256.clone(),
    };
    // Owned: the ack is written by the committer (`store::group`).
    let calendar = gw.clone();
    let start = move |row: &NewDeadline| deadlines::start_on_receipt(row, now, &calendar.calendar);
    let (delivery_id, document_id) = (delivery.id.clone(), delivery.document_id.clone());
    let (recipient, keyid, sha) = (agency.clone(), evidence.keyid.clone(), ack_sha256.clone());
    let leaf = move |deadline_events| {
        xlog::prepare(
            &LogEvent::MailboxAcked {
                delivery_id: delivery_id.clone(),
                document_id: document_id.clone(),
                recipient: recipient.clone(),
                ack_sha256: sha.clone(),
                keyid: keyid.clone(),
                deadline_events,
            },
            now,
        )
    };
    let (delivery_id, document_id) = (delivery.id.clone(), delivery.document_id.clone());
    let (recipient, sha) = (agency.clone(), ack_sha256.clone());
    let answer = move |position: &LogPosition| {
        serde_json::to_vec_pretty(&AckAnswer {
            delivery_id: &delivery_id,
            document_id: &document_id,
            agency: &recipient,
            acked_at: timefmt::beijing(now),
            ack_sha256: &sha,
            log_index: position.index,
            leaf_hash: position.leaf_hash_hex(),
        })
        .unwrap_or_default()
    };
    let recorded = gw
        .store
        .record_ack(
            &delivery.id,
            &agency,
            &verified.signature_sha256,
            &evidence,
            unix_ms(now),
            start,
            leaf,
            answer,
        )
        .await;
    match recorded {
        Ok(Acked::New { answer }) => {
            tracing::info!(delivery_id = %delivery.id, recipient = %agency, "mailbox item acked");
            signed(&gw.identity, 200, "application/json", answer)
        }
        Ok(Acked::Again { answer }) => signed(&gw.identity, 200, "application/json", answer),
        Ok(Acked::Replayed) => {
            Problem::security(&SecurityError::ReplayedSignature).response(&gw.identity)
        }
        Ok(Acked::NotFound) => Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "an ack could not be stored");
            Problem::unavailable().response(&gw.identity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = "01930000-0000-7000-8000-000000000001";
        assert_eq!(decode_cursor(&encode_cursor(id)).as_deref(), Some(id));
        assert_eq!(decode_cursor("not base64!"), None);
        assert_eq!(
            decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x:1")),
            None
        );
        assert_eq!(
            decode_cursor(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("m1:' OR 1=1 --")
            ),
            None
        );
    }
}
