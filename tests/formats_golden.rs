//! Golden translations: every native fixture in `tests/fixtures/native/<dialect>/`
//! decodes to its expected canonical document in `tests/fixtures/expected/`,
//! every expected document travels through every dialect that carries its
//! type and comes back unchanged, and the shared samples survive byte-exactly.
//!
//! Fixture naming: `native/<dialect>/<name>.{xml,json}` ↔ `expected/<name>.json`,
//! where `<name>` is the message type, optionally followed by a variant
//! (`handover.notice.medical_parole`). One expected document is shared by
//! every dialect that carries it; where a dialect cannot carry a document the
//! difference is listed in [`CANNOT_CARRY`] and pinned by a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corrections_gateway::formats::{Dialect, Formats};
use proptest::prelude::*;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The agency registry's display names, for dialects that write a name next
/// to an agency code (so encoding reproduces the partners' own documents).
fn agency_names() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("rules/agencies.demo.toml")).unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    table
        .get("agency")
        .and_then(|a| a.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some((
                        a.get("id")?.as_str()?.to_owned(),
                        a.get("name")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn formats() -> &'static Formats {
    static F: std::sync::OnceLock<Formats> = std::sync::OnceLock::new();
    F.get_or_init(|| match Formats::load(&root().join("mappings")) {
        Ok(f) => f.with_agency_names(agency_names()),
        Err(e) => panic!("mappings/ must load: {e}"),
    })
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(name: &str) -> Value {
    let path = root().join(format!("tests/fixtures/expected/{name}.json"));
    serde_json::from_slice(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every expected document by name (`handover.notice.medical_parole`).
fn expected_all() -> BTreeMap<String, Value> {
    let dir = root().join("tests/fixtures/expected");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            if let Some(stem) = name.strip_suffix(".json") {
                out.insert(stem.to_owned(), expected(stem));
            }
        }
    }
    out
}

/// Every native fixture: (dialect, name, bytes).
fn native_all() -> Vec<(Dialect, String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in Dialect::ALL {
        let dir = root().join("tests/fixtures/native").join(d.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stem = name
                .strip_suffix(".xml")
                .or_else(|| name.strip_suffix(".json"));
            if let Some(stem) = stem {
                out.push((d, stem.to_owned(), read(&path)));
            }
        }
    }
    out.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    out
}

fn message_type(doc: &Value) -> &str {
    doc["message_type"].as_str().unwrap_or_default()
}

/// Documents a dialect carries the type of but cannot express, and why.
const CANNOT_CARRY: &[(Dialect, &str, &str)] = &[
    // The prison dialect's notice is 暂予监外执行交付通知 only (a fixed
    // correction type): a court's probation notice has no prison form.
    (Dialect::Prison, "handover.notice", "unsupported_value"),
    // Court notices are always the court's own: FSDW is both sender and
    // decision organ, so a notice decided by the prison administration
    // cannot be written in the court dialect.
    (
        Dialect::Court,
        "handover.notice.medical_parole",
        "conflicting_fields",
    ),
];

fn cannot_carry(d: Dialect, name: &str) -> bool {
    CANNOT_CARRY.iter().any(|(cd, n, _)| *cd == d && *n == name)
}

fn codes_and_paths<T>(
    r: Result<T, Vec<corrections_gateway::violation::Violation>>,
) -> Vec<(&'static str, String)> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.code, v.path))
        .collect()
}

#[test]
fn every_native_fixture_decodes_to_its_expected_document() {
    let f = formats();
    let all = native_all();
    assert!(all.len() >= 60, "only {} native fixtures", all.len());
    let mut failures = Vec::new();
    for (d, name, bytes) in &all {
        let want = expected(name);
        match f.decode(*d, bytes, None) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{d}/{name}: decoded\n{}\nexpected\n{}",
                serde_json::to_string_pretty(&got).unwrap_or_default(),
                serde_json::to_string_pretty(&want).unwrap_or_default()
            )),
            Err(v) => failures.push(format!("{d}/{name}: {v:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_dialect_that_carries_a_type_has_a_fixture_for_it() {
    let f = formats();
    let have: Vec<(Dialect, String)> = native_all().into_iter().map(|(d, n, _)| (d, n)).collect();
    let mut missing = Vec::new();
    for (name, doc) in expected_all() {
        for d in Dialect::ALL {
            if f.supports(d, message_type(&doc))
                && !cannot_carry(d, &name)
                && !have.contains(&(d, name.clone()))
            {
                missing.push(format!("{d}/{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "no fixture for {missing:?}");
}

#[test]
fn every_expected_document_round_trips_through_every_dialect_that_carries_it() {
    let f = formats();
    let mut failures = Vec::new();
    for (name, doc) in expected_all() {
        for d in Dialect::ALL {
            if !f.supports(d, message_type(&doc)) {
                continue;
            }
            let encoded = f.encode(d, &doc);
            if cannot_carry(d, &name) {
                let codes: Vec<_> = codes_and_paths(encoded)
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect();
                let want = CANNOT_CARRY
                    .iter()
                    .find(|(cd, n, _)| *cd == d && *n == name)
                    .map(|(_, _, c)| *c);
                if codes.first().copied() != want {
                    failures.push(format!("{d}/{name}: expected {want:?}, got {codes:?}"));
                }
                continue;
            }
            match encoded.map(|native| f.decode(d, &native, None)) {
                Ok(Ok(back)) if back == doc => {}
                Ok(Ok(back)) => failures.push(format!("{d}/{name}: came back as {back}")),
                Ok(Err(v)) => failures.push(format!("{d}/{name}: re-decode failed {v:?}")),
                Err(v) => failures.push(format!("{d}/{name}: encode failed {v:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn translation_between_every_pair_of_dialects_preserves_the_document() {
    // native(A) → canonical → native(B) → canonical, for every fixture A
    // and every B that carries the document.
    let f = formats();
    let mut failures = Vec::new();
    let mut pairs = 0;
    for (from, name, bytes) in native_all() {
        let Ok(doc) = f.decode(from, &bytes, None) else {
            failures.push(format!("{from}/{name}: does not decode"));
            continue;
        };
        for to in Dialect::ALL {
            if !f.supports(to, message_type(&doc)) || cannot_carry(to, &name) {
                continue;
            }
            pairs += 1;
            let back = f.encode(to, &doc).and_then(|n| f.decode(to, &n, None));
            if back.as_ref() != Ok(&doc) {
                failures.push(format!("{from}→{to} {name}: {back:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(pairs > 200, "{pairs} translations");
}

#[test]
fn encoding_the_expected_document_reproduces_each_native_fixture_exactly() {
    // Golden in the other direction: our output for a partner is exactly the
    // committed fixture (so a change to a mapping shows up as a fixture
    // diff). The hand-written shared samples are formatted by their authors
    // and are compared by the byte-exact tests below instead.
    let f = formats();
    let samples = [
        (Dialect::Court, "handover.notice"),
        (Dialect::Procuratorate, "assessment.request"),
        (Dialect::Police, "revocation.committal"),
    ];
    let mut failures = Vec::new();
    for (d, name, bytes) in native_all() {
        if samples.contains(&(d, name.as_str())) {
            continue;
        }
        let ours = f.encode(d, &expected(&name)).unwrap_or_default();
        let ours = if d == Dialect::Police || d == Dialect::Corrections {
            pretty(&ours)
        } else {
            ours
        };
        if ours != bytes && std::env::var_os("UPDATE_GOLDEN").is_some() {
            let ext = if d == Dialect::Police || d == Dialect::Corrections {
                "json"
            } else {
                "xml"
            };
            let path = root().join(format!("tests/fixtures/native/{d}/{name}.{ext}"));
            std::fs::write(&path, &ours).unwrap_or_else(|e| panic!("{e}"));
        } else if ours != bytes {
            failures.push(format!("{d}/{name}:\n{}", String::from_utf8_lossy(&ours)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// JSON fixtures are stored pretty-printed for review; the encoder writes
/// compact JSON. Same document either way.
fn pretty(compact: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(compact).unwrap_or_default();
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

fn sample(name: &str) -> Vec<u8> {
    read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/samples")
            .join(name),
    )
    .into_iter()
    .collect()
}

#[test]
fn the_four_shared_samples_are_fixtures() {
    let fixture = |p: &str| read(&root().join("tests/fixtures/native").join(p));
    let pairs = [
        ("court-handover-notice.xml", "court/handover.notice.xml"),
        (
            "police-revocation-committal.json",
            "police/revocation.committal.json",
        ),
        (
            "prison-handover-notice-gb18030.xml",
            "prison/handover.notice.medical_parole.xml",
        ),
        (
            "procuratorate-assessment-request.xml",
            "procuratorate/assessment.request.xml",
        ),
    ];
    for (s, fx) in pairs {
        let shared = root().join("../shared/samples").join(s);
        if shared.exists() {
            assert_eq!(sample(s), fixture(fx), "{fx} must be the shared sample {s}");
        }
    }
}

#[test]
fn prison_gb18030_sample_round_trips_byte_exact() {
    let f = formats();
    let bytes =
        read(&root().join("tests/fixtures/native/prison/handover.notice.medical_parole.xml"));
    let jiong = encoding_rs::GB18030.encode("王𠮷祥").0.into_owned();
    assert!(bytes.windows(jiong.len()).any(|w| w == jiong));
    let doc = f.decode(Dialect::Prison, &bytes, Some("GB18030"));
    assert_eq!(
        doc.as_ref().map(|d| d["subject"]["name"].clone()),
        Ok(json!("王𠮷祥"))
    );
    let back = doc
        .and_then(|d| f.encode(Dialect::Prison, &d))
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&back),
        String::from_utf8_lossy(&bytes),
        "(lossy view of the difference)"
    );
    assert!(
        back == bytes,
        "decode → encode must give the sample's bytes"
    );
}

#[test]
fn police_sample_decodes_epoch_ms_roles_and_units() {
    let f = formats();
    let bytes = read(&root().join("tests/fixtures/native/police/revocation.committal.json"));
    let doc = f
        .decode(Dialect::Police, &bytes, Some("utf-8"))
        .unwrap_or_default();
    assert_eq!(doc["issued_at"], json!("2024-11-11T13:00:00+08:00"));
    assert_eq!(
        doc["recipients"],
        json!(["corrections.620102", "court.620102"])
    );
    assert_eq!(doc["copies"], json!(["procuratorate.620102"]));
    assert_eq!(doc["body"]["facility"], json!("police.620102.2"));
    assert_eq!(doc["subject"]["birth_date"], json!("1995-06-12"));
    // And back: same JSON value as the sample (key order and spacing aside).
    let native = f.encode(Dialect::Police, &doc).unwrap_or_default();
    let ours: Value = serde_json::from_slice(&native).unwrap_or_default();
    let theirs: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert_eq!(ours, theirs);
}

#[test]
fn a_character_outside_the_target_charset_is_unrepresentable_not_replaced() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mappings = root().join("mappings");
    let copy = |from: &Path, to: &Path, edit: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(from).unwrap_or_default();
        std::fs::write(to, edit(text)).unwrap_or_else(|e| panic!("{e}"));
    };
    std::fs::create_dir(dir.path().join("codes")).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(mappings.join("codes")).unwrap_or_else(|e| panic!("{e}")) {
        let p = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if let Some(n) = p.file_name() {
            copy(&p, &dir.path().join("codes").join(n), &|t| t);
        }
    }
    // A prison system that only speaks GBK (many older ones do).
    copy(
        &mappings.join("prison.toml"),
        &dir.path().join("prison.toml"),
        &|t| t.replace("charset = \"GB18030\"", "charset = \"GBK\""),
    );
    let f = Formats::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let doc = expected("handover.notice.medical_parole");
    assert_eq!(
        codes_and_paths(f.encode(Dialect::Prison, &doc)),
        [("unrepresentable_character", "/subject/name".to_owned())]
    );
    let mut plain = doc.clone();
    plain["subject"]["name"] = json!("王吉祥");
    assert!(f.encode(Dialect::Prison, &plain).is_ok());
}

// ------------------------------------------------------------ bad input

fn decode_text(
    d: Dialect,
    fixture: &str,
    edit: impl Fn(String) -> String,
) -> Vec<(&'static str, String)> {
    let bytes = read(&root().join("tests/fixtures/native").join(fixture));
    let text = match d {
        Dialect::Prison => encoding_rs::GB18030.decode(&bytes).0.into_owned(),
        _ => String::from_utf8(bytes).unwrap_or_default(),
    };
    let edited = edit(text);
    let bytes = match d {
        Dialect::Prison => encoding_rs::GB18030.encode(&edited).0.into_owned(),
        _ => edited.into_bytes(),
    };
    codes_and_paths(formats().decode(d, &bytes, None))
}

#[test]
fn malformed_inputs_name_the_problem_and_the_field() {
    let c = |code: &'static str, path: &str| (code, path.to_owned());
    // Truncated.
    assert_eq!(
        decode_text(Dialect::Police, "police/revocation.committal.json", |t| t
            [..t.len() / 2]
            .to_owned()),
        [c("malformed_json", "")]
    );
    assert_eq!(
        decode_text(Dialect::Court, "court/revocation.ruling.xml", |t| t
            [..t.len() - 12]
            .to_owned()),
        [c("malformed_xml", "")]
    );
    // Wrong encoding: GB18030 bytes in a document that declares UTF-8.
    let gb = read(&root().join("tests/fixtures/native/prison/revocation.committal.xml"));
    let gb = String::from_utf8_lossy(&gb).replace("GB18030", "UTF-8");
    let raw = encoding_rs::GB18030.encode(&gb).0.into_owned();
    let got = codes_and_paths(formats().decode(Dialect::Prison, &raw, None));
    assert!(
        matches!(got.first(), Some((c, _)) if *c == "invalid_encoding" || *c == "malformed_xml"),
        "{got:?}"
    );
    // DOCTYPE.
    assert_eq!(
        decode_text(
            Dialect::Procuratorate,
            "procuratorate/assessment.opinion.xml",
            |t| t.replace(
                "<exchange",
                "<!DOCTYPE exchange [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<exchange"
            )
        ),
        [c("doctype_forbidden", "")]
    );
    // Bad codes, every one reported with its native path.
    assert_eq!(
        decode_text(Dialect::Police, "police/revocation.ruling.json", |t| t
            .replace("\"decision\": \"1\"", "\"decision\": \"9\"")
            .replace("\"csrq\": \"19950612\"", "\"csrq\": \"19950231\"")),
        [
            c("invalid_date", "/person/csrq"),
            c("bad_code_value", "/decision")
        ]
    );
    assert_eq!(
        decode_text(Dialect::Prison, "prison/assessment.opinion.xml", |t| t
            .replace("适宜", "很适宜")),
        [c("bad_code_value", "/交换文书/评估结论")]
    );
    // Missing required elements.
    assert_eq!(
        decode_text(Dialect::Court, "court/revocation.committal.xml", |t| t
            .replace("<SJSJ>2024-11-11T10:00:00+08:00</SJSJ>", "")
            .replace("<SFZH>620102199506121243</SFZH>", "")),
        [
            c("missing_field", "/FYJHWS/ZF/SFZH"),
            c("missing_field", "/FYJHWS/SJSJ")
        ]
    );
    // Police: a string where epoch milliseconds belong, an unknown msgType.
    assert_eq!(
        decode_text(Dialect::Police, "police/revocation.committal.json", |t| t
            .replace("1731290400000", "\"2024-11-11\"")),
        [c("wrong_type", "/committedAt")]
    );
    assert_eq!(
        decode_text(Dialect::Police, "police/revocation.committal.json", |t| t
            .replace("JZ_SJZX_HZ", "JZ_XX")),
        [c("unknown_message_type", "/msgType")]
    );
    // A recipient list that is not a list.
    assert_eq!(
        decode_text(Dialect::Police, "police/assessment.unable.json", |t| {
            let mut v: Value = serde_json::from_str(&t).unwrap_or_default();
            v["toUnits"] = json!({"code": "procuratorate.620102", "role": "TO"});
            v.to_string()
        }),
        // once per rule reading toUnits (recipients and copies)
        [
            c("wrong_type", "/toUnits"),
            c("missing_field", "/toUnits"),
            c("wrong_type", "/toUnits")
        ]
    );
}

#[test]
fn encode_refuses_what_a_dialect_cannot_hold_exactly() {
    let f = formats();
    let mut doc = expected("revocation.committal");
    // Seconds do not fit the prison's 时分 form; sub-milliseconds do not fit epoch_ms.
    doc["issued_at"] = json!("2024-11-11T13:00:30+08:00");
    assert_eq!(
        codes_and_paths(f.encode(Dialect::Prison, &doc)),
        [("unsupported_value", "/issued_at".to_owned())]
    );
    doc["issued_at"] = json!("2024-11-11T13:00:00.0005+08:00");
    assert_eq!(
        codes_and_paths(f.encode(Dialect::Police, &doc)),
        [("unsupported_value", "/issued_at".to_owned())]
    );
}

// ------------------------------------------------------------ properties

fn person_doc(
    name: &str,
    birth: (i32, u8, u8),
    reported: bool,
    at_minutes: i64,
    reasons: &str,
) -> Value {
    let mut doc = expected("handover.report_status");
    let (y, m, d) = birth;
    doc["subject"]["name"] = json!(name);
    doc["subject"]["birth_date"] = json!(format!("{y:04}-{m:02}-{d:02}"));
    doc["body"]["reported"] = json!(reported);
    let t = time::OffsetDateTime::from_unix_timestamp(1_699_999_980 + at_minutes * 60)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    doc["body"]["reported_at"] = json!(t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default());
    doc["subject"]["residence"]["address"] = json!(reasons);
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// canonical → native → canonical is the identity in every dialect that
    /// carries the type, for names with · and characters outside GBK, any
    /// real date, any minute, both booleans and text needing escapes.
    #[test]
    fn canonical_native_canonical_is_identity(
        name in "[\\u{4e00}-\\u{9fa5}]{1,3}(·[\\u{4e00}-\\u{9fa5}]{1,4})?𠮷?",
        y in 1930i32..2010, m in 1u8..=12, d in 1u8..=28,
        reported in any::<bool>(),
        at_minutes in 0i64..5_000_000,
        address in "[\\u{4e00}-\\u{9fa5}0-9<>&\"' ]{1,30}",
        gender in prop::sample::select(vec!["1", "2", "9"]),
    ) {
        let mut doc = person_doc(&name, (y, m, d), reported, at_minutes, address.trim());
        prop_assume!(!address.trim().is_empty());
        doc["subject"]["gender"] = json!(gender);
        let f = formats();
        for dialect in Dialect::ALL {
            if !f.supports(dialect, "handover.report_status") {
                continue;
            }
            let native = f.encode(dialect, &doc);
            prop_assert!(native.is_ok(), "{dialect}: {native:?}");
            let back = f.decode(dialect, &native.unwrap_or_default(), None);
            prop_assert_eq!(back.as_ref(), Ok(&doc), "{}", dialect);
        }
    }

    /// Every code of every code-valued field survives every dialect.
    #[test]
    fn code_values_survive_every_dialect(
        kind in prop::sample::select(vec!["revoke_probation", "revoke_parole", "committal"]),
        ruling in prop::sample::select(vec!["revoked", "not_revoked", "committal_ordered"]),
        ethnicity in prop::sample::select(vec!["01", "02", "03", "05", "56", "97"]),
    ) {
        let f = formats();
        let mut proposal = expected("revocation.proposal");
        proposal["body"]["kind"] = json!(kind);
        proposal["subject"]["ethnicity"] = json!(ethnicity);
        let mut ruling_doc = expected("revocation.ruling");
        ruling_doc["body"]["decision"] = json!(ruling);
        for doc in [proposal, ruling_doc] {
            for dialect in Dialect::ALL {
                if f.supports(dialect, message_type(&doc)) {
                    let back = f.encode(dialect, &doc).and_then(|n| f.decode(dialect, &n, None));
                    prop_assert_eq!(back.as_ref(), Ok(&doc), "{}", dialect);
                }
            }
        }
    }
}
