//! Retention over real HTTP with real signatures: documents of different
//! ages (the gateway's and the partners' clock shifted back years, then
//! months), a purge by the real binary, and then proof that exactly the
//! expired bodies, attachments and personal data went while every digest,
//! receipt, delivery, case and log entry stayed: the exported log verifies,
//! the purged documents' inclusion proofs verify, the API answers 410 for
//! their bodies, and a second run purges nothing. A second test runs steady
//! traffic over simulated months and shows the bodies' storage stop growing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{cli_on, native, scans, TestGateway};
use corrections_gateway::clock::Clock;
use corrections_gateway::config::{RetentionMode, RetentionSettings};
use corrections_gateway::formats::Dialect;
use corrections_gateway::partner::Partner;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use corrections_gateway::xlog::merkle::{self, Hash};
use corrections_gateway::xlog::note::{Checkpoint, NoteVerifier};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
const PROCURATORATE: &str = "procuratorate.620102";
const POLICE: &str = "police.620102";

/// Every agency of the demo registry (each acks its mailbox).
const AGENCIES: [&str; 7] = [
    COURT,
    PROCURATORATE,
    POLICE,
    "police.620102.2",
    "prison.620000.3",
    "prison_admin.620000",
    CORRECTIONS,
];

fn partner(gw: &TestGateway, agency: &str) -> Partner {
    gw.partner(agency, Algorithm::EcdsaP256Sha256)
}

