//! The logged-in user's mail preferences (`/ui/mail`, 邮件通知设置): for
//! each kind of notification, a mail each time, the daily digest only, or
//! nothing; and the digest on or off. Only clerks and supervisors get mail
//! (docs/mail.md); the address is the one an administrator set.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::auth::{self, Session};
use super::{layout, message_page, pages, read_form, Lang};
use crate::app::Gateway;
use crate::notify::{Kind, Mode, Preferences};

fn receives_mail(session: &Session) -> bool {
    auth::may_search_people(&session.user)
}

/// `GET /ui/mail`.
pub async fn form(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, _) = match pages::signed_in(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    if !receives_mail(&session) {
        return not_for_role(lang);
    }
    match gw.store.mail_preferences(&session.user.id).await {
        Ok(stored) => page(
            &gw,
            lang,
            &session,
            &Preferences::from_stored(&stored),
            false,
        ),
        Err(e) => auth::unavailable(lang, &e),
    }
}

/// `POST /ui/mail`: `csrf`, one `<kind>` field per kind (`immediate`,
/// `digest`, `off`) and `digest` (`on` when checked).
pub async fn save(gw: web::Data<Gateway>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, _) = match pages::signed_in(&gw, &req).await {
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
            .map(|(_, v)| v.as_str())
    };
    if !auth::check_csrf(&session, field("csrf").unwrap_or("")) {
        return auth::csrf_refused(lang);
    }
    if !receives_mail(&session) {
        return not_for_role(lang);
    }
    let mut prefs = Preferences::default();
    for kind in Kind::ALL {
        let Some(mode) = field(kind.as_str()).and_then(Mode::parse) else {
            return message_page(
                lang,
                400,
                "通知设置不完整或取值无效，请重新打开本页",
                "a notification setting is missing or invalid; open the page again",
            );
        };
        prefs.modes.insert(kind.as_str(), mode);
    }
    prefs.digest = field(crate::notify::DIGEST) == Some("on");
    if let Err(e) = gw
        .store
        .set_mail_preferences(&session.user.id, &prefs.to_stored())
        .await
    {
        return auth::unavailable(lang, &e);
    }
    tracing::info!(user_id = %session.user.id, "mail preferences changed");
    page(&gw, lang, &session, &prefs, true)
}

fn not_for_role(lang: Lang) -> HttpResponse {
    message_page(
        lang,
        403,
        "邮件通知仅发给经办人和主管",
        "mail notifications are for clerks and supervisors",
    )
}

fn page(
    gw: &Gateway,
    lang: Lang,
    session: &Session,
    prefs: &Preferences,
    saved: bool,
) -> HttpResponse {
    let email = session.user.email.as_deref().filter(|e| !e.is_empty());
    let body = html! {
        h1 { (lang.t("邮件通知设置", "Mail notifications")) }
        @if saved { p.sent role="status" { (lang.t("已保存。", "Saved.")) } }
        @if !gw.settings.mail.enabled() {
            p.error { (lang.t("本网关未配置邮件服务器，暂不发送邮件；设置仍会保存。",
                "This gateway has no mail server configured and sends no mail; your settings are kept.")) }
        }
        p {
            (lang.t("收件地址：", "Address: "))
            @match email {
                Some(e) => code { (e) },
                None => span.overdue { (lang.t("未设置（请联系管理员）", "none set (ask an administrator)")) },
            }
        }
        form.action method="post" action="/ui/mail" {
            input type="hidden" name="csrf" value=(session.csrf);
            @for kind in Kind::ALL {
                @let (zh, en) = kind.label();
                fieldset {
                    legend { (lang.t(zh, en)) }
                    @for (mode, mzh, men) in [
                        (Mode::Immediate, "每次发送邮件", "a mail each time"),
                        (Mode::Digest, "仅列入每日摘要", "in the daily digest only"),
                        (Mode::Off, "不通知", "no notification"),
                    ] {
                        label.check {
                            input type="radio" name=(kind.as_str()) value=(mode.as_str())
                                checked[prefs.mode(kind) == mode];
                            " " (lang.t(mzh, men))
                        }
                    }
                }
            }
            fieldset {
                legend { (lang.t("每日摘要", "Daily digest")) }
                label.check {
                    input type="checkbox" name=(crate::notify::DIGEST) value="on" checked[prefs.digest];
                    " " (lang.t(
                        "每天发送一封摘要：列入摘要的通知、已逾期和即将届满的期限",
                        "one mail a day: the notifications kept for it, overdue deadlines and those due soon"))
                }
            }
            p { button type="submit" { (lang.t("保存", "Save")) } }
        }
        p { (lang.t("邮件只含案号、文书编号、期限和链接，不含当事人姓名或身份证号。",
            "Mail carries case numbers, document ids, periods and links, never a person's name or ID number.")) }
    };
    layout(lang, lang.t("邮件通知", "Mail"), Some(session), body)
}
