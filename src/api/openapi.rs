//! The OpenAPI 3.1 document of the partner contract, served at
//! `GET /api/v1/openapi.json`. It is generated (utoipa) from the handlers'
//! `#[utoipa::path]` annotations and the `ToSchema` derives of the very
//! types the handlers serialise, so it describes what the code does; the
//! test `tests/openapi.rs` holds it to the route table ([`super::ROUTES`])
//! in both directions.
//!
//! What OpenAPI cannot express is said in words where it applies: an RFC 9421
//! signature is checked over named components (the `Signature-Input`
//! description says which), and every response of a partner route is signed
//! by the gateway (response headers `Content-Digest`, `Signature-Input`,
//! `Signature`, covering `"@status" "content-type" "content-digest"`).

use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};

use super::problem::{signed, Problem};
use crate::app::Gateway;

/// The RFC 9421 / RFC 9530 headers of a request that carries a body
/// (submissions, uploads, acks, retries).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SignedSubmission {
    /// RFC 9530 digest of the exact body bytes: `sha-256=:<base64>:` (or `sha-512`).
    #[param(
        rename = "Content-Digest",
        example = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )]
    pub content_digest: String,
    /// RFC 9421 signature parameters. Must cover at least
    /// `("@method" "@path" "content-type" "content-digest")`, with `created`,
    /// `keyid` (lowercase hex SHA-256 of the signer's DER certificate) and
    /// `alg` (`ecdsa-p256-sha256`, `rsa-pss-sha512`, `ed25519` or `sm2-sm3`);
    /// `nonce` and `expires` are optional. `created` must lie within the
    /// configured window (default ±300 s) and a signature is accepted once.
    #[param(
        rename = "Signature-Input",
        example = r#"sig1=("@method" "@path" "content-type" "content-digest");created=1727426400;keyid="4c1f9e0d3b2a19f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a291807";alg="ecdsa-p256-sha256""#
    )]
    pub signature_input: String,
    /// RFC 9421 signature value: `sig1=:<base64>:` (ECDSA and SM2 as raw `r‖s`, 64 bytes).
    #[param(
        rename = "Signature",
        example = "sig1=:W5hA1m2K9kJ0cHJvb2Ygb2Ygc2lnbmF0dXJlIGV4YW1wbGUgYnl0ZXMgMDEyMzQ1Njc4OWFiY2RlZg==:"
    )]
    pub signature: String,
}

/// The RFC 9421 headers of a signed read (no body).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SignedRead {
    /// RFC 9421 signature parameters covering at least `("@method" "@path")`,
    /// plus `"@query"` when the URL has a query string; `created`, `keyid`, `alg` as for submissions.
    #[param(
        rename = "Signature-Input",
        example = r#"sig1=("@method" "@path");created=1727426400;keyid="4c1f9e0d3b2a19f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a291807";alg="ed25519""#
    )]
    pub signature_input: String,
    /// RFC 9421 signature value: `sig1=:<base64>:`.
    #[param(
        rename = "Signature",
        example = "sig1=:W5hA1m2K9kJ0cHJvb2Ygb2Ygc2lnbmF0dXJlIGV4YW1wbGUgYnl0ZXMgMDEyMzQ1Njc4OWFiY2RlZg==:"
    )]
    pub signature: String,
}

/// The refusals any partner route may answer besides its own: one place
/// rather than on each route. (Documentation only: never constructed.)
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// Refused: signature or certificate (`tls_agency_mismatch` on the
    /// mutual-TLS listener), a malformed parameter or body, or not the
    /// caller's to see; the problem's `code` says which (docs/errors.md).
    #[response(status = "4XX", content_type = "application/problem+json")]
    Refused(Problem),
    /// Storage unavailable: nothing was stored; retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Security schemes (RFC 9421 signatures, mutual TLS) and the response
