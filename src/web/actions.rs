//! What a clerk sends from a case page (文书发送): the corrections side's
//! answers — 回执 (`handover.receipt`), 补正/补齐通知
//! (`handover.correction_request`), 报到情况 (`handover.report_status`),
//! 调查评估意见书 (`assessment.opinion`) and 无法评估告知
//! (`assessment.unable`).
//!
//! The page builds the document as canonical corrections JSON (the
//! corrections platform's own dialect), answering the partner's latest
//! document of the case: its sender is the recipient, its `subject` and 案号
//! are copied, routing adds the copies the law requires. The gateway then
//! signs the bytes with the key it holds for the clerk's agency
//! ([`crate::security::agency_keys`]) exactly as a partner system signs a
//! POST ([`crate::partner::Signer`]), and hands the signed request to
//! [`intake::submit`] — verification, validation, the case's state machine,
//! routing, the one commit and the exchange log all run as for any partner.
//! There is no other way in: a refusal is the pipeline's refusal (its problem,
//! in both languages, is shown on the case page), and the log records it.
//!
//! Who may send ([`auth::may_act_for`]): a clerk of the case's corrections
//! agency, or a supervisor of its region. Auditors and admins see no form and
//! get 403. Every form carries the session's CSRF token.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::auth::{self, Session};
use super::pages::{self, Notice};
use super::{message_page, Lang};
use crate::app::Gateway;
use crate::intake::{self, Body, Submission};
use crate::model::MessageType;
use crate::store::{CaseRecord, StoredDocument};
use crate::timefmt;
use crate::violation::{Bilingual, Violation};
use crate::workflow::flows::{CaseState, Side};

/// A document a clerk can write on a case page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 回执: the documents are complete.
    Receipt,
    /// 补正/补齐通知: documents missing or wrong.
    CorrectionRequest,
    /// 报到情况: whether the person reported (or the search for them began).
    ReportStatus,
    /// 调查评估意见书.
    Opinion,
    /// 无法评估告知: the assessment cannot be made, with the reasons.
    Unable,
}

impl Action {
    const ALL: [Action; 5] = [
        Action::Receipt,
        Action::CorrectionRequest,
        Action::ReportStatus,
        Action::Opinion,
        Action::Unable,
    ];

    pub fn message_type(self) -> MessageType {
        match self {
            Action::Receipt => MessageType::HandoverReceipt,
            Action::CorrectionRequest => MessageType::HandoverCorrectionRequest,
            Action::ReportStatus => MessageType::HandoverReportStatus,
            Action::Opinion => MessageType::AssessmentOpinion,
            Action::Unable => MessageType::AssessmentUnable,
        }
    }

    fn parse(slug: &str) -> Option<Action> {
        Self::ALL
            .into_iter()
            .find(|a| a.message_type().as_str() == slug)
    }

    fn title(self, lang: Lang) -> &'static str {
        match self {
            Action::Receipt => lang.t("发送回执", "Send the receipt"),
            Action::CorrectionRequest => {
                lang.t("通知补正/补齐", "Request a correction of the documents")
            }
            Action::ReportStatus => lang.t("告知报到情况", "Report whether the person reported"),
            Action::Opinion => lang.t("提交调查评估意见书", "Send the assessment opinion"),
            Action::Unable => lang.t("告知无法评估", "Notify that no assessment can be made"),
        }
    }
}

