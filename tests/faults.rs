//! Storage faults under real traffic: a full disk, a database another process
//! holds locked, a PostgreSQL database that refuses connections. Each time
//! the partner gets `503 storage_unavailable` with `Retry-After`, no receipt,
//! and nothing half-written (no document row, no blob, no log entry of a
//! document that was not stored); once storage is back the same documents are
//! accepted as new and the exchange log is one unforked tree.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{court_notice, TestDatabase, TestGateway};
use corrections_gateway::partner::{Answer, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use serde_json::Value;

const COURT: &str = "court.620102";
const PDF: &str = "application/pdf";

/// A small tmpfs mounted on a fresh directory, unmounted when dropped: a
/// disk that really fills up.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this machine does not let the test mount (not root, or no
    /// `CAP_SYS_ADMIN`); the test then says so.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    /// Writes a filler file until the disk refuses another byte.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file
            .write_all(&chunk)
            .and_then(|_| file.sync_data())
            .is_ok()
        {}
        // The last partial chunk: whatever single bytes still fit.
        while file.write_all(&[0]).and_then(|_| file.sync_data()).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

async fn upload(partner: &Partner, bytes: &[u8]) -> Answer {
    let path = format!("/api/v1/attachments/{}", sha256_hex(bytes));
    let headers = partner.sign("PUT", &path, Some(PDF), Some(bytes)).unwrap();
    partner
        .send(
            reqwest::Method::PUT,
            &path,
            Some((PDF, bytes.to_vec())),
            headers,
        )
        .await
        .unwrap()
}

/// A 503 that tells the partner to come back, signed, with no receipt in it.
fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        503,
        "{what}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5"),
        "{what}"
    );
    let problem = answer.json().unwrap();
    assert_eq!(problem["code"], "storage_unavailable", "{what}");
    for language in ["zh", "en"] {
        assert!(
            problem["message"][language]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{what}: {problem}"
        );
    }
    assert!(problem.get("document_id").is_none() && problem.get("log_index").is_none());
}

/// Files under `dir` (recursively), by path relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Accepted documents must each be in the log once; the log is unforked.
async fn consistent(gw: &TestGateway, accepted: &[Value]) {
    let leaves = gw.unforked_log().await;
    let logged: Vec<&str> = leaves
        .iter()
        .filter(|l| l["event"] == "document.accepted")
        .map(|l| l["document_id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = accepted
        .iter()
        .map(|r| r["document_id"].as_str().unwrap())
        .collect();
    let mut logged_sorted = logged.clone();
    logged_sorted.sort();
    expected.sort();
    assert_eq!(
        logged_sorted, expected,
        "one accepted entry per stored document"
    );
    assert_eq!(gw.count("documents").await, accepted.len() as i64);
}

#[actix_web::test]
async fn a_full_disk_answers_503_and_leaves_nothing_half_written() {
    let Some(disk) = SmallDisk::mount(24) else {
        eprintln!("a_full_disk: this machine does not allow mounting a tmpfs; not tested here");
        return;
    };
    let dir = tempfile::tempdir_in(&disk.path).unwrap();
    let gw = TestGateway::start_in(dir, |_| {}).await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let mut accepted = vec![common::accepted(&court, &court_notice(1), "application/xml").await];
    let blobs = gw.dir.path().join("blobs");
    let blobs_before = files(&blobs);

    let filler = disk.fill();
    // An attachment needs the disk whatever the database: refused, no blob kept.
    let scan: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    assert_unavailable(&upload(&court, &scan).await, "an upload to a full disk");
    assert_eq!(files(&blobs), blobs_before, "no partial blob stays behind");

    // Documents: on SQLite the database is on the full disk. Its WAL may
    // still have room for a few commits; sooner or later one is refused.
    let mut refused = Vec::new();
    for n in 2..200 {
        let answer = court
            .submit(&court_notice(n), "application/xml")
            .await
            .unwrap();
        match answer.status {
            201 => accepted.push(answer.json().unwrap()),
            _ => {
                assert_unavailable(&answer, &format!("notice {n} on a full disk"));
                refused.push(n);
                if refused.len() == 3 {
                    break;
                }
            }
        }
        if !TestDatabase::is_postgres() {
            continue;
        }
        // On PostgreSQL the database is elsewhere: documents keep coming in.
        assert_eq!(answer.status, 201);
        break;
    }
    if !TestDatabase::is_postgres() {
        assert_eq!(refused.len(), 3, "a full disk refuses commits");
    }
    // Alive all along: every read of a document writes a log entry, so
    // reads wait for space too, but the process answers and holds no state
    // that a full disk could have half-changed.
    let health = reqwest::get(format!("{}/healthz", gw.base_url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // Space is back: the refused ones are new documents (201), the upload
    // is stored, nothing was doubled.
    std::fs::remove_file(filler).unwrap();
    for n in refused {
        let answer = court
            .submit(&court_notice(n), "application/xml")
            .await
            .unwrap();
        assert_eq!(answer.status, 201, "notice {n} after the disk was freed");
        accepted.push(answer.json().unwrap());
    }
    assert_eq!(upload(&court, &scan).await.status, 201);
    consistent(&gw, &accepted).await;
    gw.running.handle.stop(true).await;
}

#[actix_web::test]
async fn a_database_that_goes_away_answers_503_then_recovers() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let mut accepted = vec![common::accepted(&court, &court_notice(1), "application/xml").await];

    // SQLite: another process holds the write lock longer than the busy
    // timeout. PostgreSQL: the server cuts and refuses every connection.
    let lock = if TestDatabase::is_postgres() {
        gw.database.refuse_connections(true);
        None
    } else {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}", gw.dir.path().join("gateway.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("BEGIN EXCLUSIVE").await.unwrap();
        Some(conn)
    };
    let started = Instant::now();
    let answer = court
        .submit(&court_notice(2), "application/xml")
        .await
        .unwrap();
    assert_unavailable(&answer, "a notice while the database is away");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered in time"
    );
    if TestDatabase::is_postgres() {
        let ready = reqwest::get(format!("{}/readyz", gw.base_url))
            .await
            .unwrap();
        assert_eq!(ready.status(), 503);
        assert!(ready.headers().contains_key("retry-after"));
    }

    match lock {
        Some(mut conn) => {
            use sqlx::{Connection, Executor};
            conn.execute("ROLLBACK").await.unwrap();
            conn.close().await.unwrap();
        }
        None => gw.database.refuse_connections(false),
    }
    let answer = court
        .submit(&court_notice(2), "application/xml")
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "once the database is back: {}",
        String::from_utf8_lossy(&answer.body)
    );
    accepted.push(answer.json().unwrap());
    consistent(&gw, &accepted).await;
    gw.running.handle.stop(true).await;
}
