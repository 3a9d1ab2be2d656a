//! One push attempt (docs/delivery.md is the partner-facing contract):
//!
//! 1. encode the canonical document into the recipient's dialect and charset
//!    ([`crate::formats::Formats::encode`]);
//! 2. `POST` it to the recipient's registered endpoint, signed by the gateway
//!    key per RFC 9421 over `@method @path content-type content-digest
//!    gateway-document-id`, with `Gateway-Document-Id` (the receiver's
//!    de-duplication key) and `Gateway-Delivery-Id`;
//! 3. accept only a `2xx` answer carrying the recipient's **signed receipt**:
//!    `Content-Digest` over the body, a signature over `@status content-type
//!    content-digest` whose `keyid` is a certificate that chains to the
//!    recipient agency's CA in the trust store and is bound to that very
//!    agency, and a JSON body naming the same `document_id`.
//!
//! Anything else is a failed attempt with a stable outcome code (listed in
//! docs/errors.md): the outbox retries it. Nothing here touches storage.

use openssl::sha::sha256;
use serde_json::Value;

use crate::registry::{DeliveryMode, Registry};
use crate::security::devpki::GatewayIdentity;
use crate::security::digest::{content_digest, sha256_hex, verify_content_digest};
use crate::security::httpsig::{self, MessageComponents, SignatureParams, RESPONSE_COMPONENTS};
use crate::security::response::ResponseParts;
use crate::security::trust::TrustStore;
use crate::security::SecurityError;
use crate::store::Evidence;

/// Header naming the gateway document id: receivers de-duplicate by it.
pub const DOCUMENT_ID_HEADER: &str = "gateway-document-id";
/// Header naming the delivery (one per document and recipient).
pub const DELIVERY_ID_HEADER: &str = "gateway-delivery-id";
/// Components the gateway's push signature covers.
pub const PUSH_COMPONENTS: [&str; 5] = [
    "@method",
    "@path",
    "content-type",
    "content-digest",
    DOCUMENT_ID_HEADER,
];
/// Largest receipt body the gateway reads.
pub const MAX_RECEIPT_BYTES: usize = 256 * 1024;

/// Outcome: the endpoint could not be reached (connection refused, DNS, TLS, reset).
pub const ENDPOINT_UNREACHABLE: &str = "endpoint_unreachable";
/// Outcome: no complete answer within `delivery.timeout_ms`.
pub const ENDPOINT_TIMEOUT: &str = "endpoint_timeout";
/// Outcome: the endpoint answered with a status other than 2xx.
pub const ENDPOINT_STATUS: &str = "endpoint_status";
/// Outcome: a 2xx answer without `Signature`, `Signature-Input` or `Content-Digest`.
pub const RECEIPT_UNSIGNED: &str = "receipt_unsigned";
/// Outcome: the receipt's digest or signature does not verify, its signature
/// parameters are malformed or incomplete, or `created` is out of window.
pub const RECEIPT_SIGNATURE_INVALID: &str = "receipt_signature_invalid";
/// Outcome: the receipt's `keyid` is not a trusted, valid, unrevoked certificate.
pub const RECEIPT_SIGNER_UNTRUSTED: &str = "receipt_signer_untrusted";
/// Outcome: the receipt is signed by a certificate of another agency.
pub const RECEIPT_SIGNER_MISMATCH: &str = "receipt_signer_mismatch";
/// Outcome: the receipt body is not a JSON object (or is too large).
pub const RECEIPT_MALFORMED: &str = "receipt_malformed";
/// Outcome: the receipt names another document (or another agency).
pub const RECEIPT_DOCUMENT_MISMATCH: &str = "receipt_document_mismatch";
/// Outcome: the registry no longer lists a push endpoint for the agency.
pub const NO_ENDPOINT: &str = "no_endpoint";
/// Outcome: the document cannot be expressed in the recipient's dialect
/// (dead-lettered at once: retrying cannot help until the mapping changes).
pub const TRANSLATION_FAILED: &str = "translation_failed";

/// A failed attempt: its outcome code and the HTTP status, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub http_status: Option<u16>,
}

impl Failure {
    pub fn new(code: &'static str, http_status: Option<u16>) -> Failure {
        Failure { code, http_status }
    }

    /// Whether another attempt could succeed without an operator.
    pub fn retryable(&self) -> bool {
        self.code != TRANSLATION_FAILED
    }
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Hex SHA-256 of `body` (kept with the delivery).
    pub body_sha256: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The answer as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_digest: Option<String>,
    pub signature_input: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// The covered components of a push request.
struct PushMessage<'a> {
    path: &'a str,
    content_type: &'a str,
    content_digest: &'a str,
    document_id: &'a str,
}

impl MessageComponents for PushMessage<'_> {
    fn component(&self, name: &str) -> Option<String> {
        match name {
            "@method" => Some("POST".to_owned()),
            "@path" => Some(self.path.to_owned()),
            "content-type" => Some(self.content_type.to_owned()),
            "content-digest" => Some(self.content_digest.to_owned()),
            DOCUMENT_ID_HEADER => Some(self.document_id.to_owned()),
            _ => None,
        }
    }
}

/// The recipient's push endpoint from the registry.
pub fn endpoint(registry: &Registry, agency: &str) -> Result<String, Failure> {
    match registry.get(agency) {
        Some(a) if a.delivery == DeliveryMode::Push => {
            a.endpoint.clone().ok_or(Failure::new(NO_ENDPOINT, None))
        }
        _ => Err(Failure::new(NO_ENDPOINT, None)),
    }
}

