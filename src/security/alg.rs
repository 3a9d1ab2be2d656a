//! The four signature algorithms of the partner contract (protocol.md), as
//! RFC 9421 names them, over OpenSSL.
//!
//! | `alg` | signature bytes |
//! |---|---|
//! | `ecdsa-p256-sha256` | raw `r‖s`, 64 bytes (RFC 9421 §3.3.4) |
//! | `rsa-pss-sha512` | PSS, MGF1-SHA-512, 64-byte salt (§3.3.1) |
//! | `ed25519` | 64 bytes (§3.3.6) |
//! | `sm2-sm3` | raw `r‖s`, 64 bytes, SM2 with SM3 and the GM/T 0009 default id |

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcGroup;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::SecurityError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    EcdsaP256Sha256,
    RsaPssSha512,
    Ed25519,
    Sm2Sm3,
}

/// GM/T 0009-2012 default distinguishing identifier. OpenSSL 3.0 does not
/// apply it by itself (protocol.md), so it is always set explicitly here.
pub const SM2_DEFAULT_ID: &[u8] = b"1234567812345678";

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::EcdsaP256Sha256,
        Algorithm::Sm2Sm3,
        Algorithm::RsaPssSha512,
        Algorithm::Ed25519,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::RsaPssSha512 => "rsa-pss-sha512",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Sm2Sm3 => "sm2-sm3",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The stem of the dev PKI's file names (`<stem>.key.pem`, `<stem>.crt.pem`).
    pub fn file_stem(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256",
            Algorithm::RsaPssSha512 => "rsa",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Sm2Sm3 => "sm2",
        }
    }

    /// The algorithm a key is for, if it is one of ours.
    pub fn of_key<T: HasPublic>(key: &PKeyRef<T>) -> Option<Algorithm> {
        // OpenSSL 3.0 loads SM2 keys as provider-only keys whose legacy id is
        // -1 and that refuse `ec_key()`; the curve OID in the SubjectPublicKeyInfo
        // identifies them whatever their type.
        if sm2_point(key).is_ok() {
            return Some(Algorithm::Sm2Sm3);
        }
        match key.id() {
            Id::RSA => Some(Algorithm::RsaPssSha512),
            Id::ED25519 => Some(Algorithm::Ed25519),
            Id::EC => match key.ec_key().ok()?.group().curve_name()? {
                Nid::X9_62_PRIME256V1 => Some(Algorithm::EcdsaP256Sha256),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A private key with its algorithm (and, for SM2, its Z value) worked out
/// once: OpenSSL 3 makes key-type detection and DER encoding slow enough
/// (~0.1–0.3 ms) to dominate a signature if done per call.
#[derive(Clone)]
pub struct SigningKey {
    key: PKey<Private>,
    alg: Algorithm,
    sm2_z: Option<Vec<u8>>,
}

/// A public key with its algorithm (and SM2 Z value) worked out once.
#[derive(Clone)]
pub struct VerifyingKey {
    key: PKey<Public>,
    alg: Algorithm,
    sm2_z: Option<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.alg.as_str())
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg.as_str())
    }
}

impl SigningKey {
    pub fn new(key: PKey<Private>) -> Result<SigningKey, SecurityError> {
        let alg = Algorithm::of_key(&key).ok_or(SecurityError::AlgorithmKeyMismatch)?;
        let (key, sm2_z) = if alg == Algorithm::Sm2Sm3 {
            let key = sm2_typed_private(&key)?;
            let z = sm2_z(&key)?;
            (key, Some(z))
        } else {
            (key, None)
        };
        Ok(SigningKey { key, alg, sm2_z })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn pkey(&self) -> &PKey<Private> {
        &self.key
    }

    /// Signs `message` with the key's own algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SecurityError> {
        let key = &self.key;
        match self.alg {
            Algorithm::EcdsaP256Sha256 => {
                let der =
                    Signer::new(MessageDigest::sha256(), key)?.sign_oneshot_to_vec(message)?;
                der_to_raw(&der, 32)
            }
            Algorithm::RsaPssSha512 => {
                let mut signer = Signer::new(MessageDigest::sha512(), key)?;
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(64))?;
                signer.set_rsa_mgf1_md(MessageDigest::sha512())?;
                Ok(signer.sign_oneshot_to_vec(message)?)
            }
            Algorithm::Ed25519 => {
                Ok(Signer::new_without_digest(key)?.sign_oneshot_to_vec(message)?)
            }
            Algorithm::Sm2Sm3 => {
                let e = sm2_e(self.sm2_z.as_deref().unwrap_or_default(), message)?;
                let mut ctx = PkeyCtx::new(key)?;
                ctx.sign_init()?;
                let mut der = Vec::new();
                ctx.sign_to_vec(&e, &mut der)?;
                der_to_raw(&der, 32)
            }
        }
    }
}

