//! The clerk's pages: the dashboard of cases (overdue first, then by the
//! nearest due instant, each with its countdown) and a case's timeline.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::auth::{self, Scope, Session};
use super::{layout, message_page, Lang};
use crate::app::Gateway;
use crate::model::Flow;
use crate::store::{CaseFilter, CaseRecord, NewDeadline};
use crate::timefmt::{self, unix_ms};
use crate::workflow::flows::CaseState;

/// Cases shown on the dashboard at most (newest cases beyond it are in the API's pages).
const DASHBOARD_LIMIT: i64 = 200;

/// The logged-in user and what they may see, or the answer to send instead.
async fn signed_in(gw: &Gateway, req: &HttpRequest) -> Result<(Session, Scope), HttpResponse> {
    let lang = Lang::of(req);
    match auth::session(gw, req).await {
        Ok(Some(session)) => match Scope::of(&session.user) {
            Some(scope) => Ok((session, scope)),
            None => Err(message_page(
                lang,
                403,
                "账户未配置机关或辖区，请联系管理员",
                "your account has no agency or region; ask an administrator",
            )),
        },
        Ok(None) => Err(auth::to_login()),
        Err(e) => Err(auth::unavailable(lang, &e)),
    }
}

pub async fn dashboard(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, scope) = match signed_in(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let now_ms = unix_ms(gw.clock.now());
    let filter = CaseFilter {
        party: match &scope {
            Scope::Agency(a) => Some(a.clone()),
            _ => None,
        },
        now_ms,
        limit: DASHBOARD_LIMIT,
        ..CaseFilter::default()
    };
    let mut cases = Vec::new();
    let ids = match gw.store.case_ids(&filter).await {
        Ok(ids) => ids,
        Err(e) => return auth::unavailable(lang, &e),
    };
    for (_, id) in ids {
        match gw.store.case(&id).await {
            Ok(Some(case)) if scope.allows(&case) => cases.push(case),
            Ok(_) => {}
            Err(e) => return auth::unavailable(lang, &e),
        }
    }
    // Overdue first (longest overdue on top), then by the nearest open due instant.
    cases.sort_by_key(|c| {
        let next = next_due(c);
        let overdue = next.is_some_and(|d| d.due_at_ms.unwrap_or(i64::MAX) < now_ms);
        (!overdue, next.and_then(|d| d.due_at_ms).unwrap_or(i64::MAX))
    });
    let overdue_count = cases
        .iter()
        .filter(|c| next_due(c).is_some_and(|d| d.due_at_ms.unwrap_or(i64::MAX) < now_ms))
        .count();
    let body = html! {
        h1 { (lang.t("案件", "Cases")) }
        p { (lang.t("共 ", "")) (cases.len()) (lang.t(" 件，其中逾期 ", " cases, overdue: ")) span.overdue { (overdue_count) } }
        table {
            thead { tr {
                th { (lang.t("流程", "Flow")) } th { (lang.t("案号", "Case no.")) } th { (lang.t("状态", "State")) }
                th { (lang.t("下一期限", "Next deadline")) } th { (lang.t("到期", "Due")) } th { (lang.t("剩余", "Left")) }
                th { (lang.t("机关", "Agencies")) }
            } }
            tbody {
                @for c in &cases {
                    @let next = next_due(c);
                    tr {
                        td { (flow_label(lang, &c.flow)) }
                        td { a href={ "/ui/cases/" (c.id) } { (c.case_no.as_deref().unwrap_or(&c.id)) } }
                        td { (state_label(lang, &c.flow, &c.state)) }
                        td { @if let Some(d) = next { (d.step) } }
                        td { @if let Some(due) = next.and_then(|d| d.due_at_ms) { (timefmt::beijing_ms(due)) } }
                        td { @if let Some(due) = next.and_then(|d| d.due_at_ms) { (countdown(lang, due, now_ms)) } }
                        td { (c.parties.join(", ")) }
                    }
                }
            }
        }
    };
    layout(lang, lang.t("案件", "Cases"), Some(&session), body)
}

