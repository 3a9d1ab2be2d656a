//! The auditor's pages (审计): the exchange log with filters (event kind,
//! agency, date range) and paging, the checkpoint history, an inclusion
//! check of any entry done in the auditor's browser (`verify.js`: it
//! recomputes the leaf hash from the leaf bytes and folds the audit path up to
//! the signed checkpoint's root — no verdict of the gateway is trusted), and
//! a case's evidence bundle (`xlog::evidence`, checked offline by
//! `corrections-gateway log verify FILE`).
//!
//! Reading is logged like any read: each page of entries shown is a
//! `log.read` entry (reader `web`, the user's id), each bundle an
//! `evidence.exported` entry, written before the page or file leaves.
//! Auditors only ([`auth::may_audit`]).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use maud::{html, Markup};
use time::Duration;

use super::auth::{self, Session};
use super::{form_pairs, layout, message_page, pages, Lang};
use crate::app::Gateway;
use crate::model::AgencyId;
use crate::store::{LogEntry, LogFilter};
use crate::timefmt::{self, unix_ms, BEIJING};
use crate::xlog::{self, LogEvent};

/// Entries per page.
const PAGE: usize = 50;

async fn auditor(gw: &Gateway, req: &HttpRequest) -> Result<Session, HttpResponse> {
    let lang = Lang::of(req);
    let (session, _) = pages::signed_in(gw, req).await?;
    if !auth::may_audit(&session.user) {
        return Err(message_page(
            lang,
            403,
            "仅审计员可以查看交换日志",
            "only auditors may browse the exchange log",
        ));
    }
    Ok(session)
}

/// `GET /ui/static/verify.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(include_str!("verify.js"))
}

/// The filters of the log page, as typed (kept in the form) and as parsed.
#[derive(Default)]
struct Filters {
    event: String,
    agency: String,
    from: String,
    to: String,
    before: Option<u64>,
}

impl Filters {
    /// Parses the query; a bad value is named in both languages.
    fn parse(query: &str) -> Result<Filters, (String, String)> {
        let pairs = form_pairs(query.as_bytes()).ok_or_else(|| {
            (
                "查询参数格式有误".to_string(),
                "the query is malformed".to_string(),
            )
        })?;
        let mut f = Filters::default();
        for (name, value) in pairs {
            let value = value.trim().to_string();
            match name.as_str() {
                "event" => f.event = value,
                "agency" => f.agency = value,
                "from" => f.from = value,
                "to" => f.to = value,
                "before" if !value.is_empty() => {
                    f.before = Some(value.parse().map_err(|_| {
                        (
                            "before 须为日志序号".to_string(),
                            "before must be a log index".to_string(),
                        )
                    })?)
                }
                _ => {}
            }
        }
        if !f.event.is_empty() && !xlog::EVENT_KINDS.contains(&f.event.as_str()) {
            return Err(("未知的事件类型".into(), "unknown event kind".into()));
        }
        if !f.agency.is_empty() && AgencyId::parse(&f.agency, "/agency").is_err() {
            return Err((
                "机关编号格式有误（如 court.620102）".into(),
                "the agency id is not valid (e.g. court.620102)".into(),
            ));
        }
        for (value, zh, en) in [(&f.from, "起始日期", "from"), (&f.to, "截止日期", "to")] {
            if !value.is_empty() && day_start_ms(value).is_none() {
                return Err((
                    format!("{zh}须为 YYYY-MM-DD 格式的日期"),
                    format!("`{en}` must be a date, YYYY-MM-DD"),
                ));
            }
        }
        Ok(f)
    }

