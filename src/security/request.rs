//! Verifying one signed partner request (RFC 9421 + RFC 9530), in the order
//! that does the least work for an attacker: headers present → digest of the
//! body → signature parameters → time window → signer certificate (chain,
//! validity, revocation, agency) → the signature itself. Nothing here parses
//! the body: a document is decoded only after its signature checks out.

use openssl::sha::sha256;

use super::httpsig::{self, MessageComponents, SignatureParams};
use super::trust::{TrustStore, VerifiedSigner};
use super::{digest, SecurityError};

/// The parts of an HTTP request that RFC 9421 covers, captured by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct RequestParts {
    pub method: String,
    pub path: String,
    /// RFC 9421 `@query`: `?` and the query string as sent; `None` without one.
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub content_digest: Option<String>,
    pub signature_input: Option<String>,
    pub signature: Option<String>,
    /// The agency of the TLS client certificate the request came over
    /// (mutual-TLS listener); `None` on plain HTTP. Not a signed component:
    /// the signer's agency must equal it.
    pub tls_agency: Option<String>,
}

impl MessageComponents for RequestParts {
    fn component(&self, name: &str) -> Option<String> {
        match name {
            "@method" => Some(self.method.clone()),
            "@path" => Some(self.path.clone()),
            "@query" => self.query.clone(),
            "content-type" => self.content_type.clone(),
            "content-digest" => self.content_digest.clone(),
            _ => None,
        }
    }
}

/// A request whose signature and signer checked out.
#[derive(Debug)]
pub struct VerifiedRequest {
    pub signer: VerifiedSigner,
    pub params: SignatureParams,
    /// The signature base that was verified (kept as evidence).
    pub signature_base: String,
    /// Hex SHA-256 of the signature value: the replay key with the keyid.
    pub signature_sha256: String,
}

/// Verifies a request. `body` is `Some` for requests that carry a document:
/// then `Content-Digest` is required and checked, and `required` should be
/// [`httpsig::REQUEST_COMPONENTS`]. Reads pass `None` and cover at least
/// `@method` and `@path`.
pub fn verify_request(
    parts: &RequestParts,
    body: Option<&[u8]>,
    required: &[&str],
    trust: &TrustStore,
    window_secs: i64,
    now: i64,
) -> Result<VerifiedRequest, SecurityError> {
    if let Some(body) = body {
        let header = parts
            .content_digest
            .as_deref()
            .ok_or(SecurityError::MissingContentDigest)?;
        digest::verify_content_digest(header, body)?;
    }
    let (input, signature) = match (&parts.signature_input, &parts.signature) {
        (Some(input), Some(signature)) => (input, signature),
        _ => return Err(SecurityError::MissingSignature),
    };
    let (params, signature) = httpsig::parse_signature(input, signature)?;
    httpsig::require_components(&params, required)?;
    httpsig::check_time(&params, now, window_secs)?;
    let signer = trust.verify_signer(&params.keyid, now)?;
    if parts
        .tls_agency
        .as_ref()
        .is_some_and(|agency| *agency != signer.agency)
    {
        return Err(SecurityError::TlsAgencyMismatch);
    }
    let signature_base = httpsig::signature_base(&params, parts)?;
    signer
        .public_key
        .verify(params.alg, signature_base.as_bytes(), &signature)?;
    Ok(VerifiedRequest {
        signer,
        params,
        signature_base,
        signature_sha256: hex::encode(sha256(&signature)),
    })
}
