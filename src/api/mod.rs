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
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod schemas;

use actix_web::{web, HttpRequest};

use crate::app::Gateway;
use crate::security::request::{verify_request, RequestParts, VerifiedRequest};
use crate::security::SecurityError;
use problem::Problem;

/// One table of every route: it builds the App ([`routes`]) and is what the
/// test against the OpenAPI document ([`openapi`]) enumerates, so a route
/// cannot be added without appearing in both, nor documented without existing.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every route the gateway serves besides the web interface: (method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register_routes(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

route_table! {
    post "/api/v1/documents" => documents::submit;
    get "/api/v1/documents/{id}" => documents::original;
    get "/api/v1/documents/{id}/canonical" => documents::canonical;
    get "/api/v1/documents/{id}/attachments/{sha256}" => attachments::read;
    get "/api/v1/documents/{id}/deliveries" => deliveries::of_document;
    put "/api/v1/attachments/{sha256}" => attachments::upload;
    post "/api/v1/deliveries/{id}/retry" => deliveries::retry;
    get "/api/v1/mailbox" => mailbox::list;
    post "/api/v1/mailbox/{id}/ack" => mailbox::ack;
    get "/api/v1/cases" => cases::list;
    get "/api/v1/cases/{id}" => cases::get;
    get "/api/v1/log/checkpoint" => log::checkpoint;
    get "/api/v1/log/entries" => log::entries;
    get "/api/v1/log/proof/inclusion" => log::inclusion;
    get "/api/v1/log/proof/consistency" => log::consistency;
    get "/api/v1/schemas" => schemas::list;
    get "/api/v1/schemas/{name}" => schemas::get;
    get "/api/v1/openapi.json" => openapi::document;
    get "/healthz" => ops::health;
    get "/readyz" => ops::ready;
    get "/metrics" => ops::metrics;
}

/// Registers every route of [`ROUTES`]; the rest get problem+json: 405 with
/// `Allow` for a path of the table asked with another method (RFC 9110
/// §15.5.6), 404 otherwise.
pub fn routes(cfg: &mut web::ServiceConfig) {
    register_routes(cfg);
    cfg.default_service(web::to(|req: HttpRequest| async move {
        let allowed = allowed_methods(req.path());
        if allowed.is_empty() {
            return Problem::not_found().response_unsigned();
        }
        let allowed = allowed.join(", ");
        let mut response =
            Problem::method_not_allowed(req.method().as_str(), &allowed).response_unsigned();
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed) {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        response
    }));
}

/// The methods [`ROUTES`] serves at `path` (upper case), none if it serves
/// nothing there.
fn allowed_methods(path: &str) -> Vec<String> {
    static TABLE: std::sync::OnceLock<Vec<(actix_web::dev::ResourceDef, String)>> =
        std::sync::OnceLock::new();
    TABLE
        .get_or_init(|| {
            ROUTES
                .iter()
                .map(|(method, pattern)| {
                    (
                        actix_web::dev::ResourceDef::new(*pattern),
                        method.to_ascii_uppercase(),
                    )
                })
                .collect()
        })
        .iter()
        .filter(|(def, _)| def.is_match(path))
        .map(|(_, method)| method.clone())
        .collect()
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
        tls_agency: req
            .conn_data::<crate::security::tls::TlsPeer>()
            .map(|peer| peer.agency.clone()),
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
