//! Test harness: a real gateway on a random loopback port with a fresh data
//! directory (dev PKI, demo registry, SQLite file) and a fresh database, and
//! partners that sign and post exactly as an agency system would.
//!
//! The database is SQLite in the data directory unless
//! `GATEWAY_TEST_DATABASE_URL` names a PostgreSQL server
//! (`postgres://user@localhost/postgres`, with `?host=/socket/dir` for a Unix
//! socket): then each gateway gets its own database `t_<uuid>` created on that
//! server and dropped with the gateway, so tests stay isolated and run in
//! parallel. `scripts/test.sh` runs the integration tests both ways.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use corrections_gateway::app::{self, Gateway, Running};
use corrections_gateway::clock::Clock;
use corrections_gateway::config::Settings;
use corrections_gateway::partner::{GatewayCert, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::store::Store;

pub mod forms;
pub mod receiver;
pub mod scans;
pub mod served;
pub mod smtp;

/// Changes a test makes to the default settings (may capture, e.g. a port).
pub type Adjust = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

pub struct TestGateway {
    pub running: Running,
    /// Dropped after `running` (fields drop in order), so the database goes
    /// only once the gateway is gone, and the data directory last.
    pub database: TestDatabase,
    pub dir: tempfile::TempDir,
    pub base_url: String,
    /// Changes to the default settings, kept for restarts.
    pub adjust: Adjust,
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

    /// A gateway on a fresh data directory with settings changed by a
    /// closure (which may capture, e.g. a mail server's port) and a clock.
    pub async fn start_configured(adjust: Adjust, clock: Clock) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_configured_in(dir, adjust, clock).await
    }

    /// Another instance on this gateway's data directory and database, with
    /// its own settings changes (a second gateway of a scale-out).
    pub async fn another(&self, adjust: &(dyn Fn(&mut Settings) + Send + Sync)) -> Running {
        Self::launch(self.dir.path(), adjust, self.clock).await
    }

    /// A gateway on a data directory the test prepared (its own registry …),
    /// with a fresh database and some settings changed.
    pub async fn start_in(dir: tempfile::TempDir, adjust: fn(&mut Settings)) -> TestGateway {
        Self::start_clocked_in(dir, adjust, Clock::system()).await
    }

    async fn start_clocked(adjust: fn(&mut Settings), clock: Clock) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_clocked_in(dir, adjust, clock).await
    }

    async fn start_clocked_in(
        dir: tempfile::TempDir,
        adjust: fn(&mut Settings),
        clock: Clock,
    ) -> TestGateway {
        Self::start_configured_in(dir, std::sync::Arc::new(adjust), clock).await
    }

    /// The same on a data directory the test prepared (its own registry …).
    pub async fn start_configured_in(
        dir: tempfile::TempDir,
        adjust: Adjust,
        clock: Clock,
    ) -> TestGateway {
        let database = TestDatabase::create();
        database.serve(dir.path());
        let running = Self::launch(dir.path(), &*adjust, clock).await;
        let base_url = format!("http://{}", running.addr);
        TestGateway {
            running,
            database,
            dir,
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
        Self::launch(dir, &adjust, Clock::system()).await
    }

    async fn launch(
        dir: &Path,
        adjust: &(dyn Fn(&mut Settings) + Send + Sync),
        clock: Clock,
    ) -> Running {
        let mut settings = Settings::for_dir(dir);
        if let Some(url) = TestDatabase::url_for(dir) {
            settings.database_url = url;
        }
        settings.listen = "127.0.0.1:0".into();
        settings.workers = 2;
        adjust(&mut settings);
        seed_dev_pki(&settings.pki_dir());
        app::init_dev(&settings).expect("init-dev");
        let mut gateway = Gateway::load(settings).await.expect("gateway loads");
        gateway.clock = clock;
        app::start(gateway).expect("gateway starts")
    }

    pub async fn restart(&mut self) {
        self.running.handle.stop(true).await;
        self.running = Self::launch(self.dir.path(), &*self.adjust, self.clock).await;
        self.base_url = format!("http://{}", self.running.addr);
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// A partner signing as `agency` with its dev key for `alg`.
    pub fn partner(&self, agency: &str, alg: Algorithm) -> Partner {
        self.partner_at(&self.base_url, agency, alg)
    }

    /// The same, talking to another instance (on the same data directory).
    pub fn partner_at(&self, base_url: &str, agency: &str, alg: Algorithm) -> Partner {
        let mut partner =
            Partner::for_agency(base_url, &self.pki(), agency, alg).expect("partner key");
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

    /// Every exchange-log leaf, parsed, after checking that the indexes run
    /// 0..n, each leaf hash is the hash of its leaf, and the stored tree's
    /// root is the root recomputed from those leaves alone: no concurrent
    /// appender (or instance) skipped, doubled or forked an index.
    pub async fn unforked_log(&self) -> Vec<serde_json::Value> {
        use corrections_gateway::xlog::{self, merkle::Frontier};
        let entries = self.store().log_entries(0, i64::MAX).await.unwrap();
        let mut frontier = Frontier::new();
        for (n, entry) in entries.iter().enumerate() {
            assert_eq!(entry.index, n as i64, "log indexes are contiguous");
            let hash: [u8; 32] = entry.leaf_hash.as_slice().try_into().unwrap();
            assert_eq!(hash, xlog::leaf_hash(&entry.leaf), "entry {n}");
            frontier.push(hash, |_, _| {}).unwrap();
        }
        let size = entries.len() as u64;
        assert_eq!(self.store().log_size().await.unwrap(), size);
        assert_eq!(
            self.store().log_root(size).await.unwrap(),
            frontier.root().unwrap(),
            "the stored tree is the tree of the stored leaves"
        );
        entries
            .iter()
            .map(|e| serde_json::from_slice(&e.leaf).unwrap())
            .collect()
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

    /// The newest exchange-log leaf of this `event` kind (panics if none).
    pub async fn newest_leaf(&self, event: &str) -> String {
        let kind = format!("\"event\":\"{event}\"");
        self.leaves()
            .await
            .into_iter()
            .rev()
            .find(|l| l.contains(&kind))
            .unwrap_or_else(|| panic!("no {event} entry in the log"))
    }
}

/// Copies a dev PKI generated once per test run into `pki_dir` unless it
/// holds one already. `init-dev` takes seconds (an RSA key per agency), and
/// every test gateway would pay that; it then finds the copy and only fills
/// in what is missing (an agency a test's own registry adds). Each gateway
/// still gets its own files, so a test that revokes a certificate changes
/// only its copy.
pub fn seed_dev_pki(pki_dir: &Path) {
    if pki_dir.exists() {
        return;
    }
    copy_tree(dev_pki_template(), pki_dir);
}

/// The shared template: `init-dev` output under the target directory, named
/// after a digest of what shapes it (the generator and the demo registry), so
/// a changed generator never serves a stale template. Test binaries run in
/// parallel, so it is built aside and moved into place whole.
fn dev_pki_template() -> &'static Path {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut shape = Vec::new();
        for file in ["src/security/devpki.rs", "rules/agencies.demo.toml"] {
            shape.extend(std::fs::read(manifest.join(file)).expect("template inputs"));
        }
        let tag = &corrections_gateway::security::digest::sha256_hex(&shape)[..16];
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let template = parent.join(format!("dev-pki-{tag}"));
        if template.exists() {
            return template;
        }
        std::fs::create_dir_all(parent).expect("target tmp dir");
        let work = tempfile::tempdir_in(parent).expect("temp dir");
        app::init_dev(&Settings::for_dir(work.path())).expect("init-dev");
        // Renaming onto an existing non-empty directory fails: if another
        // test process got there first, its template serves.
        if let Err(e) = std::fs::rename(work.path().join("pki"), &template) {
            assert!(template.exists(), "template {}: {e}", template.display());
        }
        template
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("template entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy template file");
        }
    }
}

