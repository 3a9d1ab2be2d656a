//! The exchange log as an auditor sees it: a sender proves its receipt is in
//! the signed tree, successive checkpoints are consistent, the offline
//! verifier accepts an untouched log and names every tampering exactly, and a
//! standalone Python script checks the proofs a running gateway serves.

mod common;

use std::path::Path;

use common::{court_notice, TestDatabase, TestGateway};
use corrections_gateway::partner::{Answer, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::xlog::merkle::{self, Hash};
use corrections_gateway::xlog::note::{Checkpoint, NoteVerifier};
use corrections_gateway::xlog::{self, LogEvent};
use serde_json::Value;

const COURT: &str = "court.620102";

fn hash(v: &Value) -> Hash {
    hex::decode(v.as_str().expect("hex string"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(hash).collect()
}

fn verifier(gw: &TestGateway) -> NoteVerifier {
    NoteVerifier::parse(&std::fs::read_to_string(gw.pki().join("log.pub")).unwrap()).unwrap()
}

/// An unsigned GET (the log's public endpoints need no signature).
async fn public_get(partner: &Partner, path: &str) -> Answer {
    partner
        .send(reqwest::Method::GET, path, None, Vec::new())
        .await
        .unwrap()
}

async fn checkpoint(gw: &TestGateway, partner: &Partner) -> Checkpoint {
    let answer = public_get(partner, "/api/v1/log/checkpoint").await;
    assert_eq!(answer.status, 200);
    answer.verify(&gw.gateway_cert()).unwrap();
    Checkpoint::open(std::str::from_utf8(&answer.body).unwrap(), &verifier(gw)).unwrap()
}

async fn submit(partner: &Partner, n: usize) -> Value {
    common::accepted(partner, &court_notice(n), "application/xml").await
}

#[actix_web::test]
async fn a_sender_proves_its_receipt_is_in_the_signed_log() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    submit(&partner, 1).await;
    let receipt = submit(&partner, 2).await;
    submit(&partner, 3).await;

    let cp = checkpoint(&gw, &partner).await;
    assert_eq!(cp.origin, "corrections-gateway.example/log");
    assert_eq!(cp.size, 3);
    let index = receipt["log_index"].as_u64().unwrap();
    let leaf_hash = hash(&receipt["leaf_hash"]);

    // By the receipt's leaf hash …
    let answer = public_get(
        &partner,
        &format!(
            "/api/v1/log/proof/inclusion?leaf_hash={}&tree_size={}",
            hex::encode(leaf_hash),
            cp.size
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.verify(&gw.gateway_cert()).unwrap();
    let proof = answer.json().unwrap();
    assert_eq!(proof["index"].as_u64(), Some(index));
    merkle::verify_inclusion(
        index,
        cp.size,
        &leaf_hash,
        &hashes(&proof["proof"]),
        &cp.root,
    )
    .expect("the receipt's entry is in the signed tree");
    assert_eq!(hash(&proof["root_hash"]), cp.root);

    // … and by its index.
    let by_index = public_get(
        &partner,
        &format!(
            "/api/v1/log/proof/inclusion?index={index}&tree_size={}",
            cp.size
        ),
    )
    .await
    .json()
    .unwrap();
    assert_eq!(by_index["proof"], proof["proof"]);
    assert_eq!(hash(&by_index["leaf_hash"]), leaf_hash);

    // Asking again publishes nothing new: the tree did not grow.
    assert_eq!(checkpoint(&gw, &partner).await, cp);
}

#[actix_web::test]
async fn successive_checkpoints_are_consistent_and_bad_questions_get_problems() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::Ed25519);
    for n in 0..3 {
        submit(&partner, n).await;
    }
    let first = checkpoint(&gw, &partner).await;
    for n in 3..8 {
        submit(&partner, n).await;
    }
    let second = checkpoint(&gw, &partner).await;
    assert_eq!((first.size, second.size), (3, 8));
    let answer = public_get(
        &partner,
        &format!(
            "/api/v1/log/proof/consistency?first={}&second={}",
            first.size, second.size
        ),
    )
    .await;
    assert_eq!(answer.status, 200);
    let proof = answer.json().unwrap();
    assert_eq!(hash(&proof["first_root"]), first.root);
    assert_eq!(hash(&proof["second_root"]), second.root);
    merkle::verify_consistency(
        first.size,
        second.size,
        &first.root,
        &second.root,
        &hashes(&proof["proof"]),
    )
    .expect("the older tree is a prefix of the newer one");

    // The older checkpoint is still served by its size.
    let old = public_get(&partner, "/api/v1/log/checkpoint?size=3").await;
    assert_eq!(
        Checkpoint::open(std::str::from_utf8(&old.body).unwrap(), &verifier(&gw)).unwrap(),
        first
    );

    for (path, status, code) in [
        ("/api/v1/log/proof/inclusion?index=0&tree_size=9", 400, "log_tree_size_too_large"),
        ("/api/v1/log/proof/inclusion?index=8&tree_size=8", 400, "log_range_invalid"),
        ("/api/v1/log/proof/inclusion?index=x&tree_size=8", 400, "log_parameter_invalid"),
        ("/api/v1/log/proof/inclusion?tree_size=8", 400, "log_parameter_invalid"),
        ("/api/v1/log/proof/inclusion?leaf_hash=zz&tree_size=8", 400, "log_parameter_invalid"),
        (
            "/api/v1/log/proof/inclusion?leaf_hash=0000000000000000000000000000000000000000000000000000000000000000&tree_size=8",
            404,
            "log_leaf_not_found",
        ),
        ("/api/v1/log/proof/consistency?first=5&second=4", 400, "log_range_invalid"),
        ("/api/v1/log/proof/consistency?first=1&second=99", 400, "log_tree_size_too_large"),
        ("/api/v1/log/proof/consistency?first=-1&second=4", 400, "log_parameter_invalid"),
        ("/api/v1/log/checkpoint?size=5", 404, "log_checkpoint_not_found"),
        ("/api/v1/log/checkpoint?size=99999999999999999999", 400, "log_parameter_invalid"),
    ] {
        let answer = public_get(&partner, path).await;
        assert_eq!(answer.status, status, "{path}");
        answer.verify(&gw.gateway_cert()).unwrap();
        let problem = answer.json().unwrap();
        assert_eq!(problem["code"], code, "{path}");
        assert!(problem["message"]["zh"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[actix_web::test]
async fn entries_are_read_with_a_signed_request_and_the_read_is_logged() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    submit(&partner, 1).await;
    submit(&partner, 2).await;

    let unsigned = public_get(&partner, "/api/v1/log/entries?start=0&end=2").await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.json().unwrap()["code"], "missing_signature");
    assert_eq!(gw.count("exchange_log").await, 2);

    let answer = partner
        .get("/api/v1/log/entries?start=0&end=100")
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    answer.verify(&gw.gateway_cert()).unwrap();
    let page = answer.json().unwrap();
    assert_eq!(
        (page["start"].as_u64(), page["end"].as_u64()),
        (Some(0), Some(2))
    );
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        use base64::Engine;
        let leaf = base64::engine::general_purpose::STANDARD
            .decode(entry["leaf"].as_str().unwrap())
            .unwrap();
        assert_eq!(hash(&entry["leaf_hash"]), merkle::leaf_hash(&leaf));
    }
    let leaves = gw.leaves().await;
    assert_eq!(leaves.len(), 3, "the read itself is logged");
    assert!(
        leaves[2].contains(r#""event":"log.read""#)
            && leaves[2].contains(r#""reader":"court.620102""#)
            && leaves[2].contains(r#""start":0"#)
            && leaves[2].contains(r#""end":2"#),
        "{}",
        leaves[2]
    );
    let past = partner
        .get("/api/v1/log/entries?start=50&end=60")
        .await
        .unwrap();
    assert_eq!(past.json().unwrap()["code"], "log_tree_size_too_large");
}

/// Exports the gateway's log with the real binary and verifies the bundle.
fn export_and_verify(gw: &TestGateway, bundle: &Path) -> (bool, String) {
    common::export_and_verify_log(gw.database.url(), gw.dir.path(), bundle)
}

#[actix_web::test]
async fn the_offline_verifier_accepts_an_untouched_log_and_names_every_tampering() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    for n in 0..3 {
        submit(&partner, n).await;
    }
    checkpoint(&gw, &partner).await;
    for n in 3..6 {
        submit(&partner, n).await;
    }
    // A refusal is an entry too.
    let refused = partner
        .submit(b"<not-xml", "application/json")
        .await
        .unwrap();
    assert!(refused.status >= 400);
    let last = checkpoint(&gw, &partner).await;
    assert_eq!(last.size, 7);

    let data = gw.dir.path();
    let bundle = data.join("bundle");
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(ok, "an untouched log verifies: {out}");
    assert!(out.contains("ok: 7 entries"), "{out}");
    for file in [
        "log.pub",
        "gateway.crt.pem",
        "entries.jsonl",
        "checkpoints/3.note",
        "checkpoints/7.note",
    ] {
        assert!(bundle.join(file).is_file(), "{file}");
    }

    // Tamper with the database directly, whichever backend the gateway is on.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&gw.running.gateway.settings.database_url)
        .await
        .unwrap();
    let exec = |sql: String| {
        let db = db.clone();
        async move {
            sqlx::query(&sql).execute(&db).await.unwrap();
        }
    };
    let blob = |bytes: &[u8]| {
        if TestDatabase::is_postgres() {
            format!("'\\x{}'::bytea", hex::encode(bytes))
        } else {
            format!("X'{}'", hex::encode(bytes))
        }
    };
    let entry = |i: i64| {
        let db = db.clone();
        async move {
            let row: (Vec<u8>, Vec<u8>) =
                sqlx::query_as("SELECT leaf, leaf_hash FROM exchange_log WHERE idx = $1")
                    .bind(i)
                    .fetch_one(&db)
                    .await
                    .unwrap();
            row
        }
    };

    // A leaf's bytes changed (a document id rewritten).
    let (leaf2, hash2) = entry(2).await;
    let mut forged = String::from_utf8(leaf2.clone()).unwrap();
    forged = forged.replacen("\"document_id\":\"", "\"document_id\":\"0", 1);
    exec(format!(
        "UPDATE exchange_log SET leaf = {} WHERE idx = 2",
        blob(forged.as_bytes())
    ))
    .await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(out.contains("entry 2: stored leaf_hash"), "{out}");

    exec(format!(
        "UPDATE exchange_log SET leaf = {} WHERE idx = 2",
        blob(&leaf2)
    ))
    .await;
    assert_eq!(entry(2).await.1, hash2);

    // A leaf forged with its hash recomputed to match: the subtree above it
    // (or a checkpoint covering it) betrays it.
    let (leaf4, hash4) = entry(4).await;
    let forged = String::from_utf8(leaf4.clone()).unwrap().replacen(
        "\"document_id\":\"",
        "\"document_id\":\"0",
        1,
    );
    exec(format!(
        "UPDATE exchange_log SET leaf = {}, leaf_hash = {} WHERE idx = 4",
        blob(forged.as_bytes()),
        blob(&merkle::leaf_hash(forged.as_bytes()))
    ))
    .await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("entry 5: the stored node (level 1, index 2) over leaves 4..5 is"),
        "{out}"
    );
    exec(format!(
        "UPDATE exchange_log SET leaf = {}, leaf_hash = {} WHERE idx = 4",
        blob(&leaf4),
        blob(&hash4)
    ))
    .await;

    // A leaf re-serialised (same JSON, not canonical), hash recomputed.
    let (leaf4, hash4) = entry(4).await;
    let pretty =
        serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&leaf4).unwrap()).unwrap();
    exec(format!(
        "UPDATE exchange_log SET leaf = {}, leaf_hash = {} WHERE idx = 4",
        blob(&pretty),
        blob(&merkle::leaf_hash(&pretty))
    ))
    .await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("entry 4: the leaf is not RFC 8785 canonical JSON"),
        "{out}"
    );
    exec(format!(
        "UPDATE exchange_log SET leaf = {}, leaf_hash = {} WHERE idx = 4",
        blob(&leaf4),
        blob(&hash4)
    ))
    .await;

    // A stored subtree hash changed.
    let (node,): (Vec<u8>,) =
        sqlx::query_as("SELECT hash FROM log_nodes WHERE level = 2 AND idx = 0")
            .fetch_one(&db)
            .await
            .unwrap();
    exec(format!(
        "UPDATE log_nodes SET hash = {} WHERE level = 2 AND idx = 0",
        blob(&[7u8; 32])
    ))
    .await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("entry 3: the stored node (level 2, index 0) over leaves 0..3 is 0707"),
        "{out}"
    );
    exec(format!(
        "UPDATE log_nodes SET hash = {} WHERE level = 2 AND idx = 0",
        blob(&node)
    ))
    .await;

    // A subtree hash deleted.
    exec("DELETE FROM log_nodes WHERE level = 1 AND idx = 2".into()).await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("entry 5: the stored node (level 1, index 2) over leaves 4..5 is missing"),
        "{out}"
    );
    exec(format!(
        "INSERT INTO log_nodes (level, idx, hash) VALUES (1, 2, {})",
        blob(&merkle::node_hash(
            &entry(4).await.1.try_into().unwrap(),
            &entry(5).await.1.try_into().unwrap()
        ))
    ))
    .await;

    // A checkpoint's note edited (its size claims less).
    let (note,): (String,) = sqlx::query_as("SELECT note FROM checkpoints WHERE tree_size = 3")
        .fetch_one(&db)
        .await
        .unwrap();
    exec(format!(
        "UPDATE checkpoints SET note = '{}' WHERE tree_size = 3",
        note.replacen("\n3\n", "\n2\n", 1)
    ))
    .await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains(
            "checkpoint 3: the signature by corrections-gateway.example/log does not verify"
        ),
        "{out}"
    );
    exec(format!(
        "UPDATE checkpoints SET note = '{note}' WHERE tree_size = 3"
    ))
    .await;

    // An entry removed from the middle, then the newest one.
    let (leaf1, hash1) = entry(1).await;
    exec("DELETE FROM exchange_log WHERE idx = 1".into()).await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("entry 1: missing (the next line is entry 2)"),
        "{out}"
    );
    exec(format!(
        "INSERT INTO exchange_log (idx, leaf, leaf_hash, logged_at) VALUES (1, {}, {}, 0)",
        blob(&leaf1),
        blob(&hash1)
    ))
    .await;
    let (leaf6, hash6) = entry(6).await;
    exec("DELETE FROM exchange_log WHERE idx = 6".into()).await;
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(!ok);
    assert!(
        out.contains("checkpoint 7: it commits to 7 entries, the bundle has 6"),
        "{out}"
    );
    exec(format!(
        "INSERT INTO exchange_log (idx, leaf, leaf_hash, logged_at) VALUES (6, {}, {}, 0)",
        blob(&leaf6),
        blob(&hash6)
    ))
    .await;

    // Everything restored: it verifies again.
    let (ok, out) = export_and_verify(&gw, &bundle);
    assert!(ok, "{out}");
}

