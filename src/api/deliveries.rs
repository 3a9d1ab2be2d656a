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

use super::problem::{signed, Problem};
use super::request_parts;
use crate::app::Gateway;
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::verify_request;
use crate::store::{Delivery, Retried};
use crate::timefmt;
use crate::violation::Bilingual;

/// A delivery as partners and clerks see it.
#[derive(Serialize)]
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

fn json(gw: &Gateway, status: u16, value: &impl Serialize) -> HttpResponse {
    signed(
        &gw.identity,
        status,
        "application/json",
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
}

/// `GET /api/v1/documents/{id}/deliveries`.
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
            let views: Vec<DeliveryView> = list.into_iter().map(DeliveryView::from).collect();
            json(
                &gw,
                200,
                &serde_json::json!({ "document_id": doc.id, "deliveries": views }),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "reading deliveries failed");
            Problem::unavailable().response(&gw.identity)
        }
    }
}

/// `POST /api/v1/deliveries/{id}/retry`.
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