pub async fn case(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, scope) = match signed_in(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let case = match gw.store.case(&id).await {
        Ok(Some(case)) if scope.allows(&case) => case,
        // Another agency's case looks exactly like a missing one.
        Ok(_) => return message_page(lang, 404, "未找到该案件", "no such case"),
        Err(e) => return auth::unavailable(lang, &e),
    };
    let now_ms = unix_ms(gw.clock.now());
    let body = html! {
        p { a href="/ui/" { "← " (lang.t("案件", "Cases")) } }
        h1 { (flow_label(lang, &case.flow)) " · " (case.case_no.as_deref().unwrap_or(&case.id)) }
        div.card {
            p { strong { (lang.t("状态：", "State: ")) } (state_label(lang, &case.flow, &case.state)) }
            p { strong { (lang.t("社区矫正机构：", "Corrections agency: ")) } (case.corrections_agency) }
            p { strong { (lang.t("参与机关：", "Parties: ")) } (case.parties.join(", ")) }
            p { strong { (lang.t("立案时间：", "Opened: ")) } (timefmt::beijing_ms(case.opened_at_ms)) }
        }
        h2 { (lang.t("期限", "Deadlines")) }
        table {
            thead { tr { th { (lang.t("期限", "Period")) } th { (lang.t("时长", "Length")) } th { (lang.t("起算", "Starts")) }
                th { (lang.t("到期", "Due")) } th { (lang.t("状态", "Status")) } th { (lang.t("剩余", "Left")) } } }
            tbody { @for d in &case.deadlines { (deadline_row(lang, d, now_ms)) } }
        }
        h2 { (lang.t("文书", "Documents")) }
        table {
            thead { tr { th { (lang.t("收到时间", "Received")) } th { (lang.t("文书类型", "Message type")) } th { (lang.t("文书编号（网关）", "Gateway document id")) } } }
            tbody { @for (doc_id, message_type, at) in &case.documents {
                tr { td { (timefmt::beijing_ms(*at)) } td { (message_type) } td { code { (doc_id) } } }
            } }
        }
    };
    layout(lang, lang.t("案件", "Case"), Some(&session), body)
}

fn deadline_row(lang: Lang, d: &NewDeadline, now_ms: i64) -> Markup {
    let open = d.met_at_ms.is_none() && d.closed_at_ms.is_none();
    let late = open && d.due_at_ms.is_some_and(|due| due < now_ms);
    let status = if late { "overdue" } else { d.status.as_str() };
    html! {
        tr {
            td { (d.step) } td { (d.period) } td { (timefmt::beijing_ms(d.starts_at_ms)) }
            td { @if let Some(due) = d.due_at_ms { (timefmt::beijing_ms(due)) } @else { (lang.t("无法计算", "uncomputable")) } }
            td { span.badge.overdue[status == "overdue"].met[status == "met"] { (status_label(lang, status)) } }
            td { @if open { @if let Some(due) = d.due_at_ms { (countdown(lang, due, now_ms)) } } }
        }
    }
}

/// The open deadline due first.
fn next_due(case: &CaseRecord) -> Option<&NewDeadline> {
    case.deadlines
        .iter()
        .filter(|d| d.met_at_ms.is_none() && d.closed_at_ms.is_none() && d.due_at_ms.is_some())
        .min_by_key(|d| d.due_at_ms)
}

/// "剩 3 天 4 小时" / "逾期 2 天".
fn countdown(lang: Lang, due_ms: i64, now_ms: i64) -> Markup {
    let left = due_ms - now_ms;
    let (days, hours) = (left.abs() / 86_400_000, left.abs() % 86_400_000 / 3_600_000);
    let text = match lang {
        Lang::Zh => format!("{days} 天 {hours} 小时"),
        Lang::En => format!("{days} d {hours} h"),
    };
    if left < 0 {
        html! { span.overdue { (lang.t("逾期 ", "overdue ")) (text) } }
    } else {
        html! { span { (lang.t("剩 ", "")) (text) (lang.t("", " left")) } }
    }
}

fn flow_label(lang: Lang, flow: &str) -> &'static str {
    match Flow::parse(flow) {
        Some(Flow::Handover) => lang.t("交付接收", "Handover"),
        Some(Flow::Assessment) => lang.t("调查评估", "Assessment"),
        Some(Flow::Revocation) => lang.t("撤销/收监", "Revocation"),
        None => "?",
    }
}

fn state_label(lang: Lang, flow: &str, state: &str) -> String {
    match Flow::parse(flow).and_then(|f| CaseState::parse(f, state)) {
        Some(s) => {
            let d = s.description();
            match lang {
                Lang::Zh => d.zh,
                Lang::En => d.en,
            }
        }
        None => state.to_string(),
    }
}

fn status_label(lang: Lang, status: &str) -> &'static str {
    match status {
        "due" => lang.t("进行中", "running"),
        "met" => lang.t("已按期完成", "met"),
        "overdue" => lang.t("逾期", "overdue"),
        "closed" => lang.t("已终止", "closed"),
        "uncomputable" => lang.t("无法计算", "uncomputable"),
        _ => "?",
    }
}
