//! The clerk and auditor web interface (`/ui`): server-rendered pages (maud),
//! zh-CN by default with an English switch, no JavaScript needed except the
//! auditor's in-browser proof check (`verify.js`).
//!
//! People log in with a password (argon2id) and get a server-side session;
//! partner systems never do — they sign. What a user sees is decided in one
//! place, [`auth::Scope`]: a clerk sees the cases of one agency, a supervisor
//! those of a region, an auditor and an admin all of them (read-only for the
//! auditor). Pages show no personal data beyond what the case view holds
//! (ids, 案号, agencies, states, periods).
//!
//! Every state-changing form carries the session's CSRF token; cookies are
//! `HttpOnly` and `SameSite=Strict`; every page is sent with a strict
//! Content-Security-Policy and `Cache-Control: no-store`.
//!
//! What each role does: a clerk (or a supervisor of the region) sends the
//! corrections side's documents from a case page ([`actions`]) and searches
//! documents by 案号, 文书编号, name or ID number ([`search`]); an auditor
//! browses and verifies the exchange log and exports a case's evidence
//! ([`audit`]); an admin manages web users and sees the agency registry with
//! its certificates ([`admin`]). docs/web.md describes it for users.

pub mod actions;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod mail;
pub mod pages;
pub mod search;
pub mod users;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

/// Registers the pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| async {
            HttpResponse::SeeOther()
                .insert_header(("location", "/ui/"))
                .finish()
        }),
    )
    .service(
        web::scope("/ui")
            .route("/", web::get().to(pages::dashboard))
            .route("/login", web::get().to(auth::login_form))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/cases/{id}", web::get().to(pages::case))
            .route(
                "/cases/{id}/send/{message_type}",
                web::post().to(actions::send),
            )
            .route("/cases/{id}/evidence", web::get().to(audit::evidence))
            .route("/search", web::get().to(search::form))
            .route("/search", web::post().to(search::search))
            .route("/search/reveal", web::post().to(search::reveal))
            .route("/mail", web::get().to(mail::form))
            .route("/mail", web::post().to(mail::save))
            .route("/log", web::get().to(audit::log))
            .route("/log/checkpoints", web::get().to(audit::checkpoints))
            .route("/static/verify.js", web::get().to(audit::script))
            .route("/admin/users", web::get().to(admin::users_page))
            .route("/admin/users", web::post().to(admin::create))
            .route("/admin/users/{id}/{action}", web::post().to(admin::change))
            .route("/admin/agencies", web::get().to(admin::agencies)),
    );
}

/// The fields of a submitted form (`application/x-www-form-urlencoded`),
/// repeated names kept (checkboxes); `None` if the body is not such a form.
pub(crate) fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).ok()
}

/// Largest form body a page posts (a reasons text is at most a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Reads a posted form within [`MAX_FORM_BYTES`]; the refusal page (413,
/// 400), in the user's language, otherwise.
pub(crate) async fn read_form(
    lang: Lang,
    mut payload: web::Payload,
) -> Result<Vec<(String, String)>, HttpResponse> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| message_page(lang, 400, "表单读取失败", "the form could not be read"))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(message_page(
                lang,
                413,
                "表单内容过长（至多 64 KiB）",
                "the form is too large (64 KiB at most)",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    form_pairs(&body)
        .ok_or_else(|| message_page(lang, 400, "表单格式有误", "the form is malformed"))
}

/// The page language: zh-CN unless the user chose English (`?lang=en`, kept in a cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn of(req: &HttpRequest) -> Lang {
        let asked = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("lang="))
            .map(str::to_string)
            .or_else(|| req.cookie("lang").map(|c| c.value().to_string()));
        match asked.as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// Picks the string of this language.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:0;color:#1d2733;background:#f4f6f8}\
