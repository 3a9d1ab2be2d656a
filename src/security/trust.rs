//! The trust store: each agency's CA, its registered signer certificates and
//! its CRLs, read from one or more roots laid out as
//! `<root>/<agency-id>/{ca.crt.pem, *.crt.pem, *.crl.pem}`.
//!
//! Everything that does not depend on the time of the request — the chain
//! signature, the agency binding, CRL signatures — is checked once at load
//! and remembered as a verdict; validity periods and revocation dates are
//! checked against the request's time on every call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509Crl, X509Ref, X509};

use super::alg::{Algorithm, VerifyingKey};
use super::digest::sha256_hex;
use super::SecurityError;

/// The SAN URI prefix that binds a certificate to an agency.
pub const AGENCY_URI_PREFIX: &str = "urn:corrections-gateway:agency:";

/// A signer whose certificate checked out for the time asked.
#[derive(Debug, Clone)]
pub struct VerifiedSigner {
    pub agency: String,
    pub fingerprint: String,
    pub subject: String,
    pub serial_hex: String,
    pub not_after: i64,
    pub algorithm: Algorithm,
    pub public_key: VerifyingKey,
    pub certificate_pem: String,
}

struct Revocation {
    serial_hex: String,
    at: i64,
}

struct Signer {
    verified: VerifiedSigner,
    not_before: i64,
    ca_not_before: i64,
    ca_not_after: i64,
    /// The load-time verdict: chain signature and agency binding.
    standing: Result<(), SecurityError>,
}

/// The loaded trust store; immutable, shared between requests.
pub struct TrustStore {
    signers: HashMap<String, Signer>,
    revocations: HashMap<String, Vec<Revocation>>,
    agencies: Vec<String>,
    /// Each agency's CA certificates (PEM), for evidence an auditor checks offline.
    cas: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("agencies", &self.agencies)
            .field("signers", &self.signers.len())
            .finish()
    }
}

/// Lowercase hex SHA-256 of the DER certificate: the RFC 9421 `keyid`.
pub fn fingerprint(cert: &X509Ref) -> String {
    sha256_hex(&cert.to_der().unwrap_or_default())
}

/// The agency a certificate is bound to, from its SAN URI.
pub fn agency_of(cert: &X509Ref) -> Option<String> {
    cert.subject_alt_names()?
        .iter()
        .filter_map(|name| name.uri().map(str::to_string))
        .find_map(|uri| uri.strip_prefix(AGENCY_URI_PREFIX).map(str::to_string))
}

pub fn unix(t: &Asn1TimeRef) -> i64 {
    Asn1Time::from_unix(0)
        .ok()
        .and_then(|epoch| epoch.diff(t).ok())
        .map(|d| d.days as i64 * 86_400 + d.secs as i64)
        .unwrap_or(0)
}

fn key_error(path: &Path, what: &str) -> SecurityError {
    SecurityError::KeyMaterial(format!("{}: {what}", path.display()))
}

impl TrustStore {
    pub fn load(roots: &[PathBuf]) -> Result<TrustStore, SecurityError> {
        let mut store = TrustStore {
            signers: HashMap::new(),
            revocations: HashMap::new(),
            agencies: Vec::new(),
            cas: HashMap::new(),
        };
        for root in roots {
            let Ok(entries) = std::fs::read_dir(root) else {
                continue;
            };
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for dir in dirs {
                store.load_agency(&dir)?;
            }
        }
        Ok(store)
    }

