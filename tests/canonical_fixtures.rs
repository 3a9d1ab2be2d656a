//! The two halves of the canonical model agree: every document the dialect
//! mappings decode (the expected canonical fixtures, and every native
//! fixture decoded) passes the JSON Schemas and domain rules, and the
//! validator's own fixtures encode into every dialect that carries them.

use std::path::{Path, PathBuf};

use corrections_gateway::formats::{Dialect, Formats};
use corrections_gateway::validate::Validator;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_decoded_document_is_valid() {
    let formats = Formats::load(&root().join("mappings")).unwrap();
    let validator = Validator::load(&root().join("schemas")).unwrap();
    let mut problems = Vec::new();
    for dialect in Dialect::ALL {
        let dir = root().join("tests/fixtures/native").join(dialect.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in entries.map(|e| e.unwrap().path()) {
            let bytes = std::fs::read(&file).unwrap();
            let canonical = match formats.decode(dialect, &bytes, None) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{}: decode {:?}", file.display(), e));
                    continue;
                }
            };
            if let Err(e) = validator.validate(&canonical) {
                let codes: Vec<String> =
                    e.iter().map(|v| format!("{} {}", v.code, v.path)).collect();
                problems.push(format!("{}: {:?}", file.display(), codes));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} fixtures do not validate:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_validator_fixture_translates_into_each_dialect_that_carries_it() {
    let formats = Formats::load(&root().join("mappings")).unwrap();
    let validator = Validator::load(&root().join("schemas")).unwrap();
    let mut problems = Vec::new();
    for file in json_files(&root().join("tests/fixtures/canonical")) {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let doc = validator
            .validate(&value)
            .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        let canonical = doc.to_json();
        let message_type = canonical["message_type"].as_str().unwrap().to_string();
        for dialect in Dialect::ALL {
            if !formats.supports(dialect, &message_type) {
                continue;
            }
            let native = match formats.encode(dialect, &canonical) {
                Ok(n) => n,
                // Two documents a dialect cannot carry, by the partner's own format
                // (pinned in tests/formats_golden.rs): the prison dialect's notice is always
                // 暂予监外执行, and in court XML the sender is also the decision organ.
                Err(e)
                    if (message_type == "handover.notice")
                        && e.iter().all(|v| {
                            v.code == "unsupported_value"
                                || v.code == "conflicting_fields"
                                || (v.code == "missing_field" && v.path == "/body/reason")
                        }) =>
                {
                    continue
                }
                Err(e) => {
                    let codes: Vec<String> =
                        e.iter().map(|v| format!("{} {}", v.code, v.path)).collect();
                    problems.push(format!("{} → {dialect}: {codes:?}", file.display()));
                    continue;
                }
            };
            let back = formats.decode(dialect, &native, None).unwrap();
            let again = validator.validate(&back).map(|d| d.to_json());
            if again.as_ref() != Ok(&canonical) {
                problems.push(format!(
                    "{} → {dialect} → canonical differs: {again:?}",
                    file.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} translations fail:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Document kinds are one list: the enum `$defs/document_kind` of the
/// envelope schema. Every dialect table of kinds (`mappings/codes/
/// document_kind_*.toml`) maps exactly that list, so a kind the schema
/// accepts can be written to every partner and a partner's kind always
/// validates. (The procuratorate writes the canonical words themselves.)
#[test]
fn every_document_kind_table_maps_exactly_the_schema_list() {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("schemas/envelope.schema.json")).unwrap(),
    )
    .unwrap();
    let mut canonical: Vec<String> = schema["$defs"]["document_kind"]["enum"]
        .as_array()
        .expect("document_kind is an enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    canonical.sort();
    let mut tables = 0;
    for entry in std::fs::read_dir(root().join("mappings/codes")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("document_kind_") && name.ends_with(".toml")) {
            continue;
        }
        tables += 1;
        let table: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut values: Vec<String> = table
            .values()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        values.sort();
        assert_eq!(
            values, canonical,
            "{name} must map exactly the schema's document kinds"
        );
    }
    assert!(tables >= 2, "no document_kind_*.toml tables found");
}