/// The PostgreSQL server the integration tests run against, if any.
pub const DATABASE_URL_VAR: &str = "GATEWAY_TEST_DATABASE_URL";

/// Which database serves which data directory (a restart finds it again).
static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

/// A fresh database for one gateway: `None` (SQLite in the data directory)
/// unless [`DATABASE_URL_VAR`] is set, else a new PostgreSQL database on that
/// server, dropped when this value is.
pub struct TestDatabase {
    postgres: Option<PgDatabase>,
}

struct PgDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database (blocking: usable from sync and async tests).
    pub fn create() -> TestDatabase {
        let Some(server) = std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return TestDatabase { postgres: None };
        };
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&server, &name);
        admin(&server, format!("CREATE DATABASE {name}"));
        TestDatabase {
            postgres: Some(PgDatabase { server, name, url }),
        }
    }

    /// The URL a gateway should be given (`None`: the SQLite default).
    pub fn url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|p| p.url.as_str())
    }

    /// Whether the tests run on PostgreSQL.
    pub fn is_postgres() -> bool {
        std::env::var(DATABASE_URL_VAR).is_ok_and(|u| !u.is_empty())
    }

    /// Records that gateways on `dir` use this database.
    pub fn serve(&self, dir: &Path) {
        if let Some(url) = self.url() {
            DATABASES
                .lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .insert(dir.to_path_buf(), url.to_string());
        }
    }

    /// PostgreSQL only: makes the server refuse (and cut) every connection
    /// to this database, or accept them again — the database "goes away".
    pub fn refuse_connections(&self, refuse: bool) {
        let pg = self.postgres.as_ref().expect("a PostgreSQL database");
        admin(
            &pg.server,
            format!("ALTER DATABASE {} ALLOW_CONNECTIONS {}", pg.name, !refuse),
        );
        if refuse {
            admin(
                &pg.server,
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                    pg.name
                ),
            );
        }
    }

    fn url_for(dir: &Path) -> Option<String> {
        DATABASES.lock().unwrap().as_ref()?.get(dir).cloned()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(pg) = &self.postgres {
            DATABASES
                .lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .retain(|_, url| *url != pg.url);
            // FORCE: a pool of the stopped gateway may still hold connections.
            admin(
                &pg.server,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name),
            );
        }
    }
}

