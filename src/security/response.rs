//! Signed responses (RFC 9421 §2.2.9): the gateway signs what it answers —
//! receipts above all — over `@status`, `content-type` and `content-digest`,
//! so that a partner holds proof of the answer; partners verify with the
//! gateway certificate. Both directions live here so they cannot drift apart.

use super::alg::VerifyingKey;
use super::devpki::GatewayIdentity;
use super::httpsig::{self, MessageComponents, SignatureParams, RESPONSE_COMPONENTS};
use super::{digest, SecurityError};

/// The covered parts of a response.
#[derive(Debug, Clone)]
pub struct ResponseParts {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_digest: Option<String>,
}

impl MessageComponents for ResponseParts {
    fn component(&self, name: &str) -> Option<String> {
        match name {
            "@status" => Some(self.status.to_string()),
            "content-type" => self.content_type.clone(),
            "content-digest" => self.content_digest.clone(),
            _ => None,
        }
    }
}

/// Headers (`Content-Digest`, `Signature-Input`, `Signature`) that sign a response body.
pub fn sign_response(
    identity: &GatewayIdentity,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, SecurityError> {
    sign_response_digest(identity, status, content_type, digest::content_digest(body))
}

/// [`sign_response`] for a body streamed from disk, known by its
/// `Content-Digest` header value (attachments: the blob's name is its SHA-256).
pub fn sign_response_digest(
    identity: &GatewayIdentity,
    status: u16,
    content_type: &str,
    content_digest: String,
) -> Result<Vec<(&'static str, String)>, SecurityError> {
    let parts = ResponseParts {
        status,
        content_type: Some(content_type.to_string()),
        content_digest: Some(content_digest),
    };
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let params = SignatureParams::new(
        "sig1",
        &RESPONSE_COMPONENTS,
        created,
        &identity.keyid,
        identity.algorithm,
        None,
    );
    let (input, signature) = httpsig::sign_message(&params, &parts, &identity.key)?;
    Ok(vec![
        ("content-digest", parts.content_digest.unwrap_or_default()),
        ("signature-input", input),
        ("signature", signature),
    ])
}

/// Verifies a signed response against the gateway's public key and the
/// expected key id; returns the verified signature parameters.
pub fn verify_response(
    parts: &ResponseParts,
    signature_input: &str,
    signature: &str,
    body: &[u8],
    gateway_key: &VerifyingKey,
    gateway_keyid: &str,
) -> Result<SignatureParams, SecurityError> {
    let digest_header = parts
        .content_digest
        .as_deref()
        .ok_or(SecurityError::MissingContentDigest)?;
    digest::verify_content_digest(digest_header, body)?;
    let (params, signature) = httpsig::parse_signature(signature_input, signature)?;
    httpsig::require_components(&params, &RESPONSE_COMPONENTS)?;
    if params.keyid != gateway_keyid {
        return Err(SecurityError::UnknownKeyId);
    }
    httpsig::verify_message(&params, &signature, parts, gateway_key)?;
    Ok(params)
}
