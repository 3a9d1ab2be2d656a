//! E-mail notifications against a real SMTP server process (aiosmtpd, run by
//! tests/support/smtp_server.py with STARTTLS and AUTH): who gets which mail,
//! what it says and never says, preferences, each notification sent once
//! (run again, two gateways on one database, a restart), retries while the
//! server is down, and a wrong password reported without losing the mail.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::forms;
use common::smtp::{Received, SmtpServer, SMTP_PASSWORD, SMTP_USER};
use common::{court_notice, native, post_court_notice, Adjust, TestDatabase, TestGateway};
use corrections_gateway::clock::Clock;
use corrections_gateway::config::{MailTls, Settings};
use corrections_gateway::formats::Dialect;
use corrections_gateway::notify;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::store::MailRow;
use corrections_gateway::web::users::{add, NewUser};
use serde_json::{json, Value};
use time::macros::datetime;

const BASE_URL: &str = "https://gateway.example";
/// Names and ID numbers of the people in the fixtures this file submits.
const PERSONAL: [&str; 4] = [
    "阿依古丽·买买提",
    "620102199003070026",
    "𠮷建国",
    "620102198512020014",
];

/// Mail through `smtp` with `password`, polled every 100 ms, quick retries.
fn mail_to(smtp: &SmtpServer, password: &str) -> Adjust {
    let port = smtp.port;
    let ca = smtp.ca_cert.clone();
    let password = password.to_string();
    Arc::new(move |s: &mut Settings| {
        s.mail.host = "localhost".into();
        s.mail.port = port;
        s.mail.tls = MailTls::Starttls;
        s.mail.username = SMTP_USER.into();
        s.mail.password = password.clone();
        s.mail.from = "社区矫正网关 <gateway@sfj.example.gov.cn>".into();
        s.mail.ca_cert = ca.clone();
        s.mail.base_url = BASE_URL.into();
        s.mail.poll_ms = 100;
        s.mail.backoff_base_ms = 100;
        s.mail.backoff_max_ms = 400;
        s.mail.timeout_ms = 5_000;
        s.mail.max_attempts = 1_000;
    })
}

/// A web user with an e-mail address (`<username>@example.gov.cn` unless
/// `email` says otherwise) and the preferences given (kind → mode).
async fn person(
    gw: &TestGateway,
    username: &str,
    role: &str,
    agency: Option<&str>,
    region: Option<&str>,
    email: Option<&str>,
    prefs: &[(&str, &str)],
) -> String {
    let address = (!username.ends_with(".noemail"))
        .then(|| email.map_or_else(|| format!("{username}@example.gov.cn"), str::to_string));
    add(
        &gw.running.gateway,
        NewUser {
            username: username.into(),
            password: common::PASSWORD.into(),
            role: role.into(),
            agency: agency.map(str::to_string),
            region: region.map(str::to_string),
            email: address.clone(),
        },
    )
    .await
    .expect("user created");
    let user = gw.store().user_by_name(username).await.unwrap().unwrap();
    let prefs: Vec<(String, String)> = prefs
        .iter()
        .map(|(k, m)| (k.to_string(), m.to_string()))
        .collect();
    gw.store()
        .set_mail_preferences(&user.id, &prefs)
        .await
        .unwrap();
    address.unwrap_or_default()
}

/// Recipient address → how many messages it got.
fn per_recipient(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in received {
        for to in &m.rcpt_tos {
            *counts.entry(to.clone()).or_insert(0) += 1;
        }
    }
    counts
}

fn assert_no_personal_data(received: &[Received]) {
    for m in received {
        for p in PERSONAL {
            assert!(
                !m.subject.contains(p),
                "subject names a person: {}",
                m.subject
            );
            assert!(!m.body.contains(p), "body names a person: {}", m.body);
            assert!(!m.raw.contains(p), "message names a person: {}", m.raw);
        }
    }
}

/// Waits until the outbox has no message left to send (pending).
async fn outbox_settled(gw: &TestGateway) -> Vec<MailRow> {
    for _ in 0..200 {
        let all = gw.store().mail_in(None).await.unwrap();
        if all.iter().all(|m| m.state != "pending") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "mail still pending: {:?}",
        gw.store().mail_in(Some("pending")).await.unwrap()
    );
}

