//! Per-operation cost of each signature algorithm (sign, verify), release build:
//! `cargo run --release --example cryptotime`. Feeds docs/benchmarks.md.
use corrections_gateway::security::alg::{Algorithm, VerifyingKey};
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    corrections_gateway::security::devpki::generate(&pki, &[("court.620102", "demo")])
        .expect("dev pki");
    let n = 500;
    for alg in Algorithm::ALL {
        let stem = alg.file_stem();
        let (key, cert, _, _) = corrections_gateway::security::devpki::load_signing_key(
            &pki.join(format!("court.620102/{stem}.key.pem")),
            &pki.join(format!("court.620102/{stem}.crt.pem")),
        )
        .expect("dev key");
        let public =
            VerifyingKey::new(cert.public_key().expect("public key")).expect("supported key");
        let msg = vec![7u8; 400];
        let t = Instant::now();
        let mut sig = Vec::new();
        for _ in 0..n {
            sig = key.sign(&msg).expect("sign");
        }
        let sign = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            public.verify(alg, &msg, &sig).expect("verify");
        }
        let verify = t.elapsed() / n;
        println!(
            "{:<18} sign {:>10.1?}  verify {:>10.1?}",
            alg.as_str(),
            sign,
            verify
        );
    }
}
