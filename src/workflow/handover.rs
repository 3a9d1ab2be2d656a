//! The handover flow (交付接收), 法 第20、21条: opening a case when a
//! decision organ's notice arrives, and checking that the notice carries the
//! legal documents its correction type requires (`rules/handover_documents.toml`).
//!
//! The state machine itself is [`super::flows::HANDOVER`]; the periods come
//! from `rules/periods.toml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::model::{Body, CanonicalDocument, CorrectionType, MessageType};
use crate::store::NewCase;
use crate::violation::Bilingual;
use crate::workflow::calendar::Calendar;
use crate::workflow::cases;
use crate::workflow::flows::CaseState;
use crate::workflow::period::PeriodRules;
use crate::workflow::routing::Route;

/// State of a handover case right after the notice was accepted.
pub const STATE_NOTIFIED: &str = "notified";

/// Where the project keeps the document lists, relative to the working directory.
pub const DOCUMENTS_PATH: &str = "rules/handover_documents.toml";

/// Opens the handover case of a notice (a thin wrapper over
/// [`cases::open`], kept for the pipeline). Deadlines the calendar cannot
/// compute (a year outside the official calendar) are stored as
/// `uncomputable` with the reason, never guessed, and do not block the
/// document: the notice is legally valid and must reach the corrections agency.
pub fn open_case(
    case_id: String,
    doc: &CanonicalDocument,
    route: &Route,
    received_at: OffsetDateTime,
    calendar: &Calendar,
    periods: &PeriodRules,
) -> NewCase {
    match cases::open(case_id.clone(), doc, route, received_at, calendar, periods) {
        Ok(opened) => opened.case,
        // Unreachable after routing (only decision organs may send a notice),
        // but never a panic: keep the case, without deadlines.
        Err(_) => NewCase {
            id: case_id,
            flow: "handover".into(),
            state: CaseState::HandoverNotified.as_str().into(),
            opened_by: doc.envelope.sender.as_str().to_owned(),
            corrections_agency: cases::corrections_agency(doc, route),
            case_no: doc.envelope.case_no.clone(),
            parties: vec![doc.envelope.sender.as_str().to_owned()],
            deadlines: Vec::new(),
        },
    }
}

/// A legal document the notice lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDocument {
    /// Attachment kind (`closing_form`).
    pub kind: String,
    /// Its Chinese name (结案登记表).
    pub name_zh: String,
}

/// What the corrections agency should send when a notice lacks documents: a
/// `handover.correction_request` to the decision organ (实施办法: documents
/// missing → notify the decision organ, which supplies them within 5 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionSuggestion {
    pub message_type: MessageType,
    /// The decision organ to address it to.
    pub to: String,
    pub missing: Vec<MissingDocument>,
    /// A ready-made reason for the request (lists kinds only, no personal data).
    pub reason: Bilingual,
}

/// The legal documents required per correction type.
#[derive(Debug, Clone)]
pub struct HandoverDocuments {
    names: BTreeMap<String, String>,
    required: BTreeMap<&'static str, Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoverDocumentsError {
    #[error("cannot read handover document rules {path}: {source}")]
    Load {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid handover document rules {origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

impl HandoverDocumentsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Load { .. } => "handover_documents_unreadable",
            Self::Invalid { .. } => "handover_documents_invalid",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentsFile {
    kinds: BTreeMap<String, String>,
    required: BTreeMap<String, Vec<String>>,
}

impl HandoverDocuments {
    pub fn load(path: &Path) -> Result<Self, HandoverDocumentsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| HandoverDocumentsError::Load {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse_from(&text, &path.display().to_string())
    }

    pub fn parse(text: &str) -> Result<Self, HandoverDocumentsError> {
        Self::parse_from(text, "<text>")
    }

    /// The lists shipped in `rules/handover_documents.toml`, compiled in
    /// (for [`missing_documents`] and tests; the gateway should load the file).
    pub fn shipped() -> Result<&'static Self, &'static HandoverDocumentsError> {
        static SHIPPED: OnceLock<Result<HandoverDocuments, HandoverDocumentsError>> =
            OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                Self::parse_from(
                    include_str!("../../rules/handover_documents.toml"),
                    DOCUMENTS_PATH,
                )
            })
            .as_ref()
    }

    fn parse_from(text: &str, origin: &str) -> Result<Self, HandoverDocumentsError> {
        let invalid = |reason: String| HandoverDocumentsError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        let file: DocumentsFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut required = BTreeMap::new();
        for (name, kinds) in file.required {
            let t = CorrectionType::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| invalid(format!("unknown correction type {name:?}")))?;
            if let Some(k) = kinds.iter().find(|k| !file.kinds.contains_key(*k)) {
                return Err(invalid(format!(
                    "required.{name}: kind {k:?} is not listed in [kinds]"
                )));
            }
            required.insert(t.as_str(), kinds);
        }
        if let Some(t) = CorrectionType::ALL
            .into_iter()
            .find(|t| !required.contains_key(t.as_str()))
        {
            return Err(invalid(format!(
                "correction type {} has no list in [required]",
                t.as_str()
            )));
        }
        Ok(Self {
            names: file.kinds,
            required,
        })
    }