impl VerifyingKey {
    pub fn new(key: PKey<Public>) -> Result<VerifyingKey, SecurityError> {
        let alg = Algorithm::of_key(&key).ok_or(SecurityError::AlgorithmKeyMismatch)?;
        let (key, sm2_z) = if alg == Algorithm::Sm2Sm3 {
            let key = PKey::public_key_from_der(&key.public_key_to_der()?)?;
            let z = sm2_z(&key)?;
            (key, Some(z))
        } else {
            (key, None)
        };
        Ok(VerifyingKey { key, alg, sm2_z })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Verifies a signature that claims algorithm `alg`; a claim that does
    /// not match the key is refused before any cryptography.
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        if alg != self.alg {
            return Err(SecurityError::AlgorithmKeyMismatch);
        }
        let key = &self.key;
        let ok = match alg {
            Algorithm::EcdsaP256Sha256 => {
                let der = raw_to_der(signature, 32)?;
                Verifier::new(MessageDigest::sha256(), key)?
                    .verify_oneshot(&der, message)
                    .unwrap_or(false)
            }
            Algorithm::RsaPssSha512 => {
                let mut verifier = Verifier::new(MessageDigest::sha512(), key)?;
                verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
                verifier.set_rsa_pss_saltlen(RsaPssSaltlen::custom(64))?;
                verifier.set_rsa_mgf1_md(MessageDigest::sha512())?;
                verifier.verify_oneshot(signature, message).unwrap_or(false)
            }
            Algorithm::Ed25519 => Verifier::new_without_digest(key)?
                .verify_oneshot(signature, message)
                .unwrap_or(false),
            Algorithm::Sm2Sm3 => {
                let der = raw_to_der(signature, 32)?;
                let e = sm2_e(self.sm2_z.as_deref().unwrap_or_default(), message)?;
                let mut ctx = PkeyCtx::new(key)?;
                ctx.verify_init()?;
                ctx.verify(&e, &der).unwrap_or(false)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(SecurityError::SignatureInvalid)
        }
    }
}

/// DER `ECDSA-Sig-Value` → fixed-width `r‖s`.
fn der_to_raw(der: &[u8], width: i32) -> Result<Vec<u8>, SecurityError> {
    let sig = EcdsaSig::from_der(der)?;
    let mut raw = sig.r().to_vec_padded(width)?;
    raw.extend(sig.s().to_vec_padded(width)?);
    Ok(raw)
}

/// Fixed-width `r‖s` → DER; a wrong length is a bad signature, not an error of ours.
fn raw_to_der(raw: &[u8], width: usize) -> Result<Vec<u8>, SecurityError> {
    if raw.len() != 2 * width {
        return Err(SecurityError::SignatureInvalid);
    }
    let r = BigNum::from_slice(&raw[..width])?;
    let s = BigNum::from_slice(&raw[width..])?;
    Ok(EcdsaSig::from_private_components(r, s)?.to_der()?)
}

// SM2 by hand, because the `openssl` crate has no safe `EVP_PKEY_CTX_set1_id`
// and this crate allows no `unsafe`: GB/T 32918.2 §6.1 defines the signed value
// as e = SM3(Z_A ‖ M) with Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A).
// We compute e ourselves and let OpenSSL sign/verify it as a pre-hashed value
// (its SM2 signature provider signs the 32-byte input as e).

struct Sm2Curve {
    a: [u8; 32],
    b: [u8; 32],
    gx: [u8; 32],
    gy: [u8; 32],
}

/// DER of the SM2 curve's OID 1.2.156.10197.1.301 (GM/T 0006).
const SM2_CURVE_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

/// The uncompressed public point `x‖y` of an SM2 key, read from its
/// SubjectPublicKeyInfo (whose last 65 bytes are `04‖x‖y` for a 256-bit curve).
fn sm2_point<T: HasPublic>(key: &PKeyRef<T>) -> Result<[u8; 64], SecurityError> {
    let spki = key.public_key_to_der()?;
    let is_sm2 = spki
        .windows(SM2_CURVE_OID.len())
        .any(|w| w == SM2_CURVE_OID);
    if !is_sm2 || spki.len() < 65 || spki[spki.len() - 65] != 0x04 {
        return Err(SecurityError::AlgorithmKeyMismatch);
    }
    let mut point = [0u8; 64];
    point.copy_from_slice(&spki[spki.len() - 64..]);
    Ok(point)
}

fn sm2_curve() -> Result<&'static Sm2Curve, SecurityError> {
    static CURVE: OnceLock<Option<Sm2Curve>> = OnceLock::new();
    CURVE
        .get_or_init(|| {
            let build = || -> Result<Sm2Curve, openssl::error::ErrorStack> {
                let group = EcGroup::from_curve_name(Nid::SM2)?;
                let mut ctx = BigNumContext::new()?;
                let (mut p, mut a, mut b) = (BigNum::new()?, BigNum::new()?, BigNum::new()?);
                group.components_gfp(&mut p, &mut a, &mut b, &mut ctx)?;
                let (mut gx, mut gy) = (BigNum::new()?, BigNum::new()?);
                let generator = group
                    .generator_opt()
                    .ok_or_else(openssl::error::ErrorStack::get)?;
                generator.affine_coordinates(&group, &mut gx, &mut gy, &mut ctx)?;
                let fixed = |n: &BigNum| -> Result<[u8; 32], openssl::error::ErrorStack> {
                    let v = n.to_vec_padded(32)?;
                    let mut out = [0u8; 32];
                    out.copy_from_slice(&v);
                    Ok(out)
                };
                Ok(Sm2Curve {
                    a: fixed(&a)?,
                    b: fixed(&b)?,
                    gx: fixed(&gx)?,
                    gy: fixed(&gy)?,
                })
            };
            build().ok()
        })
        .as_ref()
        .ok_or_else(|| SecurityError::KeyMaterial("this OpenSSL has no SM2 curve".into()))
}

