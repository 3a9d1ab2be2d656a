//! `GET /api/v1/schemas` and `GET /api/v1/schemas/{name}`: the JSON Schemas
//! of the canonical documents, exactly as the validator uses them. They are
//! the public contract, so no signature is asked for; answers are signed.

use actix_web::{web, HttpResponse};

use super::problem::{signed, Problem};
use crate::app::Gateway;

/// The names of every schema (`envelope` and one per message type).
pub async fn list(gw: web::Data<Gateway>) -> HttpResponse {
    let names = gw.validator.schema_names();
    let body = serde_json::json!({
        "schemas": names
            .iter()
            .map(|n| serde_json::json!({"name": n, "href": format!("/api/v1/schemas/{n}")}))
            .collect::<Vec<_>>()
    });
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    )
}

/// One schema, by message type (`handover.notice`) or file name (`handover.notice.schema.json`).
pub async fn get(gw: web::Data<Gateway>, name: web::Path<String>) -> HttpResponse {
    match gw.validator.schema(&name) {
        Some(schema) => signed(
            &gw.identity,
            200,
            "application/schema+json",
            serde_json::to_vec_pretty(schema).unwrap_or_default(),
        ),
        None => Problem::not_found().response(&gw.identity),
    }
}
