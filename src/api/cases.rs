//! Cases for the agencies party to them: `GET /api/v1/cases` (filter by
//! flow, state, overdue; keyset-paginated) and `GET /api/v1/cases/{id}` (state,
//! deadlines, documents and the case's timeline). No personal data is in
//! either view: a case is named by its id, flow, state, 案号 and agencies.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::authenticate_read;
use super::openapi::{Refusals, SignedRead};
use super::problem::{signed, Problem};
use crate::app::Gateway;
use crate::model::CanonicalDocument;
use crate::model::Flow;
use crate::store::StoreError;
use crate::store::{CaseFilter, CaseRecord, NewDeadline};
use crate::timefmt::{self, unix_ms};
use crate::violation::{Bilingual, Violation};
use crate::workflow::flows::CaseState;
use crate::workflow::handover;

/// Largest page of `GET /api/v1/cases`.
const MAX_LIMIT: i64 = 200;
const DEFAULT_LIMIT: i64 = 50;

#[derive(Serialize, utoipa::ToSchema)]
struct CaseView {
    id: String,
    flow: String,
    state: String,
    opened_by: String,
    corrections_agency: String,
    case_no: Option<String>,
    opened_at: String,
    updated_at: String,
    parties: Vec<String>,
    /// Whether an unanswered deadline is past due now.
    overdue: bool,
    deadlines: Vec<DeadlineView>,
    documents: Vec<DocumentRef>,
    /// Everything that happened to the case, oldest first.
    timeline: Vec<TimelineEvent>,
    /// What the case calls for now: a handover notice lacking legal documents
    /// suggests a `handover.correction_request` to the decision organ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<SuggestionView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SuggestionView {
    message_type: &'static str,
    to: String,
    /// Attachment kinds (and their Chinese names) still missing.
    missing: Vec<MissingView>,
    reason: Bilingual,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MissingView {
    kind: String,
    name_zh: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeadlineView {
    step: String,
    period: String,
    starts_at: String,
    due_at: Option<String>,
    /// due, met, overdue, closed or uncomputable — as of now (a `due` past
    /// its instant reads `overdue` even before the sweep has logged it).
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    met_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DocumentRef {
    document_id: String,
    message_type: String,
    received_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimelineEvent {
    at: String,
    /// `document.received`, `deadline.started`, `deadline.met`,
    /// `deadline.closed`, `deadline.missed`.
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<String>,
    #[serde(skip)]
    at_ms: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CaseList {
    cases: Vec<CaseView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Query of `GET /api/v1/cases`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Flow: `handover`, `assessment` or `revocation`.
    flow: Option<String>,
    /// A state of the flow (docs/decisions.md lists them).
    state: Option<String>,
    /// Only cases with an unanswered deadline past due (`true`), or none (`false`).
    overdue: Option<bool>,
    /// Must be the caller's own agency when given (partners see only their cases).
    agency: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Cases per page, 1–200 (default 50).
    limit: Option<i64>,
}

/// `GET /api/v1/cases/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    tag = "cases",
    params(("id" = String, Path, description = "the case id"), SignedRead),
    responses(
        (status = 200, description = "the case's state, deadlines, documents, timeline and suggestions", body = CaseView),
        (status = 404, description = "no such case, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        Refusals
    ),
)]
pub async fn get(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let reader = match authenticate_read(&gw, &req) {
        Ok(verified) => verified.signer.agency,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let case = match gw.store.case(&id).await {
        Ok(Some(case)) if case.parties.contains(&reader) => case,
        Ok(_) => return Problem::not_found().response(&gw.identity),
        Err(e) => {
            tracing::error!(error = %e, "reading a case failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let suggestions = match suggestions(&gw, &case).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "reading a case's documents failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let view = view(case, suggestions, unix_ms(gw.clock.now()));
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&view).unwrap_or_default(),
    )
}

/// `GET /api/v1/cases`: the caller's cases, keyset-paginated.
#[utoipa::path(
    get,
    path = "/api/v1/cases",
    tag = "cases",
    params(ListQuery, SignedRead),
    responses(
        (status = 200, description = "the caller's cases, newest activity first, each with deadlines and timeline", body = CaseList),
        Refusals
    ),
)]
pub async fn list(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    query: Result<web::Query<ListQuery>, actix_web::Error>,
) -> HttpResponse {
    let reader = match authenticate_read(&gw, &req) {
        Ok(verified) => verified.signer.agency,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let query = match query {
        Ok(q) => q.into_inner(),
        Err(_) => {
            return bad_query(Violation::new(
                "invalid_query",
                "",
                "查询参数格式有误（overdue 为 true/false，limit 为整数）",
                "malformed query (overdue is true/false, limit an integer)",
            ))
            .response(&gw.identity)
        }
    };
    let now_ms = unix_ms(gw.clock.now());
    let filter = match filter_of(query, &reader, now_ms) {
        Ok(f) => f,
        Err(problem) => return problem.response(&gw.identity),
    };
    let page = match gw.store.case_ids(&filter).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "listing cases failed");
            return Problem::unavailable().response(&gw.identity);
        }
    };
    let next_cursor = (page.len() as i64 == filter.limit)
        .then(|| page.last().map(|(at, id)| encode_cursor(*at, id)))
        .flatten();
    let mut cases = Vec::with_capacity(page.len());
    for (_, id) in page {
        match gw.store.case(&id).await {
            Ok(Some(case)) => match suggestions(&gw, &case).await {
                Ok(s) => cases.push(view(case, s, now_ms)),
                Err(e) => {
                    tracing::error!(error = %e, "reading a case's documents failed");
                    return Problem::unavailable().response(&gw.identity);
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading a case failed");
                return Problem::unavailable().response(&gw.identity);
            }
        }
    }
    let list = CaseList { cases, next_cursor };
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&list).unwrap_or_default(),
    )
}

fn bad_query(v: Violation) -> Box<Problem> {
    Box::new(Problem::from_violation(400, v))
}

/// Checks the query and scopes it to the caller.
fn filter_of(q: ListQuery, reader: &str, now_ms: i64) -> Result<CaseFilter, Box<Problem>> {
    if let Some(agency) = &q.agency {
        if agency != reader {
            return Err(Box::new(Problem::from_violation(
                403,
                Violation::new(
                    "outside_agency_scope",
                    "/agency",
                    "只能查询本机关参与的案件",
                    "an agency can list only the cases it is party to",
                ),
            )));
        }
    }
    let flow = match &q.flow {
        Some(code) => Some(Flow::parse(code).ok_or_else(|| {
            bad_query(Violation::new(
                "invalid_query",
                "/flow",
                "flow 须为 handover、assessment 或 revocation",
                "flow must be handover, assessment or revocation",
            ))
        })?),
        None => None,
    };
    if let Some(state) = &q.state {
        let known = match flow {
            Some(f) => CaseState::parse(f, state).is_some(),
            None => Flow::ALL
                .into_iter()
                .any(|f| CaseState::parse(f, state).is_some()),
        };
        if !known {
            return Err(bad_query(Violation::new(
                "invalid_query",
                "/state",
                "state 不是该流程的案件状态",
                "state is not a case state of the flow",
            )));
        }
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_query(Violation::new(
            "invalid_query",
            "/limit",
            format!("limit 须在 1 到 {MAX_LIMIT} 之间"),
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )));
    }
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            bad_query(Violation::new(
                "invalid_query",
                "/cursor",
                "cursor 无效，请使用上一页返回的 next_cursor",
                "invalid cursor; pass the next_cursor of the previous page",
            ))
        })?),
        None => None,
    };
    Ok(CaseFilter {
        party: Some(reader.to_string()),
        flow: flow.map(|f| f.as_str().to_string()),
        state: q.state,
        overdue: q.overdue.unwrap_or(false),
        now_ms,
        after,
        limit,
    })
}