    /// The same filters as a query string, for paging links.
    fn query(&self, before: Option<u64>) -> String {
        let mut pairs = vec![
            ("event", self.event.clone()),
            ("agency", self.agency.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
        ];
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// 00:00 Beijing time of a `YYYY-MM-DD` day, in Unix ms.
fn day_start_ms(day: &str) -> Option<i64> {
    let date = crate::model::date::parse_date(day, "").ok()?;
    Some(unix_ms(date.midnight().assume_offset(BEIJING)))
}

/// `GET /ui/log?event=&agency=&from=&to=&before=`.
pub async fn log(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let session = match auditor(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let filters = match Filters::parse(req.query_string()) {
        Ok(f) => f,
        Err((zh, en)) => {
            let error = match lang {
                Lang::Zh => zh,
                Lang::En => en,
            };
            return log_page(
                &gw,
                lang,
                &session,
                &Filters::default(),
                &[],
                false,
                Some(&error),
                400,
            );
        }
    };
    let filter = LogFilter {
        event: Some(filters.event.as_str()).filter(|e| !e.is_empty()),
        value: Some(filters.agency.as_str()).filter(|a| !a.is_empty()),
        from_ms: day_start_ms(&filters.from),
        to_ms: day_start_ms(&filters.to)
            .map(|ms| ms + Duration::days(1).whole_milliseconds() as i64),
        before: filters.before,
        limit: PAGE as i64 + 1,
        ..LogFilter::default()
    };
    let mut rows = match gw.store.log_entries_filtered(&filter).await {
        Ok(rows) => rows,
        Err(e) => return auth::unavailable(lang, &e),
    };
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    if let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) {
        let event = LogEvent::LogRead {
            reader: "web".into(),
            start: oldest.0.index.max(0) as u64,
            end: newest.0.index.max(0) as u64 + 1,
            user_id: Some(session.user.id.clone()),
        };
        if let Err(e) = gw
            .store
            .append_log(&xlog::prepare(&event, gw.clock.now()))
            .await
        {
            return auth::unavailable(lang, &e);
        }
    }
    log_page(&gw, lang, &session, &filters, &rows, more, None, 200)
}

#[allow(clippy::too_many_arguments)]
fn log_page(
    gw: &Gateway,
    lang: Lang,
    session: &Session,
    f: &Filters,
    rows: &[(LogEntry, i64)],
    more: bool,
    error: Option<&str>,
    status: u16,
) -> HttpResponse {
    let vkey = gw.log_key.verifier_key();
    let body = html! {
        h1 { (lang.t("交换日志", "Exchange log")) }
        p { a href="/ui/log/checkpoints" { (lang.t("检查点历史", "Checkpoint history")) } }
        form.card.filters method="get" action="/ui/log" {
            label for="event" { (lang.t("事件类型", "Event kind")) }
            select #event name="event" {
                option value="" { (lang.t("全部", "all")) }
                @for kind in xlog::EVENT_KINDS { option value=(kind) selected[f.event == *kind] { (kind) } }
            }
            label for="agency" { (lang.t("机关", "Agency")) }
            input #agency name="agency" value=(f.agency) placeholder="court.620102";
            label for="from" { (lang.t("起始日期（北京时间）", "From (Beijing date)")) }
            input #from name="from" type="date" value=(f.from);
            label for="to" { (lang.t("截止日期（含）", "To (inclusive)")) }
            input #to name="to" type="date" value=(f.to);
            p { button type="submit" { (lang.t("筛选", "Filter")) } }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        div #log-key data-vkey=(vkey) {
            p { small { (lang.t("日志公钥（请与您持有的 log.pub 核对）：", "Log key (compare it with the log.pub you hold): ")) code { (vkey) } } }
            p { small { (lang.t("验证所用检查点：", "Checkpoint used: ")) span #checkpoint-used { "—" } } }
        }
        table #entries {
            thead { tr {
                th { (lang.t("序号", "Index")) } th { (lang.t("时间", "Time")) } th { (lang.t("事件", "Event")) }
                th { (lang.t("记录（规范 JSON）", "Entry (canonical JSON)")) } th { (lang.t("包含性验证", "Inclusion")) }
            } }
            tbody { @for (entry, at) in rows { (entry_row(lang, entry, *at)) } }
        }
        p {
            @if f.before.is_some() { a href={ "/ui/log?" (f.query(None)) } { (lang.t("« 最新", "« newest")) } " " }
            @if more { @if let Some((oldest, _)) = rows.last() {
                a #older href={ "/ui/log?" (f.query(Some(oldest.index.max(0) as u64))) } { (lang.t("更早 »", "older »")) }
            } }
        }
        script src="/ui/static/verify.js" {}
    };
    let mut response = layout(
        lang,
        lang.t("交换日志", "Exchange log"),
        Some(session),
        body,
    );
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    response
}

fn entry_row(lang: Lang, entry: &LogEntry, at_ms: i64) -> Markup {
    let text = String::from_utf8_lossy(&entry.leaf);
    let event = serde_json::from_slice::<serde_json::Value>(&entry.leaf)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_string))
        .unwrap_or_default();
    html! {
        tr data-index=(entry.index) data-leaf=(B64.encode(&entry.leaf)) {
            td { (entry.index) }
            td { (timefmt::beijing_ms(at_ms)) }
            td { code { (event) } }
            td.leaf { code { (text) } }
            td.check {
                button.verify type="button" { (lang.t("验证", "Verify")) }
                " " span.result {}
            }
        }
    }
}

/// `GET /ui/log/checkpoints?before=N`: the signed checkpoints, newest first.
pub async fn checkpoints(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let session = match auditor(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let before = form_pairs(req.query_string().as_bytes())
        .unwrap_or_default()
        .into_iter()
        .find(|(n, _)| n == "before")
        .map(|(_, v)| v.parse::<u64>());
    let before = match before {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(_)) => {
            return message_page(lang, 400, "before 须为树大小", "before must be a tree size")
        }
    };
    let page = match gw.store.checkpoints_before(before, PAGE as i64 + 1).await {
        Ok(page) => page,
        Err(e) => return auth::unavailable(lang, &e),
    };
    let more = page.len() > PAGE;
    let page = &page[..page.len().min(PAGE)];
    let body = html! {
        h1 { (lang.t("检查点历史", "Checkpoint history")) }
        p { a href="/ui/log" { "← " (lang.t("交换日志", "Exchange log")) } }
        p { small { (lang.t("每个检查点都由日志密钥签名（C2SP signed-note）；相邻检查点之间的一致性可用 corrections-gateway log verify 离线核对。",
            "Each checkpoint is signed with the log key (C2SP signed note); `corrections-gateway log verify` checks the consistency between successive ones offline.")) } }
        table #checkpoints {
            thead { tr { th { (lang.t("树大小", "Tree size")) } th { (lang.t("发布时间", "Published")) } th { (lang.t("根哈希", "Root hash")) } th { (lang.t("签名检查点", "Signed note")) } } }
            tbody { @for cp in page {
                @let root = xlog::note::Checkpoint::parse(&cp.note).map(|c| hex::encode(c.root)).unwrap_or_default();
                tr { td { (cp.tree_size) } td { (timefmt::beijing_ms(cp.published_at_ms)) } td { code { (root) } }
                     td { details { summary { (lang.t("显示", "show")) } pre { (cp.note) } } } }
            } }
        }
        @if more { @if let Some(last) = page.last() {
            p { a href={ "/ui/log/checkpoints?before=" (last.tree_size) } { (lang.t("更早 »", "older »")) } }
        } }
    };
    layout(
        lang,
        lang.t("检查点历史", "Checkpoint history"),
        Some(&session),
        body,
    )
}