header{background:#1f3a5f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}\
header a{color:#fff}header button{color:#fff;background:transparent;border:1px solid #fff;border-radius:.2rem}header .grow{flex:1}main{padding:1rem 1.2rem;max-width:1300px}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #dde3ea;padding:.35rem .5rem;text-align:left;font-size:.92rem}\
th{background:#e9eef3}.overdue{color:#b00020;font-weight:600}.met{color:#216e39}.badge{padding:.05rem .4rem;border-radius:.3rem;background:#e9eef3}\
.badge.overdue{background:#fde7ea}.error{background:#fde7ea;padding:.6rem;border-left:4px solid #b00020}\
form.inline{display:inline}button{cursor:pointer}.card{background:#fff;padding:1rem;margin-bottom:1rem;border:1px solid #dde3ea}\
label{display:block;margin:.5rem 0 .2rem}input{padding:.35rem;width:16rem}\
label.check{display:block;margin:.15rem 0}label.check input{width:auto}textarea{width:32rem;max-width:100%}\
fieldset{border:1px solid #dde3ea;margin:.5rem 0}.sent{background:#e6f4ea;padding:.6rem;border-left:4px solid #216e39}\
form.action{max-width:40rem}header nav a{margin-right:.6rem}td.leaf code{font-size:.78rem;word-break:break-all}\
.result.pass{color:#216e39;font-weight:600}.result.fail{color:#b00020;font-weight:600}form.filters label{display:inline-block;margin:0 .3rem 0 .8rem}\
form.filters input,form.filters select{width:auto}#log-key code{word-break:break-all}td.check{min-width:14rem}td.id-number{white-space:nowrap}";

/// The frame of every page.
pub fn layout(lang: Lang, title: &str, user: Option<&auth::Session>, body: Markup) -> HttpResponse {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("社区矫正文书交换网关", "Corrections exchange gateway")) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { (lang.t("社区矫正文书交换网关", "Corrections exchange gateway")) }
                    @if let Some(s) = user {
                        nav {
                            a href="/ui/" { (lang.t("案件", "Cases")) }
                            @if auth::may_search_people(&s.user) { " " a href="/ui/search" { (lang.t("检索", "Search")) } }
                            @if auth::may_search_people(&s.user) { " " a href="/ui/mail" { (lang.t("邮件通知", "Mail")) } }
                            @if auth::may_audit(&s.user) { " " a href="/ui/log" { (lang.t("交换日志", "Exchange log")) } }
                            @if admin::is_admin(s) {
                                " " a href="/ui/admin/users" { (lang.t("用户管理", "Users")) }
                                " " a href="/ui/admin/agencies" { (lang.t("机构与证书", "Agencies")) }
                            }
                        }
                    }
                    span.grow {}
                    @if let Some(s) = user {
                        span { (s.user.username) " · " (auth::role_label(lang, &s.user.role))
                            @if let Some(a) = &s.user.agency_id { " · " (a) } }
                        form.inline method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (lang.t("退出", "Log out")) }
                        }
                    }
                    a href="?lang=zh" { "中文" } a href="?lang=en" { "English" }
                }
                main { (body) }
            }
        }
    };
    page_response(lang, 200, page)
}

/// An HTML answer with the security headers every page carries.
pub fn page_response(lang: Lang, status: u16, page: Markup) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            // Scripts only from the gateway's own files (the auditor's
            // verify.js, which fetches the public log API): no inline code.
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("cache-control", "no-store"));
    response.cookie(
        actix_web::cookie::Cookie::build("lang", lang_cookie(lang))
            .path("/ui")
            .same_site(actix_web::cookie::SameSite::Strict)
            .http_only(true)
            .finish(),
    );
    response.body(page.into_string())
}

fn lang_cookie(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// A page that says what went wrong, in the user's language.
pub fn message_page(lang: Lang, status: u16, zh: &str, en: &str) -> HttpResponse {
    let body = html! { p.error { (lang.t(zh, en)) } p { a href="/ui/" { (lang.t("返回首页", "Back to the start page")) } } };
    page_response(
        lang,
        status,
        html! { (DOCTYPE) html lang=(lang.code()) { head { meta charset="utf-8"; title { (status) } style { (maud::PreEscaped(STYLE)) } } body { main { (body) } } } },
    )
}