/// signature note, added to the generated document.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "http_message_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Signature",
                "RFC 9421 HTTP Message Signature (with Signature-Input and, for bodies, \
                 RFC 9530 Content-Digest) by a signer certificate that chains to the sending \
                 agency's CA in the gateway's trust store, is valid and not revoked.",
            ))),
        );
        components.add_security_scheme(
            "mutual_tls",
            SecurityScheme::MutualTls {
                description: Some(
                    "Production transport: a client certificate issued by the agency's CA \
                     (trust store `certs/`); its agency must be the signer's agency."
                        .into(),
                ),
                extensions: None,
            },
        );
        // Response headers every answer carries: one place rather than on each response.
        let string = || {
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .build()
        };
        let header = |description: &str| {
            utoipa::openapi::HeaderBuilder::new()
                .schema(string())
                .description(Some(description))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let signed = path.starts_with("/api/v1/");
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for response in operation.responses.responses.values_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        "X-Request-Id".into(),
                        header("the request's id: the caller's X-Request-Id if sane (1–64 of A–Z a–z 0–9 - _ . : /), else a generated UUID"),
                    );
                    if signed {
                        response.headers.insert(
                            "Content-Digest".into(),
                            header("RFC 9530 digest of the response body"),
                        );
                        response.headers.insert(
                            "Signature-Input".into(),
                            header("RFC 9421: the gateway's signature covers (\"@status\" \"content-type\" \"content-digest\"), keyid = SHA-256 of the gateway certificate"),
                        );
                        response
                            .headers
                            .insert("Signature".into(), header("RFC 9421 signature value"));
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "corrections-gateway partner API",
        description = "社区矫正 inter-agency document exchange gateway: the contract partner \
            systems integrate against (docs/ and shared spec protocol.md). Requests that submit, \
            acknowledge or read are signed (RFC 9421 + RFC 9530); every answer of a partner \
            route is signed by the gateway over `\"@status\" \"content-type\" \"content-digest\"` \
            (response headers Content-Digest, Signature-Input, Signature; keyid = the gateway \
            certificate's SHA-256 fingerprint). Refusals are `application/problem+json` \
            (RFC 9457) with a stable `code`, field `errors` with their `path`, and a zh-CN and \
            English `message`; docs/errors.md lists the codes. Every response carries \
            `X-Request-Id` (the caller's, if sane, else a generated UUID).",
        license(name = "Apache-2.0")
    ),
    paths(
        super::documents::submit,
        super::documents::original,
        super::documents::canonical,
        super::attachments::read,
        super::deliveries::of_document,
        super::attachments::upload,
        super::deliveries::retry,
        super::mailbox::list,
        super::mailbox::ack,
        super::cases::list,
        super::cases::get,
        super::log::checkpoint,
        super::log::entries,
        super::log::inclusion,
        super::log::consistency,
        super::schemas::list,
        super::schemas::get,
        document,
        super::ops::health,
        super::ops::ready,
        super::ops::metrics,
    ),
    components(schemas(Problem)),
    // Signed, over mutual TLS in production or over loopback HTTP in the
    // demo; public routes say `security(())`.
    security(
        ("http_message_signature" = [], "mutual_tls" = []),
        ("http_message_signature" = [])
    ),
    modifiers(&Security),
    tags(
        (name = "documents", description = "submit and read documents (文书)"),
        (name = "attachments", description = "attachments by SHA-256"),
        (name = "delivery", description = "deliveries, the pull mailbox and acknowledgements"),
        (name = "cases", description = "cases, deadlines and timelines"),
        (name = "log", description = "the exchange log: checkpoints, entries, proofs"),
        (name = "contract", description = "JSON Schemas and this document"),
        (name = "operations", description = "liveness, readiness, metrics")
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .map(String::into_bytes)
            .unwrap_or_default()
    })
}

/// `GET /api/v1/openapi.json`: public like the schemas; the answer is signed.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "contract",
    security(()),
    responses((status = 200, description = "this OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn document(gw: web::Data<Gateway>) -> HttpResponse {
    signed(&gw.identity, 200, "application/json", json().to_vec())
}
