//! The agency registry (机构名录): which agencies exist, the dialect each one's
//! system speaks and how each is delivered to. It is a data file
//! (`DIR/agencies.toml`, demo template `rules/agencies.demo.toml`); this module
//! only reads it and answers questions about it. It holds no keys: which
//! certificates sign for an agency is the trust store's business (`security::trust`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::formats::Dialect;
use crate::model::{AgencyId, AgencyKind};

/// How documents reach an agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// The gateway POSTs each document to the agency's endpoint.
    Push,
    /// The agency polls its mailbox.
    Pull,
}

/// One registered agency.
#[derive(Debug, Clone)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    pub dialect: Dialect,
    pub delivery: DeliveryMode,
    pub endpoint: Option<String>,
    pub email: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    agency: Vec<AgencyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyEntry {
    id: String,
    name: String,
    dialect: String,
    delivery: DeliveryMode,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    email: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read agency registry {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("agency registry {path} is not valid TOML: {source}")]
    Syntax {
        path: String,
        source: toml::de::Error,
    },
    #[error("agency registry entry {index}: {problem}")]
    Entry { index: usize, problem: String },
}

/// The loaded registry, keyed by agency id.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    agencies: BTreeMap<String, Agency>,
}

impl Registry {
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Registry::parse(&text).map_err(|e| match e {
            RegistryError::Syntax { source, .. } => RegistryError::Syntax {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Registry, RegistryError> {
        let file: RegistryFile = toml::from_str(text).map_err(|source| RegistryError::Syntax {
            path: String::new(),
            source,
        })?;
        let mut agencies = BTreeMap::new();
        for (index, entry) in file.agency.into_iter().enumerate() {
            let problem = |problem: String| RegistryError::Entry { index, problem };
            let id = AgencyId::parse(&entry.id, "/id").map_err(|v| {
                problem(format!(
                    "id {:?}: {}",
                    entry.id,
                    v.first()
                        .map(|v| v.message.en.as_str())
                        .unwrap_or("invalid")
                ))
            })?;
            let dialect = Dialect::parse(&entry.dialect)
                .ok_or_else(|| problem(format!("unknown dialect {:?}", entry.dialect)))?;
            if entry.delivery == DeliveryMode::Push && entry.endpoint.is_none() {
                return Err(problem(format!(
                    "{} is push-delivered but has no endpoint",
                    entry.id
                )));
            }
            let agency = Agency {
                id,
                name: entry.name,
                dialect,
                delivery: entry.delivery,
                endpoint: entry.endpoint,
                email: entry.email,
            };
            if agencies.insert(entry.id.clone(), agency).is_some() {
                return Err(problem(format!("{} is listed twice", entry.id)));
            }
        }
        Ok(Registry { agencies })
    }

    pub fn get(&self, id: &str) -> Option<&Agency> {
        self.agencies.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Agency> {
        self.agencies.values()
    }

    /// (agency id, official name) of every agency: what native formats print.
    pub fn names(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.agencies
            .values()
            .map(|a| (a.id.as_str().to_string(), a.name.clone()))
    }

    /// The agency of `kind` for an administrative division, preferring the
    /// main agency (no `.n` suffix), e.g. the county procuratorate of an
    /// executing place.
    pub fn of_kind_in(&self, kind: AgencyKind, division: &str) -> Option<&Agency> {
        self.agencies
            .values()
            .filter(|a| a.id.kind() == kind && a.id.division().as_str() == division)
            .min_by_key(|a| a.id.as_str().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_registry_loads_and_answers_routing_questions() {
        let text = include_str!("../rules/agencies.demo.toml");
        let registry = Registry::parse(text).expect("demo registry is valid");
        assert_eq!(
            registry.get("court.620102").map(|a| a.dialect),
            Some(Dialect::Court)
        );
        let police = registry
            .of_kind_in(AgencyKind::Police, "620102")
            .expect("county police");
        assert_eq!(
            police.id.as_str(),
            "police.620102",
            "the main agency wins over police.620102.2"
        );
    }

    #[test]
    fn push_without_endpoint_is_refused() {
        let text = r#"
[[agency]]
id = "court.620102"
name = "x"
dialect = "court"
delivery = "push"
"#;
        let err = Registry::parse(text).unwrap_err().to_string();
        assert!(err.contains("no endpoint"), "{err}");
    }

    #[test]
    fn duplicate_and_malformed_ids_are_refused() {
        let dup =
            "[[agency]]\nid='court.620102'\nname='a'\ndialect='court'\ndelivery='pull'\n".repeat(2);
        assert!(Registry::parse(&dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let bad = "[[agency]]\nid='court'\nname='a'\ndialect='court'\ndelivery='pull'\n";
        assert!(Registry::parse(bad).is_err());
    }
}
