//! Test harness: a real gateway on a random loopback port with a fresh data
//! directory (dev PKI, demo registry, SQLite file), and partners that sign
//! and post exactly as an agency system would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use corrections_gateway::app::{self, Gateway, Running};
use corrections_gateway::clock::Clock;
use corrections_gateway::config::Settings;
use corrections_gateway::partner::{GatewayCert, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::store::Store;

pub mod scans;

pub struct TestGateway {
    pub dir: tempfile::TempDir,
    pub running: Running,
    pub base_url: String,
    /// Changes to the default settings, kept for restarts.
    pub adjust: fn(&mut Settings),
    /// The gateway's and the partners' clock (shifted for dated scenarios).
    pub clock: Clock,
}

/// For tests that submit the shared court sample: it references three PDFs
/// by digest whose bytes nobody has, so it can only be accepted when
/// references without bytes are (production default: they are not).
pub fn lenient_attachments(settings: &mut Settings) {
    settings.require_attachments = false;
}

impl TestGateway {
    /// A gateway on a fresh data directory, with the production defaults.
    pub async fn start() -> TestGateway {
        Self::start_with(|_| {}).await
    }

    /// A gateway on a fresh data directory with some settings changed.
    pub async fn start_with(adjust: fn(&mut Settings)) -> TestGateway {
        Self::start_clocked(adjust, Clock::system()).await
    }

    /// A gateway whose clock reads `at` now (partners made by [`Self::partner`] share it).
    pub async fn start_at(at: time::OffsetDateTime) -> TestGateway {
        Self::start_clocked(|_| {}, Clock::starting_at(at)).await
    }

    async fn start_clocked(adjust: fn(&mut Settings), clock: Clock) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let running = Self::launch(dir.path(), adjust, clock).await;
        let base_url = format!("http://{}", running.addr);
        TestGateway {
            dir,
            running,
            base_url,
            adjust,
            clock,
        }
    }

    /// Starts a gateway on an existing data directory (after a restart, a revocation …).
    pub async fn run_on(dir: &Path) -> Running {
        Self::run_on_with(dir, |_| {}).await
    }

    pub async fn run_on_with(dir: &Path, adjust: fn(&mut Settings)) -> Running {
        Self::launch(dir, adjust, Clock::system()).await
    }

    async fn launch(dir: &Path, adjust: fn(&mut Settings), clock: Clock) -> Running {
        let mut settings = Settings::for_dir(dir);
        settings.listen = "127.0.0.1:0".into();
        settings.workers = 2;
        adjust(&mut settings);
        app::init_dev(&settings).expect("init-dev");
        let mut gateway = Gateway::load(settings).await.expect("gateway loads");
        gateway.clock = clock;
        app::start(gateway).expect("gateway starts")
    }

    pub async fn restart(&mut self) {
        self.running.handle.stop(true).await;
        self.running = Self::launch(self.dir.path(), self.adjust, self.clock).await;
        self.base_url = format!("http://{}", self.running.addr);
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// A partner signing as `agency` with its dev key for `alg`.
    pub fn partner(&self, agency: &str, alg: Algorithm) -> Partner {
        let dir = self.pki().join(agency);
        let mut partner = Partner::from_files(
            &self.base_url,
            &dir.join(format!("{}.key.pem", alg.file_stem())),
            &dir.join(format!("{}.crt.pem", alg.file_stem())),
        )
        .expect("partner key");
        partner.clock = self.clock;
        partner
    }

    pub fn gateway_cert(&self) -> GatewayCert {
        GatewayCert::load(&self.pki().join("gateway.crt.pem")).expect("gateway cert")
    }

    pub fn store(&self) -> &Store {
        &self.running.gateway.store
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.store().count(table).await.expect("count")
    }

    /// Every exchange-log leaf as text.
    pub async fn leaves(&self) -> Vec<String> {
        self.store()
            .log_entries(0, i64::MAX)
            .await
            .expect("log")
            .into_iter()
            .map(|e| String::from_utf8(e.leaf).expect("leaves are UTF-8 JSON"))
            .collect()
    }
}

/// The shared court sample (`../shared/samples/`), kept as a fixture.
pub fn court_sample() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/native/court/handover.notice.xml"),
    )
    .expect("court fixture")
}

