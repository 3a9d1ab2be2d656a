//! Flows, routing rules, the official calendar and legal deadlines.
//!
//! This module owns what the law says about *when* and *to whom* a document
//! moves between agencies: the three flows (handover 交付接收, investigation
//! assessment 调查评估, revocation 撤销/收监), the routing and copy (抄送)
//! rules, and the deadlines each step must meet.
//!
//! - [`calendar`](crate::workflow::calendar): the State Council's official
//!   days off and makeup working days (调休), loaded from
//!   `rules/calendar/cn-official-days.tsv`.
//! - [`period`](crate::workflow::period): legal periods as data
//!   (`rules/periods.toml`, with province overrides) and how a period turns
//!   into a due instant (刑事诉讼法 第105条).
//!
//! - [`flows`](crate::workflow::flows): the three flows as state machines,
//!   one table per flow with the law article of each row.
//! - [`deadlines`](crate::workflow::deadlines): what a step does to a
//!   case's deadlines (start, meet, close, extend), due / met / overdue, and
//!   the overdue scan of the background job.
//! - [`routing`](crate::workflow::routing): sender permissions, recipients
//!   and mandatory copies, from `rules/routing.toml`.
//! - [`handover`](crate::workflow::handover): the legal documents each
//!   correction type requires (`rules/handover_documents.toml`).
//! - [`cases`](crate::workflow::cases): what the pipeline calls to open or
//!   advance a case.
//!
//! What this module must never do: hard-code a period or a holiday (both are
//! data a maintainer edits), guess about a year the calendar does not cover,
//! or touch storage, HTTP or formats (it computes; other stages act).

pub mod calendar;
pub mod cases;
pub mod deadlines;
pub mod flows;
pub mod handover;
pub mod period;
pub mod routing;

/// Test documents: the canonical fixture of a message type, re-addressed.
#[cfg(test)]
pub(crate) mod test_docs {
    use serde_json::Value;

    use crate::model::CanonicalDocument;
    use crate::violation::Violations;

    /// The fixture `tests/fixtures/canonical/<t>.json` from `sender` to
    /// `recipients` (no copies), with `body` fields merged over the fixture's.
    pub fn json(t: &str, sender: &str, recipients: &[&str], body: Value) -> Value {
        let path = format!(
            "{}/tests/fixtures/canonical/{t}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut v: Value = serde_json::from_str(&text).expect("fixture is JSON");
        v["sender"] = Value::from(sender);
        v["recipients"] = serde_json::json!(recipients);
        v["copies"] = serde_json::json!([]);
        if let Value::Object(extra) = body {
            for (k, val) in extra {
                v["body"][k] = val;
            }
        }
        v
    }

    pub fn try_doc(
        t: &str,
        sender: &str,
        recipients: &[&str],
        body: Value,
    ) -> Result<CanonicalDocument, Violations> {
        CanonicalDocument::from_json(&json(t, sender, recipients, body))
    }

    pub fn doc(t: &str, sender: &str, recipients: &[&str], body: Value) -> CanonicalDocument {
        try_doc(t, sender, recipients, body).unwrap_or_else(|e| panic!("{t}: {e:?}"))
    }
}
