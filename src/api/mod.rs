//! Partner HTTP endpoints (documents, attachments, mailbox, deliveries, cases, the exchange log). Handlers translate HTTP into calls on `intake`,
//! `store` and `security` and back; every error becomes problem+json in one
//! place ([`problem`]), and every response to a partner is signed by the
//! gateway (RFC 9421, covering `@status`, `content-type`, `content-digest`).

pub mod attachments;
pub mod cases;
pub mod deliveries;
pub mod documents;
pub mod log;
pub mod mailbox;
pub mod ops;
pub mod problem;
pub mod schemas;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::app::Gateway;
use crate::security::request::{verify_request, RequestParts, VerifiedRequest};
use crate::security::SecurityError;
use problem::Problem;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/documents", web::post().to(documents::submit))
            .route("/documents/{id}", web::get().to(documents::original))
            .route(
                "/documents/{id}/canonical",
                web::get().to(documents::canonical),
            )
            .route(
                "/documents/{id}/attachments/{sha256}",
                web::get().to(attachments::read),
            )
            .route("/attachments/{sha256}", web::put().to(attachments::upload))
            .route("/cases", web::get().to(cases::list))
            .route(
                "/documents/{id}/deliveries",
                web::get().to(deliveries::of_document),
            )
            .route("/deliveries/{id}/retry", web::post().to(deliveries::retry))
            .route("/mailbox", web::get().to(mailbox::list))
            .route("/mailbox/{id}/ack", web::post().to(mailbox::ack))
            .route("/cases/{id}", web::get().to(cases::get))
            .route("/log/checkpoint", web::get().to(log::checkpoint))
            .route("/log/entries", web::get().to(log::entries))
            .route("/log/proof/inclusion", web::get().to(log::inclusion))
            .route("/log/proof/consistency", web::get().to(log::consistency))
            .route("/schemas", web::get().to(schemas::list))
            .route("/schemas/{name}", web::get().to(schemas::get)),
    )
    .route("/metrics", web::get().to(ops::metrics))
    .route("/readyz", web::get().to(ops::ready))
    .route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().content_type("text/plain").body("ok\n") }),
    )
    .default_service(web::to(|| async {
        Problem::not_found().response_unsigned()
    }));
}

/// The RFC 9421 covered parts of an incoming request.
pub fn request_parts(req: &HttpRequest) -> RequestParts {
    let header = |name: &str| {
        let values: Vec<&str> = req
            .headers()
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    RequestParts {
        method: req.method().as_str().to_string(),
        path: req.path().to_string(),
        query: (!req.query_string().is_empty()).then(|| format!("?{}", req.query_string())),
        content_type: header("content-type"),
        content_digest: header("content-digest"),
        signature_input: header("signature-input"),
        signature: header("signature"),
    }
}

/// Authenticates a read: the request must be signed over at least
/// `@method` and `@path` (and `@query` when it has a query, so filters and
/// cursors cannot be changed in transit) by a trusted, valid, unrevoked
/// agency certificate.
pub fn authenticate_read(
    gw: &Gateway,
    req: &HttpRequest,
) -> Result<VerifiedRequest, SecurityError> {
    let parts = request_parts(req);
    let required: &[&str] = if parts.query.is_some() {
        &["@method", "@path", "@query"]
    } else {
        &["@method", "@path"]
    };
    verify_request(
        &parts,
        None,
        required,
        &gw.trust,
        gw.settings.signature_window_secs,
        gw.clock.now().unix_timestamp(),
    )
}