/// A court notice with a unique document number.
pub fn court_notice(n: usize) -> Vec<u8> {
    corrections_gateway::bench::sample_court_notice(n)
}

/// Replaces the first occurrence of `from` in a document.
pub fn edit(doc: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(doc.to_vec()).expect("UTF-8 fixture");
    assert!(text.contains(from), "fixture has no {from:?}");
    text.replacen(from, to, 1).into_bytes()
}

/// A canonical fixture (`tests/fixtures/canonical/`) without attachments,
/// with the top-level fields of `set` replaced (`null` removes one), encoded
/// in `dialect`: the bytes and their Content-Type.
pub fn native(
    gw: &TestGateway,
    dialect: corrections_gateway::formats::Dialect,
    fixture: &str,
    set: serde_json::Value,
) -> (Vec<u8>, String) {
    let path = format!(
        "{}/tests/fixtures/canonical/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["attachments"] = serde_json::json!([]);
    for (key, value) in set.as_object().unwrap() {
        if value.is_null() {
            doc.as_object_mut().unwrap().remove(key);
        } else {
            doc[key] = value.clone();
        }
    }
    let formats = &gw.running.gateway.formats;
    let bytes = formats
        .encode(dialect, &doc)
        .unwrap_or_else(|e| panic!("{fixture} encodes in {dialect:?}: {e:?}"));
    (bytes, formats.content_type(dialect))
}

/// The latest deadline named `step` in a case view (`GET /api/v1/cases/{id}`).
pub fn deadline<'a>(case: &'a serde_json::Value, step: &str) -> &'a serde_json::Value {
    case["deadlines"]
        .as_array()
        .expect("a case view has deadlines")
        .iter()
        .rev()
        .find(|d| d["step"] == step)
        .unwrap_or_else(|| panic!("no {step} deadline in {case:#}"))
}

/// Runs the gateway's binary (the CLI); whether it succeeded and its
/// stdout and stderr.
pub fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corrections-gateway"))
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The password of every web user the tests create.
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates a web user with [`PASSWORD`].
pub async fn add_user(gw: &TestGateway, username: &str, role: &str, agency: Option<&str>) {
    add_user_in(gw, username, role, agency, None).await
}

/// The web users the web scenarios need, each with [`PASSWORD`]: clerks of
/// the corrections agency (`clerk.corrections`), the court (`clerk.court`)
/// and a prison (`clerk.prison`), an auditor (`auditor`) and a supervisor of
/// Gansu (`supervisor.62`).
pub async fn add_web_users(gw: &TestGateway) {
    add_user(gw, "clerk.corrections", "clerk", Some("corrections.620102")).await;
    add_user(gw, "clerk.court", "clerk", Some("court.620102")).await;
    add_user(gw, "clerk.prison", "clerk", Some("prison.620000.3")).await;
    add_user(gw, "auditor", "auditor", None).await;
    add_user_in(gw, "supervisor.62", "supervisor", None, Some("62")).await;
}

/// `partner` signs and submits `body`; the receipt, which must be 201.
pub async fn accepted(partner: &Partner, body: &[u8], content_type: &str) -> serde_json::Value {
    let answer = partner.submit(body, content_type).await.unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json().unwrap()
}

/// The court signs and submits `notice` (native XML); the receipt, which must be 201.
pub async fn post_court_notice(gw: &TestGateway, notice: &[u8]) -> serde_json::Value {
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    accepted(&court, notice, "application/xml").await
}

/// Creates a web user with [`PASSWORD`] and, for a supervisor, a region.
pub async fn add_user_in(
    gw: &TestGateway,
    username: &str,
    role: &str,
    agency: Option<&str>,
    region: Option<&str>,
) {
    corrections_gateway::web::users::add(
        &gw.running.gateway,
        corrections_gateway::web::users::NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            role: role.into(),
            agency: agency.map(str::to_string),
            region: region.map(str::to_string),
            email: None,
        },
    )
    .await
    .expect("user created");
}
