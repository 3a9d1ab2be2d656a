//! The clerk and auditor web interface (`/ui`): server-rendered pages (maud),
//! zh-CN by default with an English switch, no JavaScript needed.
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

pub mod auth;
pub mod pages;
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
            .route("/cases/{id}", web::get().to(pages::case)),
    );
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
label{display:block;margin:.5rem 0 .2rem}input{padding:.35rem;width:16rem}";

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
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
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
