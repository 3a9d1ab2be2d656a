//! Every partner route that touches a document, a delivery or a case, asked
//! by someone who may not: without a signature, signed by a key no agency CA
//! certified, and signed by a real agency that is no party to the document.
//! Each is refused (401, or 403/404 that tell a stranger nothing), and
//! afterwards nothing changed: the same documents, deliveries and cases, and
//! the exchange log grew only by the records of the refusals.
//!
//! The route list is the route table itself (`api::ROUTES`), so a new route
//! is confined here or the test names it.

mod common;

use std::process::Command;

use common::{court_notice, TestGateway};
use corrections_gateway::api::ROUTES;
use corrections_gateway::partner::{Answer, Partner};
use corrections_gateway::security::alg::Algorithm;
use serde_json::Value;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
/// A real agency, party to nothing in this test.
const STRANGER: &str = "prison.620000.3";

/// Routes anyone may read (the log is public by design, as are the schemas,
/// the API description and the operational endpoints).
const PUBLIC: &[&str] = &[
    "/api/v1/log/checkpoint",
    "/api/v1/log/proof/inclusion",
    "/api/v1/log/proof/consistency",
    "/api/v1/schemas",
    "/api/v1/schemas/{name}",
    "/api/v1/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// A key and self-signed certificate that no agency CA issued.
fn foreign_partner(base_url: &str, dir: &std::path::Path) -> Partner {
    let key = dir.join("foreign.key.pem");
    let cert = dir.join("foreign.crt.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=court.620102"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs")
        .status
        .success();
    assert!(ok, "openssl made a key");
    Partner::from_files(base_url, &key, &cert).expect("a foreign partner")
}

/// State that no refused request may change.
async fn snapshot(gw: &TestGateway) -> Value {
    let documents = gw.count("documents").await;
    let receipts = gw.count("receipts").await;
    let cases = gw.count("cases").await;
    let mut deliveries = Vec::new();
    for id in document_ids(gw).await {
        for d in gw.store().deliveries_of_document(&id).await.unwrap() {
            deliveries.push(format!(
                "{} {} {} {}",
                d.id, d.agency_id, d.state, d.attempts
            ));
        }
    }
    deliveries.sort();
    serde_json::json!({
        "documents": documents, "receipts": receipts, "cases": cases, "deliveries": deliveries,
    })
}

async fn document_ids(gw: &TestGateway) -> Vec<String> {
    gw.unforked_log()
        .await
        .iter()
        .filter(|l| l["event"] == "document.accepted")
        .map(|l| l["document_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn ask(partner: &Partner, method: &str, path: &str, document: &str, signed: bool) -> Answer {
    let body = match method {
        "post" if path.ends_with("/ack") => {
            Some(serde_json::to_vec(&serde_json::json!({ "document_id": document })).unwrap())
        }
        "post" if path.ends_with("/retry") => Some(b"{}".to_vec()),
        "post" => Some(court_notice(77)),
        "put" => Some(b"%PDF-1.7 not for you".to_vec()),
        _ => None,
    };
    let content_type = match (method, path) {
        ("post", "/api/v1/documents") => "application/xml",
        ("put", _) => "application/pdf",
        _ => "application/json",
    };
    let verb = method.to_ascii_uppercase();
    let headers = if signed {
        partner
            .sign(
                &verb,
                path,
                body.as_ref().map(|_| content_type),
                body.as_deref(),
            )
            .unwrap()
    } else {
        Vec::new()
    };
    partner
        .send(
            reqwest::Method::from_bytes(verb.as_bytes()).unwrap(),
            path,
            body.map(|b| (content_type, b)),
            headers,
        )
        .await
        .unwrap()
}

#[actix_web::test]
async fn no_route_lets_a_stranger_an_unsigned_or_a_foreign_signed_request_read_or_change_anything()
{
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let receipt = common::accepted(&court, &court_notice(1), "application/xml").await;
    let document = receipt["document_id"].as_str().unwrap().to_owned();
    let case = receipt["case_id"].as_str().unwrap().to_owned();
    let delivery = gw
        .store()
        .deliveries_of_document(&document)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.agency_id == CORRECTIONS)
        .expect("a delivery to the corrections agency")
        .id;
    let sha = "0".repeat(64);

    let work = tempfile::tempdir().unwrap();
    let foreign = foreign_partner(&gw.base_url, work.path());
    let stranger = gw.partner(STRANGER, Algorithm::EcdsaP256Sha256);
    let before = snapshot(&gw).await;
    let log_before = gw.unforked_log().await.len();

    let mut asked = 0;
    for (method, pattern) in ROUTES {
        if PUBLIC.contains(pattern) {
            continue;
        }
        let path = pattern.replace("{sha256}", &sha).replace(
            "{id}",
            if pattern.starts_with("/api/v1/documents/") {
                &document
            } else if pattern.starts_with("/api/v1/cases/") {
                &case
            } else {
                &delivery
            },
        );
        assert!(
            !path.contains('{'),
            "{pattern}: a parameter this test does not fill"
        );
        let path = if *pattern == "/api/v1/log/entries" {
            format!("{path}?start=0&end=2")
        } else {
            path
        };
        // Unsigned: 401, or 400 for a body without its Content-Digest
        // (checked first: the signature covers it).
        let unsigned = ask(&court, method, &path, &document, false).await;
        assert!(
            unsigned.status == 401 || unsigned.status == 400,
            "{method} {path} unsigned: {}",
            unsigned.status
        );
        let forged = ask(&foreign, method, &path, &document, true).await;
        assert_eq!(
            forged.status, 401,
            "{method} {path} signed by an unknown key"
        );
        // A real agency, party to nothing: may post its own documents, list
        // its own (empty) mailbox and cases, and read log entries (ids and
        // digests, no personal data: every agency may audit), nothing else
        // of the court's.
        let answer = ask(&stranger, method, &path, &document, true).await;
        let own = matches!(
            (*method, *pattern),
            ("get", "/api/v1/mailbox") | ("get", "/api/v1/cases")
        );
        if *pattern == "/api/v1/log/entries" {
            assert_eq!(answer.status, 200, "{method} {path}");
        } else if own {
            assert_eq!(answer.status, 200, "{method} {path}");
            let listed = answer.json().unwrap();
            let text = listed.to_string();
            assert!(
                !text.contains(&document) && !text.contains(&case),
                "{method} {path} shows a stranger the court's documents: {text}"
            );
        } else if (*method, *pattern) == ("post", "/api/v1/documents") {
            // Its own submission of the court's notice: refused as not its own.
            assert!(answer.status >= 400, "{method} {path}: {}", answer.status);
        } else if (*method, *pattern) == ("put", "/api/v1/attachments/{sha256}") {
            // An upload under a digest its bytes do not have: refused.
            assert!(answer.status >= 400, "{method} {path}: {}", answer.status);
        } else {
            assert!(
                answer.status == 403 || answer.status == 404,
                "{method} {path} as a stranger: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        asked += 1;
    }
    assert!(asked >= 10, "only {asked} routes asked");

    assert_eq!(
        snapshot(&gw).await,
        before,
        "a refused request changed something"
    );
    let leaves = gw.unforked_log().await;
    let mut events = std::collections::BTreeMap::new();
    for leaf in &leaves[log_before..] {
        *events
            .entry(leaf["event"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    eprintln!("{asked} routes asked three ways; logged: {events:?}");
    for leaf in &leaves[log_before..] {
        let event = leaf["event"].as_str().unwrap();
        assert!(
            event.contains("rejected") || event.contains("refused") || event == "log.read",
            "a refused request left a log entry of another kind: {leaf}"
        );
    }
    gw.running.handle.stop(true).await;
}
