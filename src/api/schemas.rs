//! `GET /api/v1/schemas` and `GET /api/v1/schemas/{name}`: the JSON Schemas
//! of the canonical documents, exactly as the validator uses them. They are
//! the public contract, so no signature is asked for; answers are signed.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::problem::{signed, Problem};
use crate::app::Gateway;

/// The names of every schema (`envelope` and one per message type).
#[utoipa::path(
    get,
    path = "/api/v1/schemas",
    tag = "contract",
    security(()),
    responses((status = 200, description = "`{\"schemas\": [{\"name\", \"href\"}]}`", body = SchemaList))
)]
pub async fn list(gw: web::Data<Gateway>) -> HttpResponse {
    let body = SchemaList {
        schemas: gw
            .validator
            .schema_names()
            .iter()
            .map(|name| SchemaRef {
                name: name.to_string(),
                href: format!("/api/v1/schemas/{name}"),
            })
            .collect(),
    };
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    )
}

/// The answer of `GET /api/v1/schemas`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SchemaList {
    schemas: Vec<SchemaRef>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SchemaRef {
    /// `envelope` or a message type (`handover.notice`).
    name: String,
    href: String,
}

/// One schema, by message type (`handover.notice`) or file name (`handover.notice.schema.json`).
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{name}",
    tag = "contract",
    security(()),
    params(("name" = String, Path, description = "message type (`handover.notice`) or file name (`handover.notice.schema.json`)")),
    responses(
        (status = 200, description = "the JSON Schema (2020-12) the validator uses", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "no such schema", body = Problem, content_type = "application/problem+json")
    )
)]
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