/// Waits until `check` holds for the outbox.
async fn outbox_until(
    gw: &TestGateway,
    what: &str,
    check: impl Fn(&[MailRow]) -> bool,
) -> Vec<MailRow> {
    for _ in 0..300 {
        let all = gw.store().mail_in(None).await.unwrap();
        if check(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:?}", gw.store().mail_in(None).await.unwrap());
}

#[actix_web::test]
async fn a_new_document_is_mailed_to_the_clerks_of_its_recipient_and_copied_agencies_only() {
    let smtp = SmtpServer::start();
    let gw = TestGateway::start_configured(mail_to(&smtp, SMTP_PASSWORD), Clock::system()).await;
    let no_digest = [("digest", "off")];
    let clerk = person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &no_digest,
    )
    .await;
    let quiet = person(
        &gw,
        "clerk.corrections.quiet",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("document", "off"), ("digest", "off")],
    )
    .await;
    let held = person(
        &gw,
        "clerk.corrections.digest",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("document", "digest"), ("digest", "off")],
    )
    .await;
    person(
        &gw,
        "clerk.corrections.noemail",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &no_digest,
    )
    .await;
    let copied = person(
        &gw,
        "clerk.procuratorate",
        "clerk",
        Some("procuratorate.620102"),
        None,
        None,
        &no_digest,
    )
    .await;
    let sender = person(
        &gw,
        "clerk.court",
        "clerk",
        Some("court.620102"),
        None,
        None,
        &no_digest,
    )
    .await;
    let other = person(
        &gw,
        "clerk.prison",
        "clerk",
        Some("prison.620000.3"),
        None,
        None,
        &no_digest,
    )
    .await;
    let supervisor = person(
        &gw,
        "supervisor.62",
        "supervisor",
        None,
        Some("6201"),
        None,
        &no_digest,
    )
    .await;
    let elsewhere = person(
        &gw,
        "supervisor.11",
        "supervisor",
        None,
        Some("11"),
        None,
        &no_digest,
    )
    .await;
    let auditor = person(&gw, "auditor", "auditor", None, None, None, &no_digest).await;

    let receipt = post_court_notice(&gw, &court_notice(1)).await;
    let case_id = receipt["case_id"].as_str().unwrap().to_string();
    let document_id = receipt["document_id"].as_str().unwrap().to_string();
    let case = gw.store().case(&case_id).await.unwrap().unwrap();
    let case_no = case.case_no.clone().unwrap();
    let routed = gw.store().document(&document_id).await.unwrap().unwrap();
    let copies: Vec<&String> = routed
        .parties
        .iter()
        .filter(|(_, r)| r == "copy")
        .map(|(a, _)| a)
        .collect();
    assert!(
        copies.iter().any(|a| *a == "procuratorate.620102"),
        "{:?}",
        routed.parties
    );

    let received = smtp.wait_for(3, Duration::from_secs(30)).await;
    outbox_settled(&gw).await;
    // Run the notifier again, twice: nothing new is queued or sent.
    let mailer = notify::Mailer::from_settings(&gw.running.gateway.settings.mail).unwrap();
    for _ in 0..2 {
        notify::round(&gw.running.gateway, &mailer).await.unwrap();
    }
    let received_again = smtp.received();
    assert_eq!(received_again.len(), received.len());
    let counts = per_recipient(&received_again);
    assert_eq!(
        counts,
        BTreeMap::from([
            (clerk.clone(), 1),
            (copied.clone(), 1),
            (supervisor.clone(), 1)
        ]),
        "the recipient's and the copied agency's clerks and the region's supervisor, once each"
    );
    for nobody in [&quiet, &held, &sender, &other, &elsewhere, &auditor] {
        assert!(!counts.contains_key(nobody.as_str()), "{nobody} got mail");
    }
    // The one who wants documents in the digest only has it held for that.
    let rows = gw.store().mail_in(None).await.unwrap();
    let held_rows: Vec<&MailRow> = rows.iter().filter(|m| m.address == held).collect();
    assert_eq!(held_rows.len(), 1);
    assert_eq!(held_rows[0].state, "held");

    assert_no_personal_data(&received_again);
    for m in &received_again {
        assert!(m.tls, "sent after STARTTLS");
        assert_eq!(m.authenticated_as.as_deref(), Some(SMTP_USER));
        assert_eq!(m.mail_from, "gateway@sfj.example.gov.cn");
        assert!(
            m.subject.contains("新文书") && m.subject.contains("New document"),
            "{}",
            m.subject
        );
        assert!(m.subject.contains(&case_no), "{}", m.subject);
        assert!(m.body.contains(&case_no), "{}", m.body);
        assert!(m.body.contains(&document_id), "{}", m.body);
        assert!(
            m.body.contains(&format!("{BASE_URL}/ui/cases/{case_id}")),
            "{}",
            m.body
        );
        assert!(
            m.body.contains(&format!("{BASE_URL}/ui/mail")),
            "{}",
            m.body
        );
        let row = rows.iter().find(|r| r.address == m.rcpt_tos[0]).unwrap();
        assert_eq!(m.message_id, format!("<{}@sfj.example.gov.cn>", row.id));
        assert_eq!(row.state, "sent");
        assert_eq!(row.attempts, 1);
    }
}

