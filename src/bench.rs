//! `corrections-gateway bench`: how many signed notices per second the
//! gateway accepts end to end, next to what the cryptography alone allows.
//!
//! Without `--url` it starts a gateway in this process on a fresh data
//! directory with the embedded default (SQLite, WAL, synchronous=FULL), so
//! every accepted document is durable before its receipt. Requests are
//! prepared and signed before the clock starts, so the figure is the
//! gateway's, not the simulated partners'. In the same run it measures the
//! crypto-only ceiling: per document, the request verification the gateway
//! does (digest, signer certificate, signature) plus signing the receipt, on
//! as many threads as the machine has cores. Both numbers come from the same
//! machine at the same time, so their ratio is meaningful on a noisy host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::app::{self, Gateway};
use crate::config::Settings;
use crate::partner::{GatewayCert, Partner};
use crate::security::alg::Algorithm;
use crate::security::devpki::{load_signing_key, GatewayIdentity};
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::{verify_request, RequestParts};
use crate::security::response::sign_response;
use crate::security::trust::TrustStore;

/// A request body with the headers that sign it.
type SignedRequest = (Vec<u8>, Vec<(&'static str, String)>);

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Concurrent simulated partners.
    #[arg(long, default_value_t = 16)]
    pub partners: usize,
    /// Documents in all.
    #[arg(long, default_value_t = 2000)]
    pub documents: usize,
    /// Signature algorithm: ecdsa-p256-sha256, sm2-sm3, rsa-pss-sha512, ed25519.
    #[arg(long, default_value = "ecdsa-p256-sha256")]
    pub alg: String,
    /// Data directory to use (default: a fresh temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Database to use instead of SQLite in the data directory (an empty
    /// PostgreSQL database: the notices are the same on every run, and a
    /// second run would get 200 resubmission answers).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Gateway instances sharing the database (in this process, each with
    /// its own listener, pools and outbox worker); partners are spread over
    /// them. More than one needs PostgreSQL.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Instead of the load test: translation throughput per dialect (decode +
    /// validate + encode) on one core, over the native test fixtures.
    #[arg(long)]
    pub formats: bool,
}

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub alg: Algorithm,
    pub instances: usize,
    pub partners: usize,
    pub documents: usize,
    pub accepted: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub crypto_per_sec: f64,
    /// Transactions that committed documents, and the documents in them
    /// (group commit: documents per transaction), over all instances.
    pub groups: u64,
    pub grouped: u64,
}

