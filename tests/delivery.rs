//! Delivery over real HTTP with real signatures: the court's notice is pushed
//! to the corrections agency's endpoint (a real actix-web server that checks
//! the gateway's signature, de-duplicates by gateway document id and answers
//! with a receipt signed by its own dev key), copied to the procuratorate
//! (push) and the police (pull: mailbox + signed ack); the corrections
//! agency's receipt document goes back to the court's mailbox. Endpoints that
//! are down, slow or sign badly lead to retries and dead letters, never to a
//! lost or doubly-processed document, and a restart mid-backlog resumes it.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use common::receiver::{fast, gateway_pushing_to, listener, serve, Behaviour, Receiver};
use common::{court_notice, deadline, TestGateway};
use corrections_gateway::partner::Partner;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use corrections_gateway::store::Delivery;
use serde_json::Value;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
const PROCURATORATE: &str = "procuratorate.620102";
const POLICE: &str = "police.620102";

async fn deliveries(gw: &TestGateway, document_id: &str) -> Vec<Delivery> {
    gw.store()
        .deliveries_of_document(document_id)
        .await
        .unwrap()
}

async fn delivery_to(gw: &TestGateway, document_id: &str, agency: &str) -> Delivery {
    deliveries(gw, document_id)
        .await
        .into_iter()
        .find(|d| d.agency_id == agency)
        .unwrap()
}

/// Waits (up to 20 s) until the delivery of `document_id` to `agency` is in `state`.
async fn wait_for_state(
    gw: &TestGateway,
    document_id: &str,
    agency: &str,
    state: &str,
) -> Delivery {
    let started = Instant::now();
    loop {
        let d = delivery_to(gw, document_id, agency).await;
        if d.state == state {
            return d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "delivery to {agency} still {} after 20 s: {d:?}",
            d.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leaves(gw: &TestGateway, event: &str) -> Vec<Value> {
    gw.leaves()
        .await
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == event)
        .collect()
}

async fn submit_notice(gw: &TestGateway, n: usize) -> Value {
    common::post_court_notice(gw, &court_notice(n)).await
}

/// Signs and posts a small JSON body (an ack, a retry request).
async fn post_signed(partner: &Partner, path: &str, body: &Value) -> (u16, Value, Vec<u8>) {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = partner
        .sign("POST", path, Some("application/json"), Some(&bytes))
        .unwrap();
    let answer = partner
        .send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes)),
            headers,
        )
        .await
        .unwrap();
    let json = answer.json().unwrap_or(Value::Null);
    (answer.status, json, answer.body.to_vec())
}

/// The corrections agency's receipt (回执) of `notice_id`, in its own dialect.
fn handover_receipt(notice_id: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/canonical/handover.receipt.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["in_reply_to"] = Value::from(notice_id);
    doc["document_no"] = Value::from("城矫接〔2026〕9号");
    doc["sender"] = Value::from(CORRECTIONS);
    doc["recipients"] = serde_json::json!([COURT]);
    doc["copies"] = serde_json::json!([]);
    doc["attachments"] = serde_json::json!([]);
    doc["issued_at"] = Value::from("2026-11-20T16:00:00+08:00");
    doc["body"] = serde_json::json!({});
    serde_json::to_vec(&doc).unwrap()
}

