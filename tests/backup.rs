//! Backup and restore of a gateway under traffic (docs/operations.md,
//! "Backup and restore"): partners keep submitting while the backup is
//! taken — on SQLite by the real `backup --to` command, on PostgreSQL with
//! `pg_dump | psql` into a new database plus the blob directory and keys —
//! then a gateway starts on the restored copy, every document receipted
//! before the backup began is there with its log entry, the exported log
//! verifies offline, and the restored gateway accepts new documents.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{cli, cli_on, scans, TestDatabase, TestGateway};
use corrections_gateway::partner::Partner;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use serde_json::Value;

type Receipts = Arc<std::sync::Mutex<Vec<(Value, Vec<u8>)>>>;

/// Submits court notices (every third one with a scan, as multipart) until
/// `stop`, adding each receipt to `receipts` as it arrives.
async fn traffic(partner: Partner, first: usize, stop: Arc<AtomicBool>, receipts: Receipts) {
    let mut n = first;
    while !stop.load(Ordering::SeqCst) {
        let receipt = one(&partner, n).await;
        receipts.lock().unwrap().push(receipt);
        n += 1;
    }
}

/// PostgreSQL client programs: `GATEWAY_TEST_PG_BIN` (scripts/test.sh sets
/// it), else the Debian server directory, else `PATH`.
fn pg_program(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("GATEWAY_TEST_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push(PathBuf::from("/usr/lib/postgresql/15/bin"));
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.flatten().map(|e| e.path().join("bin")));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Copies the files under `from` that `to` lacks, skipping the blob store's `tmp/`.
fn copy_new(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "tmp" {
                copy_new(&entry.path(), &target);
            }
        } else if !target.exists() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The PostgreSQL backup of docs/operations.md: blobs, `pg_dump` piped into
/// `psql` on a new database, blobs again, keys and registry.
fn pg_backup(source: &Path, source_url: &str, target: &Path, target_url: &str) {
    copy_new(&source.join("blobs"), &target.join("blobs"));
    let mut dump = std::process::Command::new(pg_program("pg_dump"))
        .args(["--no-owner", "--no-privileges", "--dbname", source_url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("pg_dump runs");
    let restored = std::process::Command::new(pg_program("psql"))
        .args(["-q", "-v", "ON_ERROR_STOP=1", "--dbname", target_url])
        .stdin(dump.stdout.take().unwrap())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("psql runs");
    assert!(dump.wait().unwrap().success(), "pg_dump");
    assert!(restored.success(), "psql restore");
    copy_new(&source.join("blobs"), &target.join("blobs"));
    copy_new(&source.join("pki"), &target.join("pki"));
    std::fs::copy(source.join("agencies.toml"), target.join("agencies.toml")).unwrap();
}

#[actix_web::test]
async fn a_backup_taken_under_traffic_restores_with_every_receipted_document_and_a_verifying_log() {
    let gw = TestGateway::start().await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    // Some documents first, then traffic that goes on during the backup.
    let mut receipted = Vec::new();
    for n in 0..9 {
        receipted.push(one(&court, n).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let during: Receipts = Arc::default();
    let traffic = actix_web::rt::spawn(traffic(
        gw.partner("court.620102", Algorithm::EcdsaP256Sha256),
        1000,
        stop.clone(),
        during.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Everything receipted up to here must survive; later documents may or may not.
    receipted.extend(during.lock().unwrap().iter().cloned());
    let backup_parent = tempfile::tempdir().unwrap();
    let backup = backup_parent.path().join("gw-backup");
    let restored_db = TestDatabase::create();
    let source = gw.dir.path().to_path_buf();
    let took = if let Some(url) = gw.database.url() {
        // The command is for the embedded database; PostgreSQL has pg_dump.
        let (ok, out) = cli_on(
            Some(url),
            &[
                "backup",
                "--dir",
                source.to_str().unwrap(),
                "--to",
                backup.to_str().unwrap(),
            ],
        );
        assert!(!ok && out.contains("pg_dump"), "{out}");
        let (source_url, target_url, target) = (
            url.to_string(),
            restored_db.url().unwrap().to_string(),
            backup.clone(),
        );
        tokio::task::spawn_blocking(move || {
            pg_backup(&source, &source_url, &target, &target_url);
            (true, String::new())
        })
        .await
        .unwrap()
    } else {
        let args = [
            "backup".to_string(),
            "--dir".into(),
            source.to_str().unwrap().into(),
            "--to".into(),
            backup.to_str().unwrap().into(),
        ];
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&args)
        })
        .await
        .unwrap()
    };
    assert!(took.0, "backup: {}", took.1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    let after = during.lock().unwrap().clone();
    assert!(
        after.len() > receipted.len() - 9,
        "traffic ran during the backup"
    );

    // The restore: a fresh directory holding the backup, a new gateway on it.
    let restore_parent = tempfile::tempdir().unwrap();
    let restore = restore_parent.path().join("gw");
    copy_new(&backup, &restore);
    restored_db.serve(&restore);
    let running = TestGateway::run_on(&restore).await;
    let store = &running.gateway.store;
    for (receipt, scan) in &receipted {
        let id = receipt["document_id"].as_str().unwrap();
        let doc = store.document(id).await.unwrap().unwrap_or_else(|| {
            panic!("document {id} was receipted before the backup and is missing")
        });
        assert_eq!(doc.body_sha256, receipt["body_sha256"].as_str().unwrap());
        let index = receipt["log_index"].as_i64().unwrap();
        let entry = store.log_entries(index, 1).await.unwrap();
        assert_eq!(
            hex::encode(&entry[0].leaf_hash),
            receipt["leaf_hash"].as_str().unwrap()
        );
        if !scan.is_empty() {
            let blob = std::fs::read(running.gateway.blobs.path(&sha256_hex(scan))).unwrap();
            assert_eq!(&blob, scan, "the scan of {id} was restored");
        }
    }
    // Whatever the snapshot holds of the documents sent during the backup is
    // whole: each has its row, its receipt and its blobs.
    for (receipt, scan) in &after {
        let id = receipt["document_id"].as_str().unwrap();
        if store.document(id).await.unwrap().is_some() && !scan.is_empty() {
            assert!(
                running.gateway.blobs.exists(&sha256_hex(scan)),
                "{id}: blob"
            );
        }
    }

    // The restored log verifies offline.
    let bundle = tempfile::tempdir().unwrap();
    let out_dir = bundle.path().join("log");
    let (ok, out) = common::export_and_verify_log(restored_db.url(), &restore, &out_dir);
    assert!(ok, "log verify of the restore: {out}");

    // And the restored gateway goes on: a new document is accepted and logged.
    let restored_court = Partner::from_files(
        &format!("http://{}", running.addr),
        &restore.join("pki/court.620102/ecdsa-p256.key.pem"),
        &restore.join("pki/court.620102/ecdsa-p256.crt.pem"),
    )
    .unwrap();
    let answer = restored_court
        .submit(&common::court_notice(5000), "application/xml")
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    running.handle.stop(true).await;
}

/// Court notice `n` (every third with a scan, as multipart); its receipt and scan.
async fn one(partner: &Partner, n: usize) -> (Value, Vec<u8>) {
    let scan = if n % 3 == 0 {
        scans::scan((n % 251) as u8, 2000 + n)
    } else {
        Vec::new()
    };
    let answer = if scan.is_empty() {
        partner
            .submit(&common::court_notice(n), "application/xml")
            .await
            .unwrap()
    } else {
        let notice = scans::notice_with(n, &[("PJS", &scan, true)]);
        let (content_type, body) = scans::multipart(&notice, &[&scan]);
        partner.submit(&body, &content_type).await.unwrap()
    };
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    (answer.json().unwrap(), scan)
}
