//! The gateway killed with SIGKILL at random moments under load, again and
//! again, on the same data directory and database. After every restart:
//! - every document the gateway receipted before the kill is there, at the
//!   log index and with the leaf hash its signed receipt named, inside a
//!   checkpoint signed after the restart;
//! - every checkpoint seen before the kill is consistent with the new one
//!   (the log was neither cut back nor rewritten);
//! - a post whose answer the kill swallowed can be sent again and is then
//!   either stored (201) or answered with its one receipt (200), never twice.
//!
//! At the end the outbox has delivered every document to the push partner, a
//! de-duplicating receiver saw each at least once and the log records exactly
//! one `document.accepted` and one `delivery.receipted` per document; the
//! exported log verifies offline.
//!
//! The kill moments come from a seeded generator; the seed is printed (set
//! `CRASH_SEED` to replay a run).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::receiver::{gateway_pushing_to, listener, serve, Behaviour, Receiver};
use common::served::Served;
use common::{court_notice, TestGateway};
use corrections_gateway::partner::{GatewayCert, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::xlog::merkle::{self, Hash};
use corrections_gateway::xlog::note::{Checkpoint, NoteVerifier};
use serde_json::Value;

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";

/// Kills (each followed by a restart).
const KILLS: usize = 20;
/// Concurrent court signers posting notices.
const SENDERS: usize = 6;

/// The outcome of the posts of one life of the process.
#[derive(Default)]
struct Outcomes {
    /// Notice number → its signed receipt (201, or 200 for a resend).
    receipts: BTreeMap<usize, Value>,
    /// Resent notices stored only now (201): the kill came before their commit.
    resent_stored: usize,
    /// Notices whose answer never came (the kill cut the connection).
    unknown: BTreeSet<usize>,
    /// Checkpoints fetched (and verified) while the process lived.
    checkpoints: Vec<Checkpoint>,
}

/// xorshift64*: a seeded, reproducible source of kill moments.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn hash(v: &Value) -> Hash {
    hex::decode(v.as_str().expect("hex string"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(hash).collect()
}

/// The environment of every life: fast retries, two HTTP workers, and the
/// test's database (PostgreSQL when the suite runs there).
fn environment(gw: &TestGateway) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GATEWAY_WORKERS", "2".to_string()),
        ("GATEWAY_DELIVERY__BACKOFF_BASE_MS", "100".into()),
        ("GATEWAY_DELIVERY__BACKOFF_MAX_MS", "300".into()),
        ("GATEWAY_DELIVERY__MAX_ATTEMPTS", "100".into()),
        ("GATEWAY_DELIVERY__TIMEOUT_MS", "2000".into()),
        ("GATEWAY_DELIVERY__POLL_MS", "50".into()),
        ("GATEWAY_CHECKPOINT_INTERVAL_SECS", "1".into()),
    ];
    if let Some(url) = gw.database.url() {
        env.push(("GATEWAY_DATABASE_URL", url.to_string()));
    }
    env
}

fn start(gw: &TestGateway) -> Served {
    let env = environment(gw);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Served::start_on(gw.dir.path(), &[], &env)
}

async fn checkpoint(partner: &Partner, verifier: &NoteVerifier) -> anyhow::Result<Checkpoint> {
    let answer = partner
        .send(
            reqwest::Method::GET,
            "/api/v1/log/checkpoint",
            None,
            Vec::new(),
        )
        .await?;
    anyhow::ensure!(answer.status == 200, "checkpoint: {}", answer.status);
    Ok(Checkpoint::open(
        std::str::from_utf8(&answer.body)?,
        verifier,
    )?)
}