#[actix_web::test]
async fn court_to_corrections_by_push_with_copies_to_procuratorate_by_push_and_police_by_pull() {
    let (corrections_port, corrections_url) = listener();
    let (procuratorate_port, procuratorate_url) = listener();
    let gw = gateway_pushing_to(&[
        (CORRECTIONS, corrections_url),
        (PROCURATORATE, procuratorate_url),
    ])
    .await;
    let corrections_inbox = Receiver::new(&gw, CORRECTIONS, Behaviour::Receipt);
    let procuratorate_inbox = Receiver::new(&gw, PROCURATORATE, Behaviour::Receipt);
    let _c = serve(corrections_port, corrections_inbox.clone());
    let _p = serve(procuratorate_port, procuratorate_inbox.clone());
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let police = gw.partner(POLICE, Algorithm::Sm2Sm3);
    let procuratorate = gw.partner(PROCURATORATE, Algorithm::EcdsaP256Sha256);

    let submitted = Instant::now();
    let receipt = submit_notice(&gw, 1).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();
    let case_id = receipt["case_id"].as_str().unwrap().to_owned();
    let awaiting = receipt["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["step"] == "handover.receipt")
        .unwrap();
    assert_eq!(awaiting["status"], "awaiting_delivery", "{receipt}");
    assert!(awaiting["due_at"].is_null());

    // Pushed to the corrections agency and to the procuratorate, each receipted.
    let to_corrections = wait_for_state(&gw, &notice_id, CORRECTIONS, "delivered").await;
    let to_procuratorate = wait_for_state(&gw, &notice_id, PROCURATORATE, "delivered").await;
    eprintln!(
        "measured: submit → both pushes receipted in {} ms",
        submitted.elapsed().as_millis()
    );
    assert_eq!((to_corrections.attempts, to_procuratorate.attempts), (1, 1));
    assert_eq!(
        to_corrections.evidence_keyid,
        Some(corrections_inbox.keyid())
    );
    assert_eq!(corrections_inbox.processed_once(), vec![notice_id.clone()]);
    assert_eq!(
        procuratorate_inbox.processed_once(),
        vec![notice_id.clone()]
    );
    assert_eq!(
        corrections_inbox
            .bad_gateway_signatures
            .load(Ordering::SeqCst),
        0
    );
    // Each in its own dialect: canonical JSON for corrections, XML for the procuratorate.
    let (content_type, body) = corrections_inbox.processed.lock().unwrap()[0].clone();
    assert_eq!(content_type, "application/json");
    let canonical: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(canonical["message_type"], "handover.notice");
    let (content_type, body) = procuratorate_inbox.processed.lock().unwrap()[0].clone();
    assert!(
        content_type.starts_with("application/xml"),
        "{content_type}"
    );
    assert!(body.starts_with(b"<?xml"));

    // The receipt is logged with its digest and the recipient's key.
    let receipted = leaves(&gw, "delivery.receipted").await;
    let to_c = receipted
        .iter()
        .find(|l| l["recipient"] == CORRECTIONS)
        .unwrap();
    let receipt_body = corrections_inbox.receipts.lock().unwrap()[&notice_id].clone();
    assert_eq!(to_c["receipt_sha256"], sha256_hex(&receipt_body));
    assert_eq!(to_c["keyid"], corrections_inbox.keyid());
    assert_eq!(
        to_c["deadline_events"],
        serde_json::json!(["handover.receipt:started"])
    );
    let to_p = receipted
        .iter()
        .find(|l| l["recipient"] == PROCURATORATE)
        .unwrap();
    assert!(
        to_p.get("deadline_events").is_none(),
        "a copy starts no clock"
    );
    let accepted = leaves(&gw, "document.accepted").await;
    assert!(accepted[0]["deadline_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "handover.receipt:awaiting_delivery"));

    // The deadline clock started at the recipient's receipt.
    let case = court
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    let started = deadline(&case, "handover.receipt");
    assert_eq!(started["status"], "due", "{case}");
    let view = court
        .get(&format!("/api/v1/documents/{notice_id}/deliveries"))
        .await
        .unwrap();
    assert_eq!(view.status, 200);
    view.verify(&gw.gateway_cert()).unwrap();
    let view = view.json().unwrap();
    let corrections_view = view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["agency"] == CORRECTIONS)
        .unwrap()
        .clone();
    assert_eq!(corrections_view["state"], "delivered");
    assert_eq!(started["starts_at"], corrections_view["completed_at"]);
    assert!(started["due_at"].as_str().unwrap() > started["starts_at"].as_str().unwrap());

    // The police pulls its copy from the mailbox, in its dialect.
    let page = police.get("/api/v1/mailbox").await.unwrap();
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    page.verify(&gw.gateway_cert()).unwrap();
    let page = page.json().unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let item = &items[0];
    assert_eq!(item["document_id"], notice_id.as_str());
    assert_eq!(item["role"], "copy");
    assert_eq!(item["content_type"], "application/json");
    assert!(page["next_cursor"].is_null());
    let ack_path = item["ack"].as_str().unwrap().to_owned();
    assert!(leaves(&gw, "document.read")
        .await
        .iter()
        .any(|l| l["reader"] == POLICE && l["view"] == "mailbox"));

    // Another agency cannot ack the police's copy; a wrong document id is refused.
    let ack = serde_json::json!({ "document_id": notice_id });
    let (status, problem, _) = post_signed(&procuratorate, &ack_path, &ack).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    let (status, problem, _) = post_signed(
        &police,
        &ack_path,
        &serde_json::json!({ "document_id": "01900000-0000-7000-8000-000000000000" }),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("ack_document_mismatch"))
    );

    // The ack is recorded once; a re-ack gets the same answer.
    let (status, first, first_bytes) = post_signed(&police, &ack_path, &ack).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["agency"], POLICE);
    let (status, _, again_bytes) = post_signed(&police, &ack_path, &ack).await;
    assert_eq!(status, 200);
    assert_eq!(first_bytes, again_bytes, "idempotent re-ack");
    // The very same signed ack sent twice: the first is another re-ack, the
    // second a replay of its signature, refused.
    let bytes = serde_json::to_vec(&ack).unwrap();
    let headers = police
        .sign("POST", &ack_path, Some("application/json"), Some(&bytes))
        .unwrap();
    for expected in [200, 409] {
        let answer = police
            .send(
                reqwest::Method::POST,
                &ack_path,
                Some(("application/json", bytes.clone())),
                headers.clone(),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, expected);
        if expected == 409 {
            assert_eq!(answer.json().unwrap()["code"], "replayed_signature");
        } else {
            assert_eq!(answer.body.to_vec(), first_bytes);
        }
    }
    assert_eq!(delivery_to(&gw, &notice_id, POLICE).await.state, "acked");
    let acked = leaves(&gw, "mailbox.acked").await;
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["recipient"], POLICE);
    let page = police.get("/api/v1/mailbox").await.unwrap().json().unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");

    // The corrections agency's receipt (回执) goes back to the court's mailbox.
    let corrections = gw.partner(CORRECTIONS, Algorithm::Sm2Sm3);
    let answer = corrections
        .submit(&handover_receipt(&notice_id), "application/json")
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let reply_id = answer.json().unwrap()["document_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = court.get("/api/v1/mailbox").await.unwrap().json().unwrap();
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["document_id"] == reply_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["message_type"], "handover.receipt");
    assert!(item["content_type"]
        .as_str()
        .unwrap()
        .starts_with("application/xml"));
    let (status, _, _) = post_signed(
        &court,
        item["ack"].as_str().unwrap(),
        &serde_json::json!({ "document_id": reply_id }),
    )
    .await;
    assert_eq!(status, 200);
    let case = court
        .get(&format!("/api/v1/cases/{case_id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        deadline(&case, "handover.receipt")["status"],
        "met",
        "{case}"
    );
}