/// Z_A of a key (GB/T 32918.2 §5.5): depends only on the key and the id, so
/// it is computed once per key.
fn sm2_z<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>, SecurityError> {
    let curve = sm2_curve()?;
    let point = sm2_point(key)?;
    let id_bits = (SM2_DEFAULT_ID.len() * 8) as u16;
    let mut z_input = Vec::with_capacity(2 + SM2_DEFAULT_ID.len() + 6 * 32);
    z_input.extend_from_slice(&id_bits.to_be_bytes());
    z_input.extend_from_slice(SM2_DEFAULT_ID);
    for part in [&curve.a, &curve.b, &curve.gx, &curve.gy] {
        z_input.extend_from_slice(part);
    }
    z_input.extend_from_slice(&point);
    Ok(hash(MessageDigest::sm3(), &z_input)?.to_vec())
}

/// e = SM3(Z_A ‖ M), the value SM2 actually signs.
fn sm2_e(z: &[u8], message: &[u8]) -> Result<Vec<u8>, SecurityError> {
    let mut input = Vec::with_capacity(z.len() + message.len());
    input.extend_from_slice(z);
    input.extend_from_slice(message);
    Ok(hash(MessageDigest::sm3(), &input)?.to_vec())
}

// OpenSSL 3.0 signs with SM2 only when the key is typed SM2; a key built in
// memory from an EC_KEY on the SM2 curve is typed EC and would sign ECDSA.
// Keys read from PEM/DER come back typed SM2, so re-reading fixes the type.
fn sm2_typed_private(key: &PKeyRef<Private>) -> Result<PKey<Private>, SecurityError> {
    if key.id() != Id::EC {
        return Ok(key.to_owned());
    }
    Ok(PKey::private_key_from_der(&key.private_key_to_der()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::EcKey;
    use openssl::rsa::Rsa;
    use std::process::Command;

    fn key(alg: Algorithm) -> PKey<Private> {
        let k = match alg {
            Algorithm::EcdsaP256Sha256 | Algorithm::Sm2Sm3 => {
                let curve = if alg == Algorithm::Sm2Sm3 {
                    Nid::SM2
                } else {
                    Nid::X9_62_PRIME256V1
                };
                PKey::from_ec_key(
                    EcKey::generate(&EcGroup::from_curve_name(curve).unwrap()).unwrap(),
                )
                .unwrap()
            }
            Algorithm::RsaPssSha512 => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            Algorithm::Ed25519 => PKey::generate_ed25519().unwrap(),
        };
        // Through PEM, as every real key arrives.
        PKey::private_key_from_pem(&k.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }

    fn public(k: &PKey<Private>) -> VerifyingKey {
        VerifyingKey::new(PKey::public_key_from_pem(&k.public_key_to_pem().unwrap()).unwrap())
            .unwrap()
    }

    #[test]
    fn every_algorithm_signs_and_verifies_and_rejects_tampering() {
        for alg in Algorithm::ALL {
            let raw = key(alg);
            let k = SigningKey::new(raw.clone()).unwrap();
            assert_eq!(k.algorithm(), alg);
            let sig = k.sign(b"message").unwrap();
            if alg != Algorithm::RsaPssSha512 {
                assert_eq!(sig.len(), 64, "{alg:?} signatures are 64 raw bytes");
            }
            let public = public(&raw);
            assert_eq!(public.algorithm(), alg);
            assert_eq!(public.verify(alg, b"message", &sig), Ok(()), "{alg:?}");
            assert_eq!(
                public.verify(alg, b"messagf", &sig),
                Err(SecurityError::SignatureInvalid),
                "{alg:?}"
            );
            assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
        }
        let ec = public(&key(Algorithm::EcdsaP256Sha256));
        assert_eq!(
            ec.verify(Algorithm::Ed25519, b"m", &[0; 64]),
            Err(SecurityError::AlgorithmKeyMismatch)
        );
        assert_eq!(
            ec.verify(Algorithm::EcdsaP256Sha256, b"m", &[0; 10]),
            Err(SecurityError::SignatureInvalid)
        );
    }

    /// Runs the openssl command line (scripts/test.sh installs it).
    fn openssl(args: &[&str], dir: &std::path::Path) -> std::process::Output {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command line is installed")
    }

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn interoperates_with_the_openssl_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let msg = b"signature base bytes";
        write(d, "msg", msg);
        let cases: [(Algorithm, &[&str]); 4] = [
            (
                Algorithm::Sm2Sm3,
                &["dgst", "-sm3", "-sigopt", "distid:1234567812345678"],
            ),
            (Algorithm::EcdsaP256Sha256, &["dgst", "-sha256"]),
            (
                Algorithm::RsaPssSha512,
                &[
                    "dgst",
                    "-sha512",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:64",
                ],
            ),
            (Algorithm::Ed25519, &["pkeyutl", "-rawin"]),
        ];
        for (alg, base) in cases {
            let raw = key(alg);
            write(d, "key.pem", &raw.private_key_to_pem_pkcs8().unwrap());
            write(d, "pub.pem", &raw.public_key_to_pem().unwrap());
            let raw_sig = matches!(alg, Algorithm::EcdsaP256Sha256 | Algorithm::Sm2Sm3);
            // Ours → openssl.
            let ours = SigningKey::new(raw.clone()).unwrap().sign(msg).unwrap();
            write(
                d,
                "ours.sig",
                &if raw_sig {
                    raw_to_der(&ours, 32).unwrap()
                } else {
                    ours
                },
            );
            let mut args: Vec<&str> = base.to_vec();
            if alg == Algorithm::Ed25519 {
                args.extend([
                    "-verify", "-pubin", "-inkey", "pub.pem", "-sigfile", "ours.sig", "-in", "msg",
                ]);
            } else {
                args.extend(["-verify", "pub.pem", "-signature", "ours.sig", "msg"]);
            }
            let out = openssl(&args, d);
            assert!(
                out.status.success(),
                "{alg:?}: openssl rejects our signature: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // openssl → ours.
            let mut args: Vec<&str> = base.to_vec();
            if alg == Algorithm::Ed25519 {
                args.extend([
                    "-sign",
                    "-inkey",
                    "key.pem",
                    "-in",
                    "msg",
                    "-out",
                    "theirs.sig",
                ]);
            } else {
                args.extend(["-sign", "key.pem", "-out", "theirs.sig", "msg"]);
            }
            let out = openssl(&args, d);
            assert!(
                out.status.success(),
                "{alg:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = std::fs::read(d.join("theirs.sig")).unwrap();
            let theirs = if raw_sig {
                der_to_raw(&theirs, 32).unwrap()
            } else {
                theirs
            };
            assert_eq!(
                public(&raw).verify(alg, msg, &theirs),
                Ok(()),
                "{alg:?}: openssl's signature"
            );
        }
        // An SM2 signature made without the distinguishing id is a different signature.
        let raw = key(Algorithm::Sm2Sm3);
        write(d, "key.pem", &raw.private_key_to_pem_pkcs8().unwrap());
        let out = openssl(
            &[
                "dgst", "-sm3", "-sign", "key.pem", "-out", "noid.sig", "msg",
            ],
            d,
        );
        assert!(out.status.success());
        let noid = der_to_raw(&std::fs::read(d.join("noid.sig")).unwrap(), 32).unwrap();
        assert_eq!(
            public(&raw).verify(Algorithm::Sm2Sm3, msg, &noid),
            Err(SecurityError::SignatureInvalid)
        );
    }
}
