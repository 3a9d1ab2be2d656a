//! Law-based routing: who may send a document, to whom it goes and who must
//! get a copy (抄送) — all read from `rules/routing.toml` (format and legal
//! bases documented in that file).
//!
//! The sender names the primary recipients; the gateway checks each one's
//! kind, adds a required recipient the sender left out (resolved from the
//! registry in the executing place 执行地) and adds the copies the law
//! requires (e.g. for a handover notice the procuratorate and the police of
//! the executing place, 法 第20条). Every recipient and copy must be a
//! registered agency.
//!
//! Must never hard-code a permission or a copy rule: both are data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::model::{AgencyKind, CanonicalDocument, MessageType};
use crate::registry::Registry;
use crate::violation::{Bilingual, Violation, Violations};

use super::flows::kind_zh;

/// Where the project keeps the routing rules, relative to the working directory.
pub const DEFAULT_PATH: &str = "rules/routing.toml";

/// Where a document goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub recipients: Vec<String>,
    pub copies: Vec<String>,
}

/// One direction of one message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub message: MessageType,
    pub from: Vec<AgencyKind>,
    pub to: Vec<AgencyKind>,
    pub required: Vec<AgencyKind>,
    pub copies: Vec<AgencyKind>,
}

/// The routing rules, checked at load time: every message type has a route,
/// a sender kind has at most one route per message type, every required
/// kind is a permitted recipient kind.
#[derive(Debug, Clone)]
pub struct RoutingRules {
    by_message: BTreeMap<&'static str, Vec<RouteRule>>,
}