#[actix_web::test]
async fn a_down_endpoint_is_retried_then_dead_lettered_and_a_manual_retry_delivers() {
    let (port, url) = listener();
    let addr = port.local_addr().unwrap();
    drop(port); // nothing listens: connections are refused
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receipt = submit_notice(&gw, 2).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();

    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("endpoint_unreachable"));
    let attempted = leaves(&gw, "delivery.attempted").await;
    assert_eq!(attempted.len(), 3);
    assert!(attempted
        .iter()
        .all(|l| l["outcome"] == "endpoint_unreachable"));
    assert_eq!(leaves(&gw, "delivery.dead_lettered").await.len(), 1);
    // No clock started without a receipt.
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let case_path = format!("/api/v1/cases/{}", receipt["case_id"].as_str().unwrap());
    let case = court.get(&case_path).await.unwrap().json().unwrap();
    assert_eq!(
        deadline(&case, "handover.receipt")["status"],
        "awaiting_delivery"
    );

    // Only the sender may retry; strangers learn nothing.
    let retry_path = format!("/api/v1/deliveries/{}/retry", dead.id);
    let corrections = gw.partner(CORRECTIONS, Algorithm::EcdsaP256Sha256);
    let (status, problem, _) = post_signed(&corrections, &retry_path, &serde_json::json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("retry_not_permitted"))
    );
    let prison = gw.partner("prison.620000.3", Algorithm::EcdsaP256Sha256);
    let (status, _, _) = post_signed(&prison, &retry_path, &serde_json::json!({})).await;
    assert_eq!(status, 404);

    // The partner comes back; the court retries by hand and it is delivered.
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::Receipt);
    let _server = serve(TcpListener::bind(addr).unwrap(), receiver.clone());
    let (status, view, _) = post_signed(&court, &retry_path, &serde_json::json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "pending");
    let delivered = wait_for_state(&gw, &notice_id, CORRECTIONS, "delivered").await;
    assert_eq!(delivered.attempts, 1, "attempts count again from zero");
    assert_eq!(receiver.processed_once(), vec![notice_id.clone()]);
    let retried = leaves(&gw, "delivery.retried").await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["by"], COURT);
    let (status, problem, _) = post_signed(&court, &retry_path, &serde_json::json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("delivery_not_dead"))
    );
    let case = court.get(&case_path).await.unwrap().json().unwrap();
    assert_eq!(deadline(&case, "handover.receipt")["status"], "due");
}