/// `GET /ui/cases/{id}/evidence`: the case's evidence bundle, as a download.
pub async fn evidence(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let session = match auditor(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let case = match gw.store.case(&id).await {
        Ok(Some(case)) => case,
        Ok(None) => return message_page(lang, 404, "未找到该案件", "no such case"),
        Err(e) => return auth::unavailable(lang, &e),
    };
    // The export is on record, and inside the checkpoint the bundle carries.
    let event = LogEvent::EvidenceExported {
        case_id: case.id.clone(),
        user_id: session.user.id.clone(),
        documents: case.documents.iter().map(|(d, _, _)| d.clone()).collect(),
    };
    if let Err(e) = gw
        .store
        .append_log(&xlog::prepare(&event, gw.clock.now()))
        .await
    {
        return auth::unavailable(lang, &e);
    }
    let checkpoint = match xlog::checkpoints::publish(&gw.store, &gw.log_key).await {
        Ok(cp) => cp,
        Err(e) => {
            tracing::error!(error = %e, "web: publishing a checkpoint for evidence failed");
            return message_page(
                lang,
                503,
                "暂时无法签发检查点，请稍后重试",
                "no checkpoint can be signed now; try again later",
            );
        }
    };
    let certificate = gw
        .identity
        .certificate
        .to_pem()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_default();
    let bundle = match xlog::evidence::build(
        &gw.store,
        &gw.trust,
        &gw.log_key.verifier_key(),
        &certificate,
        &case,
        &checkpoint,
        timefmt::beijing(gw.clock.now()),
    )
    .await
    {
        Ok(bundle) => bundle,
        Err(e) => return auth::unavailable(lang, &e),
    };
    tracing::info!(user_id = %session.user.id, case_id = %case.id, "web: evidence bundle exported (logged)");
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"evidence-{}.json\"", case.id),
        ))
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(serde_json::to_vec_pretty(&bundle).unwrap_or_default())
}
