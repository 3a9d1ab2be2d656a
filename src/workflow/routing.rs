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
        if let Some(residence) = doc.subject.as_ref().and_then(|s| s.residence.as_ref()) {
            places.push(residence.division.as_str().to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::parse(include_str!("../../rules/agencies.demo.toml")).expect("demo registry")
    }

    fn rules() -> &'static RoutingRules {
        RoutingRules::shipped().expect("shipped routing rules load")
    }

    /// The canonical fixture of `t`, from `sender` to `recipients`.
    fn doc(t: &str, sender: &str, recipients: &[&str]) -> CanonicalDocument {
        crate::workflow::test_docs::doc(t, sender, recipients, json!({}))
    }

    fn routed(t: &str, sender: &str, recipients: &[&str]) -> Route {
        rules()
            .route(&doc(t, sender, recipients), &registry())
            .unwrap_or_else(|e| panic!("{t}: {e:?}"))
    }

    fn codes(t: &str, sender: &str, recipients: &[&str]) -> Vec<(&'static str, String)> {
        rules()
            .route(&doc(t, sender, recipients), &registry())
            .expect_err("refused")
            .into_iter()
            .map(|v| (v.code, v.path))
            .collect()
    }

    const CORR: &str = "corrections.620102";
    const COURT: &str = "court.620102";
    const PROC: &str = "procuratorate.620102";
    const POLICE: &str = "police.620102";

    #[test]
    fn every_message_type_routes_from_the_data_file() {
        // (type, sender, named recipients, expected recipients, expected copies)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            ("handover.notice", COURT, &[CORR], &[CORR], &[PROC, POLICE]),
            (
                "handover.notice",
                "prison_admin.620000",
                &[CORR],
                &[CORR],
                &[PROC, POLICE],
            ),
            ("handover.receipt", CORR, &[COURT], &[COURT], &[]),
            ("handover.correction_request", CORR, &[COURT], &[COURT], &[]),
            ("handover.correction", COURT, &[CORR], &[CORR], &[]),
            ("handover.report_status", CORR, &[COURT], &[COURT], &[PROC]),
            ("assessment.request", PROC, &[CORR], &[CORR], &[]),
            ("assessment.supplement_request", CORR, &[PROC], &[PROC], &[]),
            ("assessment.supplement", PROC, &[CORR], &[CORR], &[]),
            // The requester is the procuratorate itself: no copy to itself.
            ("assessment.opinion", CORR, &[PROC], &[PROC], &[]),
            ("assessment.opinion", CORR, &[COURT], &[COURT], &[PROC]),
            ("assessment.extension", CORR, &[COURT], &[COURT], &[]),
            ("assessment.extension", COURT, &[CORR], &[CORR], &[]),
            ("assessment.unable", CORR, &[COURT], &[COURT], &[]),
            ("revocation.proposal", CORR, &[COURT], &[COURT], &[PROC]),
            (
                "revocation.proposal",
                CORR,
                &["prison_admin.620000"],
                &["prison_admin.620000"],
                &[PROC],
            ),
            (
                "revocation.arrest_request",
                CORR,
                &[COURT],
                &[COURT],
                &[PROC],
            ),
            // The police that executes the arrest is added when the court leaves it out.
            (
                "revocation.arrest_decision",
                COURT,
                &[CORR],
                &[CORR, POLICE],
                &[PROC],
            ),
            (
                "revocation.arrest_decision",
                COURT,
                &[CORR, POLICE],
                &[CORR, POLICE],
                &[PROC],
            ),
            (
                "revocation.ruling",
                COURT,
                &[CORR],
                &[CORR, POLICE],
                &[PROC],
            ),
            (
                "revocation.committal",
                POLICE,
                &[CORR, COURT],
                &[CORR, COURT],
                &[PROC],
            ),
            (
                "revocation.committal",
                "prison.620000.3",
                &[CORR, COURT],
                &[CORR, COURT],
                &[PROC],
            ),
        ];
        for &(t, sender, named, recipients, copies) in cases {
            let r = routed(t, sender, named);
            assert_eq!(r.recipients, recipients, "{t} from {sender}");
            assert_eq!(r.copies, copies, "{t} from {sender}");
        }
        // Every message type is exercised.
        for t in MessageType::ALL {
            assert!(cases.iter().any(|c| c.0 == t.as_str()), "{t} untested");
        }
    }

    #[test]
    fn sender_kinds_not_in_the_data_file_are_refused() {
        let refused: &[(&str, &str, &[&str])] = &[
            ("handover.notice", CORR, &[CORR]),
            ("handover.notice", PROC, &[CORR]),
            ("handover.receipt", COURT, &[CORR]),
            ("handover.report_status", POLICE, &[COURT]),
            ("assessment.request", CORR, &[CORR]),
            ("assessment.opinion", COURT, &[CORR]),
            ("revocation.proposal", PROC, &[COURT]),
            ("revocation.arrest_decision", POLICE, &[CORR]),
            ("revocation.committal", COURT, &[CORR]),
        ];
        for &(t, sender, named) in refused {
            assert_eq!(
                codes(t, sender, named),
                [("message_type_not_permitted", "/sender".to_owned())],
                "{t} from {sender}"
            );
        }
        let v = rules()
            .route(&doc("handover.notice", CORR, &[CORR]), &registry())
            .unwrap_err();
        assert_eq!(
            v[0].message.en,
            "a corrections agency may not send handover.notice; only court, prison, prison_admin, police may"
        );
    }

    #[test]
    fn recipient_kinds_and_registration_are_checked() {
        // A notice must go to the corrections agency (法 第20条).
        assert_eq!(
            codes("handover.notice", COURT, &[PROC]),
            [("recipient_not_permitted", "/recipients/0".to_owned())]
        );
        assert_eq!(
            codes("assessment.opinion", CORR, &[CORR]),
            [("recipient_not_permitted", "/recipients/0".to_owned())]
        );
        assert_eq!(
            codes("handover.receipt", CORR, &["court.620103"]),
            [("unknown_recipient", "/recipients/0".to_owned())]
        );
        let mut d = doc("handover.receipt", CORR, &[COURT]);
        d.envelope.copies =
            vec![crate::model::AgencyId::parse("procuratorate.620103", "/copies/0").unwrap()];
        let v = rules().route(&d, &registry()).unwrap_err();
        assert_eq!(
            (v[0].code, v[0].path.as_str()),
            ("unknown_copy_recipient", "/copies/0")
        );
        // A required recipient the registry cannot resolve in the executing place.
        let v = rules()
            .route(
                &doc("revocation.arrest_decision", "court.620103", &["corrections.620103"]),
                &Registry::parse(
                    "[[agency]]\nid='corrections.620103'\nname='x'\ndialect='corrections'\ndelivery='pull'\n",
                )
                .unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            (v[0].code, v[0].path.as_str()),
            ("unknown_recipient", "/recipients")
        );
    }

    #[test]
    fn named_copies_are_kept_once_and_the_sender_is_never_copied() {
        let mut d = doc("handover.notice", COURT, &[CORR]);
        d.envelope.copies = vec![
            crate::model::AgencyId::parse("police.620102.2", "/copies/0").unwrap(),
            crate::model::AgencyId::parse(PROC, "/copies/1").unwrap(),
        ];
        let r = rules().route(&d, &registry()).unwrap();
        assert_eq!(r.copies, ["police.620102.2", PROC, POLICE]);
        // The compatibility entry point uses the same shipped rules.
        assert_eq!(route(&d, &registry()).unwrap(), r);
    }

    #[test]
    fn malformed_rules_are_refused_at_load_time() {
        let err = |text: &str| RoutingRules::parse(text).unwrap_err().to_string();
        let one = |extra: &str| {
            let mut s = String::new();
            for t in MessageType::ALL {
                s += &format!("[[route]]\nmessage='{t}'\nfrom=['court']\nto=['corrections']\n");
            }
            s + extra
        };
        assert!(RoutingRules::parse(&one("")).is_ok());
        assert!(err("route = []").contains("has no route"));
        assert!(err(&one(
            "[[route]]\nmessage='handover.notice'\nfrom=['court']\nto=['corrections']\n"
        ))
        .contains("sender kind court already has a route"));
        assert!(err(&one(
            "[[route]]\nmessage='handover.notices'\nfrom=['court']\nto=['corrections']\n"
        ))
        .contains("unknown message type"));
        assert!(err(&one(
            "[[route]]\nmessage='handover.notice'\nfrom=['judge']\nto=['corrections']\n"
        ))
        .contains("unknown agency kind \"judge\""));
        assert!(err(&one(
            "[[route]]\nmessage='handover.notice'\nfrom=['police']\nto=['corrections']\nrequired=['court']\n"
        ))
        .contains("required kind court is not in `to`"));
        let e = RoutingRules::parse("[[route]\n").unwrap_err();
        assert_eq!(e.code(), "routing_rules_invalid");
        let e = RoutingRules::load(Path::new("/nonexistent/routing.toml")).unwrap_err();
        assert_eq!(e.code(), "routing_rules_unreadable");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
        assert!(RoutingRules::load(&shipped).is_ok());
    }
}