/// Runs one statement on the server's maintenance database, on a thread of
/// its own so that it works inside and outside an async runtime.
fn admin(server: &str, sql: String) {
    let server = server.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR}={server}: {e}"));
            conn.execute(sql.as_str())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = conn.close().await;
        })
    })
    .join()
    .expect("database administration");
}

/// The server URL with another database name (the path after the authority).
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
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
    cli_on(None, args)
}

/// `log export` of the gateway on `dir` (and `database_url`) into `bundle`
/// (asserted to succeed), then `log verify` of that bundle, which touches no
/// database: its success and output.
pub fn export_and_verify_log(
    database_url: Option<&str>,
    dir: &Path,
    bundle: &Path,
) -> (bool, String) {
    let _ = std::fs::remove_dir_all(bundle);
    let (ok, out) = cli_on(
        database_url,
        &[
            "log",
            "export",
            "--dir",
            dir.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(ok, "export: {out}");
    cli(&["log", "verify", bundle.to_str().unwrap()])
}

/// The same, for commands that open a gateway's database: `database_url`
/// is [`TestDatabase::url`] (`None`: SQLite in the `--dir` given).
pub fn cli_on(database_url: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_corrections-gateway"));
    command.args(args);
    if let Some(url) = database_url {
        command.env("GATEWAY_DATABASE_URL", url);
    }
    let out = command.output().expect("binary runs");
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