/// Why the routing rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RoutingRulesError {
    #[error("cannot read routing rules {path}: {source}")]
    Load {
        path: String,
        source: std::io::Error,
    },
    #[error("routing rules {origin} are not valid TOML: {source}")]
    Syntax {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid routing rules {origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

impl RoutingRulesError {
    /// Stable code for start-up errors and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Load { .. } => "routing_rules_unreadable",
            Self::Syntax { .. } | Self::Invalid { .. } => "routing_rules_invalid",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    route: Vec<RouteEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    message: String,
    from: Vec<String>,
    to: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    copies: Vec<String>,
}

impl RoutingRules {
    pub fn load(path: &Path) -> Result<Self, RoutingRulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RoutingRulesError::Load {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_from(&text, &path.display().to_string())
    }

    pub fn parse(text: &str) -> Result<Self, RoutingRulesError> {
        Self::parse_from(text, "<text>")
    }

    /// The rules shipped in `rules/routing.toml`, compiled in (for
    /// [`route`] and tests; the gateway should [`RoutingRules::load`] the file).
    pub fn shipped() -> Result<&'static Self, &'static RoutingRulesError> {
        static SHIPPED: OnceLock<Result<RoutingRules, RoutingRulesError>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                Self::parse_from(include_str!("../../rules/routing.toml"), DEFAULT_PATH)
            })
            .as_ref()
    }

    fn parse_from(text: &str, origin: &str) -> Result<Self, RoutingRulesError> {
        let invalid = |reason: String| RoutingRulesError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        let file: RoutingFile =
            toml::from_str(text).map_err(|source| RoutingRulesError::Syntax {
                origin: origin.to_owned(),
                source: Box::new(source),
            })?;
        let mut by_message: BTreeMap<&'static str, Vec<RouteRule>> = BTreeMap::new();
        for (i, entry) in file.route.into_iter().enumerate() {
            let n = i + 1;
            let message = MessageType::from_code(&entry.message).ok_or_else(|| {
                invalid(format!(
                    "route {n}: unknown message type {:?}",
                    entry.message
                ))
            })?;
            let kinds =
                |field: &str, list: &[String]| -> Result<Vec<AgencyKind>, RoutingRulesError> {
                    list.iter()
                        .map(|k| {
                            AgencyKind::from_code(k).ok_or_else(|| {
                                invalid(format!(
                                    "route {n} ({message}): {field}: unknown agency kind {k:?}"
                                ))
                            })
                        })
                        .collect()
                };
            let rule = RouteRule {
                message,
                from: kinds("from", &entry.from)?,
                to: kinds("to", &entry.to)?,
                required: kinds("required", &entry.required)?,
                copies: kinds("copies", &entry.copies)?,
            };
            if rule.from.is_empty() || rule.to.is_empty() {
                return Err(invalid(format!(
                    "route {n} ({message}): `from` and `to` must not be empty"
                )));
            }
            if let Some(k) = rule.required.iter().find(|k| !rule.to.contains(k)) {
                return Err(invalid(format!(
                    "route {n} ({message}): required kind {k} is not in `to`"
                )));
            }
            let routes = by_message.entry(message.as_str()).or_default();
            if let Some(k) = rule
                .from
                .iter()
                .find(|k| routes.iter().any(|r| r.from.contains(k)))
            {
                return Err(invalid(format!(
                    "route {n} ({message}): sender kind {k} already has a route for this message"
                )));
            }
            routes.push(rule);
        }
        if let Some(t) = MessageType::ALL
            .iter()
            .find(|t| !by_message.contains_key(t.as_str()))
        {
            return Err(invalid(format!("message type {t} has no route")));
        }
        Ok(Self { by_message })
    }

    /// The route a sender of `kind` takes for `message`, if it may send it.
    pub fn rule(&self, message: MessageType, kind: AgencyKind) -> Option<&RouteRule> {
        self.by_message
            .get(message.as_str())?
            .iter()
            .find(|r| r.from.contains(&kind))
    }

    /// Every route of a message type (for documentation and the clerk UI).
    pub fn rules(&self, message: MessageType) -> &[RouteRule] {
        self.by_message
            .get(message.as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// Checks the sender's permission for the message type and each
    /// recipient's kind, that every named agency is registered, resolves
    /// missing required recipients and adds the mandatory copies.
    pub fn route(&self, doc: &CanonicalDocument, registry: &Registry) -> Result<Route, Violations> {
        let env = &doc.envelope;
        let sender = &env.sender;
        let Some(rule) = self.rule(env.message_type, sender.kind()) else {
            let allowed = self
                .rules(env.message_type)
                .iter()
                .flat_map(|r| r.from.iter().copied())
                .collect::<Vec<_>>();
            let m = permission_message(env.message_type, sender.kind(), &allowed);
            return Err(vec![Violation::new(
                "message_type_not_permitted",
                "/sender",
                m.zh,
                m.en,
            )]);
        };
        let mut problems = Violations::new();
        for (i, agency) in env.recipients.iter().enumerate() {
            let path = format!("/recipients/{i}");
            if !rule.to.contains(&agency.kind()) {
                let (zh, en) = kinds_text(&rule.to);
                problems.push(Violation::new(
                    "recipient_not_permitted",
                    path,
                    format!("{} 只能发送给{zh}", env.message_type),
                    format!("{} may only be addressed to {en}", env.message_type),
                ));
            } else if registry.get(agency.as_str()).is_none() {
                problems.push(unknown_recipient(path));
            }
        }
        for (i, agency) in env.copies.iter().enumerate() {
            if registry.get(agency.as_str()).is_none() {
                problems.push(Violation::new(
                    "unknown_copy_recipient",
                    format!("/copies/{i}"),
                    "抄送机关未在机构名录中登记",
                    "the copy recipient is not a registered agency",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let places = executing_places(doc);
        let mut recipients: Vec<String> = env
            .recipients
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        for &kind in &rule.required {
            if env.recipients.iter().any(|a| a.kind() == kind) {
                continue;
            }
            let found = places
                .iter()
                .find_map(|p| registry.of_kind_in(kind, p))
                .map(|a| a.id.as_str().to_owned());
            match found {
                Some(id) if id != sender.as_str() => {
                    if !recipients.contains(&id) {
                        recipients.push(id);
                    }
                }
                Some(_) => {}
                None => problems.push(Violation::new(
                    "unknown_recipient",
                    "/recipients",
                    format!("执行地没有已登记的{}，请在接收机关中写明", kind_zh(kind)),
                    format!(
                        "no {kind} agency is registered for the executing place; name it among the recipients"
                    ),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut copies: Vec<String> = Vec::new();
        let mut add_copy = |id: &str| {
            if !recipients.iter().any(|r| r == id)
                && !copies.iter().any(|c| c == id)
                && id != sender.as_str()
            {
                copies.push(id.to_owned());
            }
        };
        for agency in &env.copies {
            add_copy(agency.as_str());
        }
        for place in &places {
            for &kind in &rule.copies {
                // A copy the registry cannot resolve is not a reason to stop the document
                // (it must reach its recipient); the registry check at start-up reports it.
                if let Some(agency) = registry.of_kind_in(kind, place) {
                    add_copy(agency.id.as_str());
                }
            }
        }
        Ok(Route { recipients, copies })
    }
}

/// Routes with the rules shipped in `rules/routing.toml` (compiled in).
/// Prefer [`RoutingRules::route`] with rules loaded at start-up.
pub fn route(doc: &CanonicalDocument, registry: &Registry) -> Result<Route, Violations> {
    match RoutingRules::shipped() {
        Ok(rules) => rules.route(doc, registry),
        Err(e) => Err(vec![Violation::new(
            "routing_rules_invalid",
            "",
            "路由规则有误，无法路由文书",
            format!("the routing rules are invalid: {e}"),
        )]),
    }
}

/// The divisions of the executing place (执行地): every corrections agency
/// among the sender and the primary recipients, else the subject's residence.
fn executing_places(doc: &CanonicalDocument) -> Vec<String> {
    let env = &doc.envelope;
    let mut places: Vec<String> = Vec::new();
    for agency in std::iter::once(&env.sender).chain(&env.recipients) {
        if agency.kind() == AgencyKind::Corrections {
            let d = agency.division().as_str().to_owned();
            if !places.contains(&d) {
                places.push(d);
            }
        }
    }
    if places.is_empty() {
        if let Some(subject) = &doc.subject {
            places.push(subject.residence.division.as_str().to_owned());
        }
    }
    places
}

fn unknown_recipient(path: String) -> Violation {
    Violation::new(
        "unknown_recipient",
        path,
        "接收机关未在机构名录中登记",
        "the recipient is not a registered agency",
    )
}

fn kinds_text(kinds: &[AgencyKind]) -> (String, String) {
    (
        kinds
            .iter()
            .map(|k| kind_zh(*k))
            .collect::<Vec<_>>()
            .join("、"),
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn permission_message(message: MessageType, kind: AgencyKind, allowed: &[AgencyKind]) -> Bilingual {
    let (zh, en) = kinds_text(allowed);
    Bilingual::new(
        format!("{}无权发送 {message}；只有{zh}可以发送", kind_zh(kind)),
        format!("a {kind} agency may not send {message}; only {en} may"),
    )
}