/// Posts notice `n`; `Some((status, receipt))` when the gateway answered (it
/// must answer 201 or 200 with a receipt it signed), `None` when the
/// connection died.
async fn post(partner: &Partner, gateway: &GatewayCert, n: usize) -> Option<(u16, Value)> {
    let answer = partner
        .submit(&court_notice(n), "application/xml")
        .await
        .ok()?;
    assert!(
        answer.status == 201 || answer.status == 200,
        "notice {n}: {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    answer
        .verify(gateway)
        .expect("the receipt is signed by the gateway");
    Some((answer.status, answer.json().unwrap()))
}

/// One life of the process: resend what the last kill left unanswered, then
/// post from [`SENDERS`] signers and fetch checkpoints until `kill_after`,
/// then SIGKILL.
async fn life(
    gw: &TestGateway,
    served: &mut Served,
    verifier: &NoteVerifier,
    resend: &BTreeSet<usize>,
    next: &Arc<AtomicUsize>,
    kill_after: Duration,
) -> Outcomes {
    let gateway = gw.gateway_cert();
    let base = served.base_url();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let court = gw.partner_at(&base, COURT, Algorithm::EcdsaP256Sha256);
    for &n in resend {
        let (status, receipt) = post(&court, &gateway, n)
            .await
            .expect("a resend to a gateway that is up is answered");
        let mut outcomes = outcomes.lock().unwrap();
        outcomes.receipts.insert(n, receipt);
        outcomes.resent_stored += usize::from(status == 201);
    }

    let dying = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let alg = [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519][s % 2];
        let partner = gw.partner_at(&base, COURT, alg);
        let (gateway, next, dying, outcomes) = (
            gateway.clone(),
            next.clone(),
            dying.clone(),
            outcomes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !dying.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                match post(&partner, &gateway, n).await {
                    Some((_, receipt)) => outcomes.lock().unwrap().receipts.insert(n, receipt),
                    None => {
                        outcomes.lock().unwrap().unknown.insert(n);
                        break;
                    }
                };
            }
        }));
    }
    {
        let (verifier, dying, outcomes) = (verifier.clone(), dying.clone(), outcomes.clone());
        let partner = gw.partner_at(&base, COURT, Algorithm::Ed25519);
        tasks.push(tokio::spawn(async move {
            while !dying.load(Ordering::SeqCst) {
                match checkpoint(&partner, &verifier).await {
                    Ok(cp) => outcomes.lock().unwrap().checkpoints.push(cp),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    served.child.kill().expect("SIGKILL");
    served.child.wait().expect("reaped");
    dying.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("no sender panicked");
    }
    Arc::try_unwrap(outcomes)
        .ok()
        .expect("tasks ended")
        .into_inner()
        .unwrap()
}

/// After a restart: the entry of every receipt of the last life is in a
/// checkpoint signed now, and every checkpoint seen in the last life
/// (including the one signed after the previous restart, against which the
/// earlier receipts and checkpoints were checked) is consistent with it — so,
/// consistency being transitive, no earlier entry is gone or changed either.
/// Returns the new checkpoint.
async fn survived(
    partner: &Partner,
    verifier: &NoteVerifier,
    receipts: &BTreeMap<usize, Value>,
    seen: &[Checkpoint],
) -> Checkpoint {
    let now = checkpoint(partner, verifier)
        .await
        .expect("checkpoint after restart");
    for (n, receipt) in receipts {
        let index = receipt["log_index"].as_u64().unwrap();
        let leaf = hash(&receipt["leaf_hash"]);
        let proof = partner
            .send(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/log/proof/inclusion?index={index}&tree_size={}",
                    now.size
                ),
                None,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(proof.status, 200, "notice {n}: entry {index} is gone");
        let proof = proof.json().unwrap();
        assert_eq!(
            hash(&proof["leaf_hash"]),
            leaf,
            "notice {n}: entry {index} changed"
        );
        merkle::verify_inclusion(index, now.size, &leaf, &hashes(&proof["proof"]), &now.root)
            .unwrap_or_else(|e| panic!("notice {n}: entry {index} not in the tree: {e}"));
    }
    for before in seen {
        assert!(
            before.size <= now.size,
            "the log shrank: {} → {}",
            before.size,
            now.size
        );
        let proof = partner
            .send(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/log/proof/consistency?first={}&second={}",
                    before.size, now.size
                ),
                None,
                Vec::new(),
            )
            .await
            .unwrap()
            .json()
            .unwrap();
        let path = if before.size == 0 || before.size == now.size {
            Vec::new()
        } else {
            hashes(&proof["proof"])
        };
        merkle::verify_consistency(before.size, now.size, &before.root, &now.root, &path)
            .unwrap_or_else(|e| {
                panic!(
                    "checkpoint of size {} is not a prefix of {}: {e}",
                    before.size, now.size
                )
            });
    }
    now
}

#[actix_web::test]
async fn sigkill_under_load_loses_nothing_and_processes_each_delivery_once() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: CRASH_SEED={seed}");
    let mut moments = Seeded(seed);

    let (port, url) = listener();
    let gw = gateway_pushing_to(&[(CORRECTIONS, url)]).await;
    // The in-process gateway only prepared the directory and the database;
    // from here the real binary runs on them.
    gw.running.handle.stop(true).await;
    let receiver = Receiver::new(&gw, CORRECTIONS, Behaviour::Receipt);
    let server = serve(port, receiver.clone());
    let verifier =
        NoteVerifier::parse(&std::fs::read_to_string(gw.pki().join("log.pub")).unwrap()).unwrap();

    let next = Arc::new(AtomicUsize::new(1));
    let mut receipts: BTreeMap<usize, Value> = BTreeMap::new();
    let mut seen: Vec<Checkpoint> = Vec::new();
    let mut unknown = BTreeSet::new();
    // Receipts of the last life, not yet checked after a restart.
    let mut fresh: BTreeMap<usize, Value> = BTreeMap::new();
    let mut resent_stored = 0;
    let mut checked = 0;
    let started = Instant::now();
    for kill in 0..KILLS {
        let mut served = start(&gw);
        let court = gw.partner_at(&served.base_url(), COURT, Algorithm::Ed25519);
        let now = survived(&court, &verifier, &fresh, &seen).await;
        checked += seen.len();
        seen = vec![now];
        let kill_after = Duration::from_millis(150 + moments.below(900));
        let life = life(&gw, &mut served, &verifier, &unknown, &next, kill_after).await;
        // A resend is answered with the original receipt (200) when the
        // kill came after the commit, else it is stored now (201).
        resent_stored += life.resent_stored;
        fresh = life.receipts;
        for (n, receipt) in &fresh {
            if let Some(before) = receipts.insert(*n, receipt.clone()) {
                panic!("notice {n} receipted twice: {before} and {receipt}");
            }
        }
        unknown = life.unknown;
        seen.extend(life.checkpoints);
        eprintln!(
            "kill {kill}: after {kill_after:?} ({:.1} s since start); {} receipted in all, {} unanswered",
            started.elapsed().as_secs_f64(),
            receipts.len(),
            unknown.len(),
        );
    }

    // The last life runs to the end: resends, then the outbox drains.
    let served = start(&gw);
    let court = gw.partner_at(&served.base_url(), COURT, Algorithm::Ed25519);
    survived(&court, &verifier, &fresh, &seen).await;
    checked += seen.len();
    for &n in &unknown {
        let (status, receipt) = post(&court, &gw.gateway_cert(), n).await.expect("answered");
        resent_stored += usize::from(status == 201);
        receipts.insert(n, receipt);
    }
    let documents: BTreeSet<String> = receipts
        .values()
        .map(|r| r["document_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(documents.len(), receipts.len(), "one document per notice");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered: BTreeSet<String> = receiver.seen.lock().unwrap().keys().cloned().collect();
        let receipted = gw
            .leaves()
            .await
            .iter()
            .filter(|l| l.contains(r#""event":"delivery.receipted""#))
            .count();
        if delivered.is_superset(&documents) && receipted >= documents.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 120 s: {} of {} delivered, {receipted} receipted",
            delivered.intersection(&documents).count(),
            documents.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let processed: BTreeSet<String> = receiver.processed_once().into_iter().collect();
    assert_eq!(
        processed, documents,
        "the receiver processed each document once"
    );
    let pushes: usize = receiver.seen.lock().unwrap().values().map(|(n, _)| n).sum();

    let leaves = gw.unforked_log().await;
    for event in ["document.accepted", "delivery.receipted"] {
        let mut per_document: BTreeMap<&str, usize> = BTreeMap::new();
        for leaf in leaves.iter().filter(|l| l["event"] == event) {
            *per_document
                .entry(leaf["document_id"].as_str().unwrap())
                .or_default() += 1;
        }
        assert_eq!(per_document.len(), documents.len(), "{event}");
        assert!(
            per_document.values().all(|n| *n == 1),
            "{event} logged more than once: {per_document:?}"
        );
    }
    assert_eq!(gw.count("documents").await, documents.len() as i64);
    let mut served = served;
    served.signal("TERM");
    assert!(served.wait(Duration::from_secs(60)).success());

    let bundle = gw.dir.path().join("bundle");
    let (ok, out) = common::export_and_verify_log(gw.database.url(), gw.dir.path(), &bundle);
    assert!(ok, "verify: {out}");
    eprintln!(
        "crash test: {KILLS} kills in {:.1} s; {} documents ({resent_stored} of them stored on a resend), \
         {} checkpoints checked, {pushes} pushes for {} deliveries",
        started.elapsed().as_secs_f64(),
        documents.len(),
        checked,
        documents.len()
    );
    server.stop(true).await;
}