impl Report {
    pub fn accepted_per_sec(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "algorithm            {}", self.alg.as_str())?;
        writeln!(f, "gateway instances    {}", self.instances)?;
        writeln!(f, "partners             {}", self.partners)?;
        writeln!(
            f,
            "documents            {} sent, {} accepted (201)",
            self.documents, self.accepted
        )?;
        writeln!(f, "accepted docs/s      {:.0}", self.accepted_per_sec())?;
        writeln!(
            f,
            "latency p50 / p99    {:.2} ms / {:.2} ms",
            ms(self.p50),
            ms(self.p99)
        )?;
        writeln!(
            f,
            "crypto-only ceiling  {:.0} docs/s (verify + receipt signing, all cores)",
            self.crypto_per_sec
        )?;
        writeln!(
            f,
            "end-to-end / ceiling {:.1} %",
            100.0 * self.accepted_per_sec() / self.crypto_per_sec
        )?;
        write!(
            f,
            "commit groups        {} transactions, {:.1} documents each",
            self.groups,
            self.grouped as f64 / self.groups.max(1) as f64
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if options.formats {
        let settings = Settings::for_dir(Path::new("."));
        print_formats(&formats(&settings, Duration::from_millis(1000))?);
        return Ok(());
    }
    load(options).await.map(|_| ())
}

/// The load test: simulated partners posting signed notices over HTTP.
pub async fn load(options: Options) -> anyhow::Result<Report> {
    let alg = Algorithm::parse(&options.alg)
        .with_context(|| format!("unknown algorithm {}", options.alg))?;
    let temp;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut settings = Settings::for_dir(&dir);
    settings.listen = "127.0.0.1:0".into();
    if let Some(url) = &options.database_url {
        settings.database_url = url.clone();
    }
    app::init_dev(&settings)?;
    let pki = settings.pki_dir();
    let mut instances = Vec::new();
    for _ in 0..options.instances.max(1) {
        instances.push(app::start(Gateway::load(settings.clone()).await?)?);
    }
    let report = drive(
        &instances,
        &pki,
        alg,
        options.partners.max(1),
        options.documents.max(1),
    )
    .await;
    for running in instances {
        running.handle.stop(true).await;
        // Wait for the background jobs too (the last checkpoint is signed on
        // the way out), so none is cut off when the runtime ends.
        if let Ok(Err(e)) = running.task.await {
            tracing::warn!(error = %e, "a gateway instance stopped with an error");
        }
    }
    let report = report?;
    println!("{report}");
    Ok(report)
}

async fn drive(
    instances: &[app::Running],
    pki: &std::path::Path,
    alg: Algorithm,
    partners: usize,
    documents: usize,
) -> anyhow::Result<Report> {
    let sender = "court.620102";
    // One client per instance; the signature covers no host, so a request
    // signed once may go to any of them.
    let mut clients = Vec::with_capacity(instances.len());
    for running in instances {
        let (key, _cert, keyid, _) = load_signing_key(
            &pki.join(sender)
                .join(format!("{}.key.pem", alg.file_stem())),
            &pki.join(sender)
                .join(format!("{}.crt.pem", alg.file_stem())),
        )
        .map_err(|e| anyhow::anyhow!(e.message().en))?;
        clients.push(Arc::new(Partner::new(
            &format!("http://{}", running.addr),
            key,
            keyid,
            alg,
        )));
    }
    let partner = clients[0].clone();
    let running = &instances[0];
    let gateway_cert = GatewayCert::load(&pki.join("gateway.crt.pem"))?;
    // Prepare and sign every request first: the timed phase measures the gateway.
    let mut prepared = Vec::with_capacity(documents);
    for n in 0..documents {
        let body = sample_court_notice(n);
        let headers = partner.sign(
            "POST",
            "/api/v1/documents",
            Some("application/xml"),
            Some(&body),
        )?;
        prepared.push((body, headers));
    }
    let crypto_per_sec = crypto_ceiling(&running.gateway, &prepared, Duration::from_secs(2));
    let queue = Arc::new(std::sync::Mutex::new(prepared));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..partners {
        let queue = queue.clone();
        let partner = clients[p % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut accepted = 0usize;
            loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some((body, headers)) = next else { break };
                let t = Instant::now();
                let answer = partner
                    .send(
                        reqwest::Method::POST,
                        "/api/v1/documents",
                        Some(("application/xml", body)),
                        headers,
                    )
                    .await;
                latencies.push(t.elapsed());
                if matches!(answer, Ok(ref a) if a.status == 201) {
                    accepted += 1;
                }
            }
            (accepted, latencies)
        }));
    }
    let mut accepted = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (a, l) = task.await?;
        accepted += a;
        latencies.extend(l);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    // One receipt is verified end to end so the run proves receipts are signed.
    let probe = partner
        .submit(&sample_court_notice(documents + 1), "application/xml")
        .await?;
    probe
        .verify(&gateway_cert)
        .map_err(|e| anyhow::anyhow!("receipt signature: {}", e.message().en))?;
    let (groups, grouped) = instances
        .iter()
        .map(|r| r.gateway.store.commit_groups())
        .fold((0, 0), |(g, d), (g2, d2)| (g + g2, d + d2));
    Ok(Report {
        groups,
        grouped,
        alg,
        instances: instances.len(),
        partners,
        documents,
        accepted,
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
        crypto_per_sec,
    })
}