/// The actions the case's current state accepts from the corrections side
/// (the flow table decides, `workflow::flows`), in table order.
pub fn offered(case: &CaseRecord) -> Vec<Action> {
    let Some(state) =
        crate::model::Flow::parse(&case.flow).and_then(|flow| CaseState::parse(flow, &case.state))
    else {
        return Vec::new();
    };
    let mut actions = Vec::new();
    for rule in state.accepts() {
        if matches!(rule.by, Side::Corrections | Side::Either) {
            if let Some(a) = Action::ALL
                .into_iter()
                .find(|a| a.message_type() == rule.on)
            {
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
        }
    }
    actions
}

/// The forms of a case page: one per offered action, each with the CSRF token.
/// `kinds` are the document kinds a correction request may ask for (kind,
/// Chinese name); `suggested` are pre-ticked (the completeness check's).
pub fn forms(
    lang: Lang,
    session: &Session,
    case: &CaseRecord,
    actions: &[Action],
    kinds: &[(String, String)],
    suggested: &[String],
) -> Markup {
    html! {
        @for action in actions {
            @let slug = action.message_type().as_str();
            form.card.action method="post" action={ "/ui/cases/" (case.id) "/send/" (slug) } id={ "send-" (slug) } {
                h3 { (action.title(lang)) " " small { code { (slug) } } }
                input type="hidden" name="csrf" value=(session.csrf);
                label for={ (slug) "-no" } { (lang.t("文书编号", "Document number")) }
                input id={ (slug) "-no" } name="document_no" required maxlength="100";
                @match action {
                    Action::Receipt => {
                        p { small { (lang.t("回执确认法律文书齐全；文书不全请改用“通知补正/补齐”。",
                            "A receipt confirms that the documents are complete; if they are not, request a correction instead.")) } }
                    }
                    Action::CorrectionRequest => {
                        fieldset {
                            legend { (lang.t("缺少或需重新提供的文书", "Documents missing or to be sent again")) }
                            @for (kind, name) in kinds {
                                label.check {
                                    input type="checkbox" name="missing" value=(kind) checked[suggested.contains(kind)];
                                    " " (name) " " small { code { (kind) } }
                                }
                            }
                        }
                        label for={ (slug) "-errors" } { (lang.t("有误的字段（JSON 指针，每行一个，如 /subject/residence/address）",
                            "Wrong fields (JSON pointers, one a line, e.g. /subject/residence/address)")) }
                        textarea id={ (slug) "-errors" } name="errors" rows="2" {}
                    }
                    Action::ReportStatus => {
                        label for={ (slug) "-reported" } { (lang.t("是否已报到", "Reported")) }
                        select id={ (slug) "-reported" } name="reported" {
                            option value="true" { (lang.t("已报到", "reported")) }
                            option value="false" { (lang.t("未报到", "did not report")) }
                        }
                        label for={ (slug) "-reported-at" } { (lang.t("报到时间（北京时间）", "Reported at (Beijing time)")) }
                        input id={ (slug) "-reported-at" } name="reported_at" type="datetime-local";
                        label.check {
                            input type="checkbox" name="search_started" value="true";
                            " " (lang.t("未报到：已组织查找", "did not report: a search has begun"))
                        }
                    }
                    Action::Unable => {
                        label for={ (slug) "-reasons" } { (lang.t("无法评估的理由", "Why no assessment can be made")) }
                        textarea id={ (slug) "-reasons" } name="reasons" rows="3" required {}
                    }
                    Action::Opinion => {
                        label for={ (slug) "-conclusion" } { (lang.t("评估结论", "Conclusion")) }
                        select id={ (slug) "-conclusion" } name="conclusion" {
                            option value="suitable" { (lang.t("适宜社区矫正", "suitable for community corrections")) }
                            option value="not_suitable" { (lang.t("不适宜社区矫正", "not suitable")) }
                        }
                        label for={ (slug) "-reasons" } { (lang.t("理由", "Reasons")) }
                        textarea id={ (slug) "-reasons" } name="reasons" rows="3" required {}
                        label for={ (slug) "-investigators" } { (lang.t("调查人员人数", "Investigators")) }
                        input id={ (slug) "-investigators" } name="investigator_count" type="number" min="1" value="2" required;
                    }
                }
                p { button type="submit" { (action.title(lang)) } }
            }
        }
    }
}

/// The fields of an action form (checkboxes repeat `missing`).
#[derive(Debug, Default)]
struct Fields {
    csrf: String,
    document_no: String,
    missing: Vec<String>,
    errors: Vec<String>,
    conclusion: String,
    reasons: String,
    investigator_count: String,
    reported: String,
    reported_at: String,
    search_started: bool,
}

impl Fields {
    fn of(pairs: Vec<(String, String)>) -> Fields {
        let mut f = Fields::default();
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => f.csrf = value,
                "document_no" => f.document_no = value.trim().to_string(),
                "missing" => f.missing.push(value),
                "errors" => f.errors.extend(
                    value
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                ),
                "conclusion" => f.conclusion = value,
                "reasons" => f.reasons = value.trim().to_string(),
                "investigator_count" => f.investigator_count = value.trim().to_string(),
                "reported" => f.reported = value,
                "reported_at" => f.reported_at = value.trim().to_string(),
                "search_started" => f.search_started = value == "true",
                _ => {}
            }
        }
        f
    }
}

