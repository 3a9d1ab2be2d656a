//! Partners sending at the same moment. On SQLite every write goes through one
//! connection; on PostgreSQL several writer connections commit at once, so
//! these are the tests that show the store stays right there too: every
//! exchange-log entry gets its own index and the Merkle tree does not fork, the same
//! document sent twice at once is stored once, and one signature is accepted once.

mod common;

use common::{court_notice, TestGateway};
use corrections_gateway::security::alg::Algorithm;
use futures_util::future::join_all;

const COURT: &str = "court.620102";

#[actix_web::test]
async fn simultaneous_submissions_and_reads_each_get_their_own_log_entry() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let bodies: Vec<Vec<u8>> = (0..16).map(court_notice).collect();
    let answers = join_all(bodies.iter().map(|b| partner.submit(b, "application/xml"))).await;
    let mut indexes = Vec::new();
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(
            answer.status,
            201,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let receipt = answer.json().unwrap();
        indexes.push(receipt["log_index"].as_i64().unwrap());
        ids.push(receipt["document_id"].as_str().unwrap().to_string());
    }
    indexes.sort();
    assert_eq!(indexes, (0..16).collect::<Vec<i64>>(), "one index each");
    // Sent at once, they were committed in fewer transactions than documents
    // (group commit), and each is answered only after its group committed.
    let (groups, documents) = gw.store().commit_groups();
    assert_eq!(documents, 16);
    assert!(groups < 16, "{groups} groups for 16 documents sent at once");

    // Reads are logged too (before the bytes leave): again all at once.
    let reader = gw.partner("corrections.620102", Algorithm::Ed25519);
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/documents/{id}"))
        .collect();
    for read in join_all(paths.iter().map(|p| reader.get(p))).await {
        assert_eq!(read.unwrap().status, 200);
    }
    assert_eq!(gw.unforked_log().await.len(), 32);
    assert_eq!(gw.count("documents").await, 16);
}

#[actix_web::test]
async fn the_same_document_sent_twice_at_once_is_stored_once() {
    let gw = TestGateway::start().await;
    // Two signers of the same court, so the two copies carry different signatures.
    let first = gw.partner(COURT, Algorithm::Ed25519);
    let second = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let bodies: Vec<Vec<u8>> = (0..4).map(court_notice).collect();
    let sends = bodies.iter().flat_map(|b| {
        [
            first.submit(b, "application/xml"),
            second.submit(b, "application/xml"),
        ]
    });
    let answers: Vec<_> = join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for pair in answers.chunks(2) {
        let mut statuses = [pair[0].status, pair[1].status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 201],
            "one stored, one told it was: {} / {}",
            String::from_utf8_lossy(&pair[0].body),
            String::from_utf8_lossy(&pair[1].body)
        );
        assert_eq!(pair[0].body, pair[1].body, "the same receipt");
    }
    assert_eq!(gw.count("documents").await, 4);
    assert_eq!(gw.count("receipts").await, 4);
    assert_eq!(gw.unforked_log().await.len(), 4);
    // Twins meeting in one group were told apart by the group's own reads,
    // not by the one-at-a-time fallback (store/rows.rs).
    assert_eq!(gw.store().commit_fallbacks(), 0);
}

#[actix_web::test]
async fn one_signature_sent_twice_at_once_is_accepted_once() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::Ed25519);
    let body = court_notice(1);
    let headers = partner
        .sign(
            "POST",
            "/api/v1/documents",
            Some("application/xml"),
            Some(&body),
        )
        .unwrap();
    let send = || {
        partner.send(
            reqwest::Method::POST,
            "/api/v1/documents",
            Some(("application/xml", body.clone())),
            headers.clone(),
        )
    };
    let answers = join_all([send(), send(), send()]).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.as_ref().unwrap().status).collect();
    statuses.sort();
    assert_eq!(statuses[0], 201, "{statuses:?}");
    for answer in answers
        .iter()
        .map(|a| a.as_ref().unwrap())
        .filter(|a| a.status != 201)
    {
        assert_eq!(answer.json().unwrap()["code"], "replayed_signature");
    }
    assert_eq!(gw.count("documents").await, 1);
    assert_eq!(gw.count("seen_signatures").await, 1);
}