#[actix_web::test]
async fn a_slow_endpoint_times_out_is_retried_and_the_receiver_processes_the_document_once() {
    let (port, url) = listener();
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::SlowFor(1));
    let _server = serve(port, receiver.clone());
    let receipt = submit_notice(&gw, 3).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();

    let delivered = wait_for_state(&gw, &notice_id, CORRECTIONS, "delivered").await;
    assert_eq!(delivered.attempts, 2);
    let attempted = leaves(&gw, "delivery.attempted").await;
    assert_eq!(attempted.len(), 1);
    assert_eq!(attempted[0]["outcome"], "endpoint_timeout");
    assert!(receiver.requests_for(&notice_id) >= 2, "delivered twice");
    assert_eq!(receiver.processed_once(), [notice_id], "processed once");
}

/// [`fast`], but an attempt may take 4 s: longer than the test waits for
/// the agency that answers.
fn patient(settings: &mut corrections_gateway::config::Settings) {
    fast(settings);
    settings.delivery.timeout_ms = 4_000;
}

#[actix_web::test]
async fn a_hanging_endpoint_holds_only_its_own_places_and_the_other_agencys_deliveries_go_on() {
    // Four places in all, two per recipient (`fast`); the corrections
    // agency's endpoint accepts the connection and never answers in time.
    let (hung_port, hung_url) = listener();
    let (port, url) = listener();
    let dir = tempfile::tempdir().unwrap();
    corrections_gateway::app::write_dev_registry(
        &corrections_gateway::config::Settings::for_dir(dir.path()),
        &[(CORRECTIONS, hung_url), (PROCURATORATE, url)],
    )
    .unwrap();
    let gw = TestGateway::start_in(dir, patient).await;
    let hung = Receiver::new(&gw, CORRECTIONS, Behaviour::Delay(10_000));
    let _hung_server = serve(hung_port, hung.clone());
    let receiver = Receiver::new(&gw, PROCURATORATE, Behaviour::Receipt);
    let _server = serve(port, receiver.clone());

    // Eight notices: each to the corrections agency, copied to the procuratorate.
    let mut ids = Vec::new();
    for n in 0..8 {
        let receipt = submit_notice(&gw, 200 + n).await;
        ids.push(receipt["document_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let copy = wait_for_state(&gw, id, PROCURATORATE, "delivered").await;
        assert_eq!(copy.attempts, 1, "the copy waited for no failed attempt");
    }
    // Every copy was receipted while the first attempts to the hanging
    // endpoint were still in flight: no attempt to it has ended, and only
    // two were started (its cap), not four.
    let ended = leaves(&gw, "delivery.attempted").await;
    assert!(
        ended.is_empty(),
        "an attempt to the hanging endpoint ended first: {ended:?}"
    );
    assert_eq!(hung.requests.load(Ordering::SeqCst), 2);
    let mut processed = receiver.processed_once();
    processed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(processed, expected);
    for id in &ids {
        assert_eq!(delivery_to(&gw, id, CORRECTIONS).await.state, "pending");
    }
}

#[actix_web::test]
async fn a_bad_receipt_signature_is_retried_then_dead_lettered_until_the_partner_signs_properly() {
    let (port, url) = listener();
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::CorruptSignature);
    let _server = serve(port, receiver.clone());
    let receipt = submit_notice(&gw, 4).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();

    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("receipt_signature_invalid")
    );
    assert_eq!(dead.last_status, Some(200));

    // Signed, but with another agency's certificate: still not a receipt.
    receiver.set(Behaviour::SignedByOther);
    let store = gw.store();
    corrections_gateway::delivery::retry_by_operator(store, &dead.id)
        .await
        .unwrap();
    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.last_error.as_deref(), Some("receipt_signer_mismatch"));

    receiver.set(Behaviour::Receipt);
    corrections_gateway::delivery::retry_by_operator(store, &dead.id)
        .await
        .unwrap();
    wait_for_state(&gw, &notice_id, CORRECTIONS, "delivered").await;
    let outcomes: Vec<String> = leaves(&gw, "delivery.attempted")
        .await
        .iter()
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        [
            "receipt_signature_invalid",
            "receipt_signature_invalid",
            "receipt_signature_invalid",
            "receipt_signer_mismatch",
            "receipt_signer_mismatch",
            "receipt_signer_mismatch"
        ]
    );
    assert_eq!(leaves(&gw, "delivery.dead_lettered").await.len(), 2);
    let retried = leaves(&gw, "delivery.retried").await;
    assert!(retried.iter().all(|l| l["by"] == "operator"));
    assert_eq!(receiver.processed_once(), vec![notice_id.clone()]);
    assert!(receiver.requests_for(&notice_id) >= 7);
    assert_eq!(leaves(&gw, "delivery.receipted").await.len(), 1);
}