    fn load_agency(&mut self, dir: &Path) -> Result<(), SecurityError> {
        let Some(agency) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return Ok(());
        };
        let ca_path = dir.join("ca.crt.pem");
        if !ca_path.exists() {
            return Ok(());
        }
        let ca = X509::from_pem(
            &std::fs::read(&ca_path).map_err(|e| key_error(&ca_path, &e.to_string()))?,
        )
        .map_err(|_| key_error(&ca_path, "not a PEM certificate"))?;
        let ca_key = ca.public_key()?;
        if let Ok(pem) = ca.to_pem() {
            self.cas
                .entry(agency.clone())
                .or_default()
                .push(String::from_utf8_lossy(&pem).into_owned());
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| key_error(dir, &e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for path in &files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".crl.pem") {
                let crl = X509Crl::from_pem(
                    &std::fs::read(path).map_err(|e| key_error(path, &e.to_string()))?,
                )
                .map_err(|_| key_error(path, "not a PEM CRL"))?;
                // A CRL not signed by the agency's CA is ignored, loudly: it cannot revoke anything.
                if !crl.verify(&ca_key).unwrap_or(false) {
                    tracing::warn!(file = %path.display(), "CRL not signed by the agency CA; ignored");
                    continue;
                }
                let list = self.revocations.entry(agency.clone()).or_default();
                for revoked in crl.get_revoked().into_iter().flatten() {
                    let serial_hex = revoked
                        .serial_number()
                        .to_bn()
                        .map(|b| b.to_hex_str().map(|s| s.to_string()).unwrap_or_default())
                        .unwrap_or_default();
                    list.push(Revocation {
                        serial_hex,
                        at: unix(revoked.revocation_date()),
                    });
                }
            } else if name.ends_with(".crt.pem") && name != "ca.crt.pem" {
                let cert = X509::from_pem(
                    &std::fs::read(path).map_err(|e| key_error(path, &e.to_string()))?,
                )
                .map_err(|_| key_error(path, "not a PEM certificate"))?;
                let Ok(public_key) = VerifyingKey::new(cert.public_key()?) else {
                    tracing::warn!(file = %path.display(), "certificate key type is not a supported signature algorithm; ignored");
                    continue;
                };
                let algorithm = public_key.algorithm();
                let chained = cert.verify(&ca_key).unwrap_or(false)
                    && cert.issuer_name().to_der().ok() == ca.subject_name().to_der().ok();
                let standing = if !chained {
                    Err(SecurityError::CertificateUntrusted)
                } else if agency_of(&cert).as_deref() != Some(agency.as_str()) {
                    Err(SecurityError::CertificateAgencyMismatch)
                } else {
                    Ok(())
                };
                let subject = cert
                    .subject_name()
                    .entries()
                    .filter_map(|e| e.data().to_string().ok())
                    .collect::<Vec<_>>()
                    .join(", ");
                let serial_hex = cert
                    .serial_number()
                    .to_bn()
                    .map(|b| b.to_hex_str().map(|s| s.to_string()).unwrap_or_default())
                    .unwrap_or_default();
                let fingerprint = fingerprint(&cert);
                let verified = VerifiedSigner {
                    agency: agency.clone(),
                    fingerprint: fingerprint.clone(),
                    subject,
                    serial_hex,
                    not_after: unix(cert.not_after()),
                    algorithm,
                    public_key,
                    certificate_pem: String::from_utf8(cert.to_pem()?).unwrap_or_default(),
                };
                self.signers.insert(
                    fingerprint,
                    Signer {
                        verified,
                        not_before: unix(cert.not_before()),
                        ca_not_before: unix(ca.not_before()),
                        ca_not_after: unix(ca.not_after()),
                        standing,
                    },
                );
            }
        }
        if !self.agencies.contains(&agency) {
            self.agencies.push(agency);
        }
        Ok(())
    }

    /// Checks the signer behind `keyid` as of `at_unix`.
    pub fn verify_signer(
        &self,
        keyid: &str,
        at_unix: i64,
    ) -> Result<VerifiedSigner, SecurityError> {
        let signer = self.signers.get(keyid).ok_or(SecurityError::UnknownKeyId)?;
        signer.standing.clone()?;
        if at_unix < signer.not_before || at_unix < signer.ca_not_before {
            return Err(SecurityError::CertificateNotYetValid);
        }
        if at_unix > signer.verified.not_after || at_unix > signer.ca_not_after {
            return Err(SecurityError::CertificateExpired);
        }
        let revoked = self
            .revocations
            .get(&signer.verified.agency)
            .is_some_and(|list| {
                list.iter()
                    .any(|r| r.serial_hex == signer.verified.serial_hex && r.at <= at_unix)
            });
        if revoked {
            return Err(SecurityError::CertificateRevoked);
        }
        Ok(signer.verified.clone())
    }

    /// The CA certificates (PEM) the trust store holds for an agency.
    pub fn ca_certificates(&self, agency: &str) -> &[String] {
        self.cas.get(agency).map_or(&[], Vec::as_slice)
    }

    pub fn agencies(&self) -> Vec<String> {
        self.agencies.clone()
    }

    pub fn signer_count(&self) -> usize {
        self.signers.len()
    }
}
