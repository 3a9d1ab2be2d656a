//! The web interface over real HTTP: logging in (and failing, and being
//! locked out), the dashboard and a case page scoped to the clerk's agency,
//! CSRF on every form, the language switch and the security headers; a
//! clerk's documents sent through intake from the case page; the search with
//! masked ID numbers and logged reveals; the auditor's log pages and a case's
//! evidence bundle verified offline. (tests/browser.rs walks the same in Chromium.)

mod common;

use common::forms::{browser, fetch, hidden_csrf, login, post_form};
use common::{add_user, add_web_users, court_notice, post_court_notice, TestGateway, PASSWORD};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::web::users::{add, NewUser};

#[actix_web::test]
async fn a_clerk_logs_in_sees_the_agencys_cases_and_nothing_else() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let case_id = post_court_notice(&gw, &court_notice(1)).await["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Not logged in: every page leads to the login form.
    let anonymous = browser();
    let page = anonymous
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.url().path(), "/ui/login");
    let headers = page.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");

    let clerk = browser();
    let (status, page) = login(&gw, &clerk, "clerk.corrections", "wrong password!!").await;
    assert_eq!(status, 401);
    assert!(page.contains("用户名或密码错误"), "{page}");
    let (status, page) = login(&gw, &clerk, "clerk.corrections", PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("/ui/cases/{case_id}")),
        "the dashboard lists the case: {page}"
    );
    assert!(page.contains("交付接收"));

    let case_page = clerk
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(case_page.status(), 200);
    let case_page = case_page.text().await.unwrap();
    assert!(
        case_page.contains("handover.receipt") && case_page.contains("期限"),
        "{case_page}"
    );

    // English on request, kept for the next page.
    let english = clerk
        .get(format!("{}/ui/?lang=en", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("Cases") && english.contains("Handover"),
        "{english}"
    );
    let still = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(still.contains("Next deadline"));

    // Another agency's clerk cannot open the case by URL, nor see it listed.
    let other = browser();
    assert_eq!(login(&gw, &other, "clerk.prison", PASSWORD).await.0, 200);
    let refused = other
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let dashboard = other
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dashboard.contains(&case_id));

    // The auditor sees every case.
    let auditor = browser();
    let (_, page) = login(&gw, &auditor, "auditor", PASSWORD).await;
    assert!(page.contains(&format!("/ui/cases/{case_id}")));

    // Logging out needs the session's CSRF token; afterwards the session is gone.
    let page = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_csrf(&page);
    let forged = clerk
        .post(format!("{}/ui/logout", gw.base_url))
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let out = clerk
        .post(format!("{}/ui/logout", gw.base_url))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.url().path(), "/ui/login");
    let after = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(after.url().path(), "/ui/login");
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_and_forms_need_their_token() {
    let gw = TestGateway::start().await;
    add_user(&gw, "clerk.court", "clerk", Some("court.620102")).await;
    let client = browser();
    for _ in 0..5 {
        assert_eq!(
            login(&gw, &client, "clerk.court", "not the password")
                .await
                .0,
            401
        );
    }
    let (status, page) = login(&gw, &client, "clerk.court", PASSWORD).await;
    assert_eq!(status, 429, "locked even with the right password");
    assert!(page.contains("锁定"), "{page}");

    // An unknown user name gets the same answer as a wrong password.
    let (status, page) = login(&gw, &client, "nobody", PASSWORD).await;
    assert_eq!(status, 401);
    assert!(page.contains("用户名或密码错误"));

    // A login post without the form's cookie (another site's form) is refused.
    let bare = reqwest::Client::new()
        .post(format!("{}/ui/login", gw.base_url))
        .form(&[
            ("username", "clerk.court"),
            ("password", PASSWORD),
            ("csrf", &"a".repeat(64)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);

    // Weak passwords and unknown agencies are refused when users are created.
    let weak = add(
        &gw.running.gateway,
        NewUser {
            username: "clerk.two".into(),
            password: "short".into(),
            role: "clerk".into(),
            agency: Some("court.620102".into()),
            region: None,
            email: None,
        },
    )
    .await;
    assert!(weak.unwrap_err().to_string().contains("at least 12"));
    let unknown = add(
        &gw.running.gateway,
        NewUser {
            username: "clerk.three".into(),
            password: PASSWORD.into(),
            role: "clerk".into(),
            agency: Some("court.999999".into()),
            region: None,
            email: None,
        },
    )
    .await;
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("not in the registry"));
}

/// Posts an action form of a case page with the page's CSRF token; returns
/// the status and page after redirects.
async fn send(
    gw: &TestGateway,
    client: &reqwest::Client,
    case_id: &str,
    message_type: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let page = format!("/ui/cases/{case_id}");
    let action = format!("{page}/send/{message_type}");
    post_form(gw, client, &page, &action, fields).await
}

#[actix_web::test]
async fn a_clerk_sends_the_corrections_documents_through_the_same_pipeline() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    let notice = post_court_notice(&gw, &court_notice(1)).await;
    let case_id = notice["case_id"].as_str().unwrap().to_string();
    let notice_id = notice["document_id"].as_str().unwrap().to_string();

    // The corrections clerk gets the forms the state accepts; the notice
    // carries no legal documents, so the correction request has them ticked.
    let clerk = browser();
    assert_eq!(
        login(&gw, &clerk, "clerk.corrections", PASSWORD).await.0,
        200
    );
    let page = clerk
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/send/handover.receipt"), "{page}");
    assert!(page.contains("/send/handover.correction_request"));
    assert!(!page.contains("/send/assessment.opinion"));
    assert!(page.contains(r#"value="judgment" checked"#), "{page}");

    // The auditor and the court's clerk see the case but no form, and a
    // forged post is refused.
    for (name, refused) in [("auditor", 403), ("clerk.court", 403)] {
        let other = browser();
        assert_eq!(login(&gw, &other, name, PASSWORD).await.0, 200);
        let page = other
            .get(format!("{}/ui/cases/{case_id}", gw.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("/send/"), "{name}: {page}");
        let (status, page) = send(
            &gw,
            &other,
            &case_id,
            "handover.receipt",
            &[("document_no", "城矫接〔2026〕1号")],
        )
        .await;
        assert_eq!(status, refused, "{name}: {page}");
    }
    // A post without the session's token is refused.
    let forged = clerk
        .post(format!(
            "{}/ui/cases/{case_id}/send/handover.receipt",
            gw.base_url
        ))
        .form(&[("csrf", "0".repeat(64)), ("document_no", "x".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Bad input: the pipeline's problem, in both languages; nothing written
    // but the refusal's log entry.
    let documents = gw.count("documents").await;
    let (status, page) = send(
        &gw,
        &clerk,
        &case_id,
        "handover.correction_request",
        &[("document_no", "城矫补〔2026〕1号")],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("nothing_to_correct"), "{page}");
    assert_eq!(gw.count("documents").await, documents);
    assert!(gw
        .leaves()
        .await
        .last()
        .unwrap()
        .contains("submission.rejected"));

    // A crafted link cannot make the page claim a receipt was sent.
    let (_, page) = fetch(
        &gw,
        &clerk,
        format!("/ui/cases/{case_id}?sent=handover.receipt"),
    )
    .await;
    assert!(!page.contains("已发送并被网关受理"), "{page}");

    // The receipt: signed with the agency's key, accepted, in the timeline.
    let (status, page) = send(
        &gw,
        &clerk,
        &case_id,
        "handover.receipt",
        &[("document_no", "城矫接〔2026〕1号")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("已发送并被网关受理"), "{page}");
    let timeline = &page[page.find("id=\"timeline\"").unwrap()..];
    assert!(timeline.contains("handover.receipt"), "{timeline}");
    assert!(
        !page.contains("/send/handover.receipt"),
        "no second receipt offered"
    );
    let leaf = gw.newest_leaf("document.accepted").await;
    assert!(
        leaf.contains("\"message_type\":\"handover.receipt\"")
            && leaf.contains("\"sender\":\"corrections.620102\"")
            && leaf.contains("\"by_user\":")
            && leaf.contains("\"case_state\":\"received\""),
        "{leaf}"
    );
    assert!(!leaf.contains("clerk.corrections"), "a user id, not a name");
    // The court reads it through the API like any document, answering its notice.
    let receipt_id = leaf.split("\"document_id\":\"").nth(1).unwrap()[..36].to_string();
    let canonical = court
        .get(&format!("/api/v1/documents/{receipt_id}/canonical"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(canonical["in_reply_to"], notice_id.as_str());
    assert_eq!(canonical["subject"]["id_number"], "620102199003070026");

    // After the receipt, whether the person reported: a bad time is the
    // form's bilingual refusal and nothing is written; a good one is sent.
    assert!(page.contains("/send/handover.report_status"), "{page}");
    let documents = gw.count("documents").await;
    let (status, page) = send(
        &gw,
        &clerk,
        &case_id,
        "handover.report_status",
        &[
            ("document_no", "城矫报〔2026〕1号"),
            ("reported", "true"),
            ("reported_at", "yesterday"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("报到时间须为日期和时间") && page.contains("must be a date and time"));
    assert_eq!(gw.count("documents").await, documents);
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
    let reported_at = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute()
    );
    let (status, page) = send(
        &gw,
        &clerk,
        &case_id,
        "handover.report_status",
        &[
            ("document_no", "城矫报〔2026〕1号"),
            ("reported", "true"),
            ("reported_at", &reported_at),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let sent = gw.newest_leaf("document.accepted").await;
    assert!(
        sent.contains("\"message_type\":\"handover.report_status\""),
        "{sent}"
    );

    // The same receipt again (a stale page): the state machine's 409, both languages.
    let (status, page) = send(
        &gw,
        &clerk,
        &case_id,
        "handover.receipt",
        &[("document_no", "城矫接〔2026〕2号")],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("out_of_order_step")
            && page.contains("不能在此时发送")
            && page.contains("is out of order or a duplicate"),
        "{page}"
    );

    // A supervisor of the region may act for the agency; a supervisor of
    // another region may not even see the case.
    common::add_user_in(&gw, "supervisor.63", "supervisor", None, Some("63")).await;
    let outside = browser();
    assert_eq!(login(&gw, &outside, "supervisor.63", PASSWORD).await.0, 200);
    let refused = outside
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let second = post_court_notice(&gw, &court_notice(2)).await["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let supervisor = browser();
    assert_eq!(
        login(&gw, &supervisor, "supervisor.62", PASSWORD).await.0,
        200
    );
    let (status, page) = send(
        &gw,
        &supervisor,
        &second,
        "handover.receipt",
        &[("document_no", "城矫接〔2026〕3号")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
}

#[actix_web::test]
async fn a_clerk_sends_the_assessment_opinion() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    let (bytes, content_type) = common::native(
        &gw,
        corrections_gateway::formats::Dialect::Court,
        "assessment.request",
        serde_json::json!({"issued_at": "2026-01-05T09:30:00+08:00", "document_no": "甘0102刑评委〔2026〕7号"}),
    );
    let request = court.submit(&bytes, &content_type).await.unwrap();
    assert_eq!(
        request.status,
        201,
        "{}",
        String::from_utf8_lossy(&request.body)
    );
    let case_id = request.json().unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let clerk = browser();
    assert_eq!(
        login(&gw, &clerk, "clerk.corrections", PASSWORD).await.0,
        200
    );
    let opinion = |count: &'static str| {
        [
            ("document_no", "城矫评〔2026〕3号"),
            ("conclusion", "suitable"),
            ("reasons", "有固定住所和稳定工作"),
            ("investigator_count", count),
        ]
    };
    let (status, page) = send(&gw, &clerk, &case_id, "assessment.opinion", &opinion("two")).await;
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("调查人员人数须为正整数") && page.contains("positive whole number"),
        "{page}"
    );
    let (status, page) = send(&gw, &clerk, &case_id, "assessment.opinion", &opinion("2")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("已提交调查评估意见书"),
        "the state moved: {page}"
    );
    let leaf = gw.newest_leaf("document.accepted").await;
    assert!(
        leaf.contains("procuratorate.620102"),
        "routing added the copy: {leaf}"
    );
    assert!(
        !leaf.contains("有固定住所"),
        "no content in the log: {leaf}"
    );

    // Another request the agency cannot assess: the unable notice instead.
    let (bytes, content_type) = common::native(
        &gw,
        corrections_gateway::formats::Dialect::Court,
        "assessment.request",
        serde_json::json!({"issued_at": "2026-01-06T09:30:00+08:00", "document_no": "甘0102刑评委〔2026〕8号"}),
    );
    let request = court.submit(&bytes, &content_type).await.unwrap();
    assert_eq!(request.status, 201);
    let second = request.json().unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, page) = fetch(&gw, &clerk, format!("/ui/cases/{second}")).await;
    assert!(page.contains("/send/assessment.unable"), "{page}");
    let (status, page) = send(
        &gw,
        &clerk,
        &second,
        "assessment.unable",
        &[
            ("document_no", "城矫评不〔2026〕1号"),
            ("reasons", "被告人在执行地无固定住所，无法核实"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let leaf = gw.newest_leaf("document.accepted").await;
    assert!(
        leaf.contains("\"message_type\":\"assessment.unable\""),
        "{leaf}"
    );
}

/// Posts the search form (or a reveal) with the page's CSRF token.
async fn search(
    gw: &TestGateway,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    post_form(gw, client, "/ui/search", path, fields).await
}

#[actix_web::test]
async fn a_clerk_finds_documents_with_id_numbers_masked_and_reveals_one_on_record() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let document_id = post_court_notice(&gw, &court_notice(1)).await["document_id"]
        .as_str()
        .unwrap()
        .to_string();
    const NAME: &str = "阿依古丽·买买提";
    const ID: &str = "620102199003070026";

    let clerk = browser();
    assert_eq!(
        login(&gw, &clerk, "clerk.corrections", PASSWORD).await.0,
        200
    );
    // By name, ID number, 案号 (half-width brackets as typed) and 文书编号.
    for q in [
        "阿依古丽",
        ID,
        "(2026)甘0102刑初2号",
        "甘0102刑执通〔2026〕B1号",
    ] {
        let (status, page) = search(&gw, &clerk, "/ui/search", &[("q", q)]).await;
        assert_eq!(status, 200, "{q}: {page}");
        let results = &page[page.find("id=\"results\"").expect(q)..];
        assert!(
            results.contains(&document_id) && results.contains(NAME),
            "{q}: {results}"
        );
        assert!(results.contains("6201**********0026"), "{q}: {results}");
        assert!(
            !results.contains(&format!(">{ID}<")),
            "{q}: the number is masked: {results}"
        );
    }
    // Nothing to show for a stranger's name; a one-character query is refused.
    let (_, page) = search(&gw, &clerk, "/ui/search", &[("q", "王小明")]).await;
    assert!(page.contains("找到 0 份文书"), "{page}");
    let (status, page) = search(&gw, &clerk, "/ui/search", &[("q", "阿")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("至少两个字符"), "{page}");
    let huge = "甲".repeat(40_000);
    let (status, page) = search(&gw, &clerk, "/ui/search", &[("q", &huge)]).await;
    assert_eq!(status, 413);
    assert!(page.contains("表单内容过长"), "{page}");

    // Revealing is a POST that is logged first: who, which document, no data.
    let leaves = gw.leaves().await.len();
    let (status, page) = search(
        &gw,
        &clerk,
        "/ui/search/reveal",
        &[("q", "阿依古丽"), ("document_id", &document_id)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("<span class=\"revealed\">{ID}</span>")),
        "{page}"
    );
    let all = gw.leaves().await;
    assert_eq!(all.len(), leaves + 1);
    let read = all.last().unwrap();
    assert!(
        read.contains("\"event\":\"personal_data.read\"")
            && read.contains(&document_id)
            && read.contains("\"field\":\"subject.id_number\"")
            && read.contains("\"agency\":\"corrections.620102\"")
            && read.contains("\"user_id\":"),
        "{read}"
    );
    for leaf in &all {
        assert!(
            !leaf.contains(ID) && !leaf.contains("阿依古丽") && !leaf.contains("clerk."),
            "no personal data in the log: {leaf}"
        );
    }

    // Another agency's clerk finds nothing and cannot reveal by id; the
    // auditor does not search people; a forged form is refused.
    let prison = browser();
    assert_eq!(login(&gw, &prison, "clerk.prison", PASSWORD).await.0, 200);
    let (_, page) = search(&gw, &prison, "/ui/search", &[("q", ID)]).await;
    assert!(page.contains("找到 0 份文书"), "{page}");
    let (status, _) = search(
        &gw,
        &prison,
        "/ui/search/reveal",
        &[("q", ID), ("document_id", &document_id)],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        gw.leaves().await.len(),
        leaves + 1,
        "nothing shown, nothing logged"
    );
    let auditor = browser();
    assert_eq!(login(&gw, &auditor, "auditor", PASSWORD).await.0, 200);
    let refused = auditor
        .get(format!("{}/ui/search", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let forged = clerk
        .post(format!("{}/ui/search", gw.base_url))
        .form(&[("csrf", "0".repeat(64)), ("q", ID.into())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

#[actix_web::test]
async fn an_auditor_browses_the_log_and_exports_evidence_that_verifies_offline() {
    use corrections_gateway::xlog::{self, LogEvent};
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    let notice = post_court_notice(&gw, &court_notice(1)).await;
    let case_id = notice["case_id"].as_str().unwrap().to_string();
    let document_id = notice["document_id"].as_str().unwrap().to_string();
    // The corrections agency pulls and acks it: its signed ack is evidence too.
    gw.partner("corrections.620102", Algorithm::Ed25519)
        .pull_and_ack()
        .await
        .unwrap();
    // Enough entries for two pages.
    for n in 0..60 {
        let event = LogEvent::DocumentRead {
            document_id: format!("other-{n}"),
            reader: "police.620102".into(),
            view: "original".into(),
        };
        gw.store()
            .append_log(&xlog::prepare(&event, time::OffsetDateTime::now_utc()))
            .await
            .unwrap();
    }

    let auditor = browser();
    assert_eq!(login(&gw, &auditor, "auditor", PASSWORD).await.0, 200);
    let get = |path: String| fetch(&gw, &auditor, path);
    let (status, page) = get("/ui/log".into()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("/ui/static/verify.js") && page.contains("data-leaf="));
    assert_eq!(page.matches("<tr data-index=").count(), 50);
    let older = page
        .split("id=\"older\" href=\"")
        .nth(1)
        .expect("an older page");
    let older = older[..older.find('"').unwrap()].replace("&amp;", "&");
    let (_, page) = get(older).await;
    assert!(page.contains("document.accepted"), "{page}");
    // Each page shown is on record.
    let read = gw.newest_leaf("log.read").await;
    assert!(
        read.contains("\"reader\":\"web\"") && read.contains("\"user_id\":"),
        "{read}"
    );

    // Filters: event kind and agency; bad values get a bilingual 400.
    let (_, page) = get("/ui/log?event=document.accepted&agency=court.620102".into()).await;
    assert_eq!(page.matches("<tr data-index=").count(), 1, "{page}");
    assert!(page.contains(&document_id));
    let (_, page) = get("/ui/log?event=mailbox.acked&from=2020-01-01&to=2099-12-31".into()).await;
    assert_eq!(page.matches("<tr data-index=").count(), 1, "{page}");
    let (_, page) = get("/ui/log?agency=court.620102&to=2020-01-01".into()).await;
    assert_eq!(page.matches("<tr data-index=").count(), 0, "{page}");
    let (status, page) = get("/ui/log?event=nonsense".into()).await;
    assert_eq!(status, 400);
    assert!(page.contains("未知的事件类型"), "{page}");
    let (status, page) = get("/ui/log?from=2026-13-01&lang=en".into()).await;
    assert_eq!(status, 400);
    assert!(page.contains("must be a date"), "{page}");

    // Checkpoint history.
    court.get("/api/v1/log/checkpoint").await.unwrap();
    let (status, page) = get("/ui/log/checkpoints".into()).await;
    assert_eq!(status, 200);
    assert!(page.contains("corrections-gateway.example/log"), "{page}");

    // The script the page runs.
    let script = reqwest::get(format!("{}/ui/static/verify.js", gw.base_url))
        .await
        .unwrap();
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    // The case's evidence bundle verifies offline, with the CLI too; tampered, it does not.
    let answer = auditor
        .get(format!("{}/ui/cases/{case_id}/evidence", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let bundle = answer.bytes().await.unwrap();
    let verified = xlog::evidence::verify(&bundle).expect("the bundle verifies");
    assert_eq!(verified.documents, 1);
    assert!(
        verified.entries >= 3,
        "accepted, acked, exported: {verified:?}"
    );
    let last = gw.leaves().await;
    assert!(last
        .iter()
        .any(|l| l.contains("\"evidence.exported\"") && l.contains(&case_id)));
    let file = gw.dir.path().join("evidence.json");
    std::fs::write(&file, &bundle).unwrap();
    let (ok, out) = common::cli(&["log", "verify", file.to_str().unwrap()]);
    assert!(ok && out.contains("ok: case"), "{out}");
    let mut tampered: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let original = tampered["documents"][0]["original"]
        .as_str()
        .unwrap()
        .to_string();
    tampered["documents"][0]["original"] = serde_json::Value::from(format!("IA{}", &original[2..]));
    let failure = xlog::evidence::verify(&serde_json::to_vec(&tampered).unwrap()).unwrap_err();
    assert!(failure.to_string().contains("SHA-256"), "{failure}");
    let mut tampered: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    tampered["entries"][0]["proof"][0] = serde_json::Value::from("00".repeat(32));
    let failure = xlog::evidence::verify(&serde_json::to_vec(&tampered).unwrap()).unwrap_err();
    assert!(failure.to_string().contains("not included"), "{failure}");

    // Clerks do not audit.
    let clerk = browser();
    assert_eq!(
        login(&gw, &clerk, "clerk.corrections", PASSWORD).await.0,
        200
    );
    for path in [
        "/ui/log",
        "/ui/log/checkpoints",
        &format!("/ui/cases/{case_id}/evidence"),
    ] {
        let refused = clerk
            .get(format!("{}{path}", gw.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{path}");
    }
}
