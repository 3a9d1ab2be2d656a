//! The command line as a partner integrator and an operator use it: `init-dev`
//! writes the documented layout (and is idempotent), `serve` runs it, `send`
//! signs a file, posts it and verifies the receipt.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_corrections-gateway");
const AGENCIES: [&str; 6] = [
    "court.620102",
    "procuratorate.620102",
    "police.620102",
    "prison.620000.3",
    "prison_admin.620000",
    "corrections.620102",
];

fn digest_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push((entry.display().to_string(), std::fs::read(&entry).unwrap()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[test]
fn init_dev_writes_the_documented_layout_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = Command::new(BIN)
        .args(["init-dev", "--dir"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    for agency in AGENCIES {
        for alg in ["ecdsa-p256", "sm2", "rsa", "ed25519"] {
            for suffix in ["key.pem", "crt.pem"] {
                let file = data
                    .join("pki")
                    .join(agency)
                    .join(format!("{alg}.{suffix}"));
                assert!(file.is_file(), "missing {}", file.display());
            }
        }
    }
    assert!(data.join("pki/gateway.crt.pem").is_file());
    let registry = std::fs::read_to_string(data.join("agencies.toml")).unwrap();
    for agency in AGENCIES {
        assert!(
            registry.contains(&format!("id = \"{agency}\"")),
            "{agency} registered"
        );
    }
    let before = digest_tree(&data);
    let status = Command::new(BIN)
        .args(["init-dev", "--dir"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        before,
        digest_tree(&data),
        "a second init-dev changes nothing"
    );
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_on_a_fresh_directory_then_send_a_signed_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    // SQLite in the data directory, or a fresh PostgreSQL database on the PG run.
    let database = common::TestDatabase::create();
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--listen", &listen, "--dir"])
        .arg(&data);
    if let Some(url) = database.url() {
        serve.args(["--database-url", url]);
    }
    let _server = Server(
        serve
            // The shared court sample references PDFs whose bytes nobody has.
            .env("GATEWAY_REQUIRE_ATTACHMENTS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/native/court/handover.notice.xml"
    );
    let pki = data.join("pki");
    let out = Command::new(BIN)
        .args(["send", "--url", &format!("http://{listen}")])
        .arg("--key")
        .arg(pki.join("court.620102/sm2.key.pem"))
        .arg("--cert")
        .arg(pki.join("court.620102/sm2.crt.pem"))
        .arg("--gateway-cert")
        .arg(pki.join("gateway.crt.pem"))
        .arg(fixture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "send failed: {stderr}");
    assert!(
        stderr.contains("HTTP 201") && stderr.contains("signature verified"),
        "{stderr}"
    );
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["message_type"], "handover.notice");

    // The same file again: idempotent, 200 and the same receipt.
    let again = Command::new(BIN)
        .args(["send", "--url", &format!("http://{listen}")])
        .arg("--key")
        .arg(pki.join("court.620102/ed25519.key.pem"))
        .arg("--cert")
        .arg(pki.join("court.620102/ed25519.crt.pem"))
        .arg("--gateway-cert")
        .arg(pki.join("gateway.crt.pem"))
        .arg(fixture)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("HTTP 200"));
    assert_eq!(again.stdout, out.stdout);
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn due_counts_with_the_official_calendar_and_refuses_years_it_does_not_cover() {
    // An expedited (速裁) assessment received Friday 2024-09-27: 5 working days skip the
    // National Day holiday but count the makeup Sunday 2024-09-29.
    let out = run(&["due", "5wd", "--from", "2024-09-27T16:40:00+08:00"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2024-10-10T23:59:59+08:00"
    );
    let out = run(&["due", "48h", "--from", "2024-09-30T10:00"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2024-10-02T10:00:00+08:00"
    );
    let out = run(&["due", "10d", "--from", "2026-12-28"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2020") && stderr.contains("2026"),
        "names the calendar's years: {stderr}"
    );
    let out = run(&["due", "5 days", "--from", "2024-09-27"]);
    assert!(!out.status.success());
}

#[test]
fn validate_prints_every_problem_and_translate_converts_between_dialects() {
    let court = "tests/fixtures/native/court/handover.notice.xml";
    let out = run(&["validate", court]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("handover.notice"));

    let bad = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(court)).unwrap();
    std::fs::write(
        bad.path(),
        text.replace("620102199003070026", "620102199003070027")
            .replace("<XB>2</XB>", "<XB>7</XB>"),
    )
    .unwrap();
    let out = run(&["validate", bad.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid_id_check_digit") && stderr.contains("bad_code_value"),
        "all problems at once: {stderr}"
    );

    let out = run(&["translate", "--from", "court", "--to", "corrections", court]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let canonical: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(canonical["case_no"], "（2024）甘0102刑初123号");
    assert_eq!(canonical["subject"]["name"], "阿依古丽·买买提");

    // Into another partner's format, agencies named as that format names them.
    let out = run(&["translate", "--from", "court", "--to", "police", court]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let police: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(police["fromUnit"]["code"], "court.620102");
    assert_eq!(police["fromUnit"]["name"], "兰州市城关区人民法院");

    let out = run(&["translate", "--from", "court", "--to", "klingon", court]);
    assert!(!out.status.success());
}
