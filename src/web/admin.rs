//! The admin's pages (系统管理): the agency registry with each agency's
//! signer certificates as the trust store holds them (fingerprint, validity,
//! revocation), and web users — list, create, reset a password, unlock,
//! disable and enable again.
//!
//! Admins only ([`is_admin`]): every other role gets 403 on every route
//! here. Every form carries the session's CSRF token. Every change is
//! written to the exchange log (`user.changed`) in the same transaction as
//! the change itself, with ids, role and scope only — never a user name, an
//! e-mail address or a password. Passwords an admin sets are generated here
//! and shown once; the database keeps only their argon2id hash. Accounts are
//! disabled, never deleted: log entries and documents refer to them.
//!
//! The registry and the trust store are files (`DIR/agencies.toml`, the
//! trust roots): this view shows them, docs/operations.md says how to change them.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::auth::{self, hash_password, random_token, role_label, Session, ROLES};
use super::users::{self, NewUser};
use super::{layout, message_page, pages, read_form, Lang};
use crate::app::Gateway;
use crate::store::{UserChange, UserListing};
use crate::timefmt::{self, unix_ms};
use crate::xlog::{self, LogEvent};

/// Who may manage users and see the registry's certificates.
pub fn is_admin(session: &Session) -> bool {
    session.user.role == "admin"
}

async fn admin(gw: &Gateway, req: &HttpRequest) -> Result<Session, HttpResponse> {
    let lang = Lang::of(req);
    let (session, _) = pages::signed_in(gw, req).await?;
    if !is_admin(&session) {
        return Err(message_page(
            lang,
            403,
            "仅管理员可以使用系统管理功能",
            "only admins may use the administration pages",
        ));
    }
    Ok(session)
}

/// An admin's posted form: the admin's session and the form's fields, once
/// the role and the form's CSRF token are checked.
async fn admin_form(
    gw: &Gateway,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Session, Vec<(String, String)>), HttpResponse> {
    let lang = Lang::of(req);
    let session = admin(gw, req).await?;
    let form = read_form(lang, payload).await?;
    if !auth::check_csrf(&session, &field(&form, "csrf").unwrap_or_default()) {
        return Err(auth::csrf_refused(lang));
    }
    Ok((session, form))
}

