//! Bounded, seeded mutation fuzzing of the parsers that read untrusted
//! headers and bodies before anything is verified: the RFC 9421
//! `Signature-Input`/`Signature` parser, the RFC 9530 `Content-Digest`
//! check, the `multipart/related` Content-Type parser and the streaming
//! multipart reader. Seeds are the corpus in `tests/fuzz-corpus/` (kept in the
//! repository; add a file there to keep an input that once mattered).
//! Asserts: no panic, every input is answered with a value or a typed error,
//! and the multipart reader always ends (no input makes it loop). The decoders
//! have their own fuzz test (`formats_fuzz.rs`). `PARSERS_FUZZ_ITERATIONS`
//! changes the bound (default 5,000 per parser).

use std::path::Path;

use corrections_gateway::attachments::multipart::{self, MultipartReader};
use corrections_gateway::security::digest::verify_content_digest;
use corrections_gateway::security::httpsig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 0x9421_9530_2046;

fn iterations() -> usize {
    std::env::var("PARSERS_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000)
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Structured-field and multipart syntax worth splicing in.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"(",
    b")",
    b";",
    b"=",
    b",",
    b":",
    b"*",
    b"?1",
    b"\\",
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"--b1",
    b"--b1--",
    b"sig1=",
    b"created=",
    b"keyid=",
    b"alg=",
    b"nonce=",
    b"expires=",
    b"\"@method\"",
    b"\"@query\"",
    b"\"@status\"",
    b";bs",
    b";sf",
    b";key=\"x\"",
    b"sha-256=:",
    b"sha-512=:",
    b"==:",
    b"99999999999999999999",
    b"-1",
    b"\xff\xfe",
    b"\0",
    b"Content-Type:",
    b"Content-ID: <",
    b"boundary=",
    b"; type=",
    b"\t",
];

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..6) {
        let at = rng.gen_range(0..=data.len());
        match rng.gen_range(0..6) {
            0 if !data.is_empty() => {
                let i = rng.gen_range(0..data.len());
                data[i] = rng.gen();
            }
            1 => data.truncate(at),
            2 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = rng.gen_range(at..=data.len());
                data.drain(at..end);
            }
            4 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let from = rng.gen_range(0..=other.len());
                data.splice(at..at, other[from..].iter().copied());
            }
            _ => {
                let junk: Vec<u8> = (0..rng.gen_range(0..16)).map(|_| rng.gen()).collect();
                data.splice(at..at, junk);
            }
        }
    }
    data
}

#[test]
fn the_signature_header_parser_answers_every_input() {
    let seeds = corpus("httpsig");
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut parsed, mut refused) = (0, 0);
    for _ in 0..iterations() {
        let input = String::from_utf8_lossy(&mutate(&mut rng, &seeds)).into_owned();
        // The two header values are the corpus files' two lines.
        let (signature_input, signature) = input.split_once('\n').unwrap_or((&input, ""));
        match httpsig::parse_signature(signature_input.trim_end(), signature.trim_end()) {
            Ok((params, _)) => {
                parsed += 1;
                // What the parser accepted goes on to the component check.
                let _ = httpsig::require_components(&params, &["@method", "@path"]);
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    eprintln!("parse_signature: {parsed} parsed, {refused} refused");
    assert!(
        parsed > 0 && refused > 0,
        "the mutations reach both outcomes"
    );
}

#[test]
fn the_content_digest_check_answers_every_input() {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let body = b"<notice/>".to_vec();
    let seeds = vec![
        b"sha-256=:YWJj:".to_vec(),
        b"sha-512=:YWJj:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:".to_vec(),
    ];
    for _ in 0..iterations() {
        let header = String::from_utf8_lossy(&mutate(&mut rng, &seeds)).into_owned();
        if let Err(e) = verify_content_digest(&header, &body) {
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn the_multipart_parsers_answer_every_input_and_always_end() {
    let seeds = corpus("multipart");
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let content_types: Vec<Vec<u8>> = vec![
        b"multipart/related; boundary=b1; type=\"application/xml\"".to_vec(),
        b"multipart/related; boundary=\"b1\"; type=application/json".to_vec(),
    ];
    let (mut parts, mut refused) = (0usize, 0usize);
    for _ in 0..iterations() {
        let content_type = String::from_utf8_lossy(&mutate(&mut rng, &content_types)).into_owned();
        let _ = multipart::parse_content_type(&content_type);
        let body = mutate(&mut rng, &seeds);
        let mut reader = MultipartReader::new(std::io::Cursor::new(&body), "b1");
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "the reader does not end on {body:?}");
            match reader.next_part() {
                Ok(Some(_headers)) => {
                    parts += 1;
                    if let Err(e) = reader.read_content(&mut std::io::sink(), 1 << 20) {
                        refused += 1;
                        assert!(!e.to_string().is_empty());
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().is_empty());
                    break;
                }
            }
        }
    }
    eprintln!("multipart: {parts} parts read, {refused} bodies refused");
    assert!(
        parts > 0 && refused > 0,
        "the mutations reach both outcomes"
    );
}
