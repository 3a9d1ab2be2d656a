//! The agency keys the gateway holds (机构签名密钥托管): with them the web
//! interface signs the documents a clerk writes for their agency (a receipt,
//! a correction request, an assessment opinion), so those documents arrive at
//! intake signed exactly like a partner system's POST and pass the same checks.
//!
//! Which keys: the `signing_keys` setting names a key and certificate file
//! per agency (docs/configuration.md); a corrections agency (社区矫正机构)
//! that is not listed uses the dev PKI's `DIR/pki/<agency>/ecdsa-p256.{key,crt}.pem`
//! when both files exist. Partner agencies sign with their own systems: the
//! gateway holds their keys only if an operator lists them. Every key is
//! loaded and checked at start-up (pair, certificate bound to its agency), so
//! a wrong file stops the gateway instead of failing a clerk's first action.
//! Key material never reaches a log line or a page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::alg::{Algorithm, SigningKey};
use super::devpki::load_signing_key;
use super::trust::agency_of;
use super::SecurityError;
use crate::partner::Signer;

/// Where one agency's key and certificate are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFiles {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// One loaded agency key.
struct Held {
    key: SigningKey,
    keyid: String,
    alg: Algorithm,
}

/// The keys the gateway holds, by agency id.
#[derive(Default)]
pub struct AgencyKeys {
    keys: BTreeMap<String, Held>,
}

impl std::fmt::Debug for AgencyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgencyKeys")
            .field("agencies", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The dev PKI's key files of an agency (`DIR/pki/<agency>/ecdsa-p256.*.pem`).
pub fn dev_key_files(pki_dir: &Path, agency: &str) -> KeyFiles {
    let dir = pki_dir.join(agency);
    let stem = Algorithm::EcdsaP256Sha256.file_stem();
    KeyFiles {
        key: dir.join(format!("{stem}.key.pem")),
        cert: dir.join(format!("{stem}.crt.pem")),
    }
}

impl AgencyKeys {
    /// Loads the configured keys (each must load, and its certificate must be
    /// bound to its agency), plus the dev-PKI key of every corrections agency
    /// in `registered` not configured, where the dev PKI has one.
    pub fn load<'a>(
        configured: &BTreeMap<String, KeyFiles>,
        pki_dir: &Path,
        registered: impl Iterator<Item = &'a str>,
    ) -> Result<AgencyKeys, SecurityError> {
        let registered: Vec<&str> = registered.collect();
        let mut keys = BTreeMap::new();
        for (agency, files) in configured {
            if !registered.contains(&agency.as_str()) {
                return Err(SecurityError::KeyMaterial(format!(
                    "signing_keys.{agency:?}: the agency is not in the registry"
                )));
            }
            keys.insert(agency.clone(), load(agency, files)?);
        }
        for agency in registered {
            if keys.contains_key(agency) || !agency.starts_with("corrections.") {
                continue;
            }
            let files = dev_key_files(pki_dir, agency);
            if files.key.exists() && files.cert.exists() {
                keys.insert(agency.to_string(), load(agency, &files)?);
            }
        }
        Ok(AgencyKeys { keys })
    }

    /// The signer for `agency`, if the gateway holds its key.
    pub fn signer(&self, agency: &str) -> Option<Signer<'_>> {
        self.keys.get(agency).map(|held| Signer {
            key: &held.key,
            keyid: &held.keyid,
            alg: held.alg,
        })
    }

    /// The agencies the gateway can sign for.
    pub fn agencies(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

fn load(agency: &str, files: &KeyFiles) -> Result<Held, SecurityError> {
    let (key, cert, keyid, alg) = load_signing_key(&files.key, &files.cert)?;
    if agency_of(&cert).as_deref() != Some(agency) {
        return Err(SecurityError::KeyMaterial(format!(
            "{}: the certificate is not bound to agency {agency}",
            files.cert.display()
        )));
    }
    Ok(Held { key, keyid, alg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_agencies_get_their_dev_key_and_wrong_files_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path();
        crate::security::devpki::generate(
            pki,
            &[("corrections.620102", "矫正"), ("court.620102", "法院")],
        )
        .unwrap();
        let registered = ["corrections.620102", "court.620102"];
        let keys = AgencyKeys::load(&BTreeMap::new(), pki, registered.into_iter()).unwrap();
        assert_eq!(
            keys.agencies().collect::<Vec<_>>(),
            ["corrections.620102"],
            "a partner's key is held only when configured"
        );
        assert_eq!(
            keys.signer("corrections.620102").map(|s| s.alg),
            Some(Algorithm::EcdsaP256Sha256)
        );

        // Configured explicitly: any registered agency, any algorithm.
        let mut configured = BTreeMap::new();
        configured.insert(
            "court.620102".to_string(),
            KeyFiles {
                key: pki.join("court.620102/ed25519.key.pem"),
                cert: pki.join("court.620102/ed25519.crt.pem"),
            },
        );
        let keys = AgencyKeys::load(&configured, pki, registered.into_iter()).unwrap();
        assert_eq!(
            keys.signer("court.620102").map(|s| s.alg),
            Some(Algorithm::Ed25519)
        );

        // Another agency's certificate, or an unknown agency, is refused.
        configured.insert(
            "corrections.620102".to_string(),
            dev_key_files(pki, "court.620102"),
        );
        let err = AgencyKeys::load(&configured, pki, registered.into_iter()).unwrap_err();
        assert!(err.to_string().contains("not bound"), "{err}");
        let mut unknown = BTreeMap::new();
        unknown.insert(
            "corrections.999999".to_string(),
            dev_key_files(pki, "corrections.620102"),
        );
        let err = AgencyKeys::load(&unknown, pki, registered.into_iter()).unwrap_err();
        assert!(err.to_string().contains("not in the registry"), "{err}");
    }
}
