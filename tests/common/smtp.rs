//! A real SMTP server for the mail tests: tests/support/smtp_server.py
//! (aiosmtpd, Debian's python3-aiosmtpd) run by /usr/bin/python3 on a free
//! loopback port, with STARTTLS (a certificate made here for `localhost`),
//! AUTH with [`SMTP_USER`] / [`SMTP_PASSWORD`], and every accepted message
//! written as JSON to a directory. Killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

pub const SMTP_USER: &str = "gateway";
pub const SMTP_PASSWORD: &str = "smtp test password";

/// The interpreter with Debian's aiosmtpd (not a pyenv python3 on PATH).
const PYTHON: &str = "/usr/bin/python3";

/// One running server.
pub struct SmtpServer {
    child: Option<Child>,
    pub port: u16,
    /// Where the accepted messages are written (`*.json`).
    pub dir: tempfile::TempDir,
    /// The server certificate (PEM): the CA to give the gateway.
    pub ca_cert: PathBuf,
    key: PathBuf,
    mode: &'static str,
}

/// A message the server accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub body: String,
    pub raw: String,
    pub authenticated_as: Option<String>,
    pub tls: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand::random::<u32>() >> 1)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    cert.set_serial_number(&serial).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    cert.append_extension(BasicConstraints::new().ca().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&cert.x509v3_context(None, None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let (cert_path, key_path) = (dir.join("smtp.crt.pem"), dir.join("smtp.key.pem"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path)
}

impl SmtpServer {
    /// A server requiring STARTTLS and AUTH.
    pub fn start() -> SmtpServer {
        Self::start_mode("starttls")
    }

    /// `starttls`, `tls` (implicit) or `none` (plain, no AUTH).
    pub fn start_mode(mode: &'static str) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_cert, key) = self_signed(dir.path());
        let mut server = SmtpServer {
            child: None,
            port: free_port(),
            dir,
            ca_cert,
            key,
            mode,
        };
        server.resume();
        server
    }

    /// Kills the server (the port is refused until [`Self::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, certificate and directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let out = self.dir.path().join("messages");
        std::fs::create_dir_all(&out).unwrap();
        let mut command = Command::new(PYTHON);
        command
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&out)
            .args(["--mode", self.mode]);
        if self.mode != "none" {
            command
                .arg("--cert")
                .arg(&self.ca_cert)
                .arg("--key")
                .arg(&self.key)
                .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{PYTHON} tests/support/smtp_server.py: {e} (apt-get install python3-aiosmtpd)"
                )
            });
        // "ready" on stdout once it listens.
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP server's first line");
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    /// The messages accepted so far, in no particular order.
    pub fn received(&self) -> Vec<Received> {
        let out = self.dir.path().join("messages");
        let mut all = Vec::new();
        for entry in std::fs::read_dir(out).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                all.push(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
            }
        }
        all
    }

    /// How many logins the server refused.
    pub fn auth_failures(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("messages/auth-failures"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Waits until at least `n` messages arrived (panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < limit,
                "{} of {n} messages after {limit:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
