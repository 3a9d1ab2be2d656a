//! The assessment and revocation flows at dates whose calendar matters, over
//! real HTTP with real signatures: the gateway and the partners share a clock
//! shifted to the date (`corrections_gateway::clock`), so the periods are
//! counted by the same engine and official calendar as in production.
//! Each agency posts in its own dialect (court XML, corrections JSON).

mod common;

use common::{deadline, native, TestGateway};
use corrections_gateway::formats::Dialect;
use corrections_gateway::partner::Partner;
use corrections_gateway::security::alg::Algorithm;
use serde_json::{json, Value};
use time::macros::datetime;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
const PROCURATORATE: &str = "procuratorate.620102";

async fn post(partner: &Partner, (bytes, content_type): (Vec<u8>, String)) -> Value {
    common::accepted(partner, &bytes, &content_type).await
}

async fn case(partner: &Partner, id: &str) -> Value {
    let answer = partner.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json().unwrap()
}

async fn overdue_cases(partner: &Partner) -> Value {
    partner
        .get("/api/v1/cases?overdue=true")
        .await
        .unwrap()
        .json()
        .unwrap()
}

/// 速裁 (expedited) assessment requested on Friday 2024-09-27: five working
/// days are Sunday 09-29 (a makeup working day), Monday 09-30, then — past the
/// National Day week off, 10-01 to 10-07 — 10-08, 10-09 and 10-10.
#[actix_web::test]
async fn an_expedited_assessment_across_national_day_2024_is_due_on_october_10() {
    let gw = TestGateway::start_at(datetime!(2024-09-27 10:00 +8)).await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let corrections = gw.partner(CORRECTIONS, Algorithm::Sm2Sm3);

    let request = post(
        &court,
        native(
            &gw,
            Dialect::Court,
            "assessment.request",
            json!({"issued_at": "2024-09-27T09:30:00+08:00", "document_no": "甘0102刑评委〔2024〕77号"}),
        ),
    )
    .await;
    let case_id = request["case_id"].as_str().unwrap().to_string();
    // The period runs from the corrections agency's receipt of the request (its signed ack).
    let waiting = case(&corrections, &case_id).await;
    assert_eq!(
        deadline(&waiting, "assessment.opinion")["status"],
        "awaiting_delivery"
    );
    corrections.pull_and_ack().await.unwrap();
    let opened = case(&corrections, &case_id).await;
    assert_eq!(opened["state"], "requested");
    let opinion_due = deadline(&opened, "assessment.opinion");
    assert_eq!(opinion_due["period"], "5wd");
    assert_eq!(opinion_due["due_at"], "2024-10-10T23:59:59+08:00");
    assert_eq!(opinion_due["status"], "due");

    // The procuratorate, copied, sees the case; an agency outside it does not.
    let procuratorate = gw.partner(PROCURATORATE, Algorithm::RsaPssSha512);
    assert_eq!(case(&procuratorate, &case_id).await["id"], case_id.as_str());
    let police = gw.partner("police.620102", Algorithm::Ed25519);
    let stranger = police
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap();
    assert_eq!(stranger.status, 404);

    // The clerk's list: the court's open assessments.
    let listed = court
        .get("/api/v1/cases?flow=assessment&state=requested")
        .await
        .unwrap();
    assert_eq!(
        listed.status,
        200,
        "{}",
        String::from_utf8_lossy(&listed.body)
    );
    let listed = listed.json().unwrap();
    let ids: Vec<&str> = listed["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [case_id.as_str()]);

    let request_id = request["document_id"].as_str().unwrap();
    post(
        &corrections,
        native(
            &gw,
            Dialect::Corrections,
            "assessment.opinion",
            json!({"in_reply_to": request_id, "issued_at": "2024-09-27T09:45:00+08:00"}),
        ),
    )
    .await;
    let concluded = case(&court, &case_id).await;
    assert_eq!(concluded["state"], "concluded");
    assert_eq!(deadline(&concluded, "assessment.opinion")["status"], "met");
    let events: Vec<&str> = concluded["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "document.received",
            "deadline.started",
            "document.received",
            "deadline.met"
        ]
    );
}

