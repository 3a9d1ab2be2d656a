//! Verify: content digests (RFC 9530), HTTP message signatures (RFC 9421),
//! the four signature algorithms, the trust store of agency CAs and the
//! development PKI.
//!
//! This module owns every cryptographic decision of the gateway. It must
//! never parse a document body, never log key material, and never accept a
//! signature whose key, certificate chain, validity, revocation status or
//! agency binding has not been checked.

pub mod agency_keys;
pub mod alg;
pub mod devpki;
pub mod digest;
pub mod httpsig;
pub mod reload;
pub mod request;
pub mod response;
pub mod tls;
pub mod trust;

use crate::violation::Bilingual;

/// Why a request's (or response's) security checks failed. Each variant has a
/// stable code ([`SecurityError::code`]) that partners may branch on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    #[error("Content-Digest header missing")]
    MissingContentDigest,
    #[error("Content-Digest header malformed")]
    MalformedContentDigest,
    #[error("Content-Digest uses no supported algorithm")]
    UnsupportedDigestAlgorithm,
    #[error("Content-Digest does not match the body")]
    ContentDigestMismatch,
    #[error("Signature or Signature-Input header missing")]
    MissingSignature,
    #[error("Signature-Input or Signature malformed: {0}")]
    MalformedSignatureInput(&'static str),
    #[error("required component {0} not covered by the signature")]
    SignatureComponentNotCovered(String),
    #[error("unsupported signature algorithm")]
    UnsupportedSignatureAlgorithm,
    #[error("the key does not match the signature algorithm")]
    AlgorithmKeyMismatch,
    #[error("unknown key id")]
    UnknownKeyId,
    #[error("signature does not verify")]
    SignatureInvalid,
    #[error("signature created outside the allowed window")]
    SignatureCreatedOutOfWindow,
    #[error("signature expired")]
    SignatureExpired,
    #[error("signer certificate not yet valid")]
    CertificateNotYetValid,
    #[error("signer certificate expired")]
    CertificateExpired,
    #[error("signer certificate revoked")]
    CertificateRevoked,
    #[error("signer certificate does not chain to its agency's CA")]
    CertificateUntrusted,
    #[error("signer certificate is not bound to the agency whose CA issued it")]
    CertificateAgencyMismatch,
    #[error("signature already used")]
    ReplayedSignature,
    #[error("the request is signed by another agency than the one of the TLS client certificate")]
    TlsAgencyMismatch,
    /// A key or certificate file could not be used (start-up, dev PKI). The
    /// detail is for the operator's log, never for a partner.
    #[error("key material problem: {0}")]
    KeyMaterial(String),
}