/// The cursor is opaque to partners: base64url of `opened_at_ms:case_id`.
fn encode_cursor(at_ms: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at_ms}:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// A deadline's status as of `now_ms`: a stored `due` past its instant is overdue.
fn status_now(d: &NewDeadline, now_ms: i64) -> String {
    match (d.status.as_str(), d.due_at_ms) {
        ("due", Some(due)) if due < now_ms => "overdue".into(),
        (status, _) => status.into(),
    }
}

/// The correction request a handover case still waiting for its receipt
/// calls for: the notice and the corrections received so far, checked
/// against the required documents of `rules/handover_documents.toml`. The
/// API lists it as a suggestion; the case page pre-ticks its kinds.
pub(crate) async fn correction_suggestion(
    gw: &Gateway,
    case: &CaseRecord,
) -> Result<Option<handover::CorrectionSuggestion>, StoreError> {
    if case.flow != "handover" || case.state != "notified" {
        return Ok(None);
    }
    let mut documents = Vec::new();
    for (id, message_type, _) in &case.documents {
        if message_type != "handover.notice" && message_type != "handover.correction" {
            continue;
        }
        let Some(stored) = gw.store.document(id).await? else {
            continue;
        };
        // Stored canonical JSON passed validation on the way in.
        let parsed = serde_json::from_str(&stored.canonical)
            .ok()
            .and_then(|v| CanonicalDocument::from_json(&v).ok());
        documents.extend(parsed);
    }
    Ok(handover::case_suggestion(
        &gw.handover_documents,
        &documents,
    ))
}