#[actix_web::test]
async fn two_gateways_on_one_database_send_each_notification_once() {
    let smtp = SmtpServer::start();
    let adjust = mail_to(&smtp, SMTP_PASSWORD);
    let gw = TestGateway::start_configured(adjust.clone(), Clock::system()).await;
    let no_digest = [("digest", "off")];
    let mut people = Vec::new();
    for n in 0..3 {
        people.push(
            person(
                &gw,
                &format!("clerk{n}.corrections"),
                "clerk",
                Some("corrections.620102"),
                None,
                None,
                &no_digest,
            )
            .await,
        );
    }
    // Several instances share a database on PostgreSQL; on SQLite (one
    // process owns the file) the same race is run by concurrent rounds.
    let second = if TestDatabase::is_postgres() {
        Some(gw.another(&*adjust).await)
    } else {
        None
    };
    for n in 0..4 {
        post_court_notice(&gw, &court_notice(100 + n)).await;
    }
    let mailer = notify::Mailer::from_settings(&gw.running.gateway.settings.mail).unwrap();
    let gateway = &gw.running.gateway;
    let (a, b, c) = tokio::join!(
        notify::round(gateway, &mailer),
        notify::round(gateway, &mailer),
        notify::round(second.as_ref().map_or(gateway, |s| &s.gateway), &mailer),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    smtp.wait_for(12, Duration::from_secs(30)).await;
    outbox_settled(&gw).await;
    // A few more polls of both instances find nothing more to send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 12, "4 documents × 3 clerks");
    let counts = per_recipient(&received);
    for p in &people {
        assert_eq!(counts[p], 4, "{p}: {counts:?}");
    }
    let mut ids: Vec<&str> = received.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "no Message-ID twice");
    if let Some(second) = second {
        second.handle.stop(true).await;
    }
}

#[actix_web::test]
async fn mail_queued_while_the_smtp_server_is_down_is_sent_once_when_it_is_back() {
    let mut smtp = SmtpServer::start();
    smtp.stop();
    let mut gw =
        TestGateway::start_configured(mail_to(&smtp, SMTP_PASSWORD), Clock::system()).await;
    let clerk = person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("digest", "off")],
    )
    .await;
    post_court_notice(&gw, &court_notice(7)).await;
    let rows = outbox_until(&gw, "a failed attempt", |rows| {
        rows.len() == 1
            && rows[0].attempts >= 2
            && rows[0].last_error.as_deref() == Some("smtp_unavailable")
    })
    .await;
    assert_eq!(rows[0].state, "pending", "kept for the next attempt");
    // The gateway restarts meanwhile; the server comes back.
    gw.restart().await;
    smtp.resume();
    smtp.wait_for(1, Duration::from_secs(30)).await;
    let rows = outbox_settled(&gw).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(per_recipient(&received), BTreeMap::from([(clerk, 1)]));
    assert_eq!(rows[0].state, "sent");
    assert!(rows[0].attempts >= 3, "{rows:?}");
}

