//! Delivery status and manual retry (docs/delivery.md):
//!
//! - `GET /api/v1/documents/{id}/deliveries`: where each delivery of a
//!   document stands, for the document's parties (the same `404` as for an
//!   unknown id to anyone else). No document content.
//! - `POST /api/v1/deliveries/{id}/retry`: puts a dead letter back in the
//!   outbox. Signed like a submission (any small JSON body, `{}`); only the
//!   document's **sender** may ask (it is the side that must prove delivery);
//!   the document's other parties get `403 retry_not_permitted`, everyone
//!   else `404`. Operators use `corrections-gateway deliveries retry`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::openapi::{Refusals, SignedRead, SignedSubmission};
use super::problem::{signed, Problem};
use super::request_parts;
use crate::app::Gateway;
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::verify_request;
use crate::store::{Delivery, Retried};
use crate::timefmt;
use crate::violation::Bilingual;

/// A delivery as partners and clerks see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    delivery_id: String,
    document_id: String,
    agency: String,
    role: String,
    mode: String,
    state: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    /// When the recipient's signed receipt (push) or ack (pull) was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_at: Option<String>,
    /// The recipient's signing certificate fingerprint and the digest of its receipt/ack.
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_keyid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_sha256: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            next_attempt_at: (d.state == "pending" && d.mode == "push")
                .then(|| timefmt::beijing_ms(d.next_attempt_at_ms)),
            completed_at: d.completed_at_ms.map(timefmt::beijing_ms),
            dead_at: d.dead_at_ms.map(timefmt::beijing_ms),
            delivery_id: d.id,
            document_id: d.document_id,
            agency: d.agency_id,
            role: d.role,
            mode: d.mode,
            state: d.state,
            attempts: d.attempts,
            last_error: d.last_error,
            last_status: d.last_status,
            evidence_keyid: d.evidence_keyid,
            evidence_sha256: d.evidence_sha256,
        }
    }
}

/// The answer of `GET /api/v1/documents/{id}/deliveries`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentDeliveries {
    document_id: String,
    deliveries: Vec<DeliveryView>,
}

fn json(gw: &Gateway, status: u16, value: &impl Serialize) -> HttpResponse {
    signed(
        &gw.identity,
        status,
        "application/json",
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
}

/// `GET /api/v1/documents/{id}/deliveries`.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}/deliveries",
    tag = "delivery",
    params(("id" = String, Path, description = "the gateway's document id"), SignedRead),
    responses(
        (status = 200, description = "where each delivery of the document stands", body = DocumentDeliveries),
        (status = 404, description = "no such document, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn of_document(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let (doc, _reader) = match super::documents::authorize_read(&gw, &req, &id).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    match gw.store.deliveries_of_document(&doc.id).await {
        Ok(list) => {
            let answer = DocumentDeliveries {
                document_id: doc.id,
                deliveries: list.into_iter().map(DeliveryView::from).collect(),
            };
            json(&gw, 200, &answer)
        }
        Err(e) => {
            tracing::error!(error = %e, "reading deliveries failed");
            Problem::unavailable().response(&gw.identity)
        }
    }
}

/// `POST /api/v1/deliveries/{id}/retry`.
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{id}/retry",
    tag = "delivery",
    params(("id" = String, Path, description = "the delivery id"), SignedSubmission),
    request_body(description = "any small JSON object, e.g. `{}` (signed like a submission)", content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "the dead letter is back in the outbox", body = DeliveryView),
        (status = 403, description = "`retry_not_permitted`: only the document's sender may retry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such delivery, or the caller is not a party", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`delivery_not_dead`: only a dead letter can be retried", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn retry(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let body = match super::documents::read_limited(&req, payload, 64 * 1024).await {
        Ok(body) => body,
        Err(problem) => return problem.response(&gw.identity),
    };
    let verified = match verify_request(
        &request_parts(&req),
        Some(&body),
        &REQUEST_COMPONENTS,
        &gw.trust,
        gw.settings.signature_window_secs,
        gw.clock.now().unix_timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let agency = verified.signer.agency;
    let (delivery, doc) = match gw.store.delivery(&id).await {
        Ok(Some(d)) => match gw.store.document(&d.document_id).await {
            Ok(Some(doc)) => (d, doc),
            Ok(None) => return Problem::not_found().response(&gw.identity),
            Err(e) => {
                tracing::error!(error = %e, "reading a document failed");
                return Problem::unavailable().response(&gw.identity);
            }
        },
        Ok(None) => return Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "reading a delivery failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    if doc.sender != agency {
        let party = doc.parties.iter().any(|(a, _)| *a == agency);
        if !party {
            return Problem::not_found().response(&gw.identity);
        }
        return Problem::new(
            403,
            "retry_not_permitted",
            Bilingual::new(
                "只有文书的发送机关可以要求重新投递",
                "only the document's sender may ask for a delivery to be retried",
            ),
            Vec::new(),
        )
        .response(&gw.identity);
    }
    match crate::delivery::retry(&gw.store, &delivery.id, &agency).await {
        Ok(Retried::Requeued(d)) => {
            tracing::info!(delivery_id = %d.id, by = %agency, "dead letter retried by its sender");
            json(&gw, 200, &DeliveryView::from(*d))
        }
        Ok(Retried::NotDead(state)) => Problem::new(
            409,
            "delivery_not_dead",
            Bilingual::new(
                format!("该投递当前状态为 {state}，只有死信可以重新投递"),
                format!("the delivery is {state}; only a dead letter can be retried"),
            ),
            Vec::new(),
        )
        .response(&gw.identity),
        Ok(Retried::NotFound) => Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "a retry could not be stored");
            Problem::unavailable().response(&gw.identity)
        }
    }
}
