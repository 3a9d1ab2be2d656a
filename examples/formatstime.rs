//! Per-stage cost of translating the court sample (release build):
//! `cargo run --release --example formatstime`.
use corrections_gateway::formats::{Dialect, Formats};
use corrections_gateway::validate::Validator;
use std::path::Path;
use std::time::Instant;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let formats = Formats::load(&root.join("mappings")).expect("mappings");
    let validator = Validator::load(&root.join("schemas")).expect("schemas");
    let bytes = std::fs::read(root.join("tests/fixtures/native/court/handover.notice.xml"))
        .expect("fixture");
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let canonical = formats
        .decode(Dialect::Court, &bytes, None)
        .expect("decode");
    let t = Instant::now();
    for _ in 0..n {
        formats
            .decode(Dialect::Court, &bytes, None)
            .expect("decode");
    }
    println!("decode   {:>8.1?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        validator.validate(&canonical).expect("valid");
    }
    println!("validate {:>8.1?}", t.elapsed() / n);
    let doc = validator.validate(&canonical).expect("valid").to_json();
    let t = Instant::now();
    for _ in 0..n {
        let _ = validator.validate(&canonical).expect("valid").to_json();
    }
    println!("validate+to_json {:>8.1?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        formats.encode(Dialect::Court, &doc).expect("encode");
    }
    println!("encode   {:>8.1?}", t.elapsed() / n);
}
