//! Validation of canonical documents: JSON Schema from `schemas/`, then the
//! identity and business rules of domain.md, returning the typed document.
//!
//! Owns loading and compiling the schemas (once, at start-up), turning schema
//! errors into violations, and merging them with the typed parser's and the
//! rules' findings into one report listing every problem. It must never put a
//! field's value into a violation or a log (values may be personal data), and
//! it never fetches a schema over the network: every `$ref` resolves to a
//! file in the schemas directory.
//!
//! Every message type has `schemas/<message_type>.schema.json` (it `$ref`s
//! `envelope.schema.json` and its shared `$defs`); changing a schema is a
//! data change. A type whose file were removed would be checked against the
//! envelope with a free `body`, and the typed parser would still type it.
//! The raw schemas are kept so the HTTP layer can serve them
//! ([`Validator::schema`], [`Validator::schema_names`]).

pub mod rules;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{CanonicalDocument, MessageType};
use crate::violation::Violations;

/// The schema every message type shares; type schemas `$ref` it.
pub const ENVELOPE_SCHEMA_FILE: &str = "envelope.schema.json";
const SCHEMA_SUFFIX: &str = ".schema.json";

/// What can go wrong loading the schemas: all are deployment errors, fatal at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ValidateSetupError {
    #[error("cannot read schema {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("schema {path} is not JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "schema {path} has no string `$id`; every schema needs one so that `$ref`s resolve locally"
    )]
    MissingId { path: PathBuf },
    #[error(
        "schema {path} is not named after a message type (expected <message_type>.schema.json)"
    )]
    UnknownSchemaFile { path: PathBuf },
    #[error("no {ENVELOPE_SCHEMA_FILE} in {dir}")]
    MissingEnvelope { dir: PathBuf },
    #[error("schema {path} is invalid: {message}")]
    Schema { path: PathBuf, message: String },
}

/// Compiled schemas, built once at start-up and shared (it is `Send + Sync`).
pub struct Validator {
    envelope: jsonschema::Validator,
    by_type: HashMap<MessageType, jsonschema::Validator>,
    /// Each file's JSON by name (`envelope`, `handover.notice` …).
    raw: BTreeMap<String, Value>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<&str> = self.by_type.keys().map(|t| t.as_str()).collect();
        types.sort_unstable();
        f.debug_struct("Validator")
            .field("typed_schemas", &types)
            .finish_non_exhaustive()
    }
}

struct SchemaFile {
    path: PathBuf,
    name: String,
    id: String,
    contents: Value,
}

fn read_schema(path: PathBuf, name: String) -> Result<SchemaFile, ValidateSetupError> {
    let bytes = std::fs::read(&path).map_err(|source| ValidateSetupError::Io {
        path: path.clone(),
        source,
    })?;
    let contents: Value =
        serde_json::from_slice(&bytes).map_err(|source| ValidateSetupError::Json {
            path: path.clone(),
            source,
        })?;
    let Some(id) = contents
        .get("$id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(ValidateSetupError::MissingId { path });
    };
    Ok(SchemaFile {
        path,
        name,
        id,
        contents,
    })
}