impl SecurityError {
    pub fn code(&self) -> &'static str {
        match self {
            SecurityError::MissingContentDigest => "missing_content_digest",
            SecurityError::MalformedContentDigest => "malformed_content_digest",
            SecurityError::UnsupportedDigestAlgorithm => "unsupported_digest_algorithm",
            SecurityError::ContentDigestMismatch => "content_digest_mismatch",
            SecurityError::MissingSignature => "missing_signature",
            SecurityError::MalformedSignatureInput(_) => "malformed_signature_input",
            SecurityError::SignatureComponentNotCovered(_) => "signature_component_not_covered",
            SecurityError::UnsupportedSignatureAlgorithm => "unsupported_signature_algorithm",
            SecurityError::AlgorithmKeyMismatch => "algorithm_key_mismatch",
            SecurityError::UnknownKeyId => "unknown_key_id",
            SecurityError::SignatureInvalid => "signature_invalid",
            SecurityError::SignatureCreatedOutOfWindow => "signature_created_out_of_window",
            SecurityError::SignatureExpired => "signature_expired",
            SecurityError::CertificateNotYetValid => "certificate_not_yet_valid",
            SecurityError::CertificateExpired => "certificate_expired",
            SecurityError::CertificateRevoked => "certificate_revoked",
            SecurityError::CertificateUntrusted => "certificate_untrusted",
            SecurityError::CertificateAgencyMismatch => "certificate_agency_mismatch",
            SecurityError::ReplayedSignature => "replayed_signature",
            SecurityError::TlsAgencyMismatch => "tls_agency_mismatch",
            SecurityError::KeyMaterial(_) => "key_material_error",
        }
    }

    /// 400 for malformed protocol headers, 401 when the signer cannot be
    /// authenticated, 403 when it is authenticated but not allowed, 409 for
    /// a replay, 500 for the gateway's own key material.
    pub fn http_status(&self) -> u16 {
        match self {
            SecurityError::MissingContentDigest
            | SecurityError::MalformedContentDigest
            | SecurityError::UnsupportedDigestAlgorithm
            | SecurityError::ContentDigestMismatch
            | SecurityError::MalformedSignatureInput(_)
            | SecurityError::SignatureComponentNotCovered(_)
            | SecurityError::UnsupportedSignatureAlgorithm => 400,
            SecurityError::MissingSignature
            | SecurityError::AlgorithmKeyMismatch
            | SecurityError::UnknownKeyId
            | SecurityError::SignatureInvalid
            | SecurityError::SignatureCreatedOutOfWindow
            | SecurityError::SignatureExpired
            | SecurityError::CertificateNotYetValid
            | SecurityError::CertificateExpired
            | SecurityError::CertificateUntrusted => 401,
            SecurityError::CertificateRevoked
            | SecurityError::CertificateAgencyMismatch
            | SecurityError::TlsAgencyMismatch => 403,
            SecurityError::ReplayedSignature => 409,
            SecurityError::KeyMaterial(_) => 500,
        }
    }

    pub fn message(&self) -> Bilingual {
        let (zh, en): (&str, String) = match self {
            SecurityError::MissingContentDigest => ("缺少 Content-Digest 请求头", self.to_string()),
            SecurityError::MalformedContentDigest => (
                "Content-Digest 请求头格式错误（RFC 9530）",
                self.to_string(),
            ),
            SecurityError::UnsupportedDigestAlgorithm => {
                ("Content-Digest 未使用 sha-256 或 sha-512", self.to_string())
            }
            SecurityError::ContentDigestMismatch => (
                "请求体与 Content-Digest 不一致，内容可能被篡改",
                self.to_string(),
            ),
            SecurityError::MissingSignature => {
                ("缺少 Signature 或 Signature-Input 请求头", self.to_string())
            }
            SecurityError::MalformedSignatureInput(_) => (
                "Signature-Input 或 Signature 格式错误（RFC 9421）",
                self.to_string(),
            ),
            SecurityError::SignatureComponentNotCovered(_) => {
                ("签名未覆盖必需的组件", self.to_string())
            }
            SecurityError::UnsupportedSignatureAlgorithm => (
                "不支持的签名算法（支持 ecdsa-p256-sha256、rsa-pss-sha512、ed25519、sm2-sm3）",
                self.to_string(),
            ),
            SecurityError::AlgorithmKeyMismatch => ("签名算法与证书密钥类型不符", self.to_string()),
            SecurityError::UnknownKeyId => ("keyid 对应的证书未在信任库中登记", self.to_string()),
            SecurityError::SignatureInvalid => ("签名验证失败", self.to_string()),
            SecurityError::SignatureCreatedOutOfWindow => {
                ("签名时间（created）超出允许的时间窗口", self.to_string())
            }
            SecurityError::SignatureExpired => ("签名已过期（expires）", self.to_string()),
            SecurityError::CertificateNotYetValid => ("签名证书尚未生效", self.to_string()),
            SecurityError::CertificateExpired => ("签名证书已过期", self.to_string()),
            SecurityError::CertificateRevoked => ("签名证书已被吊销", self.to_string()),
            SecurityError::CertificateUntrusted => {
                ("签名证书无法链接到其机构的 CA", self.to_string())
            }
            SecurityError::CertificateAgencyMismatch => {
                ("签名证书不属于签发它的 CA 所对应的机构", self.to_string())
            }
            SecurityError::ReplayedSignature => (
                "该签名已被使用过（重放）；重发文书请重新签名",
                self.to_string() + "; re-sign to resend",
            ),
            SecurityError::TlsAgencyMismatch => (
                "请求签名所属机构与 TLS 客户端证书所属机构不一致",
                self.to_string(),
            ),
            SecurityError::KeyMaterial(_) => {
                ("网关密钥材料错误", "key material problem".to_string())
            }
        };
        Bilingual::new(zh, en)
    }
}

impl From<openssl::error::ErrorStack> for SecurityError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        SecurityError::KeyMaterial(e.to_string())
    }
}
