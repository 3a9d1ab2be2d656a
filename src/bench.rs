//! `corrections-gateway bench`: how many signed notices per second the
//! gateway accepts end to end, next to what the cryptography alone allows.
//!
//! It starts a gateway in this process on a fresh data directory with the
//! embedded default (SQLite, WAL, synchronous=FULL, or `--database-url`), so
//! every accepted document is durable before its receipt. Requests are
//! prepared and signed before the clock starts, so the figure is the
//! gateway's, not the simulated partners'. In the same run it measures the
//! crypto-only ceiling: per document, the request verification the gateway
//! does (digest, signer certificate, signature) plus signing the receipt, on
//! as many threads as the machine has cores. Both numbers come from the same
//! machine at the same time, so their ratio is meaningful on a noisy host.
//!
//! The default load is court notices only, so figures stay comparable from
//! run to run; `--mix` ([`mixed`]) sends every dialect and flow and delivers
//! to simulated partners, push and pull. Either reports the process's
//! resident memory before the load and at its peak.

mod mixed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::app::{self, Gateway};
use crate::config::Settings;
use crate::partner::{Answer, GatewayCert, Partner};
use crate::security::alg::Algorithm;
use crate::security::devpki::GatewayIdentity;
use crate::security::httpsig::REQUEST_COMPONENTS;
use crate::security::request::{verify_request, RequestParts};
use crate::security::response::sign_response;
use crate::security::trust::TrustStore;

pub use mixed::{Deliveries, MixReport, Phase};

const SUBMIT_PATH: &str = "/api/v1/documents";