    /// The kinds a correction type requires.
    pub fn required(&self, correction_type: CorrectionType) -> &[String] {
        self.required
            .get(correction_type.as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// Every listed kind with its Chinese name, in kind order.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The Chinese name of an attachment kind, if listed.
    pub fn name_zh(&self, kind: &str) -> Option<&str> {
        self.names.get(kind).map(String::as_str)
    }

    /// The required kinds a handover notice does not attach, in list order.
    /// Empty for any other document. `attached_before` holds kinds the case
    /// already received (earlier corrections), so a correction is checked
    /// together with what came before it.
    pub fn missing(&self, notice: &CanonicalDocument, attached_before: &[String]) -> Vec<String> {
        let Body::HandoverNotice(n) = &notice.body else {
            return Vec::new();
        };
        self.required(n.correction_type)
            .iter()
            .filter(|k| {
                !notice.envelope.attachments.iter().any(|a| &a.kind == *k)
                    && !attached_before.contains(k)
            })
            .cloned()
            .collect()
    }

    /// The correction request to suggest for a notice that lacks documents.
    pub fn suggest_correction(
        &self,
        notice: &CanonicalDocument,
        attached_before: &[String],
    ) -> Option<CorrectionSuggestion> {
        let missing: Vec<MissingDocument> = self
            .missing(notice, attached_before)
            .into_iter()
            .map(|kind| MissingDocument {
                name_zh: self.name_zh(&kind).unwrap_or(&kind).to_owned(),
                kind,
            })
            .collect();
        if missing.is_empty() {
            return None;
        }
        let zh = missing
            .iter()
            .map(|m| m.name_zh.as_str())
            .collect::<Vec<_>>()
            .join("、");
        let en = missing
            .iter()
            .map(|m| m.kind.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Some(CorrectionSuggestion {
            message_type: MessageType::HandoverCorrectionRequest,
            to: notice.envelope.sender.as_str().to_owned(),
            missing,
            reason: Bilingual::new(
                format!("法律文书不齐全，请于五日内补齐：{zh}"),
                format!("legal documents missing; please supply within 5 days: {en}"),
            ),
        })
    }
}

/// The correction request a handover case calls for now: its notice checked
/// together with every correction (`handover.correction`) received since.
/// `documents` are the case's documents in the order received; `None` when
/// nothing is missing or the case has no notice.
pub fn case_suggestion(
    rules: &HandoverDocuments,
    documents: &[CanonicalDocument],
) -> Option<CorrectionSuggestion> {
    let notice = documents
        .iter()
        .find(|d| d.body.message_type() == MessageType::HandoverNotice)?;
    let supplied: Vec<String> = documents
        .iter()
        .filter(|d| d.body.message_type() == MessageType::HandoverCorrection)
        .flat_map(|d| d.envelope.attachments.iter().map(|a| a.kind.clone()))
        .collect();
    rules.suggest_correction(notice, &supplied)
}

/// The required legal documents a handover notice lacks, by the shipped
/// lists (`rules/handover_documents.toml`). Empty for other documents.
pub fn missing_documents(notice: &CanonicalDocument) -> Vec<String> {
    HandoverDocuments::shipped()
        .map(|d| d.missing(notice, &[]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn notice(correction_type: &str, kinds: &[&str]) -> CanonicalDocument {
        let mut v: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/canonical/handover.notice.json"
        ))
        .unwrap();
        v["body"]["correction_type"] = json!(correction_type);
        if correction_type == "medical_parole" {
            v["sender"] = json!("prison_admin.620000");
            v["body"]["decision_organ"] = json!("prison_admin.620000");
            v["body"]["transfer_date"] = json!("2024-06-05");
            v["body"]["reason"] = json!("x");
        }
        let template = v["attachments"][0].clone();
        v["attachments"] = kinds
            .iter()
            .map(|k| {
                let mut a = template.clone();
                a["kind"] = json!(k);
                a
            })
            .collect();
        CanonicalDocument::from_json(&v).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn shipped_lists_load_from_disk_and_cover_every_correction_type() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOCUMENTS_PATH);
        let docs = HandoverDocuments::load(&path).unwrap();
        assert_eq!(
            docs.required(CorrectionType::Probation),
            ["judgment", "execution_notice", "closing_form"]
        );
        for t in CorrectionType::ALL {
            assert!(!docs.required(t).is_empty(), "{}", t.as_str());
        }
        assert_eq!(docs.name_zh("closing_form"), Some("结案登记表"));
    }

    #[test]
    fn the_fixture_notice_is_complete() {
        let n = notice(
            "probation",
            &["judgment", "execution_notice", "closing_form"],
        );
        assert!(missing_documents(&n).is_empty());
        let docs = HandoverDocuments::shipped().unwrap();
        assert_eq!(docs.suggest_correction(&n, &[]), None);
    }

    #[test]
    fn missing_documents_lead_to_a_suggested_correction_request() {
        let n = notice("probation", &["judgment", "notification"]);
        assert_eq!(missing_documents(&n), ["execution_notice", "closing_form"]);
        let s = HandoverDocuments::shipped()
            .unwrap()
            .suggest_correction(&n, &[])
            .unwrap();
        assert_eq!(s.message_type, MessageType::HandoverCorrectionRequest);
        assert_eq!(s.to, "court.620102");
        assert_eq!(
            s.missing,
            [
                MissingDocument {
                    kind: "execution_notice".into(),
                    name_zh: "执行通知书".into()
                },
                MissingDocument {
                    kind: "closing_form".into(),
                    name_zh: "结案登记表".into()
                },
            ]
        );
        assert_eq!(
            s.reason.zh,
            "法律文书不齐全，请于五日内补齐：执行通知书、结案登记表"
        );
        // Parole needs the ruling; medical parole the decision and the diagnosis.
        assert_eq!(
            missing_documents(&notice("parole", &["judgment", "execution_notice"])),
            ["ruling"]
        );
        assert_eq!(
            missing_documents(&notice("medical_parole", &["judgment"])),
            ["decision", "medical_report"]
        );
        // What an earlier correction delivered counts.
        let docs = HandoverDocuments::shipped().unwrap();
        assert_eq!(
            docs.missing(&n, &["execution_notice".to_owned()]),
            ["closing_form"]
        );
    }

    #[test]
    fn a_case_is_checked_with_the_corrections_it_received() {
        let docs = HandoverDocuments::shipped().unwrap();
        let n = notice("probation", &["judgment"]);
        let mut c: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/canonical/handover.correction.json"
        ))
        .unwrap();
        let template = n.to_json()["attachments"][0].clone();
        let mut attachment = template.clone();
        attachment["kind"] = json!("execution_notice");
        c["attachments"] = json!([attachment]);
        let correction = CanonicalDocument::from_json(&c).unwrap_or_else(|e| panic!("{e:?}"));
        let pending = case_suggestion(docs, std::slice::from_ref(&n)).unwrap();
        assert_eq!(pending.missing.len(), 2);
        let after = case_suggestion(docs, &[n.clone(), correction.clone()]).unwrap();
        let kinds: Vec<&str> = after.missing.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["closing_form"]);
        // No notice in the case: nothing to check.
        assert_eq!(case_suggestion(docs, &[correction]), None);
    }

    #[test]
    fn malformed_lists_are_refused() {
        let err = |t: &str| HandoverDocuments::parse(t).unwrap_err().to_string();
        let all = "control=['judgment']\nprobation=['judgment']\nparole=['judgment']\nmedical_parole=['judgment']\n";
        assert!(HandoverDocuments::parse(&format!(
            "[kinds]\njudgment='判决书'\n[required]\n{all}"
        ))
        .is_ok());
        assert!(err(&format!("[kinds]\n[required]\n{all}")).contains("not listed in [kinds]"));
        assert!(
            err("[kinds]\njudgment='判决书'\n[required]\ncontrol=['judgment']\n")
                .contains("has no list")
        );
        assert!(err("[kinds]\n[required]\nhouse_arrest=[]\n").contains("unknown correction type"));
    }

    #[test]
    fn open_case_keeps_its_shape_for_the_pipeline() {
        let n = notice(
            "probation",
            &["judgment", "execution_notice", "closing_form"],
        );
        let registry =
            crate::registry::Registry::parse(include_str!("../../rules/agencies.demo.toml"))
                .unwrap();
        let route = crate::workflow::routing::route(&n, &registry).unwrap();
        let cal =
            Calendar::parse(include_str!("../../rules/calendar/cn-official-days.tsv")).unwrap();
        let periods = PeriodRules::parse(include_str!("../../rules/periods.toml")).unwrap();
        let at = time::macros::datetime!(2024-06-03 10:20 +08:00);
        let case = open_case("c1".into(), &n, &route, at, &cal, &periods);
        assert_eq!(
            (case.flow.as_str(), case.state.as_str()),
            ("handover", STATE_NOTIFIED)
        );
        assert_eq!(case.corrections_agency, "corrections.620102");
        let steps: Vec<(&str, &str)> = case
            .deadlines
            .iter()
            .map(|d| (d.step.as_str(), d.status.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("handover.notify", "met"),
                ("handover.documents", "met"),
                ("handover.receipt", "due"),
                ("handover.report", "due"),
            ]
        );
    }
}
