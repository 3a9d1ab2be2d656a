//! The clerks' search (检索): documents by 案号, 文书编号, the person's name
//! or 公民身份号码, within what the user may see (a clerk: their agency's
//! documents; a supervisor: their region's).
//!
//! Personal data is handled as the law on it asks: queries travel in a POST
//! body (never in a URL, a browser history or an access log), results show ID
//! numbers masked (`6201**********0026`), and showing one in full is a POST of
//! its own that first writes a `personal_data.read` entry to the exchange log
//! — who (user id, role, agency or region), when, which document; never the
//! number or the name. If that entry cannot be written, the number is not
//! shown. Auditors and admins do not search people.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::auth::{self, Scope, Session};
use super::{layout, message_page, pages, read_form, Lang};
use crate::app::Gateway;
use crate::model::{CaseNo, IdNumber};
use crate::store::{Found, Search};
use crate::timefmt;
use crate::xlog::{self, LogEvent};

/// Results shown at most.
const LIMIT: i64 = 50;
/// Longest query accepted.
const MAX_QUERY_CHARS: usize = 100;
/// The field a reveal shows.
const ID_FIELD: &str = "subject.id_number";

/// The user, if their role may search people; the refusal otherwise.
async fn searcher(gw: &Gateway, req: &HttpRequest) -> Result<(Session, Scope), HttpResponse> {
    let lang = Lang::of(req);
    let (session, scope) = pages::signed_in(gw, req).await?;
    if !auth::may_search_people(&session.user) {
        return Err(message_page(
            lang,
            403,
            "检索当事人信息仅限经办人和主管",
            "only clerks and supervisors search for people",
        ));
    }
    Ok((session, scope))
}

/// `GET /ui/search`: the empty form.
pub async fn form(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, _) = match searcher(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    page(lang, &session, "", None, None, 200)
}

/// `POST /ui/search` (`q`) and `POST /ui/search/reveal` (`q`, `document_id`).
pub async fn run(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Payload,
    reveal: bool,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, scope) = match searcher(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let fields = match read_form(lang, body).await {
        Ok(pairs) => pairs,
        Err(refusal) => return refusal,
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    };
    if !auth::check_csrf(&session, field("csrf")) {
        return auth::csrf_refused(lang);
    }
    let q = field("q");
    if q.chars().count() > MAX_QUERY_CHARS {
        let error = lang.t(
            "检索内容过长（至多 100 字）",
            "the query is too long (100 characters at most)",
        );
        return page(lang, &session, "", None, Some(error), 422);
    }
    let revealed = if reveal {
        match reveal_id_number(&gw, lang, &session, &scope, field("document_id")).await {
            Ok(Some(shown)) => Some(shown),
            Ok(None) => return message_page(lang, 404, "未找到该文书", "no such document"),
            Err(answer) => return answer,
        }
    } else {
        None
    };
    if q.chars().count() < 2 {
        let error = lang.t(
            "请输入至少两个字符：案号、文书编号、姓名或身份证号",
            "enter at least two characters: a case number, document number, name or ID number",
        );
        return page(lang, &session, q, None, Some(error), 422);
    }
    let case_no = CaseNo::parse(q, "").ok().map(|c| c.to_string());
    let id_number = IdNumber::parse(q, "").ok().map(|i| i.as_str().to_string());
    let search = Search {
        text: q,
        case_no: case_no.as_deref(),
        id_number: id_number.as_deref(),
        party: match &scope {
            Scope::Agency(agency) => Some(agency.as_str()),
            _ => None,
        },
        // A region is filtered below: ask for more so that LIMIT remain.
        limit: match &scope {
            Scope::Agency(_) => LIMIT,
            _ => LIMIT * 10,
        },
    };
    let found = match gw.store.search_documents(&search).await {
        Ok(found) => found,
        Err(e) => return auth::unavailable(lang, &e),
    };
    let found: Vec<Found> = found
        .into_iter()
        .filter(|f| scope.admits_any(std::iter::once(&f.sender).chain(&f.parties)))
        .take(LIMIT as usize)
        .collect();
    let results = results(lang, &session, q, &found, revealed.as_ref());
    page(lang, &session, q, Some(results), None, 200)
}

pub async fn search(gw: web::Data<Gateway>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    run(gw, req, body, false).await
}

pub async fn reveal(gw: web::Data<Gateway>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    run(gw, req, body, true).await
}