/// A request signed before the clock starts: body, Content-Type and the
/// headers that sign it.
#[derive(Debug, Clone)]
struct Prepared {
    body: Vec<u8>,
    content_type: String,
    headers: Vec<(&'static str, String)>,
}

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
    /// Mixed traffic instead of court notices only: every dialect and flow,
    /// each agency signing with its own dev key, in two phases (cases are
    /// opened, then answered), delivered to simulated partners that listen
    /// for pushes (corrections, procuratorate) or pull their mailboxes.
    #[arg(long)]
    pub mix: bool,
    /// Open loop: send at this many documents per second in all (each
    /// request at its planned instant, latency counted from that instant)
    /// instead of as fast as the partners get answers. Requests are signed
    /// before the clock starts, so a run must end within the gateway's
    /// signature window (300 s by default).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Push attempts in flight at once (`delivery.concurrency`; the
    /// production default otherwise), to measure the outbox's rate.
    #[arg(long)]
    pub delivery_concurrency: Option<usize>,
    /// Push attempts in flight to any one recipient
    /// (`delivery.per_recipient`; the production default otherwise).
    #[arg(long)]
    pub delivery_per_recipient: Option<usize>,
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
    /// Time the timed phases took (the signing between the phases of a
    /// mixed run is not counted).
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub crypto_per_sec: f64,
    /// Transactions that committed documents, and the documents in them
    /// (group commit: documents per transaction), over all instances.
    pub groups: u64,
    pub grouped: u64,
    /// Groups written one document at a time after their table-by-table write failed.
    pub fallbacks: u64,
    /// The open-loop rate asked for, if any.
    pub rate: Option<f64>,
    /// Requests not accepted: what they got, and how many.
    pub refusals: Vec<(String, usize)>,
    pub memory: Memory,
    /// The mixed run's phases, senders and deliveries (`--mix`).
    pub mix: Option<MixReport>,
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
        if let Some(rate) = self.rate {
            writeln!(
                f,
                "arrivals             open loop at {rate:.0} docs/s (latency from each request's planned instant)"
            )?;
        }
        writeln!(
            f,
            "documents            {} sent, {} accepted (201)",
            self.documents, self.accepted
        )?;
        for (what, n) in &self.refusals {
            writeln!(f, "  not accepted       {n} × {what}")?;
        }
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
        writeln!(
            f,
            "commit groups        {} transactions, {:.1} documents each, {} written one at a time",
            self.groups,
            self.grouped as f64 / self.groups.max(1) as f64,
            self.fallbacks
        )?;
        write!(f, "{}", self.memory)?;
        if let Some(mix) = &self.mix {
            write!(f, "\n{mix}")?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident memory of this process (gateway, simulated partners and
/// receivers alike), from `/proc/self/status`; 0 where there is none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS` with the gateway up, before the simulated partners are built.
    pub gateway_kib: u64,
    /// `VmRSS` just before the clock started (partners ready, requests signed).
    pub before_kib: u64,
    /// `VmHWM` at the end of the load (in a mixed run, once the deliveries drained).
    pub peak_kib: u64,
    /// Whether the high-water mark was reset to the resident set just
    /// before the clock started (`/proc/self/clear_refs`, Linux 4.0+), so
    /// that the peak is the load's and not the signing's before it.
    pub peak_reset: bool,
}

impl Memory {
    /// `VmRSS` or `VmHWM` of this process in KiB.
    fn read(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    fn rss() -> u64 {
        Self::read("VmRSS")
    }

    /// Just before the clock starts: resets the high-water mark to the
    /// resident set now and reads it.
    fn at_start(gateway_kib: u64) -> Memory {
        let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Memory {
            gateway_kib,
            before_kib: Self::rss(),
            peak_kib: 0,
            peak_reset,
        }
    }

    /// At the end of the load: the high-water mark since [`Memory::at_start`].
    fn at_end(self) -> Memory {
        Memory {
            peak_kib: Self::read("VmHWM"),
            ..self
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "resident memory      {:.1} MiB gateway up, {:.1} MiB before the load (partners ready), \
             peak {:.1} MiB (VmHWM {}; whole process)",
            mib(self.gateway_kib),
            mib(self.before_kib),
            mib(self.peak_kib),
            if self.peak_reset {
                "of the load"
            } else {
                "since the process started"
            }
        )
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if options.formats {
        let settings = Settings::for_dir(Path::new("."));
        print_formats(&formats(&settings, Duration::from_millis(1000))?);
        return Ok(());
    }
    load(options).await.map(|_| ())
}

/// The load test: simulated partners posting signed documents over HTTP.
pub async fn load(options: Options) -> anyhow::Result<Report> {
    let alg = Algorithm::parse(&options.alg)
        .with_context(|| format!("unknown algorithm {}", options.alg))?;
    if let Some(rate) = options.rate {
        anyhow::ensure!(rate > 0.0, "--rate must be positive");
    }
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
    if let Some(n) = options.delivery_concurrency {
        settings.delivery.concurrency = n;
    }
    if let Some(n) = options.delivery_per_recipient {
        settings.delivery.per_recipient = n;
    }
    // The push receivers' addresses go into the registry before the gateway reads it.
    let listeners = if options.mix {
        mixed::bind_inboxes(&settings)?
    } else {
        Vec::new()
    };
    app::init_dev(&settings)?;
    let pki = settings.pki_dir();
    let inboxes = mixed::Inboxes::serve(listeners, &pki, alg)?;
    let mut instances = Vec::new();
    for _ in 0..options.instances.max(1) {
        instances.push(app::start(Gateway::load(settings.clone()).await?)?);
    }
    let report = if options.mix {
        mixed::drive(&instances, &pki, alg, &options, &inboxes).await
    } else {
        drive(&instances, &pki, alg, &options).await
    };
    for running in instances {
        running.handle.stop(true).await;
        // Wait for the background jobs too (the last checkpoint is signed on
        // the way out), so none is cut off when the runtime ends.
        if let Ok(Err(e)) = running.task.await {
            tracing::warn!(error = %e, "a gateway instance stopped with an error");
        }
    }
    inboxes.stop().await;
    let report = report?;
    println!("{report}");
    Ok(report)
}

/// The default load: court notices from court.620102, all signed first.
async fn drive(
    instances: &[app::Running],
    pki: &Path,
    alg: Algorithm,
    options: &Options,
) -> anyhow::Result<Report> {
    let gateway_kib = Memory::rss();
    let sender = "court.620102";
    let (partners, documents) = (options.partners.max(1), options.documents.max(1));
    // One client per instance; the signature covers no host, so a request
    // signed once may go to any of them.
    let mut clients = Vec::with_capacity(instances.len());
    for running in instances {
        let base_url = format!("http://{}", running.addr);
        clients.push(Arc::new(Partner::for_agency(&base_url, pki, sender, alg)?));
    }
    // Prepare and sign every request first: the timed phase measures the gateway.
    let mut prepared = Vec::with_capacity(documents);
    for n in 0..documents {
        prepared.push(prepare(
            &clients[0],
            sample_court_notice(n),
            "application/xml",
        )?);
    }
    let crypto_per_sec = crypto_ceiling(&instances[0].gateway, &prepared, Duration::from_secs(2));
    let memory = Memory::at_start(gateway_kib);
    let fired = fire(&clients, prepared, partners, options.rate).await?;
    let memory = memory.at_end();
    verify_one_receipt(pki, &fired)?;
    let (p50, p99) = percentiles(fired.latencies.clone());
    let (groups, grouped, fallbacks) = commit_groups(instances);
    Ok(Report {
        alg,
        instances: instances.len(),
        partners,
        documents,
        accepted: fired.accepted,
        elapsed: fired.elapsed,
        p50,
        p99,
        crypto_per_sec,
        groups,
        grouped,
        fallbacks,
        rate: options.rate,
        refusals: fired.refusals.into_iter().collect(),
        memory,
        mix: None,
    })
}

/// Signs a document submission as `partner`, to be sent later.
fn prepare(partner: &Partner, body: Vec<u8>, content_type: &str) -> anyhow::Result<Prepared> {
    let headers = partner.sign("POST", SUBMIT_PATH, Some(content_type), Some(&body))?;
    Ok(Prepared {
        body,
        content_type: content_type.to_string(),
        headers,
    })
}

/// What one timed phase got back.
struct Fired {
    accepted: usize,
    /// One per request sent, in no particular order.
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// The gateway document id of each request accepted (201), by request index.
    document_ids: Vec<Option<String>>,
    /// One 201 answer as received, to check its signature.
    sample: Option<Answer>,
    /// What the requests not accepted got, and how many got it.
    refusals: BTreeMap<String, usize>,
}

/// A request that was not accepted, in a line: the status, the problem's
/// code and its first error (code and path), or why there was no answer.
fn refusal(answer: &anyhow::Result<Answer>) -> String {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return format!("no answer: {e:#}"),
    };
    let problem = answer.json().unwrap_or_default();
    let first = &problem["errors"][0];
    format!(
        "HTTP {} {} {} {}",
        answer.status,
        problem["code"].as_str().unwrap_or("-"),
        first["code"].as_str().unwrap_or(""),
        first["path"].as_str().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

/// Sends `requests` from `partners` concurrent simulated partners, each
/// taking the next request as soon as it has its answer (closed loop) or,
/// with `rate`, each request at its planned instant (open loop). Partner `p`
/// sends through `senders[p % senders.len()]`: the requests are signed
/// already, so the client only carries them.
async fn fire(
    senders: &[Arc<Partner>],
    requests: Vec<Prepared>,
    partners: usize,
    rate: Option<f64>,
) -> anyhow::Result<Fired> {
    let total = requests.len();
    // Untimed warm-up: one request per partner, all at once, so that each
    // has its keep-alive connection before the clock starts. Opening it is
    // paid once per partner, not per document; without this the first ~100
    // requests of a run carried it (docs/benchmarks.md §8).
    futures_util::future::join_all(
        (0..partners.max(1)).map(|p| senders[p % senders.len()].get("/healthz")),
    )
    .await;
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(partners);
    for p in 0..partners.max(1) {
        let (requests, next) = (requests.clone(), next.clone());
        let sender = senders[p % senders.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                let t = match rate {
                    Some(rate) => {
                        let planned = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(planned.into()).await;
                        planned
                    }
                    None => Instant::now(),
                };
                let answer = sender
                    .send(
                        reqwest::Method::POST,
                        SUBMIT_PATH,
                        Some((&request.content_type, request.body.clone())),
                        request.headers.clone(),
                    )
                    .await;
                answers.push((i, t.elapsed(), answer));
            }
            answers
        }));
    }
    let mut fired = Fired {
        accepted: 0,
        latencies: Vec::with_capacity(total),
        elapsed: Duration::ZERO,
        document_ids: vec![None; total],
        sample: None,
        refusals: BTreeMap::new(),
    };
    for task in tasks {
        for (i, latency, answer) in task.await? {
            fired.latencies.push(latency);
            let answer = match answer {
                Ok(answer) if answer.status == 201 => answer,
                other => {
                    *fired.refusals.entry(refusal(&other)).or_default() += 1;
                    continue;
                }
            };
            fired.accepted += 1;
            fired.document_ids[i] = answer
                .json()
                .ok()
                .and_then(|receipt| receipt["document_id"].as_str().map(str::to_string));
            fired.sample.get_or_insert(answer);
        }
    }
    fired.elapsed = started.elapsed();
    Ok(fired)
}

/// One receipt is verified end to end so the run proves receipts are signed.
fn verify_one_receipt(pki: &Path, fired: &Fired) -> anyhow::Result<()> {
    let gateway_cert = GatewayCert::load(&pki.join("gateway.crt.pem"))?;
    let sample = fired.sample.as_ref().context("no document was accepted")?;
    sample
        .verify(&gateway_cert)
        .map_err(|e| anyhow::anyhow!("receipt signature: {}", e.message().en))?;
    Ok(())
}

/// p50 and p99 of `latencies`.
fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    (pick(0.50), pick(0.99))
}

/// Transactions that committed documents, the documents in them and the
/// groups written one document at a time, over all instances.
fn commit_groups(instances: &[app::Running]) -> (u64, u64, u64) {
    instances.iter().fold((0, 0, 0), |(g, d, f), r| {
        let (g2, d2) = r.gateway.store.commit_groups();
        (g + g2, d + d2, f + r.gateway.store.commit_fallbacks())
    })
}

/// Verify + receipt signing per document, on every core, for about `budget`.
fn crypto_ceiling(gw: &Gateway, prepared: &[Prepared], budget: Duration) -> f64 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let trust: &TrustStore = &gw.trust;
    let identity: &GatewayIdentity = &gw.identity;
    let window = gw.settings.signature_window_secs;
    let sample: Vec<(RequestParts, &[u8])> = prepared
        .iter()
        .take(256)
        .map(|request| {
            let get = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            };
            let parts = RequestParts {
                method: "POST".into(),
                path: SUBMIT_PATH.into(),
                query: None,
                content_type: Some(request.content_type.clone()),
                content_digest: get("content-digest"),
                signature_input: get("signature-input"),
                signature: get("signature"),
                tls_agency: None,
            };
            (parts, request.body.as_slice())
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
