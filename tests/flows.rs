//! A handover case runs like the law says, over real HTTP with real
//! signatures: the court's notice opens it, the corrections agency's receipt
//! (naming the notice in `in_reply_to`) moves it on and meets the receipt
//! period, a second receipt is out of order, the report completes it.

mod common;

use common::{court_notice, deadline, TestGateway};
use corrections_gateway::security::alg::Algorithm;
use serde_json::Value;
use time::macros::datetime;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";

/// The corrections agency's answer (canonical JSON, its own dialect) to `notice_id`.
fn answer(fixture: &str, notice_id: &str, document_no: &str, body: Option<Value>) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/canonical/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["in_reply_to"] = Value::from(notice_id);
    doc["document_no"] = Value::from(document_no);
    doc["sender"] = Value::from(CORRECTIONS);
    doc["recipients"] = serde_json::json!([COURT]);
    doc["copies"] = serde_json::json!([]);
    doc["attachments"] = serde_json::json!([]);
    doc["issued_at"] = Value::from("2026-11-20T16:00:00+08:00");
    if let Some(body) = body {
        doc["body"] = body;
    }
    serde_json::to_vec(&doc).unwrap()
}

#[actix_web::test]
async fn a_handover_case_moves_from_notice_to_receipt_to_report() {
    // The day the court's notice is dated (2026-11-20, effective 11-18):
    // every period is then still running, whatever day the test runs on.
    let gw = TestGateway::start_at(datetime!(2026-11-20 16:00 +8)).await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let corrections = gw.partner(CORRECTIONS, Algorithm::Sm2Sm3);

    let notice = court
        .submit(&court_notice(1), "application/xml")
        .await
        .unwrap();
    assert_eq!(
        notice.status,
        201,
        "{}",
        String::from_utf8_lossy(&notice.body)
    );
    let notice = notice.json().unwrap();
    let notice_id = notice["document_id"].as_str().unwrap();
    let case_id = notice["case_id"].as_str().unwrap();

    // The notice carries no legal documents: the case suggests that the
    // corrections agency request them from the court.
    let opened = corrections
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    // What an answer reads of the case (through the document it answers)
    // is what the case page reads (by the case's id).
    let store = gw.store();
    let answered = store.case_of_document(notice_id).await.unwrap().unwrap();
    let case = store.case(case_id).await.unwrap().unwrap();
    assert_eq!(answered.id, case_id);
    assert_eq!((&answered.flow, &answered.state), (&case.flow, &case.state));
    assert_eq!(answered.parties, case.parties);
    assert!(answered.parties.len() >= 2, "{:?}", answered.parties);
    assert!(answered.parties.iter().any(|p| p == COURT));
    let suggestion = &opened["suggestions"][0];
    assert_eq!(suggestion["message_type"], "handover.correction_request");
    assert_eq!(suggestion["to"], COURT);
    let missing: Vec<&str> = suggestion["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&"judgment"), "{suggestion}");
    assert!(suggestion["reason"]["zh"]
        .as_str()
        .unwrap()
        .contains("法律文书不齐全"));

    // An answer to a document the gateway does not know.
    let stray = corrections
        .submit(
            &answer(
                "handover.receipt",
                "01900000-0000-7000-8000-000000000000",
                "城矫接〔2026〕1号",
                Some(serde_json::json!({})),
            ),
            "application/json",
        )
        .await
        .unwrap();
    let problem = stray.json().unwrap();
    assert_eq!(
        (stray.status, problem["code"].as_str().unwrap()),
        (422, "unknown_in_reply_to"),
        "{problem}"
    );

    let receipt_doc = answer(
        "handover.receipt",
        notice_id,
        "城矫接〔2026〕2号",
        Some(serde_json::json!({})),
    );
    let receipt_headers = corrections
        .sign(
            "POST",
            "/api/v1/documents",
            Some("application/json"),
            Some(&receipt_doc),
        )
        .unwrap();
    let send_receipt = || {
        corrections.send(
            reqwest::Method::POST,
            "/api/v1/documents",
            Some(("application/json", receipt_doc.clone())),
            receipt_headers.clone(),
        )
    };
    let receipt = send_receipt().await.unwrap();
    assert_eq!(
        receipt.status,
        201,
        "{}",
        String::from_utf8_lossy(&receipt.body)
    );
    let first_receipt = receipt.body.clone();
    let receipt = receipt.json().unwrap();
    assert_eq!(
        receipt["case_id"].as_str(),
        Some(case_id),
        "the receipt joins the notice's case"
    );

    let case = court
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(case["state"], "received");
    assert!(case.get("suggestions").is_none(), "answered: {case}");
    assert_eq!(deadline(&case, "handover.receipt")["status"], "met");
    assert_eq!(case["documents"].as_array().unwrap().len(), 2);

    // The same step again is out of order, and says where the case stands.
    let again = corrections
        .submit(
            &answer(
                "handover.receipt",
                notice_id,
                "城矫接〔2026〕3号",
                Some(serde_json::json!({})),
            ),
            "application/json",
        )
        .await
        .unwrap();
    let problem = again.json().unwrap();
    assert_eq!(
        (again.status, problem["code"].as_str().unwrap()),
        (409, "out_of_order_step"),
        "{problem}"
    );
    assert!(
        problem["message"]["en"]
            .as_str()
            .unwrap()
            .contains("received"),
        "{problem}"
    );
    // The receipt itself sent again, though its case has moved on since: the
    // same bytes under a new signature get their first receipt, the same
    // signed request again is a replay (both looked up before refusing).
    let resent = corrections
        .submit(&receipt_doc, "application/json")
        .await
        .unwrap();
    assert_eq!(
        (resent.status, &resent.body),
        (200, &first_receipt),
        "{}",
        String::from_utf8_lossy(&resent.body)
    );
    let replayed = send_receipt().await.unwrap();
    assert_eq!(
        (replayed.status, replayed.json().unwrap()["code"].clone()),
        (409, Value::from("replayed_signature"))
    );

    let report = corrections
        .submit(
            &answer(
                "handover.report_status",
                notice_id,
                "城矫报〔2026〕4号",
                None,
            ),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        report.status,
        201,
        "{}",
        String::from_utf8_lossy(&report.body)
    );
    let case = corrections
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(case["state"], "complete");
    assert_eq!(deadline(&case, "handover.report")["status"], "met");

    // Every step is in the exchange log with the case's new state and what it did to the periods.
    let accepted: Vec<Value> = gw
        .leaves()
        .await
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == "document.accepted")
        .collect();
    let states: Vec<&str> = accepted
        .iter()
        .map(|l| l["case_state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["notified", "received", "complete"]);
    assert!(accepted[1]["deadline_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "handover.receipt:met"));
    // Every group went the usual way (table by table, answers' case moves
    // in one statement): a statement one backend refuses would have sent
    // them one at a time, silently.
    assert_eq!(gw.store().commit_fallbacks(), 0);
}
