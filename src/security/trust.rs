//! The trust store: each agency's CA, its registered signer certificates and
//! its CRLs, read from one or more roots laid out as
//! `<root>/<agency-id>/{ca.crt.pem, *.crt.pem, *.crl.pem}`.
//!
//! Everything that does not depend on the time of the request — the chain
//! signature, the agency binding, CRL signatures — is checked once at load
//! and remembered as a verdict; validity periods and revocation dates are
//! checked against the request's time on every call.
//!
//! The store can be re-read while the gateway serves ([`TrustStore::reload`]:
//! on SIGHUP, or when a file changed): a new CRL, signer certificate or
//! agency takes effect for the next request without a restart. A reload
//! that fails keeps the previous store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

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

/// A signer certificate as the admin's registry view shows it.
#[derive(Debug, Clone)]
pub struct CertificateStatus {
    /// Lowercase hex SHA-256 of the DER certificate (the `keyid` partners sign with).
    pub fingerprint: String,
    pub subject: String,
    pub serial_hex: String,
    pub algorithm: Algorithm,
    pub not_before: i64,
    pub not_after: i64,
    /// `valid`, or the error code a signature by it would get now
    /// (`certificate_revoked`, `certificate_expired`, `certificate_untrusted` …).
    pub standing: &'static str,
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

/// The trust store, shared between requests; [`TrustStore::reload`] swaps
/// in a fresh read of its roots.
pub struct TrustStore {
    roots: Vec<PathBuf>,
    current: RwLock<Arc<Snapshot>>,
}

/// One read of the roots; immutable.
struct Snapshot {
    signers: HashMap<String, Signer>,
    revocations: HashMap<String, Vec<Revocation>>,
    agencies: Vec<String>,
    /// The files read, with their modification times and lengths.
    stamps: Vec<FileStamp>,
    /// Each agency's CA certificates (PEM), for evidence an auditor checks offline.
    cas: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.snapshot();
        f.debug_struct("TrustStore")
            .field("agencies", &current.agencies)
            .field("signers", &current.signers.len())
            .finish()
    }
}

/// A file as it was when read: path, modification time, length. Comparing
/// two lists tells whether anything was changed, added or removed.
pub type FileStamp = (PathBuf, Option<SystemTime>, u64);

/// The stamps of `paths`, in order (a missing file has no time and length 0).
pub fn stamps(paths: impl IntoIterator<Item = PathBuf>) -> Vec<FileStamp> {
    paths
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (path, modified, len)
        })
        .collect()
}

/// The stamps of every certificate and CRL file of the roots' agency directories.
fn trust_stamps(roots: &[PathBuf]) -> Vec<FileStamp> {
    let files = agency_dirs(roots)
        .into_iter()
        .flat_map(|(_, dir)| files_ending(&dir, ".pem").unwrap_or_default());
    stamps(files)
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

/// The agency directories of the trust roots, `(agency id, directory)`:
/// every `<root>/<agency-id>/` that holds a `ca.crt.pem`, each root sorted,
/// roots in order. The signature trust store and the TLS listener both read
/// the trust store through this one walk.
pub fn agency_dirs(roots: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && p.join("ca.crt.pem").exists())
            .collect();
        dirs.sort();
        for dir in dirs {
            if let Some(agency) = dir.file_name().and_then(|n| n.to_str()) {
                found.push((agency.to_string(), dir.clone()));
            }
        }
    }
    found
}

/// The files of an agency directory whose names end with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, SecurityError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| key_error(dir, &e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn key_error(path: &Path, what: &str) -> SecurityError {
    SecurityError::KeyMaterial(format!("{}: {what}", path.display()))
}

impl TrustStore {
    pub fn load(roots: &[PathBuf]) -> Result<TrustStore, SecurityError> {
        Ok(TrustStore {
            roots: roots.to_vec(),
            current: RwLock::new(Arc::new(Snapshot::load(roots)?)),
        })
    }

    /// Re-reads the roots; on failure the previous store stays in use.
    pub fn reload(&self) -> Result<(), SecurityError> {
        let fresh = Arc::new(Snapshot::load(&self.roots)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// Reloads if a certificate or CRL file changed, appeared or vanished
    /// since the last read; returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, SecurityError> {
        let changed = self.snapshot().stamps != trust_stamps(&self.roots);
        if changed {
            self.reload()?;
        }
        Ok(changed)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Checks the signer behind `keyid` as of `at_unix`.
    pub fn verify_signer(
        &self,
        keyid: &str,
        at_unix: i64,
    ) -> Result<VerifiedSigner, SecurityError> {
        self.snapshot().verify_signer(keyid, at_unix)
    }

    pub fn agencies(&self) -> Vec<String> {
        self.snapshot().agencies.clone()
    }

    pub fn signer_count(&self) -> usize {
        self.snapshot().signers.len()
    }

    /// The signer certificates the trust store holds for `agency`, each with
    /// where it stands at `at_unix` (the admin's agency registry view).
    pub fn certificates(&self, agency: &str, at_unix: i64) -> Vec<CertificateStatus> {
        let snapshot = self.snapshot();
        let mut list: Vec<CertificateStatus> = snapshot
            .signers
            .values()
            .filter(|s| s.verified.agency == agency)
            .map(|s| CertificateStatus {
                fingerprint: s.verified.fingerprint.clone(),
                subject: s.verified.subject.clone(),
                serial_hex: s.verified.serial_hex.clone(),
                algorithm: s.verified.algorithm,
                not_before: s.not_before,
                not_after: s.verified.not_after,
                standing: match snapshot.verify_signer(&s.verified.fingerprint, at_unix) {
                    Ok(_) => "valid",
                    Err(e) => e.code(),
                },
            })
            .collect();
        list.sort_by(|a, b| {
            (a.algorithm.as_str(), &a.fingerprint).cmp(&(b.algorithm.as_str(), &b.fingerprint))
        });
        list
    }

    /// The CA certificates (PEM) the trust store holds for an agency.
    pub fn ca_certificates(&self, agency: &str) -> Vec<String> {
        self.snapshot().cas.get(agency).cloned().unwrap_or_default()
    }
}

impl Snapshot {
    fn load(roots: &[PathBuf]) -> Result<Snapshot, SecurityError> {
        // Stamped before reading: a change during the read shows next time.
        let stamps = trust_stamps(roots);
        let mut store = Snapshot {
            signers: HashMap::new(),
            revocations: HashMap::new(),
            agencies: Vec::new(),
            stamps,
            cas: HashMap::new(),
        };
        for (agency, dir) in agency_dirs(roots) {
            store.load_agency(agency, &dir)?;
        }
        Ok(store)
    }

    fn load_agency(&mut self, agency: String, dir: &Path) -> Result<(), SecurityError> {
        let ca_path = dir.join("ca.crt.pem");
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

    fn verify_signer(&self, keyid: &str, at_unix: i64) -> Result<VerifiedSigner, SecurityError> {
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
}