#[actix_web::test]
async fn a_restart_in_the_middle_of_a_backlog_loses_nothing_and_delivers_each_document_once() {
    let (port, url) = listener();
    let mut gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::Delay(300));
    let _server = serve(port, receiver.clone());
    let mut ids = Vec::new();
    for n in 0..12 {
        let receipt = submit_notice(&gw, 100 + n).await;
        ids.push(receipt["document_id"].as_str().unwrap().to_owned());
    }
    gw.restart().await;
    let restarted = Instant::now();
    let mut states = BTreeMap::new();
    for id in &ids {
        let d = delivery_to(&gw, id, CORRECTIONS).await;
        *states.entry(d.state).or_insert(0) += 1;
    }
    assert!(
        states.get("pending").copied().unwrap_or(0) > 0,
        "the restart happened mid-backlog: {states:?}"
    );
    for id in &ids {
        wait_for_state(&gw, id, CORRECTIONS, "delivered").await;
    }
    eprintln!(
        "measured: backlog {states:?} at restart delivered {} ms after it; {} requests for 12 documents",
        restarted.elapsed().as_millis(),
        receiver.requests.load(Ordering::SeqCst)
    );
    let mut processed = receiver.processed_once();
    processed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(processed, expected, "every document, each exactly once");
    assert_eq!(leaves(&gw, "delivery.receipted").await.len(), 12);
    assert_eq!(
        gw.count("deliveries").await,
        36,
        "12 × (corrections, procuratorate, police)"
    );
}

#[actix_web::test]
async fn the_mailbox_pages_with_an_opaque_cursor_in_a_stable_order_and_refuses_bad_parameters() {
    let gw = TestGateway::start_with(fast).await;
    let police = gw.partner(POLICE, Algorithm::EcdsaP256Sha256);
    let mut ids = Vec::new();
    for n in 0..3 {
        let receipt = submit_notice(&gw, 200 + n).await;
        ids.push(receipt["document_id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/mailbox?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = police.get(&path).await.unwrap();
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let page = page.json().unwrap();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["document_id"].as_str().unwrap().to_owned());
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                item["body_base64"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(item["body_sha256"], sha256_hex(&bytes));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/mailbox?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ids, "oldest first, each once");
    // Nothing was acked, so the same walk gives the same items.
    let again = police
        .get("/api/v1/mailbox?limit=100")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(again["items"].as_array().unwrap().len(), 3);

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("cursor=bm90LWEtY3Vyc29y", "invalid_cursor"),
        ("limit=1&limit=2", "invalid_query"),
        ("limt=5", "invalid_query"),
    ] {
        let answer = police
            .get(&format!("/api/v1/mailbox?{query}"))
            .await
            .unwrap();
        let problem = answer.json().unwrap();
        assert_eq!(
            (answer.status, problem["code"].as_str()),
            (400, Some(code)),
            "{query}: {problem}"
        );
        answer.verify(&gw.gateway_cert()).unwrap();
    }
    // An unsigned read is refused.
    let unsigned = reqwest::get(format!("{}/api/v1/mailbox", gw.base_url))
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
}

#[actix_web::test]
async fn operators_list_and_retry_deliveries_from_the_command_line() {
    let (port, url) = listener();
    drop(port);
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receipt = submit_notice(&gw, 300).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();
    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    let dir = gw.dir.path().to_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_corrections-gateway"));
        command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        // The gateway's database when it is not SQLite in the data directory.
        if let Some(url) = gw.database.url() {
            command.env("GATEWAY_DATABASE_URL", url);
        }
        command.output().unwrap()
    };
    let listed = cli(&["deliveries", "list", "--dir", &dir]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(
        listed.lines().count(),
        2,
        "header and the one dead letter: {listed}"
    );
    assert!(listed.contains(&dead.id) && listed.contains("endpoint_unreachable"));
    let all = cli(&["deliveries", "list", "--dir", &dir, "--state", "all"]);
    assert_eq!(String::from_utf8(all.stdout).unwrap().lines().count(), 4);

    let retried = cli(&["deliveries", "retry", &dead.id, "--dir", &dir]);
    assert!(retried.status.success(), "{retried:?}");
    // Nothing listens yet: it dies again after its attempts, and says so.
    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.attempts, 3);
    let pending = delivery_to(&gw, &notice_id, POLICE).await;
    let refused = cli(&["deliveries", "retry", &pending.id, "--dir", &dir]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not dead"));
    let retried = leaves(&gw, "delivery.retried").await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["by"], "operator");
}

