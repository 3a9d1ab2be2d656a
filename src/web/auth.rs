//! Logging in and out, sessions, CSRF and who may see what.
//!
//! Passwords are stored as argon2id PHC strings (the `argon2` crate's
//! defaults, OWASP's minimum). A session is a random 256-bit token in an
//! `HttpOnly`, `SameSite=Strict` cookie; the database keeps only its SHA-256.
//! After `login_max_failures` consecutive failures an account is locked for
//! `login_lockout_secs`. The login form itself is protected by a
//! double-submit token (cookie + hidden field), every later form by the
//! session's own CSRF token.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use maud::html;
use rand::RngCore;
use serde::Deserialize;

use super::{layout, message_page, Lang};
use crate::app::Gateway;
use crate::security::digest::sha256_hex;
use crate::store::{CaseRecord, StoreError, UserRecord};
use crate::timefmt::unix_ms;

const SESSION_COOKIE: &str = "cg_session";
const LOGIN_COOKIE: &str = "cg_login";

/// The roles of people (partner systems have none: they sign).
pub const ROLES: [&str; 4] = ["clerk", "supervisor", "auditor", "admin"];

pub fn role_label(lang: Lang, role: &str) -> &'static str {
    match role {
        "clerk" => lang.t("经办人", "clerk"),
        "supervisor" => lang.t("主管", "supervisor"),
        "auditor" => lang.t("审计员", "auditor"),
        "admin" => lang.t("管理员", "admin"),
        _ => "?",
    }
}

/// A logged-in user and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRecord,
    pub csrf: String,
}

/// What a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A clerk: the cases this agency is party to.
    Agency(String),
    /// A supervisor: the cases with a party whose division starts with this prefix.
    Region(String),
    /// Auditors and admins.
    All,
}

impl Scope {
    /// A user without the data their role needs sees nothing rather than everything.
    pub fn of(user: &UserRecord) -> Option<Scope> {
        match user.role.as_str() {
            "clerk" => user.agency_id.clone().map(Scope::Agency),
            "supervisor" => user.region.clone().map(Scope::Region),
            "auditor" | "admin" => Some(Scope::All),
            _ => None,
        }
    }

    pub fn allows(&self, case: &CaseRecord) -> bool {
        self.admits_any(&case.parties)
    }

    /// Whether one of these agencies (a case's or a document's parties) is in scope.
    pub fn admits_any<'a>(&self, agencies: impl IntoIterator<Item = &'a String>) -> bool {
        let mut agencies = agencies.into_iter();
        match self {
            Scope::Agency(agency) => agencies.any(|p| p == agency),
            Scope::Region(prefix) => {
                agencies.any(|p| division_of(p).is_some_and(|d| d.starts_with(prefix.as_str())))
            }
            Scope::All => true,
        }
    }
}

/// Who may write documents for `agency` in the web interface (the gateway
/// signs them with the agency's key): a clerk of that agency, or a supervisor
/// whose region holds it. Auditors read and admins manage users: neither writes.
pub fn may_act_for(user: &UserRecord, agency: &str) -> bool {
    match user.role.as_str() {
        "clerk" => user.agency_id.as_deref() == Some(agency),
        "supervisor" => user.region.as_deref().is_some_and(|prefix| {
            !prefix.is_empty() && division_of(agency).is_some_and(|d| d.starts_with(prefix))
        }),
        _ => false,
    }
}

/// Who may search people by name or ID number (src/web/search.rs): the
/// clerks and supervisors who work their cases. Auditors check the exchange
/// log, admins manage users: neither needs to find a person.
pub fn may_search_people(user: &UserRecord) -> bool {
    matches!(user.role.as_str(), "clerk" | "supervisor")
}

/// Who may browse the exchange log, verify its entries and export a case's
/// evidence in the web interface: auditors.
pub fn may_audit(user: &UserRecord) -> bool {
    user.role == "auditor"
}

/// `court.620102` → `620102`.
fn division_of(agency: &str) -> Option<&str> {
    agency.split('.').nth(1)
}

/// An argon2id PHC string for a new password.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random token, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session of a request, if it has a live one.
pub async fn session(gw: &Gateway, req: &HttpRequest) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = gw
        .store
        .session(
            &sha256_hex(cookie.value().as_bytes()),
            unix_ms(gw.clock.now()),
        )
        .await?;
    Ok(found.map(|(user, csrf)| Session { user, csrf }))
}

/// The page to show when a request has no session: the login form.
pub fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", "/ui/login"))
        .finish()
}

