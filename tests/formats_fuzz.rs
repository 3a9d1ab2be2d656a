//! Bounded fuzzing of every decoder: mutations of every native fixture (byte
//! flips, truncations, splices between fixtures, inserted markup) plus
//! arbitrary bytes, with a fixed seed so a failure reproduces. Asserts that
//! nothing panics and that every rejection carries at least one violation
//! with a non-empty code. Runs in a few seconds in a debug build; for an
//! open-ended run see `fuzz/README.md`.

use std::path::PathBuf;

use corrections_gateway::formats::{Dialect, Formats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ITERATIONS_PER_DIALECT: usize = 10_000;

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/native");
    let mut out = Vec::new();
    for d in Dialect::ALL {
        if let Ok(entries) = std::fs::read_dir(dir.join(d.as_str())) {
            for e in entries.flatten() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    out.push(bytes);
                }
            }
        }
    }
    out
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x1F600;",
    b"<!DOCTYPE a [<!ENTITY e \"x\">]>",
    b"<![CDATA[",
    b"]]>",
    b"\"",
    b"'",
    b"=",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"99999999999999999999",
    b"\\u0000",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x81\x30",
    "𠮷".as_bytes(),
    b"encoding=\"GBK\"",
    b"2024-02-30",
    b"\"msgType\":\"JZ_JFJS_TZ\"",
];

fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut StdRng| corpus[rng.gen_range(0..corpus.len())].clone();
    match rng.gen_range(0..6) {
        0 => (0..rng.gen_range(0..256)).map(|_| rng.gen()).collect(),
        1 => {
            let mut b = pick(rng);
            for _ in 0..rng.gen_range(1..8) {
                if !b.is_empty() {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            b
        }
        2 => {
            let mut b = pick(rng);
            let cut = rng.gen_range(0..=b.len());
            b.truncate(cut);
            b
        }
        3 => {
            let (a, b) = (pick(rng), pick(rng));
            let (i, j) = (rng.gen_range(0..=a.len()), rng.gen_range(0..=b.len()));
            [&a[..i], &b[j..]].concat()
        }
        4 => {
            let mut b = pick(rng);
            let i = rng.gen_range(0..=b.len());
            let t = TOKENS[rng.gen_range(0..TOKENS.len())];
            b.splice(i..i, t.iter().copied());
            b
        }
        _ => {
            let mut b = pick(rng);
            if !b.is_empty() {
                let i = rng.gen_range(0..b.len());
                let j = rng.gen_range(i..b.len().min(i + 64) + 1).min(b.len());
                b.drain(i..j);
            }
            b
        }
    }
}

#[test]
fn decoders_never_panic_and_always_explain_a_rejection() {
    let formats = Formats::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings"))
        .unwrap_or_else(|e| panic!("{e}"));
    let corpus = fixtures();
    assert!(!corpus.is_empty());
    let mut rng = StdRng::seed_from_u64(0x5EED_2024);
    let started = std::time::Instant::now();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for d in Dialect::ALL {
        for i in 0..ITERATIONS_PER_DIALECT {
            let input = mutate(&mut rng, &corpus);
            let charset = [None, Some("utf-8"), Some("gb18030")][i % 3];
            match formats.decode(d, &input, charset) {
                Ok(doc) => {
                    accepted += 1;
                    // Whatever decodes must encode back without panicking.
                    let _ = formats.encode(d, &doc);
                }
                Err(v) => {
                    rejected += 1;
                    assert!(!v.is_empty(), "{d}: rejection without a violation");
                    assert!(v.iter().all(|v| !v.code.is_empty()), "{d}: empty code");
                }
            }
        }
    }
    eprintln!(
        "fuzzed {} inputs in {:?}: {accepted} accepted, {rejected} rejected",
        5 * ITERATIONS_PER_DIALECT,
        started.elapsed()
    );
    assert!(rejected > accepted);
}