/// Logs the read, then returns (document id, full number). `Ok(None)`: the
/// document is unknown, outside the user's scope or names nobody.
async fn reveal_id_number(
    gw: &Gateway,
    lang: Lang,
    session: &Session,
    scope: &Scope,
    document_id: &str,
) -> Result<Option<(String, String)>, HttpResponse> {
    let lang_unavailable = |e: &crate::store::StoreError| auth::unavailable(lang, e);
    let doc = match gw.store.document(document_id).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return Ok(None),
        Err(e) => return Err(lang_unavailable(&e)),
    };
    let agencies = std::iter::once(&doc.sender).chain(doc.parties.iter().map(|(a, _)| a));
    if !scope.admits_any(agencies) {
        return Ok(None);
    }
    let number = match gw.store.subject_id_number(document_id).await {
        Ok(Some(number)) => number,
        Ok(None) => return Ok(None),
        Err(e) => return Err(lang_unavailable(&e)),
    };
    let user = &session.user;
    let event = LogEvent::PersonalDataRead {
        document_id: doc.id.clone(),
        user_id: user.id.clone(),
        role: user.role.clone(),
        agency: user.agency_id.clone(),
        region: user.region.clone(),
        field: ID_FIELD.to_string(),
    };
    // The read is on record before the number leaves.
    if let Err(e) = gw
        .store
        .append_log(&xlog::prepare(&event, gw.clock.now()))
        .await
    {
        return Err(lang_unavailable(&e));
    }
    tracing::info!(user_id = %user.id, document_id = %doc.id, "web: ID number shown in full (logged)");
    Ok(Some((doc.id, number)))
}

fn masked(id_number: &str) -> String {
    IdNumber::parse(id_number, "")
        .map(|i| i.masked())
        .unwrap_or_else(|_| "*".repeat(18))
}

fn results(
    lang: Lang,
    session: &Session,
    q: &str,
    found: &[Found],
    revealed: Option<&(String, String)>,
) -> Markup {
    html! {
        p { (lang.t("找到 ", "")) (found.len()) (lang.t(" 份文书", " documents found"))
            @if found.len() as i64 >= LIMIT { (lang.t("（仅显示最新 50 份，请缩小范围）", " (the newest 50 only; narrow the search)")) } }
        table #results {
            thead { tr {
                th { (lang.t("收到时间", "Received")) } th { (lang.t("文书类型", "Message type")) }
                th { (lang.t("文书编号", "Document number")) } th { (lang.t("案号", "Case no.")) }
                th { (lang.t("姓名", "Name")) } th { (lang.t("身份证号", "ID number")) } th { (lang.t("发送机关", "Sender")) }
            } }
            tbody { @for f in found {
                tr {
                    td { (timefmt::beijing_ms(f.received_at_ms)) }
                    td { code { (f.message_type) } }
                    td { (f.document_no) }
                    td { @if let Some(case_id) = &f.case_id {
                        a href={ "/ui/cases/" (case_id) } { (f.case_no.as_deref().unwrap_or(case_id)) }
                    } }
                    td { (f.name.as_deref().unwrap_or("")) }
                    td.id-number {
                        @if let Some(number) = &f.id_number {
                            @match revealed {
                                Some((doc, full)) if *doc == f.document_id => { span.revealed { (full) } }
                                _ => {
                                    span.masked { (masked(number)) } " "
                                    form.inline method="post" action="/ui/search/reveal" {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        input type="hidden" name="q" value=(q);
                                        input type="hidden" name="document_id" value=(f.document_id);
                                        button type="submit" title=(lang.t("显示完整号码（将记入交换日志）", "show the full number (recorded in the exchange log)")) {
                                            (lang.t("显示", "Show"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                    td { (f.sender) }
                }
            } }
        }
    }
}

fn page(
    lang: Lang,
    session: &Session,
    q: &str,
    results: Option<Markup>,
    error: Option<&str>,
    status: u16,
) -> HttpResponse {
    let body = html! {
        h1 { (lang.t("检索", "Search")) }
        form.card method="post" action="/ui/search" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="q" { (lang.t("案号、文书编号、姓名或身份证号", "Case number, document number, name or ID number")) }
            input #q name="q" value=(q) required maxlength="100" autocomplete="off";
            " " button type="submit" { (lang.t("检索", "Search")) }
            p { small { (lang.t("身份证号默认部分隐藏；显示完整号码会记入交换日志。",
                "ID numbers are masked; showing one in full is recorded in the exchange log.")) } }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(r) = results { (r) }
    };
    let mut response = layout(lang, lang.t("检索", "Search"), Some(session), body);
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    response
}
