//! Operations endpoints: `/readyz` (the database answers) and `/metrics`
//! (Prometheus text). Neither carries personal data or needs a signature;
//! `/healthz` (the process is up) is in the route table.

use actix_web::{web, HttpResponse};

use crate::app::Gateway;

/// Ready when the database answers a query; 503 with `Retry-After` otherwise.
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
pub async fn metrics(gw: web::Data<Gateway>) -> HttpResponse {
    if let Ok(entries) = gw.store.count("exchange_log").await {
        crate::metrics::log_size(entries);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::handle().render())
}