/// `POST /ui/cases/{id}/send/{message_type}`.
pub async fn send(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let (case_id, slug) = path.into_inner();
    let (session, scope) = match pages::signed_in(&gw, &req).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let fields = match super::read_form(lang, body).await {
        Ok(pairs) => Fields::of(pairs),
        Err(refusal) => return refusal,
    };
    if !auth::check_csrf(&session, &fields.csrf) {
        return auth::csrf_refused(lang);
    }
    let Some(action) = Action::parse(&slug) else {
        return message_page(lang, 404, "没有这种文书操作", "no such action");
    };
    let case = match gw.store.case(&case_id).await {
        Ok(Some(case)) if scope.allows(&case) => case,
        Ok(_) => return message_page(lang, 404, "未找到该案件", "no such case"),
        Err(e) => return auth::unavailable(lang, &e),
    };
    if !auth::may_act_for(&session.user, &case.corrections_agency) {
        return message_page(
            lang,
            403,
            "只有该社区矫正机构的经办人或其辖区主管可以发送文书",
            "only a clerk of the case's corrections agency, or a supervisor of its region, may send documents",
        );
    }
    let refuse = |status: u16, zh: &str, en: &str| {
        let notice = Notice::refused(status, Bilingual::new(zh, en), Vec::new());
        pages::render_case(&gw, lang, &session, &case, Some(notice))
    };
    let Some(signer) = gw.agency_keys.signer(&case.corrections_agency) else {
        return refuse(
            403,
            "网关未持有该机构的签名密钥（配置 signing_keys），无法代为签发",
            "the gateway holds no signing key for this agency (setting signing_keys), so it cannot sign for it",
        )
        .await;
    };
    let answered = match answered_document(&gw, &case).await {
        Ok(Some(doc)) => doc,
        Ok(None) => {
            return refuse(
                409,
                "案件中没有可答复的对方机关文书",
                "the case holds no document from the other agency to answer",
            )
            .await
        }
        Err(e) => return auth::unavailable(lang, &e),
    };
    let document = match build(&gw, action, &case, &answered, &fields) {
        Ok(document) => document,
        Err(problem) => {
            let notice = Notice::refused(422, problem.message.clone(), vec![problem]);
            return pages::render_case(&gw, lang, &session, &case, Some(notice)).await;
        }
    };
    let bytes = serde_json::to_vec(&document).unwrap_or_default();
    let content_type = "application/json";
    let parts = match signer.sign(
        gw.clock.now().unix_timestamp(),
        "POST",
        "/api/v1/documents",
        Some(content_type),
        Some(&bytes),
    ) {
        Ok(parts) => parts,
        Err(e) => {
            tracing::error!(code = e.code(), "web: signing a clerk's document failed");
            return refuse(
                503,
                "签名失败，请联系管理员",
                "signing failed; ask an administrator",
            )
            .await;
        }
    };
    let submission = Submission {
        parts,
        body: Body::Document(bytes.into()),
        by_user: Some(session.user.id.clone()),
    };
    match intake::submit(&gw, submission).await {
        Ok(Ok(accepted)) => {
            tracing::info!(user_id = %session.user.id, case_id = %case.id, message_type = %action.message_type(), status = accepted.status, "web: document sent");
            HttpResponse::SeeOther()
                .insert_header((
                    "location",
                    format!(
                        "/ui/cases/{}?sent={}",
                        case.id,
                        action.message_type().as_str()
                    ),
                ))
                .finish()
        }
        Ok(Err(rejection)) => {
            tracing::info!(user_id = %session.user.id, case_id = %case.id, status = rejection.status, codes = ?rejection.codes(), "web: document refused");
            let notice = Notice::refused(rejection.status, rejection.title, rejection.problems);
            pages::render_case(&gw, lang, &session, &case, Some(notice)).await
        }
        Err(e) => auth::unavailable(lang, &e.0),
    }
}