/// A revocation proposal on Sunday 2024-09-01 and an arrest request with it:
/// the arrest decision is due 48 hours later to the minute (hours are never
/// extended); the 30-day ruling period would end on 10-01, National Day, so it
/// moves to the first working day after the holiday, 10-08. The court answers
/// both in time; a second ruling is out of order.
#[actix_web::test]
async fn a_revocation_runs_with_a_48_hour_arrest_decision_and_a_30_day_ruling() {
    let gw = TestGateway::start_at(datetime!(2024-09-01 10:00 +8)).await;
    let court = gw.partner(COURT, Algorithm::Sm2Sm3);
    let corrections = gw.partner(CORRECTIONS, Algorithm::EcdsaP256Sha256);

    let proposal = post(
        &corrections,
        native(
            &gw,
            Dialect::Corrections,
            "revocation.proposal",
            json!({"issued_at": "2024-09-01T09:00:00+08:00"}),
        ),
    )
    .await;
    let proposal_id = proposal["document_id"].as_str().unwrap();
    let case_id = proposal["case_id"].as_str().unwrap().to_string();
    let arrest = post(
        &corrections,
        native(
            &gw,
            Dialect::Corrections,
            "revocation.arrest_request",
            json!({"in_reply_to": proposal_id, "issued_at": "2024-09-01T09:05:00+08:00"}),
        ),
    )
    .await;
    assert_eq!(arrest["case_id"].as_str(), Some(case_id.as_str()));
    // Both periods run from the court's receipt (its signed acks).
    assert_eq!(court.pull_and_ack().await.unwrap().len(), 2);
    let proposed = case(&court, &case_id).await;
    assert_eq!(proposed["state"], "proposed_arrest_requested");
    assert_eq!(
        deadline(&proposed, "revocation.ruling")["due_at"],
        "2024-10-08T23:59:59+08:00"
    );
    let arrest_due = deadline(&proposed, "revocation.arrest_decision");
    assert_eq!(arrest_due["period"], "48h");
    let started = time::OffsetDateTime::parse(
        arrest_due["starts_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        arrest_due["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(due - started, time::Duration::hours(48));

    let arrest_id = arrest["document_id"].as_str().unwrap();
    post(
        &court,
        native(
            &gw,
            Dialect::Court,
            "revocation.arrest_decision",
            json!({"in_reply_to": arrest_id, "issued_at": "2024-09-01T11:00:00+08:00",
                   "body": {"decision": "arrest", "decided_at": "2024-09-01T10:30:00+08:00"}}),
        ),
    )
    .await;
    let ruling = native(
        &gw,
        Dialect::Court,
        "revocation.ruling",
        json!({"in_reply_to": proposal_id, "issued_at": "2024-09-01T11:30:00+08:00"}),
    );
    post(&court, ruling.clone()).await;
    let ruled = case(&corrections, &case_id).await;
    assert_eq!(ruled["state"], "ruled");
    assert_eq!(
        deadline(&ruled, "revocation.arrest_decision")["status"],
        "met"
    );
    assert_eq!(deadline(&ruled, "revocation.ruling")["status"], "met");
    assert_eq!(ruled["overdue"], false);

    let (bytes, content_type) = native(
        &gw,
        Dialect::Court,
        "revocation.ruling",
        json!({"in_reply_to": proposal_id, "document_no": "甘0102刑更〔2024〕13号"}),
    );
    let again = court.submit(&bytes, &content_type).await.unwrap();
    let problem = again.json().unwrap();
    assert_eq!(
        (again.status, problem["code"].as_str().unwrap()),
        (409, "out_of_order_step"),
        "{problem}"
    );
}

/// An arrest request left unanswered: two days later the sweep marks the
/// 48-hour decision overdue and logs it exactly once; the case list's
/// `overdue=true` filter finds it, and only for the agencies party to it.
#[actix_web::test]
async fn an_unanswered_arrest_request_is_marked_overdue_once_and_listed() {
    let mut gw = TestGateway::start_at(datetime!(2024-09-02 16:00 +8)).await;
    let corrections = gw.partner(CORRECTIONS, Algorithm::EcdsaP256Sha256);
    let request = post(
        &corrections,
        native(
            &gw,
            Dialect::Corrections,
            "revocation.arrest_request",
            json!({"in_reply_to": null, "issued_at": "2024-09-02T15:00:00+08:00"}),
        ),
    )
    .await;
    let case_id = request["case_id"].as_str().unwrap().to_string();
    gw.partner(COURT, Algorithm::EcdsaP256Sha256)
        .pull_and_ack()
        .await
        .unwrap();
    assert_eq!(overdue_cases(&corrections).await["cases"], json!([]));

    // Fifty hours on, the gateway restarts; its first sweep runs at start.
    gw.clock = corrections_gateway::clock::Clock::starting_at(datetime!(2024-09-04 18:00 +8));
    gw.restart().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let mut missed = Vec::new();
    for _ in 0..100 {
        missed = gw
            .leaves()
            .await
            .into_iter()
            .map(|l| serde_json::from_str::<Value>(&l).unwrap())
            .filter(|l| l["event"] == "deadline.missed")
            .collect();
        if !missed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["case_id"], case_id.as_str());
    assert_eq!(missed[0]["step"], "revocation.arrest_decision");
    // 48 hours after the request was received (16:00 Beijing = 08:00 UTC, plus the seconds the test took).
    assert!(
        missed[0]["due_at"]
            .as_str()
            .unwrap()
            .starts_with("2024-09-04T08:00:"),
        "{missed:?}"
    );

    // Sweeping again logs nothing new.
    assert_eq!(
        corrections_gateway::jobs::sweep_overdue(&gw.running.gateway)
            .await
            .unwrap(),
        0
    );
    let listed = overdue_cases(&court).await;
    let cases = listed["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{listed:#}");
    assert_eq!(cases[0]["id"], case_id.as_str());
    assert_eq!(cases[0]["overdue"], true);
    assert_eq!(
        deadline(&cases[0], "revocation.arrest_decision")["status"],
        "overdue"
    );
    let prison = gw.partner("prison.620000.3", Algorithm::EcdsaP256Sha256);
    assert_eq!(overdue_cases(&prison).await["cases"], json!([]));
}

/// Listing is scoped, filtered and paginated, and bad queries say which parameter is wrong.
#[actix_web::test]
async fn the_case_list_pages_with_a_cursor_and_refuses_bad_queries() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let mut opened = Vec::new();
    for n in 0..5 {
        let notice = court
            .submit(&common::court_notice(900 + n), "application/xml")
            .await
            .unwrap();
        assert_eq!(
            notice.status,
            201,
            "{}",
            String::from_utf8_lossy(&notice.body)
        );
        opened.push(
            notice.json().unwrap()["case_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/cases?flow=handover&limit=2".to_string();
    for _ in 0..5 {
        let page = court.get(&path).await.unwrap().json().unwrap();
        for c in page["cases"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/cases?flow=handover&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, opened, "every case once, in the order opened");

    for (query, status, code, pointer) in [
        ("flow=parole", 400, "invalid_query", "/flow"),
        ("state=nonsense", 400, "invalid_query", "/state"),
        ("limit=0", 400, "invalid_query", "/limit"),
        ("cursor=%%%", 400, "invalid_query", "/cursor"),
        ("cursor=bm90LWEtY3Vyc29y", 400, "invalid_query", "/cursor"),
        ("overdue=perhaps", 400, "invalid_query", ""),
        (
            "agency=corrections.620102",
            403,
            "outside_agency_scope",
            "/agency",
        ),
    ] {
        let answer = court.get(&format!("/api/v1/cases?{query}")).await.unwrap();
        let problem = answer.json().unwrap();
        assert_eq!(answer.status, status, "{query}: {problem}");
        assert_eq!(problem["code"], code, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["path"], pointer, "{query}: {problem}");
        assert!(problem["message"]["zh"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    // A query is signed: changing it in transit breaks the signature.
    let headers = court
        .sign("GET", "/api/v1/cases?flow=handover", None, None)
        .unwrap();
    let tampered = court
        .send(
            reqwest::Method::GET,
            "/api/v1/cases?flow=revocation",
            None,
            headers,
        )
        .await
        .unwrap();
    assert_eq!(
        tampered.status,
        401,
        "{}",
        String::from_utf8_lossy(&tampered.body)
    );
}
