//! Operations endpoints: `/readyz` (the database answers) and `/metrics`
//! (Prometheus text), and `/healthz` (the process is up). None carries
//! personal data or needs a signature.

use actix_web::{web, HttpResponse};

use crate::app::Gateway;

/// Alive: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Ready when the database answers a query; 503 with `Retry-After` otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "the database does not answer (`Retry-After: 5`)", body = String, content_type = "text/plain")
    )
)]
pub async fn ready(gw: web::Data<Gateway>) -> HttpResponse {
    match gw.store.count("exchange_log").await {
        Ok(_) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the database does not answer");
            HttpResponse::ServiceUnavailable()
                .insert_header(("retry-after", "5"))
                .content_type("text/plain")
                .body("database unavailable\n")
        }
    }
}

/// The Prometheus exposition of this process's metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text exposition 0.0.4", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
pub async fn metrics(gw: web::Data<Gateway>) -> HttpResponse {
    if let Ok(entries) = gw.store.count("exchange_log").await {
        crate::metrics::log_size(entries);
    }
    if let Ok(lag) = gw.store.leaf_index_lag().await {
        crate::metrics::leaf_index_lag(lag);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::handle().render())
}