/// The document the clerk answers: the newest of the case sent by the other
/// side (not the corrections agency).
async fn answered_document(
    gw: &Gateway,
    case: &CaseRecord,
) -> Result<Option<StoredDocument>, crate::store::StoreError> {
    for (id, _, _) in case.documents.iter().rev() {
        if let Some(doc) = gw.store.document(id).await? {
            if doc.sender != case.corrections_agency {
                return Ok(Some(doc));
            }
        }
    }
    Ok(None)
}

/// The canonical document of an action. Only what the form cannot express as
/// JSON is checked here (a count that is not a number); everything else is
/// the pipeline's to validate.
fn build(
    gw: &Gateway,
    action: Action,
    case: &CaseRecord,
    answered: &StoredDocument,
    f: &Fields,
) -> Result<Value, Violation> {
    let answered_json: Value = serde_json::from_str(&answered.canonical).unwrap_or(Value::Null);
    let body = match action {
        // Whole seconds, like `issued_at`, so the receipt never reads as
        // issued before the documents arrived.
        Action::Receipt => json!({
            "received_at": timefmt::beijing_ms(answered.received_at_ms.div_euclid(1000) * 1000),
        }),
        Action::CorrectionRequest => {
            let mut body = serde_json::Map::new();
            if !f.missing.is_empty() {
                body.insert("missing".into(), json!(f.missing));
            }
            if !f.errors.is_empty() {
                body.insert("errors".into(), json!(f.errors));
            }
            Value::Object(body)
        }
        Action::ReportStatus => match f.reported.as_str() {
            "true" => json!({
                "reported": true,
                "reported_at": beijing_local(&f.reported_at)?,
            }),
            _ => json!({ "reported": false, "search_started": f.search_started }),
        },
        Action::Unable => json!({ "reasons": f.reasons }),
        Action::Opinion => {
            let count: u32 = f.investigator_count.parse().map_err(|_| {
                Violation::new(
                    "wrong_type",
                    "/body/investigator_count",
                    "调查人员人数须为正整数",
                    "the number of investigators must be a positive whole number",
                )
            })?;
            json!({
                "conclusion": f.conclusion,
                "reasons": f.reasons,
                "investigator_count": count,
            })
        }
    };
    let issued_at = gw
        .clock
        .now()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| gw.clock.now());
    let mut doc = serde_json::Map::new();
    doc.insert("message_type".into(), action.message_type().as_str().into());
    doc.insert("document_no".into(), f.document_no.as_str().into());
    if let Some(case_no) = case
        .case_no
        .as_deref()
        .or_else(|| answered_json["case_no"].as_str())
    {
        doc.insert("case_no".into(), case_no.into());
    }
    doc.insert("sender".into(), case.corrections_agency.as_str().into());
    doc.insert("recipients".into(), json!([answered.sender]));
    doc.insert("copies".into(), json!([]));
    doc.insert("issued_at".into(), timefmt::beijing(issued_at).into());
    doc.insert("in_reply_to".into(), answered.id.as_str().into());
    doc.insert("attachments".into(), json!([]));
    doc.insert("subject".into(), answered_json["subject"].clone());
    doc.insert("body".into(), body);
    Ok(Value::Object(doc))
}

/// A `datetime-local` value (`2024-06-07T09:40`, seconds optional) read as
/// Beijing time: `2024-06-07T09:40:00+08:00`.
fn beijing_local(value: &str) -> Result<String, Violation> {
    let wrong = || {
        Violation::new(
            "invalid_format",
            "/body/reported_at",
            "报到时间须为日期和时间，如 2024-06-07 09:40",
            "the reporting time must be a date and time, e.g. 2024-06-07 09:40",
        )
    };
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(value, &format)
        .or_else(|_| time::PrimitiveDateTime::parse(value, &with_seconds))
        .map_err(|_| wrong())?;
    Ok(timefmt::beijing(
        local.assume_offset(time::macros::offset!(+8)),
    ))
}
