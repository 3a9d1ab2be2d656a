//! Three gateway instances on one PostgreSQL database, under concurrent load
//! from four court signers that post every notice to two instances at once.
//! Afterwards: every document is stored once, every push is processed once by
//! its (de-duplicating) receiver and receipted once in the log, every pulled
//! copy is acked once, and the exchange log is one sequence with no gaps or
//! forks whose stored Merkle tree is the tree of its leaves.
//!
//! Several instances need PostgreSQL: on the SQLite default the test says so
//! and returns (scripts/test.sh runs every integration test on both).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::receiver::{fast, gateway_pushing_to, listener, serve, Behaviour, Receiver};
use common::{court_notice, TestDatabase, TestGateway};
use corrections_gateway::app::Running;
use corrections_gateway::security::alg::Algorithm;
use futures_util::future::join_all;
use serde_json::Value;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
const PROCURATORATE: &str = "procuratorate.620102";
const POLICE: &str = "police.620102";

/// Notices per court signer.
const PER_SIGNER: usize = 15;
const SIGNERS: [Algorithm; 4] = [
    Algorithm::EcdsaP256Sha256,
    Algorithm::Ed25519,
    Algorithm::Sm2Sm3,
    Algorithm::RsaPssSha512,
];

fn url(running: &Running) -> String {
    format!("http://{}", running.addr)
}

/// How many leaves of `event` name each document id.
fn per_document(leaves: &[Value], event: &str, recipient: Option<&str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for leaf in leaves.iter().filter(|l| l["event"] == event) {
        if recipient.is_some_and(|r| leaf["recipient"] != r) {
            continue;
        }
        *counts
            .entry(leaf["document_id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

#[actix_web::test]
async fn three_instances_on_one_database_lose_and_duplicate_nothing() {
    if !TestDatabase::is_postgres() {
        eprintln!(
            "three_instances_on_one_database: several instances share one PostgreSQL \
             database; this run is on SQLite, so there is nothing to test here"
        );
        return;
    }
    let (corrections_port, corrections_url) = listener();
    let (procuratorate_port, procuratorate_url) = listener();
    let gw = gateway_pushing_to(&[
        (CORRECTIONS, corrections_url),
        (PROCURATORATE, procuratorate_url),
    ])
    .await;
    let corrections = Receiver::new(&gw, CORRECTIONS, Behaviour::Receipt);
    let procuratorate = Receiver::new(&gw, PROCURATORATE, Behaviour::Receipt);
    let servers = [
        serve(corrections_port, corrections.clone()),
        serve(procuratorate_port, procuratorate.clone()),
    ];
    // Two more instances: same data directory (PKI, registry), same database.
    let second = TestGateway::run_on_with(gw.dir.path(), fast).await;
    let third = TestGateway::run_on_with(gw.dir.path(), fast).await;
    let instances = [&gw.running, &second, &third];

    // Each notice goes to two instances at the same moment.
    let mut sends = Vec::new();
    for (s, alg) in SIGNERS.iter().enumerate() {
        for k in 0..PER_SIGNER {
            let n = 1000 + s * PER_SIGNER + k;
            let body = court_notice(n);
            for i in [n % 3, (n + 1) % 3] {
                let partner = gw.partner_at(&url(instances[i]), COURT, *alg);
                let body = body.clone();
                sends.push(async move { (n, partner.submit(&body, "application/xml").await) });
            }
        }
    }
    let posts = sends.len();
    let started = Instant::now();
    let answers = join_all(sends).await;
    let elapsed = started.elapsed();
    let mut ids: BTreeMap<usize, String> = BTreeMap::new();
    let mut created = 0;
    for (n, answer) in answers {
        let answer = answer.unwrap();
        assert!(
            answer.status == 201 || answer.status == 200,
            "notice {n}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        created += usize::from(answer.status == 201);
        let id = answer.json().unwrap()["document_id"]
            .as_str()
            .unwrap()
            .to_owned();
        if let Some(first) = ids.insert(n, id.clone()) {
            assert_eq!(first, id, "both instances answer with the same document");
        }
    }
    let documents = SIGNERS.len() * PER_SIGNER;
    assert_eq!(ids.len(), documents);
    assert_eq!(created, documents, "one 201 per notice, the twin gets 200");
    assert_eq!(gw.count("documents").await, documents as i64);
    eprintln!(
        "three instances: {posts} signed posts ({documents} documents) in {:.2} s = {:.0} posts/s",
        elapsed.as_secs_f64(),
        posts as f64 / elapsed.as_secs_f64()
    );

    // The police pull their copies through the third instance.
    let police = gw.partner_at(&url(&third), POLICE, Algorithm::Ed25519);
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        acked.extend(police.pull_and_ack().await.unwrap());
        let pushed =
            corrections.seen.lock().unwrap().len() + procuratorate.seen.lock().unwrap().len();
        let receipted = gw
            .leaves()
            .await
            .iter()
            .filter(|l| l.contains(r#""event":"delivery.receipted""#))
            .count();
        if acked.len() >= documents && pushed >= 2 * documents && receipted >= 2 * documents {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s: {} acked, {pushed} pushes seen, {receipted} receipted",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    acked.sort();
    let mut expected: Vec<String> = ids.values().cloned().collect();
    expected.sort();
    assert_eq!(acked, expected, "each police copy acked once");
    for receiver in [&corrections, &procuratorate] {
        assert_eq!(
            receiver.processed_once(),
            expected,
            "{} processed each document exactly once",
            receiver.agency
        );
    }

    let leaves = gw.unforked_log().await;
    let accepted = per_document(&leaves, "document.accepted", None);
    assert_eq!(accepted.len(), documents);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    for recipient in [CORRECTIONS, PROCURATORATE] {
        let receipted = per_document(&leaves, "delivery.receipted", Some(recipient));
        assert_eq!(receipted.len(), documents, "{recipient}");
        assert!(
            receipted.values().all(|n| *n == 1),
            "{recipient}: {receipted:?}"
        );
    }
    let pulled = per_document(&leaves, "mailbox.acked", Some(POLICE));
    assert_eq!(pulled.len(), documents);
    assert!(pulled.values().all(|n| *n == 1), "{pulled:?}");
    for running in [second, third] {
        running.handle.stop(true).await;
    }
    gw.running.handle.stop(true).await;
    for server in servers {
        server.stop(true).await;
    }
}
