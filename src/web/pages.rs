//! The clerk's pages: the dashboard of cases (overdue first, then by the
//! nearest due instant, each with its countdown) and a case's timeline.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::actions;
use super::auth::{self, Scope, Session};
use super::{layout, message_page, Lang};
use crate::app::Gateway;
use crate::model::{Flow, MessageType};
use crate::store::{CaseFilter, CaseRecord, NewDeadline};
use crate::timefmt::{self, unix_ms};
use crate::violation::{Bilingual, Violation};
use crate::workflow::flows::CaseState;

/// Cases shown on the dashboard at most (newest cases beyond it are in the API's pages).
const DASHBOARD_LIMIT: i64 = 200;

/// The logged-in user and what they may see, or the answer to send instead.
pub(super) async fn signed_in(
    gw: &Gateway,
    req: &HttpRequest,
) -> Result<(Session, Scope), HttpResponse> {
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

/// What the case page says above the case: a document just sent, or why
/// one was refused (the pipeline's problem, in both languages).
#[derive(Debug, Clone)]
pub enum Notice {
    Sent(MessageType),
    Refused {
        status: u16,
        title: Bilingual,
        problems: Vec<Violation>,
    },
}

impl Notice {
    pub fn refused(status: u16, title: Bilingual, problems: Vec<Violation>) -> Notice {
        Notice::Refused {
            status,
            title,
            problems,
        }
    }

    fn status(&self) -> u16 {
        match self {
            Notice::Sent(_) => 200,
            Notice::Refused { status, .. } => *status,
        }
    }

    fn render(&self, lang: Lang) -> Markup {
        // The other language underneath: a problem is reported in both.
        let both = |b: &Bilingual| {
            let (first, second) = match lang {
                Lang::Zh => (&b.zh, &b.en),
                Lang::En => (&b.en, &b.zh),
            };
            html! { (first) br; small { (second) } }
        };
        match self {
            Notice::Sent(message_type) => html! {
                p.sent role="status" { (lang.t("已发送并被网关受理：", "Sent and accepted by the gateway: ")) code { (message_type.as_str()) } }
            },
            Notice::Refused {
                status,
                title,
                problems,
            } => html! {
                div.error role="alert" {
                    @if problems.len() == 1 && problems[0].message == *title {
                        @let p = &problems[0];
                        p { strong { (status) " · " } code { (p.code) } @if !p.path.is_empty() { " " code { (p.path) } } br; (both(title)) }
                    } @else {
                        p { strong { (status) " · " } (both(title)) }
                        ul { @for p in problems {
                            li { code { (p.code) } @if !p.path.is_empty() { " " code { (p.path) } } " — " (both(&p.message)) }
                        } }
                    }
                }
            },
        }
    }
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
    let sent = req
        .query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("sent="))
        .and_then(MessageType::from_code)
        // Only what the case holds: a crafted link cannot claim a sending.
        .filter(|t| case.documents.iter().any(|(_, m, _)| m == t.as_str()))
        .map(Notice::Sent);
    render_case(&gw, lang, &session, &case, sent).await
}

/// The case page: state, deadlines, the documents in the order received and,
/// for a user who may write for the case's corrections agency, the forms of
/// what its state accepts from that side (src/web/actions.rs).
pub(super) async fn render_case(
    gw: &Gateway,
    lang: Lang,
    session: &Session,
    case: &CaseRecord,
    notice: Option<Notice>,
) -> HttpResponse {
    let now_ms = unix_ms(gw.clock.now());
    let actions = if auth::may_act_for(&session.user, &case.corrections_agency) {
        actions::offered(case)
    } else {
        Vec::new()
    };
    let suggested: Vec<String> = if actions.contains(&actions::Action::CorrectionRequest) {
        match crate::api::cases::correction_suggestion(gw, case).await {
            Ok(s) => s
                .map(|s| s.missing.into_iter().map(|m| m.kind).collect())
                .unwrap_or_default(),
            Err(e) => return auth::unavailable(lang, &e),
        }
    } else {
        Vec::new()
    };
    let kinds: Vec<(String, String)> = gw
        .handover_documents
        .kinds()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    let body = html! {
        p { a href="/ui/" { "← " (lang.t("案件", "Cases")) } }
        h1 { (flow_label(lang, &case.flow)) " · " (case.case_no.as_deref().unwrap_or(&case.id)) }
        @if let Some(n) = &notice { (n.render(lang)) }
        div.card {
            p { strong { (lang.t("状态：", "State: ")) } span #state { (state_label(lang, &case.flow, &case.state)) } }
            p { strong { (lang.t("社区矫正机构：", "Corrections agency: ")) } (case.corrections_agency) }
            p { strong { (lang.t("参与机关：", "Parties: ")) } (case.parties.join(", ")) }
            p { strong { (lang.t("立案时间：", "Opened: ")) } (timefmt::beijing_ms(case.opened_at_ms)) }
            @if auth::may_audit(&session.user) {
                p { a #evidence href={ "/ui/cases/" (case.id) "/evidence" } download { (lang.t("下载本案证据包（可用 log verify 离线核验）", "Download the case's evidence bundle (verify it offline with log verify)")) } }
            }
        }
        h2 { (lang.t("期限", "Deadlines")) }
        table {
            thead { tr { th { (lang.t("期限", "Period")) } th { (lang.t("时长", "Length")) } th { (lang.t("起算", "Starts")) }
                th { (lang.t("到期", "Due")) } th { (lang.t("状态", "Status")) } th { (lang.t("剩余", "Left")) } } }
            tbody { @for d in &case.deadlines { (deadline_row(lang, d, now_ms)) } }
        }
        h2 { (lang.t("文书时间线", "Timeline of documents")) }
        table #timeline {
            thead { tr { th { (lang.t("收到时间", "Received")) } th { (lang.t("文书类型", "Message type")) } th { (lang.t("文书编号（网关）", "Gateway document id")) } } }
            tbody { @for (doc_id, message_type, at) in &case.documents {
                tr { td { (timefmt::beijing_ms(*at)) } td { (message_type) } td { code { (doc_id) } } }
            } }
        }
        @if !actions.is_empty() {
            h2 { (lang.t("发送文书", "Send a document")) }
            p { small { (lang.t("由网关以本机构的签名密钥签名，并与对方机关系统提交的文书一样经过验签、校验、流程与路由。",
                "Signed by the gateway with your agency's key and checked like any partner's submission: signature, validation, flow and routing.")) } }
            (actions::forms(lang, session, case, &actions, &kinds, &suggested))
        }
    };
    let mut response = layout(lang, lang.t("案件", "Case"), Some(session), body);
    if let Some(n) = &notice {
        *response.status_mut() = actix_web::http::StatusCode::from_u16(n.status())
            .unwrap_or(actix_web::http::StatusCode::OK);
    }
    response
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