/// `issued_at` an hour before the shared clock's now, Beijing time.
fn issued(gw: &TestGateway) -> String {
    let at = (gw.clock.now() - Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap()
        .to_offset(time::macros::offset!(+8));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A whole assessment (request, acked, opinion): the case ends `concluded`.
/// Returns the two documents' receipts.
async fn closed_assessment(gw: &TestGateway, n: usize) -> Vec<Value> {
    let court = partner(gw, COURT);
    let corrections = partner(gw, CORRECTIONS);
    let (bytes, content_type) = native(
        gw,
        Dialect::Court,
        "assessment.request",
        json!({"issued_at": issued(gw), "document_no": format!("甘0102刑评委〔2024〕{n}号")}),
    );
    let request = common::accepted(&court, &bytes, &content_type).await;
    corrections.pull_and_ack().await.unwrap();
    let (bytes, content_type) = native(
        gw,
        Dialect::Corrections,
        "assessment.opinion",
        json!({"in_reply_to": request["document_id"], "issued_at": issued(gw),
               "document_no": format!("城矫评〔2024〕{n}号")}),
    );
    let opinion = common::accepted(&corrections, &bytes, &content_type).await;
    let case = court
        .get(&format!(
            "/api/v1/cases/{}",
            request["case_id"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(case["state"], "concluded");
    vec![request, opinion]
}

/// A court notice carrying `attachments` in a multipart/related body (its
/// handover case stays open, waiting for the receipt).
async fn notice_with_scans(gw: &TestGateway, n: usize, attachments: &[&[u8]]) -> Value {
    let listed: Vec<(&str, &[u8], bool)> = attachments
        .iter()
        .map(|bytes| ("PJS", *bytes, true))
        .collect();
    let notice = scans::notice_with(n, &listed);
    let (content_type, body) = scans::multipart(&notice, attachments);
    common::accepted(&partner(gw, COURT), &body, &content_type).await
}

async fn ack_all(gw: &TestGateway, except: &[&str]) {
    for agency in AGENCIES.iter().filter(|a| !except.contains(a)) {
        partner(gw, agency).pull_and_ack().await.unwrap();
    }
}

/// Moves the shared clock (a restart: the clock is fixed at start-up).
async fn at(gw: &mut TestGateway, when: OffsetDateTime) {
    gw.clock = Clock::starting_at(when);
    gw.restart().await;
}

fn id(receipt: &Value) -> String {
    receipt["document_id"].as_str().unwrap().to_string()
}

/// Every blob file under DIR/blobs (not the temporary directory): name → size.
fn blob_files(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, u64>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != "tmp" {
                    walk(&path, out);
                }
            } else {
                out.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.metadata().unwrap().len(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&dir.join("blobs"), &mut out);
    out
}

/// Everything of one document the purge must not touch, plus its body.
#[derive(Debug, PartialEq)]
struct Kept {
    sender: String,
    message_type: String,
    body_sha256: String,
    parties: Vec<(String, String)>,
    received_at_ms: i64,
    signature: (String, String, String, String),
    receipt: Option<Vec<u8>>,
    deliveries: Vec<(String, String, Vec<u8>)>,
}

async fn snapshot(gw: &TestGateway, id: &str) -> (Kept, Vec<u8>, String, Option<i64>) {
    let store = gw.store();
    let doc = store.document(id).await.unwrap().expect("document row");
    let evidence = store
        .document_evidence(id)
        .await
        .unwrap()
        .expect("evidence");
    let kept = Kept {
        sender: doc.sender,
        message_type: doc.message_type,
        body_sha256: doc.body_sha256,
        parties: doc.parties,
        received_at_ms: doc.received_at_ms,
        signature: (
            evidence.signature.keyid,
            evidence.signature.signature,
            evidence.signature.signature_base,
            evidence.signature.signer_certificate,
        ),
        receipt: evidence.receipt,
        deliveries: evidence
            .deliveries
            .into_iter()
            .map(|(d, a, e)| (d, a, e.body))
            .collect(),
    };
    (kept, doc.original, doc.canonical, doc.purged_at_ms)
}

/// Row counts of every table retention could touch.
async fn counts(gw: &TestGateway) -> BTreeMap<&'static str, i64> {
    let mut out = BTreeMap::new();
    for table in [
        "documents",
        "document_parties",
        "signatures",
        "seen_signatures",
        "receipts",
        "cases",
        "case_parties",
        "deadlines",
        "attachment_uploads",
        "document_attachments",
        "document_envelopes",
        "deliveries",
        "document_subjects",
    ] {
        out.insert(table, gw.count(table).await);
    }
    out
}

fn verifier(gw: &TestGateway) -> NoteVerifier {
    NoteVerifier::parse(&std::fs::read_to_string(gw.pki().join("log.pub")).unwrap()).unwrap()
}

fn hash(v: &Value) -> Hash {
    hex::decode(v.as_str().expect("hex"))
        .unwrap()
        .try_into()
        .unwrap()
}

/// The receipt's entry is in the signed tree the gateway publishes now.
async fn proves_inclusion(gw: &TestGateway, receipt: &Value) {
    let court = partner(gw, COURT);
    let cp = court
        .send(
            reqwest::Method::GET,
            "/api/v1/log/checkpoint",
            None,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(cp.status, 200);
    let cp = Checkpoint::open(std::str::from_utf8(&cp.body).unwrap(), &verifier(gw)).unwrap();
    let leaf_hash = hash(&receipt["leaf_hash"]);
    let proof = court
        .send(
            reqwest::Method::GET,
            &format!(
                "/api/v1/log/proof/inclusion?leaf_hash={}&tree_size={}",
                hex::encode(leaf_hash),
                cp.size
            ),
            None,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(proof.status, 200);
    let proof = proof.json().unwrap();
    let path: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    merkle::verify_inclusion(
        receipt["log_index"].as_u64().unwrap(),
        cp.size,
        &leaf_hash,
        &path,
        &cp.root,
    )
    .expect("a purged document's receipt is still in the signed tree");
}

fn export_and_verify(gw: &TestGateway, bundle: &Path) {
    let (ok, out) = common::export_and_verify_log(gw.database.url(), gw.dir.path(), bundle);
    assert!(ok, "log verify after the purge: {out}");
}

const POLICY: &str = "[retention]\nmode = \"archive\"\nclosed_case_days = 730\ninactive_case_days = 1095\ndocument_days = 730\n";

#[actix_web::test]
async fn a_purge_removes_exactly_the_expired_bodies_and_keeps_the_proof() {
    let now = OffsetDateTime::now_utc();
    let mut gw = TestGateway::start_at(now - Duration::days(4 * 365)).await;
    // The policy the CLI reads (DIR/gateway.toml): closed cases 2 years,
    // inactive cases 3 years, archive before purging.
    std::fs::write(gw.dir.path().join("gateway.toml"), POLICY).unwrap();
    let shared_scan = scans::scan(1, 3000);
    let old_scan = scans::scan(2, 5000);
    let new_scan = scans::scan(3, 4000);

    // Four years ago: a concluded assessment, a handover notice with scans
    // (its case never went on: inactive for four years), all confirmed …
    let old_case = closed_assessment(&gw, 1).await;
    let old_notice = notice_with_scans(&gw, 1, &[&shared_scan, &old_scan]).await;
    ack_all(&gw, &[]).await;
    // … and a notice the police never confirmed: owed, so never purged.
    let owed = common::accepted(
        &partner(&gw, COURT),
        &common::court_notice(2),
        "application/xml",
    )
    .await;

    // Two hundred days ago: another concluded assessment and a notice that
    // shares a scan with the old one.
    at(&mut gw, now - Duration::days(200)).await;
    let new_case = closed_assessment(&gw, 2).await;
    let new_notice = notice_with_scans(&gw, 3, &[&shared_scan, &new_scan]).await;
    ack_all(&gw, &[POLICE]).await;

    let mut expired: Vec<&Value> = old_case.iter().collect();
    expired.push(&old_notice);
    let expired: BTreeSet<String> = expired.into_iter().map(id).collect();
    let mut all: Vec<String> = expired.iter().cloned().collect();
    for receipt in new_case.iter().chain([&owed, &new_notice]) {
        all.push(id(receipt));
    }
    let mut before = BTreeMap::new();
    for doc in &all {
        before.insert(doc.clone(), snapshot(&gw, doc).await);
    }
    let counts_before = counts(&gw).await;
    let log_before = gw.leaves().await;
    let blobs_before = blob_files(gw.dir.path());
    let old_envelope = before[&id(&old_notice)].0.body_sha256.clone();
    assert!(
        blobs_before.contains_key(&old_envelope),
        "the envelope is a blob"
    );

    // A dry run names what has run out and changes nothing.
    let dir = gw.dir.path().to_str().unwrap().to_string();
    let (ok, out) = cli_on(
        gw.database.url(),
        &["retention", "run", "--dry-run", "--dir", &dir],
    );
    assert!(ok, "{out}");
    assert!(out.contains("3 documents have run out"), "{out}");
    assert_eq!(gw.leaves().await, log_before);
    assert_eq!(counts(&gw).await, counts_before);

    // The real run, by the real binary.
    let (ok, out) = cli_on(gw.database.url(), &["retention", "run", "--dir", &dir]);
    assert!(ok, "{out}");
    assert!(out.contains("purged / 已清除: 3 documents"), "{out}");

    // Exactly the expired bodies are gone; every other field of every
    // document, and every other document, is as it was.
    for doc in &all {
        let (kept, original, canonical, purged_at) = snapshot(&gw, doc).await;
        let (kept_before, original_before, canonical_before, _) = &before[doc];
        assert_eq!(&kept, kept_before, "{doc}: proof kept");
        if expired.contains(doc) {
            assert!(original.is_empty() && canonical.is_empty(), "{doc} purged");
            assert!(purged_at.is_some());
            assert!(!original_before.is_empty());
        } else {
            assert_eq!(&original, original_before, "{doc}: body kept");
            assert_eq!(&canonical, canonical_before, "{doc}: canonical kept");
            assert_eq!(purged_at, None);
        }
    }
    // Row counts: only the personal-data index lost the expired documents' rows.
    let mut expected = counts_before.clone();
    *expected.get_mut("document_subjects").unwrap() -= 3;
    assert_eq!(counts(&gw).await, expected);
    // The clerks' search no longer finds the person in the purged documents.
    let found = gw
        .store()
        .search_documents(&corrections_gateway::store::Search {
            id_number: Some("620102199508210039"),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let found: BTreeSet<String> = found.into_iter().map(|f| f.document_id).collect();
    assert!(
        found.contains(&id(&new_case[0])),
        "kept documents are still found"
    );
    assert!(found.is_disjoint(&expired), "purged documents are not");
    // Blobs: the old scan and the old envelope went; the shared scan stays
    // (a kept document names it), and so does everything else.
    let mut blobs_expected = blobs_before.clone();
    blobs_expected.remove(&sha256_hex(&old_scan));
    blobs_expected.remove(&old_envelope);
    assert_eq!(blob_files(gw.dir.path()), blobs_expected);
    // The log: the old entries untouched, plus one retention.purged entry
    // with ids and counts only.
    let log_after = gw.leaves().await;
    assert_eq!(&log_after[..log_before.len()], &log_before[..]);
    assert_eq!(log_after.len(), log_before.len() + 1);
    let purged: Value = serde_json::from_str(&log_after[log_before.len()]).unwrap();
    assert_eq!(purged["event"], "retention.purged");
    assert_eq!(purged["mode"], "archive");
    assert_eq!(purged["subjects"], 3);
    assert_eq!(purged["attachments"], 2);
    let logged: BTreeSet<String> = purged["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(logged, expired);
    for personal in ["马小龙", "620102199508210039", "阿依古丽", "PJS-"] {
        assert!(
            !log_after.iter().any(|l| l.contains(personal)),
            "{personal} in the log"
        );
    }

    // The archive holds what was purged, vouched for by the log entry.
    let archives: Vec<PathBuf> = std::fs::read_dir(gw.dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 1);
    let batch = std::fs::read(archives[0].join("batch-0001.jsonl")).unwrap();
    assert_eq!(purged["archive_sha256"], sha256_hex(&batch).as_str());
    let lines: Vec<Value> = batch
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let doc = line["document_id"].as_str().unwrap();
        let original = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            line["original_base64"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(original, before[doc].1, "{doc}: archived bytes");
        assert_eq!(line["canonical"], before[doc].2.as_str());
        assert!(line["subject"]["id_number"].is_string());
    }
    for blob in [
        sha256_hex(&old_scan),
        old_envelope.clone(),
        sha256_hex(&shared_scan),
    ] {
        let copy = std::fs::read(archives[0].join("blobs").join(&blob)).unwrap();
        assert_eq!(sha256_hex(&copy), blob, "archived blob matches its name");
    }

    // The exported log verifies offline, and each purged document's receipt
    // still proves its inclusion in the signed tree.
    let bundle = tempfile::tempdir().unwrap();
    export_and_verify(&gw, &bundle.path().join("log"));
    for receipt in old_case.iter().chain([&old_notice]) {
        proves_inclusion(&gw, receipt).await;
    }

    // The evidence bundle of the purged case still verifies offline: the
    // signatures against the logged digests, the receipts, the inclusion.
    let g = &gw.running.gateway;
    let case = g
        .store
        .case(old_case[0]["case_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let cp = corrections_gateway::xlog::checkpoints::publish(&g.store, &g.log_key)
        .await
        .unwrap();
    let certificate = String::from_utf8(g.identity.certificate.to_pem().unwrap()).unwrap();
    let bundle = corrections_gateway::xlog::evidence::build(
        &g.store,
        &g.trust,
        &g.log_key.verifier_key(),
        &certificate,
        &case,
        &cp,
        "2026-01-01T00:00:00+08:00".into(),
    )
    .await
    .unwrap();
    let bundle = serde_json::to_vec(&bundle).unwrap();
    let evidence: Value = serde_json::from_slice(&bundle).unwrap();
    assert_eq!(evidence["documents"].as_array().unwrap().len(), 2);
    assert!(evidence["documents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["purged"] == true && d["original"] == ""));
    corrections_gateway::xlog::evidence::verify(&bundle)
        .expect("the purged case's evidence bundle verifies");

    // The API: 410 for a purged body (and its attachments), in both
    // languages, to a party; 404 to anyone else; kept documents as before.
    let court = partner(&gw, COURT);
    for path in [
        format!("/api/v1/documents/{}", id(&old_case[0])),
        format!("/api/v1/documents/{}/canonical", id(&old_case[0])),
        format!(
            "/api/v1/documents/{}/attachments/{}",
            id(&old_notice),
            sha256_hex(&old_scan)
        ),
    ] {
        let answer = court.get(&path).await.unwrap();
        assert_eq!(answer.status, 410, "{path}");
        let problem = answer.json().unwrap();
        assert_eq!(problem["code"], "document_purged");
        assert!(problem["message"]["zh"]
            .as_str()
            .unwrap()
            .contains("保存期限"));
        assert!(problem["message"]["en"]
            .as_str()
            .unwrap()
            .contains("retention"));
    }
    let stranger = partner(&gw, "prison.620000.3");
    let answer = stranger
        .get(&format!("/api/v1/documents/{}", id(&old_case[0])))
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    let kept = court
        .get(&format!("/api/v1/documents/{}", id(&new_case[0])))
        .await
        .unwrap();
    assert_eq!(kept.status, 200);
    let kept_scan = court
        .get(&format!(
            "/api/v1/documents/{}/attachments/{}",
            id(&new_notice),
            sha256_hex(&shared_scan)
        ))
        .await
        .unwrap();
    assert_eq!(kept_scan.status, 200);
    assert_eq!(kept_scan.body, shared_scan);

    // A second run (the serving gateway's own, at its clock, and the CLI's)
    // purges nothing and logs nothing.
    let log_size = gw.leaves().await.len();
    let report = corrections_gateway::retention::run(
        gw.store(),
        &gw.running.gateway.blobs,
        &settings(RetentionMode::Archive, 730, 1095, 730),
        now,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.documents, report.blobs_removed, report.log_entries),
        (0, 0, 0)
    );
    let (ok, out) = cli_on(gw.database.url(), &["retention", "run", "--dir", &dir]);
    assert!(ok, "{out}");
    assert!(out.contains("purged / 已清除: 0 documents"), "{out}");
    assert_eq!(gw.leaves().await.len(), log_size);
    gw.unforked_log().await;
}

/// Bytes of document bodies in the database plus the blob files.
async fn stored(gw: &TestGateway) -> u64 {
    let blobs: u64 = blob_files(gw.dir.path()).values().sum();
    gw.store().body_bytes().await.unwrap() as u64 + blobs
}

fn settings(mode: RetentionMode, closed: u32, inactive: u32, document: u32) -> RetentionSettings {
    RetentionSettings {
        mode,
        closed_case_days: closed,
        inactive_case_days: inactive,
        document_days: document,
        ..RetentionSettings::default()
    }
}

/// Steady traffic for a simulated year — each month a concluded assessment
/// and a notice with a fresh scan, everything confirmed — with a purge at the
/// end of each month under a 45-day period: the bytes of bodies in the
/// database plus the blob files level off once the first documents expire,
/// while what was ever received keeps growing.
#[actix_web::test]
async fn under_steady_traffic_with_retention_the_bodies_storage_stops_growing() {
    let start = OffsetDateTime::now_utc() - Duration::days(400);
    let mut gw = TestGateway::start_at(start).await;
    let policy = settings(RetentionMode::Purge, 45, 45, 45);
    let mut held = Vec::new();
    let mut received = 0u64;
    for month in 0..12usize {
        if month > 0 {
            at(&mut gw, start + Duration::days(30 * month as i64)).await;
        }
        closed_assessment(&gw, 100 + month).await;
        let scan = scans::scan(month as u8 + 10, 20_000);
        notice_with_scans(&gw, 100 + month, &[&scan]).await;
        ack_all(&gw, &[]).await;
        // What this month brought (what would pile up without retention).
        received += stored(&gw).await - held.last().copied().unwrap_or(0);
        let report = corrections_gateway::retention::run(
            gw.store(),
            &gw.running.gateway.blobs,
            &policy,
            gw.clock.now(),
            false,
        )
        .await
        .unwrap();
        held.push(stored(&gw).await);
        if month >= 2 {
            assert_eq!(
                report.documents, 3,
                "month {month}: one month's documents expire"
            );
        }
    }
    // From month 2 on each purge leaves the last two months: level.
    let settled = &held[2..];
    let (low, high) = (
        *settled.iter().min().unwrap(),
        *settled.iter().max().unwrap(),
    );
    assert!(
        high <= low + low / 10,
        "storage per month {held:?} does not level off"
    );
    assert!(held[11] < held[2] * 2, "{held:?}");
    assert!(
        received > 5 * held[11],
        "received {received} vs held {held:?}"
    );
    gw.unforked_log().await;
}

/// Two runs at once — as two gateway instances on one PostgreSQL would
/// start them (several writer connections there) — purge and log each
/// document exactly once between them.
#[actix_web::test]
async fn two_runs_at_once_purge_and_log_each_document_once() {
    let now = OffsetDateTime::now_utc();
    let gw = TestGateway::start_at(now - Duration::days(400)).await;
    let mut ids = BTreeSet::new();
    for n in 0..4 {
        ids.extend(closed_assessment(&gw, 200 + n).await.iter().map(id));
    }
    ack_all(&gw, &[]).await;
    let log_before = gw.leaves().await.len();
    let policy = RetentionSettings {
        batch: 2,
        ..settings(RetentionMode::Purge, 100, 100, 100)
    };
    let blobs = &gw.running.gateway.blobs;
    let (a, b) = tokio::join!(
        corrections_gateway::retention::run(gw.store(), blobs, &policy, now, false),
        corrections_gateway::retention::run(gw.store(), blobs, &policy, now, false),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.documents + b.documents, 8, "{a:?} {b:?}");
    let entries: Vec<Value> = gw.leaves().await[log_before..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len() as u64, a.log_entries + b.log_entries);
    let mut logged = Vec::new();
    for entry in &entries {
        assert_eq!(entry["event"], "retention.purged");
        logged.extend(
            entry["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string()),
        );
    }
    logged.sort();
    assert_eq!(logged, ids.into_iter().collect::<Vec<_>>(), "each once");
    gw.unforked_log().await;
}

/// An agency's upload record outlives the blob retention removed: a new
/// document that references those bytes is refused until they are
/// uploaded again, and then accepted with them.
#[actix_web::test]
async fn a_reference_to_a_purged_upload_asks_for_the_bytes_again() {
    let now = OffsetDateTime::now_utc();
    let gw = TestGateway::start_at(now - Duration::days(400)).await;
    let court = partner(&gw, COURT);
    let scan = scans::scan(42, 3000);
    let sha = sha256_hex(&scan);
    let upload = |partner: Partner, bytes: Vec<u8>| {
        let path = format!("/api/v1/attachments/{}", sha256_hex(&bytes));
        async move {
            let headers = partner
                .sign("PUT", &path, Some("application/pdf"), Some(&bytes))
                .unwrap();
            partner
                .send(
                    reqwest::Method::PUT,
                    &path,
                    Some(("application/pdf", bytes)),
                    headers,
                )
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(upload(partner(&gw, COURT), scan.clone()).await, 201);
    let first = scans::notice_with(300, &[("PJS", &scan, true)]);
    common::accepted(&court, &first, "application/xml").await;
    ack_all(&gw, &[]).await;
    let report = corrections_gateway::retention::run(
        gw.store(),
        &gw.running.gateway.blobs,
        &settings(RetentionMode::Purge, 100, 100, 100),
        now,
        false,
    )
    .await
    .unwrap();
    assert_eq!((report.documents, report.blobs_removed), (1, 1));
    assert!(!gw.running.gateway.blobs.exists(&sha));

    let second = scans::notice_with(301, &[("PJS", &scan, true)]);
    let refused = court.submit(&second, "application/xml").await.unwrap();
    assert_eq!(refused.status, 422);
    let problem = refused.json().unwrap();
    assert_eq!(problem["errors"][0]["code"], "attachment_missing");
    assert_eq!(upload(partner(&gw, COURT), scan.clone()).await, 200);
    let accepted = common::accepted(&court, &second, "application/xml").await;
    let read = court
        .get(&format!(
            "/api/v1/documents/{}/attachments/{sha}",
            id(&accepted)
        ))
        .await
        .unwrap();
    assert_eq!(read.status, 200);
    assert_eq!(read.body, scan);
}

fn purge_after_100_days(settings: &mut corrections_gateway::config::Settings) {
    settings.retention = RetentionSettings {
        run_secs: 60,
        ..settings_for(RetentionMode::Purge, 100)
    };
}

fn settings_for(mode: RetentionMode, days: u32) -> RetentionSettings {
    settings(mode, days, days, days)
}

/// A serving gateway with a retention mode runs the purge by itself (its
/// first round at start-up, then every `retention.run_secs`); with mode
/// `off` the command refuses a real run and only reports.
#[actix_web::test]
async fn the_serving_gateway_purges_by_itself_and_off_means_off() {
    let now = OffsetDateTime::now_utc();
    let mut gw = TestGateway::start_at(now - Duration::days(400)).await;
    let docs: Vec<String> = closed_assessment(&gw, 400).await.iter().map(id).collect();
    ack_all(&gw, &[]).await;

    let dir = gw.dir.path().to_str().unwrap().to_string();
    let (ok, out) = cli_on(gw.database.url(), &["retention", "run", "--dir", &dir]);
    assert!(!ok && out.contains("retention.mode is off"), "{out}");
    let (ok, out) = cli_on(
        gw.database.url(),
        &["retention", "run", "--dry-run", "--dir", &dir],
    );
    // Default periods (5 years): nothing has run out after 400 days.
    assert!(ok && out.contains("0 documents have run out"), "{out}");

    gw.adjust = std::sync::Arc::new(purge_after_100_days);
    at(&mut gw, now).await;
    let mut waited = 0;
    loop {
        let mut purged = 0;
        for doc in &docs {
            if gw.store().purged_at(doc).await.unwrap().flatten().is_some() {
                purged += 1;
            }
        }
        if purged == docs.len() {
            break;
        }
        waited += 1;
        assert!(waited < 200, "the retention job did not run");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let leaves = gw.leaves().await;
    assert!(leaves
        .last()
        .unwrap()
        .contains("\"event\":\"retention.purged\""));
}