impl Validator {
    /// Reads and compiles every `*.schema.json` in `schemas_dir`.
    pub fn load(schemas_dir: &Path) -> Result<Self, ValidateSetupError> {
        let io = |source| ValidateSetupError::Io {
            path: schemas_dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(schemas_dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if name.ends_with(SCHEMA_SUFFIX) {
                files.push(read_schema(path, name)?);
            }
        }
        // Every file is in one registry shared by every compilation, so
        // relative `$ref`s between files resolve in memory (the crate is
        // built without any remote retriever, so an unresolved `$ref` fails
        // here, at start-up). One registry, not the files again for each
        // compilation: jsonschema 0.30 did that and kept ~95 MiB of copies
        // (docs/benchmarks.md §7); now the 17 schemas take ~6 MiB.
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .extend(files.iter().map(|f| (f.id.as_str(), &f.contents)))
            .and_then(|builder| builder.prepare())
            .map_err(|e| ValidateSetupError::Schema {
                path: schemas_dir.to_owned(),
                message: e.to_string(),
            })?;
        let compile = |f: &SchemaFile| -> Result<jsonschema::Validator, ValidateSetupError> {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                // Our patterns are plain (no look-around or back-references),
                // so the linear-time `regex` engine serves them; a pattern that
                // needed more would fail here, at start-up.
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .with_registry(&registry)
                .build(&f.contents)
                .map_err(|e| ValidateSetupError::Schema {
                    path: f.path.clone(),
                    message: e.to_string(),
                })
        };
        let mut envelope = None;
        let mut by_type = HashMap::new();
        for f in &files {
            if f.name == ENVELOPE_SCHEMA_FILE {
                envelope = Some(compile(f)?);
                continue;
            }
            let type_code = f.name.trim_end_matches(SCHEMA_SUFFIX);
            let Some(t) = MessageType::from_code(type_code) else {
                return Err(ValidateSetupError::UnknownSchemaFile {
                    path: f.path.clone(),
                });
            };
            by_type.insert(t, compile(f)?);
        }
        drop(registry);
        let envelope = envelope.ok_or_else(|| ValidateSetupError::MissingEnvelope {
            dir: schemas_dir.to_owned(),
        })?;
        let raw = files
            .into_iter()
            .map(|f| {
                (
                    f.name.trim_end_matches(SCHEMA_SUFFIX).to_owned(),
                    f.contents,
                )
            })
            .collect();
        Ok(Self {
            envelope,
            by_type,
            raw,
        })
    }

    /// The schema named `message_type` as loaded: a message type
    /// (`handover.notice`) or `envelope`, which every type schema references,
    /// each also under its file name (`envelope.schema.json`, the form the
    /// schemas' relative `$ref`s use). For serving at `/api/v1/schemas/{name}`;
    /// `None` for any other name, so a caller can never reach another file.
    pub fn schema(&self, message_type: &str) -> Option<&Value> {
        let name = message_type
            .strip_suffix(SCHEMA_SUFFIX)
            .unwrap_or(message_type);
        self.raw.get(name)
    }

    /// The names [`Validator::schema`] answers to, sorted (`envelope` and
    /// every message type with a schema).
    pub fn schema_names(&self) -> Vec<String> {
        self.raw.keys().cloned().collect()
    }

    /// Whether `t` has its own schema (otherwise the envelope with a free body applies).
    pub fn has_type_schema(&self, t: MessageType) -> bool {
        self.by_type.contains_key(&t)
    }

    /// Checks `doc` against the schema of its message type and the domain
    /// rules, returning the typed, normalised document or every problem found.
    ///
    /// A missing `message_type` is `missing_field`; an unknown one is
    /// `unknown_message_type`, and the rest of the document is still checked
    /// against the envelope so that the sender sees all problems at once.
    pub fn validate(&self, doc: &Value) -> Result<CanonicalDocument, Violations> {
        let message_type = doc
            .get("message_type")
            .and_then(Value::as_str)
            .and_then(MessageType::from_code);
        let schema = message_type
            .and_then(|t| self.by_type.get(&t))
            .unwrap_or(&self.envelope);
        // Most documents are valid: the boolean check is much cheaper than
        // collecting errors, which only an invalid document needs.
        let from_schema: Violations = if schema.is_valid(doc) {
            Violations::new()
        } else {
            schema
                .iter_errors(doc)
                .flat_map(|e| schema::to_violations(&e))
                .collect()
        };
        let typed = CanonicalDocument::from_json(doc);
        let mut specific = typed.as_ref().err().cloned().unwrap_or_default();
        specific.extend(rules::check(doc));
        let all = merge(specific, from_schema);
        match typed {
            Ok(doc) if all.is_empty() => Ok(doc),
            _ => Err(all),
        }
    }
}

/// One report from the parser's and rules' findings (`specific`) and the
/// schema's: exact duplicates are dropped, and a schema finding is dropped
/// when a specific one exists at the same path (`invalid_id_check_digit`
/// says more than the schema's `invalid_format` for the same field). Sorted
/// by path so the report reads top to bottom.
fn merge(specific: Violations, from_schema: Violations) -> Violations {
    let mut out: Violations = Vec::with_capacity(specific.len() + from_schema.len());
    for v in specific {
        if !out.iter().any(|o| o.code == v.code && o.path == v.path) {
            out.push(v);
        }
    }
    let specific_len = out.len();
    for v in from_schema {
        let covered = out[..specific_len].iter().any(|o| o.path == v.path)
            || out[specific_len..]
                .iter()
                .any(|o| o.code == v.code && o.path == v.path);
        if !covered {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_types;
