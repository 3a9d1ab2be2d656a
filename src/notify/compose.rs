//! The words of each notification: subject and text/plain body, zh-CN first
//! and English after it.
//!
//! What a mail may say is fixed here and nowhere else: 案号 (case number),
//! gateway ids, message types, agency ids, period names, instants and links.
//! Nothing here has access to a name, an ID number or an address of the
//! person a case is about, so no mail can carry one — subjects in
//! particular, which mail servers log and phones show on a locked screen.

use crate::store::{DocumentBrief, OpenDeadline};
use crate::timefmt;

/// A subject and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

const TAG: &str = "【社区矫正网关】";

/// Links into the web interface.
#[derive(Debug, Clone)]
pub struct Links {
    /// Without a trailing slash, e.g. `https://gateway.example`.
    pub base: String,
}

impl Links {
    pub fn case(&self, case_id: &str) -> String {
        format!("{}/ui/cases/{case_id}", self.base)
    }
    pub fn preferences(&self) -> String {
        format!("{}/ui/mail", self.base)
    }
    pub fn home(&self) -> String {
        format!("{}/ui/", self.base)
    }
}

fn case_label(case_no: Option<&str>, case_id: Option<&str>) -> String {
    match (case_no, case_id) {
        (Some(no), _) if !no.is_empty() => no.to_string(),
        (_, Some(id)) => id.to_string(),
        _ => "—".to_string(),
    }
}

fn footer(links: &Links) -> String {
    format!(
        "\n--\n通知设置 / Notification settings: {}\n本邮件由网关自动发送，请勿回复。 This message was sent by the gateway; do not reply.\n",
        links.preferences()
    )
}

fn case_link(links: &Links, case_id: Option<&str>) -> String {
    match case_id {
        Some(id) => links.case(id),
        None => links.home(),
    }
}

/// A new document for the reader's agency (as recipient or copy).
pub fn new_document(
    doc: &DocumentBrief,
    recipients: &[String],
    copies: &[String],
    links: &Links,
) -> Text {
    let case = case_label(doc.case_no.as_deref(), doc.case_id.as_deref());
    let link = case_link(links, doc.case_id.as_deref());
    let subject = format!(
        "{TAG}新文书 New document: {} · 案号 Case {case}",
        doc.message_type
    );
    let body = format!(
        "有新文书发送至本机关（收件或抄送）。\n\
         案号：{case}\n文书类型：{mt}\n网关文书编号：{id}\n发送机关：{sender}\n收件机关：{rcpt}\n抄送机关：{cc}\n查看案件：{link}\n\n\
         A new document was sent to your agency (as recipient or copy).\n\
         Case: {case}\nMessage type: {mt}\nGateway document id: {id}\nSender: {sender}\nRecipients: {rcpt}\nCopies: {cc}\nOpen the case: {link}\n{footer}",
        mt = doc.message_type,
        id = doc.id,
        sender = doc.sender,
        rcpt = list(recipients),
        cc = list(copies),
        footer = footer(links),
    );
    Text { subject, body }
}

fn list(agencies: &[String]) -> String {
    if agencies.is_empty() {
        "—".into()
    } else {
        agencies.join(", ")
    }
}

/// An open deadline is one working day away.
pub fn deadline_soon(d: &OpenDeadline, links: &Links) -> Text {
    let case = case_label(d.case_no.as_deref(), Some(&d.case_id));
    let due = timefmt::beijing_ms(d.due_at_ms);
    let link = links.case(&d.case_id);
    Text {
        subject: format!(
            "{TAG}期限临近 Deadline in one working day: {} · 案号 Case {case}",
            d.step
        ),
        body: format!(
            "以下法定期限将在一个工作日内届满，尚未办结。\n案号：{case}\n期限：{step}\n届满时间（北京时间）：{due}\n查看案件：{link}\n\n\
             This legal period ends within one working day and has not been met.\nCase: {case}\nPeriod: {step}\nDue (Beijing time): {due}\nOpen the case: {link}\n{footer}",
            step = d.step,
            footer = footer(links),
        ),
    }
}

