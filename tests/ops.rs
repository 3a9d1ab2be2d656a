//! Operations endpoints over real HTTP: `/readyz` answers when the database
//! does, and `/metrics` shows what happened — requests by route pattern and
//! status, acceptances, rejections by code, the log's size — with no ids or
//! personal data in any label.

mod common;

use common::{court_notice, edit, TestGateway};
use corrections_gateway::security::alg::Algorithm;

#[actix_web::test]
async fn readiness_and_metrics_tell_what_happened_without_personal_data() {
    let gw = TestGateway::start().await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    let accepted = court
        .submit(&court_notice(1), "application/xml")
        .await
        .unwrap();
    assert_eq!(accepted.status, 201);
    let bad = edit(&court_notice(2), "620102199003070026", "620102199003070027");
    let refused = court.submit(&bad, "application/xml").await.unwrap();
    assert_eq!(refused.status, 422);

    let ready = reqwest::get(format!("{}/readyz", gw.base_url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");

    let metrics = reqwest::get(format!("{}/metrics", gw.base_url))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for needle in [
        "gateway_documents_accepted_total{status=\"201\"}",
        "gateway_rejections_total{code=\"invalid_document\"}",
        "route=\"/api/v1/documents\"",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_log_entries",
        "gateway_log_leaf_index_lag",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
    // Labels are patterns and codes, never a document's values or ids.
    let document_id = accepted.json().unwrap()["document_id"]
        .as_str()
        .unwrap()
        .to_string();
    for secret in ["620102199003070026", "阿依古丽", document_id.as_str()] {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
}