/// Verify + receipt signing per document, on every core, for about `budget`.
fn crypto_ceiling(gw: &Gateway, prepared: &[SignedRequest], budget: Duration) -> f64 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let trust: &TrustStore = &gw.trust;
    let identity: &GatewayIdentity = &gw.identity;
    let window = gw.settings.signature_window_secs;
    let sample: Vec<(RequestParts, &[u8])> = prepared
        .iter()
        .take(256)
        .map(|(body, headers)| {
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            };
            let parts = RequestParts {
                method: "POST".into(),
                path: "/api/v1/documents".into(),
                query: None,
                content_type: Some("application/xml".into()),
                content_digest: get("content-digest"),
                signature_input: get("signature-input"),
                signature: get("signature"),
                tls_agency: None,
            };
            (parts, body.as_slice())
        })
        .collect();
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let sample = &sample;
                scope.spawn(move || {
                    let mut count = 0usize;
                    while started.elapsed() < budget {
                        for (parts, body) in sample.iter().take(16) {
                            let now = time::OffsetDateTime::now_utc().unix_timestamp();
                            if verify_request(
                                parts,
                                Some(body),
                                &REQUEST_COMPONENTS,
                                trust,
                                window,
                                now,
                            )
                            .is_ok()
                                && sign_response(identity, 201, "application/json", body).is_ok()
                            {
                                count += 1;
                            }
                        }
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

/// A court handover notice (the shared sample's shape) with a unique document
/// number, so each one is a new document. Test subjects only: the ID number
/// is the sample's, valid by its check digit, belonging to no one.
pub fn sample_court_notice(n: usize) -> Vec<u8> {
    let seq = n + 1;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<FYJHWS BBH="1.0">
  <WSLX>ZXTZ</WSLX>
  <WSBH>甘0102刑执通〔2026〕B{n}号</WSBH>
  <AH>(2026)甘0102刑初{seq}号</AH>
  <FSDW DM="court.620102">兰州市城关区人民法院</FSDW>
  <JSDW DM="corrections.620102">兰州市城关区社区矫正管理局</JSDW>
  <QFSJ>2026-11-20T10:15:00+08:00</QFSJ>
  <SXRQ>2026-11-18</SXRQ>
  <ZF>
    <XM>阿依古丽·买买提</XM>
    <XB>2</XB>
    <MZ>05</MZ>
    <CSRQ>1990-03-07</CSRQ>
    <SFZH>620102199003070026</SFZH>
    <JZD XZQH="620102">甘肃省兰州市城关区东岗西路100号</JZD>
  </ZF>
  <XF>
    <JZLB>HX</JZLB>
    <ZM>危险驾驶罪</ZM>
    <ZXF>拘役三个月，缓刑六个月</ZXF>
    <JZQX QSRQ="2026-11-18" ZZRQ="2027-05-17"/>
  </XF>
  <BDQX>2026-11-28</BDQX>
</FYJHWS>
"#
    )
    .into_bytes()
}

/// Figures of the translation benchmark for one fixture.
#[derive(Debug, Clone)]
pub struct FormatsFigure {
    pub dialect: String,
    pub message_type: String,
    /// decode + validate + encode, per second, one core.
    pub per_sec: f64,
    /// Baseline in the same run: parsing the same bytes with a bare parser
    /// (quick-xml events or serde_json), per second.
    pub baseline_per_sec: f64,
}

/// `corrections-gateway bench --formats`: decode + validate + encode
/// throughput per dialect and message type on one core (this thread), next to
/// a bare parse of the same bytes, over every native fixture in
/// `tests/fixtures/native/`.
pub fn formats(settings: &Settings, budget: Duration) -> anyhow::Result<Vec<FormatsFigure>> {
    use crate::formats::Dialect;
    let engines = crate::tools::Engines::load(settings)?;
    let root = settings.resources.join("tests/fixtures/native");
    let mut figures = Vec::new();
    for dialect in Dialect::ALL {
        let dir = root.join(dialect.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file)?;
            // Only documents that translate cleanly are timed (malformed fixtures are for tests).
            let Ok(canonical) = engines.check(dialect, &bytes) else {
                continue;
            };
            let message_type = canonical["message_type"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            let per_sec = rate(budget, || {
                let doc = engines.check(dialect, &bytes).ok();
                doc.and_then(|d| engines.formats.encode(dialect, &d).ok())
                    .is_some()
            });
            let baseline_per_sec = rate(budget, || bare_parse(&bytes));
            figures.push(FormatsFigure {
                dialect: dialect.as_str().into(),
                message_type,
                per_sec,
                baseline_per_sec,
            });
        }
    }
    Ok(figures)
}

/// Runs `work` for about `budget` and returns how many successful runs per second.
fn rate(budget: Duration, mut work: impl FnMut() -> bool) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < budget {
        for _ in 0..32 {
            if work() {
                done += 1;
            }
        }
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// The cheapest full read of a document: every XML event, or a JSON value.
fn bare_parse(bytes: &[u8]) -> bool {
    if bytes.first().is_some_and(|b| *b == b'{') {
        return serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
    }
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Eof) => return true,
            Ok(_) => buf.clear(),
            Err(_) => return false,
        }
    }
}

pub fn print_formats(figures: &[FormatsFigure]) {
    println!(
        "{:<14} {:<30} {:>14} {:>16} {:>8}",
        "dialect", "message type", "docs/s (1 core)", "bare parse/s", "ratio"
    );
    for f in figures {
        println!(
            "{:<14} {:<30} {:>14.0} {:>16.0} {:>7.1}%",
            f.dialect,
            f.message_type,
            f.per_sec,
            f.baseline_per_sec,
            100.0 * f.per_sec / f.baseline_per_sec
        );
    }
}