#[actix_web::test]
async fn the_standalone_python_script_checks_the_gateways_proofs() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::Sm2Sm3);
    submit(&partner, 1).await;
    let first = checkpoint(&gw, &partner).await;
    let receipt = submit(&partner, 2).await;
    for n in 3..6 {
        submit(&partner, n).await;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify_proof.py");
    let vkey = std::fs::read_to_string(gw.pki().join("log.pub")).unwrap();
    let url = gw.base_url.clone();
    let python = |args: Vec<String>| {
        let (script, url, vkey) = (script.clone(), url.clone(), vkey.clone());
        async move {
            let out = tokio::process::Command::new("python3")
                .arg(&script)
                .args(["--url", &url, "--vkey", vkey.trim()])
                .args(args)
                .output()
                .await
                .expect("python3 runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };
    let leaf_hash = receipt["leaf_hash"].as_str().unwrap().to_string();
    let (ok, out) = python(vec!["inclusion".into(), "--leaf-hash".into(), leaf_hash]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("is entry 1 of the signed tree of 5 entries"),
        "{out}"
    );
    let (ok, out) = python(vec![
        "consistency".into(),
        "--first".into(),
        first.size.to_string(),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("the signed tree of 1 entries is a prefix of the signed tree of 5"),
        "{out}"
    );
    let (ok, out) = python(vec![
        "inclusion".into(),
        "--leaf-hash".into(),
        "ab".repeat(32),
    ])
    .await;
    assert!(!ok, "an unknown leaf is not verified: {out}");
}

/// The leaf-hash index fills behind the log: a leaf is found by its hash
/// whether the indexer has reached it or not, each leaf is indexed once
/// however often the indexer runs, and hashes that are not there (or only
/// above the tree size asked about) are not found.
#[tokio::test]
async fn leaves_are_found_by_hash_before_and_after_the_indexer_reaches_them() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let url = match database.url() {
        Some(url) => url.to_string(),
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("leaves.db").display()
        ),
    };
    let store =
        corrections_gateway::store::Store::open(&url, 2, Path::new(env!("CARGO_MANIFEST_DIR")))
            .await
            .unwrap();
    let at = time::OffsetDateTime::now_utc();
    let leaves: Vec<_> = (0..300)
        .map(|i| {
            xlog::prepare(
                &LogEvent::DocumentRead {
                    document_id: format!("doc-{i}"),
                    reader: "corrections.620102".into(),
                    view: "canonical".into(),
                },
                at,
            )
        })
        .collect();
    let (first, rest) = leaves.split_at(200);
    store.append_log_batch(first).await.unwrap();
    let found = |i: usize, size: u64| {
        let store = &store;
        let hash = leaves[i].leaf_hash;
        async move { store.leaf_index(&hash, size).await.unwrap() }
    };
    // Nothing indexed yet: every lookup scans the tail.
    assert_eq!(store.leaf_index_lag().await.unwrap(), 200);
    assert_eq!(found(0, 200).await, Some(0));
    assert_eq!(found(199, 200).await, Some(199));
    assert_eq!(
        found(150, 150).await,
        None,
        "above the tree size asked about"
    );

    // Indexed in batches of 64, then more leaves arrive unindexed.
    assert_eq!(store.index_leaf_hashes(64).await.unwrap(), 200);
    assert_eq!(store.leaf_index_lag().await.unwrap(), 0);
    store.append_log_batch(rest).await.unwrap();
    assert_eq!(store.leaf_index_lag().await.unwrap(), 100);
    for i in [0, 63, 64, 199, 200, 299] {
        assert_eq!(found(i, 300).await, Some(i as u64), "leaf {i}");
    }
    assert_eq!(found(250, 250).await, None);
    assert_eq!(
        found(100, 100).await,
        None,
        "indexed, but not below the tree size"
    );
    let absent = merkle::leaf_hash(b"never logged");
    assert_eq!(store.leaf_index(&absent, 300).await.unwrap(), None);

    assert_eq!(store.index_leaf_hashes(1000).await.unwrap(), 100);
    assert_eq!(
        store.index_leaf_hashes(1000).await.unwrap(),
        0,
        "nothing twice"
    );
    assert_eq!(store.count("log_leaf_index").await.unwrap(), 300);
    assert_eq!(found(299, 300).await, Some(299));
    store.close().await;
    drop(database);
}