/// A front for a partner's endpoint: the first `resets` connections are
/// reset (TCP RST after the request arrived), later ones are forwarded to
/// `backend`. Counts connections.
fn resetting_front(
    front: TcpListener,
    backend: std::net::SocketAddr,
    resets: usize,
) -> Arc<AtomicUsize> {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    front.set_nonblocking(true).unwrap();
    let front = tokio::net::TcpListener::from_std(front).unwrap();
    tokio::spawn(async move {
        while let Ok((mut incoming, _)) = front.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if n < resets {
                    let mut head = [0u8; 512];
                    let _ = incoming.read(&mut head).await;
                    incoming.set_zero_linger().unwrap();
                    drop(incoming);
                } else if let Ok(mut outgoing) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut incoming, &mut outgoing).await;
                }
            });
        }
    });
    connections
}

#[actix_web::test]
async fn a_partner_that_resets_connections_or_answers_garbage_is_retried_and_processes_the_document_once(
) {
    let (front, url) = listener();
    let (port, _) = listener();
    let backend = port.local_addr().unwrap();
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::Garbage);
    let _server = serve(port, receiver.clone());
    let connections = resetting_front(front, backend, 2);
    let receipt = submit_notice(&gw, 5).await;
    let notice_id = receipt["document_id"].as_str().unwrap().to_owned();

    // Two resets, then an unsigned error page: three failed attempts.
    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.last_error.as_deref(), Some("receipt_unsigned"));
    assert!(connections.load(Ordering::SeqCst) >= 3);
    // A signed answer that is no receipt is no better.
    receiver.set(Behaviour::SignedGarbage);
    let store = gw.store();
    corrections_gateway::delivery::retry_by_operator(store, &dead.id)
        .await
        .unwrap();
    let dead = wait_for_state(&gw, &notice_id, CORRECTIONS, "dead").await;
    assert_eq!(dead.last_error.as_deref(), Some("receipt_malformed"));
    assert_eq!(dead.last_status, Some(200));

    receiver.set(Behaviour::Receipt);
    corrections_gateway::delivery::retry_by_operator(store, &dead.id)
        .await
        .unwrap();
    wait_for_state(&gw, &notice_id, CORRECTIONS, "delivered").await;
    let outcomes: Vec<String> = leaves(&gw, "delivery.attempted")
        .await
        .iter()
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        [
            "endpoint_unreachable",
            "endpoint_unreachable",
            "receipt_unsigned",
            "receipt_malformed",
            "receipt_malformed",
            "receipt_malformed"
        ]
    );
    // Every answer that reached the partner carried the same document; it
    // was processed once and receipted once.
    assert_eq!(receiver.processed_once(), vec![notice_id.clone()]);
    assert_eq!(receiver.requests_for(&notice_id), 5);
    assert_eq!(leaves(&gw, "delivery.receipted").await.len(), 1);
}