#[actix_web::test]
async fn a_wrong_smtp_password_is_reported_and_the_mail_kept_until_it_is_fixed() {
    let smtp = SmtpServer::start();
    let mut gw =
        TestGateway::start_configured(mail_to(&smtp, "not the password"), Clock::system()).await;
    let clerk = person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("digest", "off")],
    )
    .await;
    post_court_notice(&gw, &court_notice(8)).await;
    let rows = outbox_until(&gw, "a refused login", |rows| {
        rows.len() == 1
            && rows[0].attempts >= 2
            && rows[0].last_error.as_deref() == Some("smtp_auth")
    })
    .await;
    assert_eq!(rows[0].state, "pending", "not given up, not lost");
    // (The count is taken when an attempt is claimed: the second may be under way.)
    assert!(smtp.auth_failures() >= 1);
    assert!(smtp.received().is_empty());
    // The operator fixes the password and restarts.
    gw.adjust = mail_to(&smtp, SMTP_PASSWORD);
    gw.restart().await;
    smtp.wait_for(1, Duration::from_secs(30)).await;
    outbox_settled(&gw).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        per_recipient(&smtp.received()),
        BTreeMap::from([(clerk, 1)])
    );
}

#[actix_web::test]
async fn a_deadline_is_reminded_one_working_day_ahead_then_reported_overdue_and_digested() {
    let smtp = SmtpServer::start();
    let adjust = mail_to(&smtp, SMTP_PASSWORD);
    // Monday 2024-09-02, 16:00 Beijing: the corrections agency asks the
    // court for an arrest decision (48 hours from the court's ack).
    let mut gw =
        TestGateway::start_configured(adjust, Clock::starting_at(datetime!(2024-09-02 16:00 +8)))
            .await;
    let court_clerk = person(
        &gw,
        "clerk.court",
        "clerk",
        Some("court.620102"),
        None,
        None,
        &[],
    )
    .await;
    let corrections_clerk = person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("deadline_soon", "digest")],
    )
    .await;
    let prison_clerk = person(
        &gw,
        "clerk.prison",
        "clerk",
        Some("prison.620000.3"),
        None,
        None,
        &[],
    )
    .await;
    let corrections = gw.partner("corrections.620102", Algorithm::EcdsaP256Sha256);
    let (bytes, content_type) = native(
        &gw,
        Dialect::Corrections,
        "revocation.arrest_request",
        json!({"in_reply_to": null, "issued_at": "2024-09-02T15:00:00+08:00"}),
    );
    let request: Value = common::accepted(&corrections, &bytes, &content_type).await;
    let case_id = request["case_id"].as_str().unwrap().to_string();
    gw.partner("court.620102", Algorithm::EcdsaP256Sha256)
        .pull_and_ack()
        .await
        .unwrap();
    let gateway = gw.running.gateway.clone();
    // Due Wednesday 16:00: not one working day away on Monday.
    assert_eq!(notify::remind_deadlines(&gateway).await.unwrap(), 0);
    smtp.wait_for(1, Duration::from_secs(30)).await;
    outbox_settled(&gw).await;
    let documents: Vec<Received> = smtp
        .received()
        .into_iter()
        .filter(|m| m.subject.contains("New document"))
        .collect();
    assert_eq!(
        per_recipient(&documents),
        BTreeMap::from([(court_clerk.clone(), 1)]),
        "the new document, to the court"
    );

    // Tuesday 10:00: one working day left.
    restart_at(&mut gw, datetime!(2024-09-03 10:00 +8)).await;
    let rows = outbox_until(&gw, "reminders queued", |rows| {
        rows.iter().filter(|m| m.kind == "deadline_soon").count() == 2
    })
    .await;
    let reminders: Vec<&MailRow> = rows.iter().filter(|m| m.kind == "deadline_soon").collect();
    let held = reminders
        .iter()
        .find(|m| m.address == corrections_clerk)
        .unwrap();
    assert!(
        matches!(held.state.as_str(), "held" | "digested"),
        "{held:?}"
    );
    assert!(reminders.iter().all(|m| m.address != prison_clerk));
    assert_eq!(
        notify::remind_deadlines(&gw.running.gateway).await.unwrap(),
        0,
        "once per deadline"
    );
    outbox_settled(&gw).await;
    let tuesday = smtp.received();
    let reminder = tuesday
        .iter()
        .find(|m| m.subject.contains("Deadline in one working day"))
        .unwrap();
    assert_eq!(reminder.rcpt_tos, vec![court_clerk.clone()]);
    assert!(
        reminder.subject.contains("revocation.arrest_decision"),
        "{}",
        reminder.subject
    );
    assert!(
        reminder.body.contains("2024-09-04T16:00:"),
        "{}",
        reminder.body
    );
    assert!(reminder
        .body
        .contains(&format!("{BASE_URL}/ui/cases/{case_id}")));
    // Tuesday's digest (from 08:00) lists the reminder the corrections clerk held.
    let digest = tuesday
        .iter()
        .find(|m| m.rcpt_tos == vec![corrections_clerk.clone()] && m.subject.contains("2024-09-03"))
        .expect("the corrections clerk's digest");
    assert!(digest.subject.contains("每日摘要") && digest.subject.contains("Daily digest"));
    assert!(
        digest.body.contains("revocation.arrest_decision"),
        "{}",
        digest.body
    );

    // Wednesday 18:00: the sweep finds the decision overdue.
    restart_at(&mut gw, datetime!(2024-09-04 18:00 +8)).await;
    outbox_until(&gw, "overdue mail queued", |rows| {
        rows.iter().filter(|m| m.kind == "overdue").count() == 2
    })
    .await;
    outbox_settled(&gw).await;
    let all = smtp.received();
    let overdue: Vec<&Received> = all
        .iter()
        .filter(|m| m.subject.contains("Overdue"))
        .collect();
    let mut to: Vec<&str> = overdue.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    to.sort();
    let mut expected = vec![court_clerk.as_str(), corrections_clerk.as_str()];
    expected.sort();
    assert_eq!(to, expected);
    assert!(overdue[0]
        .body
        .contains(&format!("{BASE_URL}/ui/cases/{case_id}")));
    // One digest per person per day, whatever the number of rounds.
    let mailer = notify::Mailer::from_settings(&gw.running.gateway.settings.mail).unwrap();
    notify::round(&gw.running.gateway, &mailer).await.unwrap();
    outbox_settled(&gw).await;
    let digests = smtp
        .received()
        .into_iter()
        .filter(|m| m.subject.contains("Daily digest"))
        .map(|m| (m.rcpt_tos[0].clone(), m.subject.clone()))
        .collect::<Vec<_>>();
    let mut unique = digests.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), digests.len(), "{digests:?}");
    assert!(
        digests
            .iter()
            .any(|(to, s)| *to == court_clerk && s.contains("2024-09-04")),
        "{digests:?}"
    );
    assert!(digests.iter().all(|(to, _)| *to != prison_clerk));
    assert_no_personal_data(&smtp.received());
}