fn cookie(gw: &Gateway, name: &'static str, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/ui")
        .http_only(true)
        .secure(gw.settings.secure_cookies)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

pub async fn login_form(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    login_page(&gw, &req, 200, None)
}

/// The login form. Its double-submit token is kept while the browser has
/// one, so two tabs (or a reload racing a redirect) do not invalidate each other.
fn login_page(gw: &Gateway, req: &HttpRequest, status: u16, error: Option<&str>) -> HttpResponse {
    let lang = Lang::of(req);
    let token = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token);
    let body = html! {
        div.card style="max-width:24rem" {
            h1 { (lang.t("登录", "Log in")) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(token);
                label for="username" { (lang.t("用户名", "User name")) }
                input id="username" name="username" autocomplete="username" required;
                label for="password" { (lang.t("密码", "Password")) }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                p { button type="submit" { (lang.t("登录", "Log in")) } }
            }
        }
    };
    let mut response = layout(lang, lang.t("登录", "Log in"), None, body);
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    let _ = response
        .add_cookie(&cookie(gw, LOGIN_COOKIE, token, 1800))
        .map_err(|e| tracing::warn!(error = %e, "setting the login cookie failed"));
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

pub async fn login(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = form.into_inner();
    let double_submitted = req
        .cookie(LOGIN_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && constant_time_eq(c.value(), &form.csrf));
    if !double_submitted {
        return message_page(
            lang,
            403,
            "表单已过期或来源不明，请重新打开登录页",
            "the form expired or did not come from this site; open the login page again",
        );
    }
    let now_ms = unix_ms(gw.clock.now());
    let bad = lang.t("用户名或密码错误", "wrong user name or password");
    let user = match gw.store.user_by_name(form.username.trim()).await {
        Ok(user) => user,
        Err(e) => return unavailable(lang, &e),
    };
    let Some(user) = user else {
        // Same work as for a real user, so timing does not tell which names exist.
        let _ = password_matches(&form.password, DUMMY_HASH);
        return login_page(&gw, &req, 401, Some(bad));
    };
    if user.locked_until_ms.is_some_and(|until| until > now_ms) {
        return login_page(
            &gw,
            &req,
            429,
            Some(lang.t(
                "登录失败次数过多，账户已暂时锁定，请稍后再试",
                "too many failed logins; the account is locked for a while, try again later",
            )),
        );
    }
    if !password_matches(&form.password, &user.password_hash) {
        let settings = &gw.settings;
        if let Err(e) = gw
            .store
            .login_failed(
                &user.id,
                now_ms,
                i64::from(settings.login_max_failures),
                settings.login_lockout_secs as i64 * 1000,
            )
            .await
        {
            return unavailable(lang, &e);
        }
        tracing::info!(user_id = %user.id, "failed login");
        return login_page(&gw, &req, 401, Some(bad));
    }
    let token = random_token();
    let csrf = random_token();
    let lifetime_secs = gw.settings.session_hours as i64 * 3600;
    if let Err(e) = gw
        .store
        .login_succeeded(
            &user.id,
            &sha256_hex(token.as_bytes()),
            &csrf,
            now_ms,
            now_ms + lifetime_secs * 1000,
        )
        .await
    {
        return unavailable(lang, &e);
    }
    tracing::info!(user_id = %user.id, "login");
    let mut expired_login = cookie(&gw, LOGIN_COOKIE, String::new(), 0);
    expired_login.make_removal();
    HttpResponse::SeeOther()
        .insert_header(("location", "/ui/"))
        .cookie(cookie(&gw, SESSION_COOKIE, token, lifetime_secs))
        .cookie(expired_login)
        .finish()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    match session(&gw, &req).await {
        Ok(Some(s)) if check_csrf(&s, &form.csrf) => {
            if let Some(c) = req.cookie(SESSION_COOKIE) {
                if let Err(e) = gw
                    .store
                    .end_session(&sha256_hex(c.value().as_bytes()))
                    .await
                {
                    return unavailable(lang, &e);
                }
            }
            let mut gone = cookie(&gw, SESSION_COOKIE, String::new(), 0);
            gone.make_removal();
            HttpResponse::SeeOther()
                .insert_header(("location", "/ui/login"))
                .cookie(gone)
                .finish()
        }
        Ok(Some(_)) => csrf_refused(lang),
        Ok(None) => to_login(),
        Err(e) => unavailable(lang, &e),
    }
}

/// Whether a submitted form carries the session's CSRF token.
pub fn check_csrf(session: &Session, submitted: &str) -> bool {
    !submitted.is_empty() && constant_time_eq(&session.csrf, submitted)
}

pub fn csrf_refused(lang: Lang) -> HttpResponse {
    message_page(
        lang,
        403,
        "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试",
        "the form expired or did not come from this site (CSRF check failed); reload and try again",
    )
}

pub fn unavailable(lang: Lang, e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "web: storage failed");
    let mut r = message_page(
        lang,
        503,
        "存储暂不可用，请稍后重试",
        "storage is unavailable; try again later",
    );
    r.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("5"),
    );
    r
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// A valid argon2id hash of a random password nobody knows, verified for
/// unknown user names so that they cost the same time as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1n7V2yYqj2l1hHhQm0c3m3y3v5mQm3dQm3y3v5mQm3c";