/// Builds the signed request for one delivery of `body` (already in the
/// recipient's dialect).
pub fn sign(
    identity: &GatewayIdentity,
    url: &str,
    document_id: &str,
    delivery_id: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Outgoing, Failure> {
    let parsed = reqwest::Url::parse(url).map_err(|_| Failure::new(NO_ENDPOINT, None))?;
    let digest = content_digest(&body);
    let message = PushMessage {
        path: parsed.path(),
        content_type,
        content_digest: &digest,
        document_id,
    };
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = Some(uuid::Uuid::new_v4().simple().to_string());
    let params = SignatureParams::new(
        "sig1",
        &PUSH_COMPONENTS,
        created,
        &identity.keyid,
        identity.algorithm,
        nonce,
    );
    let (input, signature) = httpsig::sign_message(&params, &message, &identity.key)
        .map_err(|_| Failure::new(ENDPOINT_UNREACHABLE, None))?;
    Ok(Outgoing {
        url: url.to_owned(),
        content_type: content_type.to_owned(),
        body_sha256: sha256_hex(&body),
        headers: vec![
            ("content-digest", digest),
            ("signature-input", input),
            ("signature", signature),
            (DOCUMENT_ID_HEADER, document_id.to_owned()),
            (DELIVERY_ID_HEADER, delivery_id.to_owned()),
        ],
        body,
    })
}

/// Sends the request; the caller bounds the whole attempt with its timeout.
pub async fn send(client: &reqwest::Client, out: &Outgoing) -> Result<Answer, Failure> {
    let mut request = client
        .post(&out.url)
        .header("content-type", &out.content_type)
        .body(out.body.clone());
    for (name, value) in &out.headers {
        request = request.header(*name, value);
    }
    let mut response = request.send().await.map_err(transport)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let content_digest = header("content-digest");
    let signature_input = header("signature-input");
    let signature = header("signature");
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RECEIPT_BYTES {
            return Err(Failure::new(RECEIPT_MALFORMED, Some(status)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        content_type,
        content_digest,
        signature_input,
        signature,
        body,
    })
}

fn transport(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::new(ENDPOINT_TIMEOUT, None)
    } else {
        Failure::new(ENDPOINT_UNREACHABLE, None)
    }
}

/// What the recipient is expected to have signed.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub recipient: &'a str,
    pub document_id: &'a str,
    pub window_secs: i64,
    pub now_unix: i64,
}

/// Checks the answer is the recipient's signed receipt of this document;
/// returns the evidence to keep.
pub fn verify_receipt(
    trust: &TrustStore,
    answer: &Answer,
    expected: Expected<'_>,
) -> Result<Evidence, Failure> {
    let status = Some(answer.status);
    let fail = |code| Failure::new(code, status);
    if !(200..300).contains(&answer.status) {
        return Err(fail(ENDPOINT_STATUS));
    }
    let (Some(digest), Some(input), Some(signature)) = (
        &answer.content_digest,
        &answer.signature_input,
        &answer.signature,
    ) else {
        return Err(fail(RECEIPT_UNSIGNED));
    };
    verify_content_digest(digest, &answer.body).map_err(|_| fail(RECEIPT_SIGNATURE_INVALID))?;
    let (params, raw) =
        httpsig::parse_signature(input, signature).map_err(|_| fail(RECEIPT_SIGNATURE_INVALID))?;
    httpsig::require_components(&params, &RESPONSE_COMPONENTS)
        .map_err(|_| fail(RECEIPT_SIGNATURE_INVALID))?;
    httpsig::check_time(&params, expected.now_unix, expected.window_secs)
        .map_err(|_| fail(RECEIPT_SIGNATURE_INVALID))?;
    let signer = trust
        .verify_signer(&params.keyid, expected.now_unix)
        .map_err(|e| match e {
            SecurityError::CertificateAgencyMismatch => fail(RECEIPT_SIGNER_MISMATCH),
            _ => fail(RECEIPT_SIGNER_UNTRUSTED),
        })?;
    if signer.agency != expected.recipient {
        return Err(fail(RECEIPT_SIGNER_MISMATCH));
    }
    let parts = ResponseParts {
        status: answer.status,
        content_type: answer.content_type.clone(),
        content_digest: Some(digest.clone()),
    };
    httpsig::verify_message(&params, &raw, &parts, &signer.public_key)
        .map_err(|_| fail(RECEIPT_SIGNATURE_INVALID))?;
    let receipt: Value =
        serde_json::from_slice(&answer.body).map_err(|_| fail(RECEIPT_MALFORMED))?;
    let Some(object) = receipt.as_object() else {
        return Err(fail(RECEIPT_MALFORMED));
    };
    if object.get("document_id").and_then(Value::as_str) != Some(expected.document_id) {
        return Err(fail(RECEIPT_DOCUMENT_MISMATCH));
    }
    if let Some(agency) = object.get("agency") {
        if agency.as_str() != Some(expected.recipient) {
            return Err(fail(RECEIPT_DOCUMENT_MISMATCH));
        }
    }
    Ok(Evidence {
        keyid: params.keyid,
        signature_input: input.clone(),
        signature: signature.clone(),
        sha256: hex::encode(sha256(&answer.body)),
        body: answer.body.clone(),
    })
}