/// A period ran out unanswered (the sweep logged `deadline.missed`).
pub fn overdue(
    case_id: &str,
    case_no: Option<&str>,
    step: &str,
    due_at_ms: i64,
    links: &Links,
) -> Text {
    let case = case_label(case_no, Some(case_id));
    let due = timefmt::beijing_ms(due_at_ms);
    let link = links.case(case_id);
    Text {
        subject: format!("{TAG}已逾期 Overdue: {step} · 案号 Case {case}"),
        body: format!(
            "以下法定期限已届满而未办结。\n案号：{case}\n期限：{step}\n届满时间（北京时间）：{due}\n查看案件：{link}\n\n\
             This legal period ran out unanswered.\nCase: {case}\nPeriod: {step}\nWas due (Beijing time): {due}\nOpen the case: {link}\n{footer}",
            footer = footer(links),
        ),
    }
}

/// A delivery of one of the reader's agency's documents was dead-lettered.
pub fn dead_letter(
    doc: &DocumentBrief,
    delivery_id: &str,
    recipient: &str,
    attempts: u32,
    last_error: &str,
    links: &Links,
) -> Text {
    let case = case_label(doc.case_no.as_deref(), doc.case_id.as_deref());
    let link = case_link(links, doc.case_id.as_deref());
    Text {
        subject: format!("{TAG}投递失败 Delivery failed: {recipient} · 案号 Case {case}"),
        body: format!(
            "本机关发出的文书未能投递，已停止重试，等待人工处理（可重新投递）。\n案号：{case}\n文书类型：{mt}\n网关文书编号：{id}\n投递编号：{delivery_id}\n\
             收件机关：{recipient}\n尝试次数：{attempts}\n最后错误：{last_error}\n查看案件：{link}\n\n\
             A document your agency sent could not be delivered; retries stopped and it waits for a manual retry.\n\
             Case: {case}\nMessage type: {mt}\nGateway document id: {id}\nDelivery id: {delivery_id}\nRecipient: {recipient}\n\
             Attempts: {attempts}\nLast error: {last_error}\nOpen the case: {link}\n{footer}",
            mt = doc.message_type,
            id = doc.id,
            footer = footer(links),
        ),
    }
}

/// One line of a digest: a notification held for it, or an open deadline.
pub struct DigestLine {
    pub text: String,
    pub link: String,
}

/// The daily digest for `date` (Beijing, `YYYY-MM-DD`).
pub fn digest(
    date: &str,
    held: &[DigestLine],
    overdue: &[&OpenDeadline],
    soon: &[&OpenDeadline],
    links: &Links,
) -> Text {
    let mut zh = format!("{date} 每日摘要。\n");
    let mut en = format!("Daily digest of {date}.\n");
    if !held.is_empty() {
        zh.push_str(&format!("\n自上次摘要以来的通知（{} 条）：\n", held.len()));
        en.push_str(&format!(
            "\nNotifications since the last digest ({}):\n",
            held.len()
        ));
        for line in held {
            zh.push_str(&format!("- {}\n  {}\n", line.text, line.link));
        }
        en.push_str("(listed above)\n");
    }
    let deadline_line = |d: &OpenDeadline| {
        format!(
            "- {} · {} · {}\n  {}\n",
            case_label(d.case_no.as_deref(), Some(&d.case_id)),
            d.step,
            timefmt::beijing_ms(d.due_at_ms),
            links.case(&d.case_id)
        )
    };
    if !overdue.is_empty() {
        zh.push_str(&format!("\n已逾期未办结的期限（{} 项）：\n", overdue.len()));
        en.push_str(&format!(
            "\nOverdue, not yet answered ({}):\n",
            overdue.len()
        ));
        for d in overdue {
            zh.push_str(&deadline_line(d));
        }
        en.push_str("(listed above)\n");
    }
    if !soon.is_empty() {
        zh.push_str(&format!("\n即将届满的期限（{} 项）：\n", soon.len()));
        en.push_str(&format!("\nDue soon ({}):\n", soon.len()));
        for d in soon {
            zh.push_str(&deadline_line(d));
        }
        en.push_str("(listed above)\n");
    }
    Text {
        subject: format!("{TAG}每日摘要 Daily digest {date}"),
        body: format!("{zh}\n{en}{}", footer(links)),
    }
}
