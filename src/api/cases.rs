//! `GET /api/v1/cases/{id}`: a case's state, deadlines and documents, for the
//! agencies that are party to it. No personal data is in this view.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::authenticate_read;
use super::problem::{signed, Problem};
use crate::app::Gateway;
use crate::timefmt;

#[derive(Serialize)]
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
    deadlines: Vec<DeadlineView>,
    documents: Vec<DocumentRef>,
}

#[derive(Serialize)]
struct DeadlineView {
    step: String,
    period: String,
    starts_at: String,
    due_at: Option<String>,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize)]
struct DocumentRef {
    document_id: String,
    message_type: String,
    received_at: String,
}

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
    let view = CaseView {
        id: case.id,
        flow: case.flow,
        state: case.state,
        opened_by: case.opened_by,
        corrections_agency: case.corrections_agency,
        case_no: case.case_no,
        opened_at: timefmt::beijing_ms(case.opened_at_ms),
        updated_at: timefmt::beijing_ms(case.updated_at_ms),
        parties: case.parties,
        deadlines: case
            .deadlines
            .into_iter()
            .map(|d| DeadlineView {
                step: d.step,
                period: d.period,
                starts_at: timefmt::beijing_ms(d.starts_at_ms),
                due_at: d.due_at_ms.map(timefmt::beijing_ms),
                status: d.status,
                note: d.note,
            })
            .collect(),
        documents: case
            .documents
            .into_iter()
            .map(|(document_id, message_type, at)| DocumentRef {
                document_id,
                message_type,
                received_at: timefmt::beijing_ms(at),
            })
            .collect(),
    };
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(&view).unwrap_or_default(),
    )
}