/// Restarts the gateway with its clock at `at`, once the old instance and
/// its background jobs have stopped: an old instance still sending while the
/// new one runs days later would see its leases as long expired.
async fn restart_at(gw: &mut TestGateway, at: time::OffsetDateTime) {
    gw.running.handle.stop(true).await;
    (&mut gw.running.task).await.unwrap().unwrap();
    gw.clock = Clock::starting_at(at);
    gw.restart().await;
}

#[actix_web::test]
async fn a_clerk_sets_mail_preferences_in_the_web_interface_with_csrf() {
    let gw = TestGateway::start().await;
    person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[],
    )
    .await;
    person(&gw, "auditor", "auditor", None, None, None, &[]).await;
    let browser = forms::browser();
    let url = |path: &str| format!("{}{path}", gw.base_url);
    let (status, _) = forms::login(&gw, &browser, "clerk.corrections", common::PASSWORD).await;
    assert_eq!(status, 200);

    let page = browser.get(url("/ui/mail")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("邮件通知设置"), "{page}");
    assert!(page.contains("clerk.corrections@example.gov.cn"));
    assert!(
        page.contains("本网关未配置邮件服务器"),
        "mail is off by default"
    );
    let csrf = forms::hidden_csrf(&page);
    let choices = [
        ("document", "digest"),
        ("deadline_soon", "immediate"),
        ("overdue", "immediate"),
        ("dead_letter", "off"),
    ];

    // Without the session's token: refused, nothing stored.
    let mut forged: Vec<(&str, &str)> = choices.to_vec();
    forged.push((
        "csrf",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    let refused = browser
        .post(url("/ui/mail"))
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let user = gw
        .store()
        .user_by_name("clerk.corrections")
        .await
        .unwrap()
        .unwrap();
    assert!(gw
        .store()
        .mail_preferences(&user.id)
        .await
        .unwrap()
        .is_empty());

    // A bad value: a clear bilingual refusal, nothing stored.
    let mut bad: Vec<(&str, &str)> = vec![("csrf", csrf.as_str()), ("document", "sometimes")];
    bad.extend_from_slice(&choices[1..]);
    let refused = browser
        .post(url("/ui/mail"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("通知设置不完整或取值无效"));
    assert!(gw
        .store()
        .mail_preferences(&user.id)
        .await
        .unwrap()
        .is_empty());

    // The real form: stored, and shown checked (the digest box unticked: off).
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(&choices);
    let saved = browser
        .post(url("/ui/mail"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let saved = saved.text().await.unwrap();
    assert!(saved.contains("已保存"), "{saved}");
    let stored = gw.store().mail_preferences(&user.id).await.unwrap();
    assert_eq!(stored["document"], "digest");
    assert_eq!(stored["dead_letter"], "off");
    assert_eq!(stored["digest"], "off");
    assert!(
        saved.contains(r#"name="document" value="digest" checked"#),
        "{saved}"
    );

    // An auditor gets no mail and has no such page.
    let auditor = forms::browser();
    let (status, _) = forms::login(&gw, &auditor, "auditor", common::PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(
        auditor.get(url("/ui/mail")).send().await.unwrap().status(),
        403
    );
}

#[actix_web::test]
async fn a_dead_lettered_delivery_is_mailed_to_the_senders_clerks() {
    let smtp = SmtpServer::start();
    // The corrections agency is pushed to, at a port where nothing listens.
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/inbox", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/agencies.demo.toml"),
    )
    .unwrap();
    let mut registry: toml::Table = demo.parse().unwrap();
    for entry in registry["agency"].as_array_mut().unwrap() {
        let entry = entry.as_table_mut().unwrap();
        if entry["id"].as_str() == Some("corrections.620102") {
            entry.insert("delivery".into(), "push".into());
            entry.insert("endpoint".into(), unreachable.clone().into());
        }
    }
    std::fs::write(
        dir.path().join("agencies.toml"),
        toml::to_string(&registry).unwrap(),
    )
    .unwrap();
    let mail = mail_to(&smtp, SMTP_PASSWORD);
    let adjust: Adjust = Arc::new(move |s: &mut Settings| {
        mail(s);
        common::receiver::fast(s);
    });
    let gw = TestGateway::start_configured_in(dir, adjust, Clock::system()).await;
    let court = person(
        &gw,
        "clerk.court",
        "clerk",
        Some("court.620102"),
        None,
        None,
        &[("digest", "off")],
    )
    .await;
    let corrections = person(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
        None,
        None,
        &[("document", "off"), ("digest", "off")],
    )
    .await;
    let receipt = post_court_notice(&gw, &court_notice(9)).await;
    let document_id = receipt["document_id"].as_str().unwrap().to_string();
    let rows = outbox_until(&gw, "the dead letter's mail", |rows| {
        rows.iter().any(|m| m.kind == "dead_letter")
    })
    .await;
    let dead: Vec<&MailRow> = rows.iter().filter(|m| m.kind == "dead_letter").collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].address, court);
    smtp.wait_for(1, Duration::from_secs(30)).await;
    outbox_settled(&gw).await;
    let received: Vec<Received> = smtp
        .received()
        .into_iter()
        .filter(|m| m.subject.contains("Delivery failed"))
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].rcpt_tos, vec![court]);
    assert!(
        received[0].subject.contains("corrections.620102"),
        "{}",
        received[0].subject
    );
    assert!(received[0].body.contains(&document_id));
    assert!(!per_recipient(&smtp.received()).contains_key(&corrections));
    assert_no_personal_data(&smtp.received());
}