async fn suggestions(gw: &Gateway, case: &CaseRecord) -> Result<Vec<SuggestionView>, StoreError> {
    Ok(correction_suggestion(gw, case)
        .await?
        .map(|s| SuggestionView {
            message_type: s.message_type.as_str(),
            to: s.to,
            missing: s
                .missing
                .into_iter()
                .map(|m| MissingView {
                    kind: m.kind,
                    name_zh: m.name_zh,
                })
                .collect(),
            reason: s.reason,
        })
        .into_iter()
        .collect())
}

fn view(case: CaseRecord, suggestions: Vec<SuggestionView>, now_ms: i64) -> CaseView {
    let mut timeline = Vec::new();
    let event = |at_ms: i64, event: &'static str| TimelineEvent {
        at: timefmt::beijing_ms(at_ms),
        event,
        document_id: None,
        message_type: None,
        step: None,
        due_at: None,
        at_ms,
    };
    for (document_id, message_type, at) in &case.documents {
        timeline.push(TimelineEvent {
            document_id: Some(document_id.clone()),
            message_type: Some(message_type.clone()),
            ..event(*at, "document.received")
        });
    }
    for d in &case.deadlines {
        let due_at = d.due_at_ms.map(timefmt::beijing_ms);
        timeline.push(TimelineEvent {
            step: Some(d.step.clone()),
            due_at: due_at.clone(),
            ..event(d.starts_at_ms, "deadline.started")
        });
        let end = match (d.met_at_ms, d.closed_at_ms) {
            (Some(at), _) => Some((at, "deadline.met")),
            (None, Some(at)) => Some((at, "deadline.closed")),
            (None, None) => d
                .due_at_ms
                .filter(|due| *due < now_ms)
                .map(|due| (due, "deadline.missed")),
        };
        if let Some((at, kind)) = end {
            timeline.push(TimelineEvent {
                step: Some(d.step.clone()),
                due_at,
                ..event(at, kind)
            });
        }
    }
    // Stable: a document comes before the deadlines it starts at the same instant.
    timeline.sort_by_key(|e| e.at_ms);
    let deadlines: Vec<DeadlineView> = case
        .deadlines
        .iter()
        .map(|d| DeadlineView {
            step: d.step.clone(),
            period: d.period.clone(),
            starts_at: timefmt::beijing_ms(d.starts_at_ms),
            due_at: d.due_at_ms.map(timefmt::beijing_ms),
            status: status_now(d, now_ms),
            met_at: d.met_at_ms.map(timefmt::beijing_ms),
            closed_at: d.closed_at_ms.map(timefmt::beijing_ms),
            note: d.note.clone(),
        })
        .collect();
    CaseView {
        // Open and past due: a step answered late is history, not a case to chase.
        overdue: case.deadlines.iter().any(|d| {
            d.met_at_ms.is_none() && d.closed_at_ms.is_none() && status_now(d, now_ms) == "overdue"
        }),
        id: case.id,
        flow: case.flow,
        state: case.state,
        opened_by: case.opened_by,
        corrections_agency: case.corrections_agency,
        case_no: case.case_no,
        opened_at: timefmt::beijing_ms(case.opened_at_ms),
        updated_at: timefmt::beijing_ms(case.updated_at_ms),
        parties: case.parties,
        deadlines,
        documents: case
            .documents
            .into_iter()
            .map(|(document_id, message_type, at)| DocumentRef {
                document_id,
                message_type,
                received_at: timefmt::beijing_ms(at),
            })
            .collect(),
        timeline,
        suggestions,
    }
}