/// `GET /ui/admin/agencies`: the registry and the trust store's certificates.
pub async fn agencies(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let session = match admin(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let now = gw.clock.now().unix_timestamp();
    let trusted = gw.trust.agencies();
    let unregistered: Vec<&String> = trusted
        .iter()
        .filter(|a| gw.registry.get(a).is_none())
        .collect();
    let body = html! {
        h1 { (lang.t("机构名录与证书", "Agency registry and certificates")) }
        p { (lang.t(
            "机构名录（agencies.toml）与信任库中的签名证书；修改请编辑这些文件（见运维文档），保存后自动重新加载。",
            "The agency registry (agencies.toml) and the signer certificates of the trust store; change them by editing those files (see the operations guide): they are reloaded when saved.")) }
        @for agency in gw.registry.iter() {
            @let id = agency.id.as_str();
            div.card {
                h2 { (agency.name) " " code { (id) } }
                p {
                    (lang.t("文书格式：", "Dialect: ")) code { (agency.dialect.as_str()) } " · "
                    (lang.t("投递方式：", "Delivery: "))
                    @match agency.delivery {
                        crate::registry::DeliveryMode::Push => { (lang.t("推送", "push")) " → " code { (agency.endpoint.as_deref().unwrap_or("-")) } }
                        crate::registry::DeliveryMode::Pull => { (lang.t("拉取（信箱）", "pull (mailbox)")) }
                    }
                    @if !trusted.iter().any(|t| t == id) {
                        " · " span.overdue { (lang.t("信任库中无该机关的证书", "no certificates in the trust store")) }
                    }
                }
                (certificate_table(&gw, lang, id, now))
            }
        }
        @if !unregistered.is_empty() {
            div.card {
                h2 { (lang.t("信任库中有、机构名录中没有的机关", "In the trust store but not in the registry")) }
                @for id in &unregistered { (certificate_table(&gw, lang, id, now)) }
            }
        }
    };
    layout(
        lang,
        lang.t("机构名录与证书", "Agencies and certificates"),
        Some(&session),
        body,
    )
}

fn certificate_table(gw: &Gateway, lang: Lang, agency: &str, now: i64) -> Markup {
    let certificates = gw.trust.certificates(agency, now);
    html! {
        @if certificates.is_empty() {
            p { (lang.t("无签名证书", "no signer certificates")) }
        } @else {
            table.certificates data-agency=(agency) {
                thead { tr {
                    th { (lang.t("算法", "Algorithm")) }
                    th { (lang.t("指纹（keyid，SHA-256）", "Fingerprint (keyid, SHA-256)")) }
                    th { (lang.t("主题", "Subject")) }
                    th { (lang.t("有效期至", "Valid until")) }
                    th { (lang.t("状态", "Standing")) }
                } }
                tbody {
                    @for c in &certificates {
                        tr {
                            td { code { (c.algorithm.as_str()) } }
                            td.leaf { code { (c.fingerprint) } }
                            td { (c.subject) }
                            td { (timefmt::beijing_ms(c.not_after * 1000)) }
                            td class=(if c.standing == "valid" { "met" } else { "overdue" }) {
                                (standing_label(lang, c.standing))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn standing_label(lang: Lang, standing: &str) -> String {
    match standing {
        "valid" => lang.t("有效", "valid").to_string(),
        "certificate_revoked" => lang.t("已吊销", "revoked").to_string(),
        "certificate_expired" => lang.t("已过期", "expired").to_string(),
        "certificate_not_yet_valid" => lang.t("尚未生效", "not yet valid").to_string(),
        "certificate_untrusted" => lang
            .t(
                "不受信任（非本机关 CA 签发）",
                "untrusted (not issued by the agency's CA)",
            )
            .to_string(),
        "certificate_agency_mismatch" => lang
            .t("证书所属机关不符", "issued to another agency")
            .to_string(),
        other => other.to_string(),
    }
}

/// What the users page says above the list.
enum Notice {
    Done {
        zh: String,
        en: String,
    },
    /// A password to hand to the user, shown this once.
    Password {
        username: String,
        password: String,
        created: bool,
    },
    Refused {
        zh: String,
        en: String,
    },
}

/// `GET /ui/admin/users`.
pub async fn users_page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    match admin(&gw, &req).await {
        Ok(session) => render_users(&gw, lang, &session, 200, None).await,
        Err(answer) => answer,
    }
}

async fn render_users(
    gw: &Gateway,
    lang: Lang,
    session: &Session,
    status: u16,
    notice: Option<Notice>,
) -> HttpResponse {
    let users = match gw.store.users().await {
        Ok(users) => users,
        Err(e) => return auth::unavailable(lang, &e),
    };
    let now_ms = unix_ms(gw.clock.now());
    let body = html! {
        h1 { (lang.t("用户管理", "Users")) }
        @match &notice {
            Some(Notice::Done { zh, en }) => p.sent role="status" { (lang.t(zh, en)) },
            Some(Notice::Password { username, password, created }) => p.sent role="status" {
                @if *created { (lang.t("已创建用户 ", "Created user ")) } @else { (lang.t("已重置用户 ", "Reset the password of ")) }
                strong { (username) }
                (lang.t("。初始密码（仅显示这一次，请当面或经安全渠道交给本人）：", ". Password (shown this once; hand it over in person or by a safe channel): "))
                code.password { (password) }
            },
            Some(Notice::Refused { zh, en }) => p.error role="alert" { (lang.t(zh, en)) },
            None => {},
        }
        table.users {
            thead { tr {
                th { (lang.t("用户名", "User name")) } th { (lang.t("角色", "Role")) }
                th { (lang.t("机关 / 辖区", "Agency / region")) } th { (lang.t("电子邮箱", "E-mail")) }
                th { (lang.t("状态", "Status")) } th { (lang.t("创建时间", "Created")) } th { (lang.t("操作", "Actions")) }
            } }
            tbody {
                @for listing in &users {
                    @let u = &listing.user;
                    tr data-user=(u.username) {
                        td { (u.username) }
                        td { (role_label(lang, &u.role)) }
                        td { (u.agency_id.as_deref().or(u.region.as_deref()).unwrap_or("")) }
                        td { (u.email.as_deref().unwrap_or("")) }
                        td { (status_label(lang, listing, now_ms)) }
                        td { (timefmt::beijing_ms(listing.created_at_ms)) }
                        td {
                            @if listing.disabled_at_ms.is_none() {
                                (action_form(lang, session, &u.id, "password", lang.t("重置密码", "Reset password")))
                                @if u.locked_until_ms.is_some_and(|t| t > now_ms) || u.failed_logins > 0 {
                                    (action_form(lang, session, &u.id, "unlock", lang.t("解锁", "Unlock")))
                                }
                                @if u.id != session.user.id {
                                    (action_form(lang, session, &u.id, "disable", lang.t("停用", "Disable")))
                                }
                            } @else {
                                (action_form(lang, session, &u.id, "enable", lang.t("启用", "Enable")))
                            }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { (lang.t("新建用户", "New user")) }
            form.action method="post" action="/ui/admin/users" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="username" { (lang.t("用户名（字母、数字、. - _）", "User name (letters, digits, . - _)")) }
                input id="username" name="username" required;
                label for="role" { (lang.t("角色", "Role")) }
                select id="role" name="role" {
                    @for role in ROLES { option value=(role) { (role_label(lang, role)) } }
                }
                label for="agency" { (lang.t("所属机关（经办人）", "Agency (clerks)")) }
                select id="agency" name="agency" {
                    option value="" { "—" }
                    @for a in gw.registry.iter() { option value=(a.id.as_str()) { (a.id.as_str()) " " (a.name) } }
                }
                label for="region" { (lang.t("辖区（主管，行政区划代码前缀，如 62）", "Region (supervisors: division prefix, e.g. 62)")) }
                input id="region" name="region";
                label for="email" { (lang.t("电子邮箱（可选）", "E-mail (optional)")) }
                input id="email" name="email" type="email";
                p { (lang.t("初始密码由系统生成，仅显示一次。", "The password is generated and shown once.")) }
                p { button type="submit" { (lang.t("创建", "Create")) } }
            }
        }
    };
    let mut response = layout(lang, lang.t("用户管理", "Users"), Some(session), body);
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    response
}

fn action_form(lang: Lang, session: &Session, user_id: &str, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/admin/users/" (user_id) "/" (action) } {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" name="do" value=(action) title=(lang.t(label, label)) { (label) }
        }
        " "
    }
}

fn status_label(lang: Lang, listing: &UserListing, now_ms: i64) -> Markup {
    let u = &listing.user;
    html! {
        @if listing.disabled_at_ms.is_some() {
            span.badge.overdue { (lang.t("已停用", "disabled")) }
        } @else if u.locked_until_ms.is_some_and(|t| t > now_ms) {
            span.badge.overdue { (lang.t("已锁定", "locked")) }
        } @else {
            span.badge { (lang.t("正常", "active")) }
        }
    }
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A password to hand over: 20 random hex characters (80 bits).
fn generated_password() -> String {
    random_token()[..20].to_string()
}

/// `POST /ui/admin/users`: creates a user with a generated password.
pub async fn create(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, form) = match admin_form(&gw, &req, payload).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let role = field(&form, "role").unwrap_or_default();
    let password = generated_password();
    let new = NewUser {
        username: field(&form, "username").unwrap_or_default(),
        password: password.clone(),
        // Only the scope the role has: a clerk's agency, a supervisor's region.
        agency: field(&form, "agency").filter(|_| role == "clerk"),
        region: field(&form, "region").filter(|_| role == "supervisor"),
        email: field(&form, "email"),
        role,
    };
    let record = match users::record(&gw, new) {
        Ok(record) => record,
        Err(e) => {
            let (zh, en) = e.bilingual();
            return render_users(&gw, lang, &session, 422, Some(Notice::Refused { zh, en })).await;
        }
    };
    let now = gw.clock.now();
    let leaf = xlog::prepare(
        &LogEvent::UserChanged {
            change: "created".into(),
            user_id: record.id.clone(),
            role: record.role.clone(),
            agency: record.agency_id.clone(),
            region: record.region.clone(),
            by_user: session.user.id.clone(),
        },
        now,
    );
    match gw
        .store
        .administer_user(&UserChange::Create(&record), unix_ms(now), &leaf)
        .await
    {
        Ok(true) => {
            tracing::info!(user_id = %record.id, by_user = %session.user.id, "admin: user created");
            let notice = Notice::Password {
                username: record.username.clone(),
                password,
                created: true,
            };
            render_users(&gw, lang, &session, 200, Some(notice)).await
        }
        Ok(false) => {
            let (zh, en) = users::UserError::Taken(record.username.clone()).bilingual();
            render_users(&gw, lang, &session, 409, Some(Notice::Refused { zh, en })).await
        }
        Err(e) => auth::unavailable(lang, &e),
    }
}

/// `POST /ui/admin/users/{id}/{action}`: `password` (a generated one,
/// shown once), `unlock`, `disable` or `enable`.
pub async fn change(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, _) = match admin_form(&gw, &req, payload).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let (user_id, action) = path.into_inner();
    let target = match gw.store.user_by_id(&user_id).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            return render_users(
                &gw,
                lang,
                &session,
                404,
                Some(Notice::Refused {
                    zh: "没有该用户".into(),
                    en: "no such user".into(),
                }),
            )
            .await
        }
        Err(e) => return auth::unavailable(lang, &e),
    };
    let user = &target.user;
    let password = generated_password();
    let hash = match action.as_str() {
        "password" => match hash_password(&password) {
            Ok(hash) => hash,
            Err(e) => {
                tracing::error!(error = %e, "admin: hashing a password failed");
                return message_page(
                    lang,
                    500,
                    "操作失败，请稍后重试",
                    "the change failed; try again later",
                );
            }
        },
        _ => String::new(),
    };
    let (change, code, done): (UserChange, &str, (&str, &str)) = match action.as_str() {
        "password" => (
            UserChange::SetPassword {
                user_id: &user.id,
                hash: &hash,
            },
            "password_reset",
            ("", ""),
        ),
        "unlock" => (
            UserChange::Unlock { user_id: &user.id },
            "unlocked",
            ("已解锁用户 ", "Unlocked "),
        ),
        "disable" if user.id == session.user.id => {
            return render_users(
                &gw,
                lang,
                &session,
                409,
                Some(Notice::Refused {
                    zh: "不能停用自己的账户".into(),
                    en: "you cannot disable your own account".into(),
                }),
            )
            .await
        }
        "disable" => (
            UserChange::Disable { user_id: &user.id },
            "disabled",
            ("已停用用户 ", "Disabled "),
        ),
        "enable" => (
            UserChange::Enable { user_id: &user.id },
            "enabled",
            ("已启用用户 ", "Enabled "),
        ),
        _ => {
            return message_page(lang, 404, "没有该操作", "no such action");
        }
    };
    let now = gw.clock.now();
    let leaf = xlog::prepare(
        &LogEvent::UserChanged {
            change: code.into(),
            user_id: user.id.clone(),
            role: user.role.clone(),
            agency: user.agency_id.clone(),
            region: user.region.clone(),
            by_user: session.user.id.clone(),
        },
        now,
    );
    match gw.store.administer_user(&change, unix_ms(now), &leaf).await {
        Ok(true) => {
            tracing::info!(user_id = %user.id, by_user = %session.user.id, change = code, "admin: user changed");
            let notice = if code == "password_reset" {
                Notice::Password {
                    username: user.username.clone(),
                    password,
                    created: false,
                }
            } else {
                Notice::Done {
                    zh: format!("{}{}", done.0, user.username),
                    en: format!("{}{}", done.1, user.username),
                }
            };
            render_users(&gw, lang, &session, 200, Some(notice)).await
        }
        Ok(false) => {
            render_users(
                &gw,
                lang,
                &session,
                409,
                Some(Notice::Refused {
                    zh: "该用户的状态已改变，未作修改".into(),
                    en: "the user's state had changed; nothing was done".into(),
                }),
            )
            .await
        }
        Err(e) => auth::unavailable(lang, &e),
    }
}
