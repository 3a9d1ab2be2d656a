//! `bench --mix`: the gateway under the traffic it exists for, not one
//! notice type from one court.
//!
//! Five agency systems send in their own dialects, each signing with its own
//! dev key for `--alg`: court XML, procuratorate XML, police JSON, prison XML
//! in GB18030 and the corrections agency's JSON — handover notices and
//! receipts, assessment requests and opinions, revocation proposals and
//! rulings, the documents and people drafted by `demo` ([`crate::demo`]).
//! An answer names the document it answers by its gateway id, which exists
//! only once that document is accepted, so a run has two timed phases:
//! phase 1 opens the cases (all requests signed before its clock starts),
//! then the answers are signed untimed with the ids phase 1 returned, then
//! phase 2 sends them. The figures count the two phases' time only.
//!
//! Everything the gateway accepts is delivered while it runs: the
//! corrections agency and the procuratorate take pushes at real HTTP
//! receivers in this process ([`crate::partner::inbox`]: they check the
//! gateway's signature, process each document once and sign a receipt with
//! their own key), the court, police and prison pull their mailboxes and ack
//! each item. The run waits until no delivery is pending, then checks in
//! the exchange log that each delivery was receipted or acked exactly once.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{
    commit_groups, crypto_ceiling, fire, percentiles, prepare, verify_one_receipt, Memory, Options,
    Prepared, Report,
};
use crate::app::{self, Gateway, Running};
use crate::config::Settings;
use crate::demo::{
    self, Case, Person, Plot, Step, CORRECTIONS, COURT, POLICE, PRISON, PROCURATORATE,
};
use crate::partner::inbox::{self, Inbox, Tally};
use crate::partner::{GatewayCert, Partner};
use crate::security::alg::Algorithm;
use crate::security::devpki::{agency_key_files, GatewayIdentity};
use crate::store::Delivery;

/// Agencies whose systems take pushes, at receivers in this process.
const PUSHED: [&str; 2] = [CORRECTIONS, PROCURATORATE];
/// Agencies whose systems pull their mailbox and ack each item.
const PULLING: [&str; 3] = [COURT, POLICE, PRISON];
/// How long the deliveries may take to drain after the last document.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// A kind of case the traffic opens, in turn: its plot, who opens it (or,
/// for a revocation, which court it goes to), the opening step and the answer.
struct Kind {
    plot: Plot,
    partner: &'static str,
    opens: Step,
    answer: Step,
}

/// One case of each kind in turn, so every dialect sends in phase 1:
/// court XML, procuratorate XML, police JSON, prison GB18030 XML and
/// corrections JSON; phase 2 is corrections JSON and court XML.
const KINDS: [Kind; 5] = [
    Kind {
        plot: Plot::HandoverOnTime,
        partner: COURT,
        opens: Step::Notice,
        answer: Step::Receipt,
    },
    Kind {
        plot: Plot::AssessmentOnTime,
        partner: PROCURATORATE,
        opens: Step::Request,
        answer: Step::Opinion,
    },
    Kind {
        plot: Plot::AssessmentOnTime,
        partner: POLICE,
        opens: Step::Request,
        answer: Step::Opinion,
    },
    Kind {
        plot: Plot::AssessmentOnTime,
        partner: PRISON,
        opens: Step::Request,
        answer: Step::Opinion,
    },
    Kind {
        plot: Plot::Revocation,
        partner: COURT,
        opens: Step::Proposal,
        answer: Step::Ruling,
    },
];

/// One timed phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub sent: usize,
    pub accepted: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

/// What the mixed traffic was and how its deliveries went.
#[derive(Debug, Clone)]
pub struct MixReport {
    pub phases: Vec<Phase>,
    /// Documents sent by each agency, with its dialect's Content-Type.
    pub senders: Vec<(String, String, usize)>,
    pub message_types: Vec<(String, usize)>,
    pub deliveries: Deliveries,
}

/// Every delivery of the run, as the gateway recorded it after the drain.
#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    pub push: usize,
    pub pull: usize,
    /// Push deliveries with a verified receipt.
    pub delivered: usize,
    /// Pull deliveries acknowledged.
    pub acked: usize,
    pub dead: usize,
    pub pending: usize,
    /// Deliveries with exactly one `delivery.receipted` or `mailbox.acked`
    /// leaf in the exchange log, and with more than one.
    pub receipted_once: usize,
    pub receipted_more: usize,
    /// From the first delivery created to the last completed.
    pub window: Duration,
    /// The same for each mode: which of the two the window waited for.
    pub push_window: Duration,
    pub pull_window: Duration,
    /// Created → receipted or acked.
    pub p50: Duration,
    pub p99: Duration,
    /// From the end of phase 2 until nothing was pending.
    pub drain: Duration,
    pub inboxes: Vec<(String, Tally)>,
}

impl Deliveries {
    pub fn completed(&self) -> usize {
        self.delivered + self.acked
    }

    pub fn completed_per_sec(&self) -> f64 {
        self.completed() as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// Binds a listener for each push-delivered agency and writes the demo
/// registry with those agencies pushed to them (before `init-dev` reads it).
pub(super) fn bind_inboxes(
    settings: &Settings,
) -> anyhow::Result<Vec<(&'static str, TcpListener)>> {
    let mut listeners = Vec::new();
    let mut endpoints = Vec::new();
    for agency in PUSHED {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}{}", listener.local_addr()?, inbox::INBOX_PATH);
        endpoints.push((agency, url));
        listeners.push((agency, listener));
    }
    app::write_dev_registry(settings, &endpoints)?;
    Ok(listeners)
}

/// The push receivers of a run, serving.
pub(super) struct Inboxes(Vec<(Arc<Inbox>, actix_web::dev::ServerHandle)>);

impl Inboxes {
    /// Serves an inbox on each listener, signing receipts with the agency's
    /// dev key for `alg` (none without listeners: the default load).
    pub(super) fn serve(
        listeners: Vec<(&'static str, TcpListener)>,
        pki: &Path,
        alg: Algorithm,
    ) -> anyhow::Result<Inboxes> {
        let mut inboxes = Vec::new();
        for (agency, listener) in listeners {
            let (key, cert) = agency_key_files(pki, agency, alg);
            let signer = GatewayIdentity::from_files(&key, &cert)
                .map_err(|e| anyhow::anyhow!("{agency}'s receipt key: {}", e.message().en))?;
            let gateway = GatewayCert::load(&pki.join("gateway.crt.pem"))?;
            let inbox = Inbox::new(agency, signer, gateway);
            let handle = inbox::serve(listener, inbox.clone(), 1)?;
            inboxes.push((inbox, handle));
        }
        Ok(Inboxes(inboxes))
    }

    fn tallies(&self) -> Vec<(String, Tally)> {
        self.0
            .iter()
            .map(|(inbox, _)| (inbox.agency.clone(), inbox.tally()))
            .collect()
    }

    pub(super) async fn stop(self) {
        for (_, handle) in self.0 {
            handle.stop(true).await;
        }
    }
}

/// The mixed load: open cases, answer them, drain the deliveries, check them.
pub(super) async fn drive(
    instances: &[Running],
    pki: &Path,
    alg: Algorithm,
    options: &Options,
    inboxes: &Inboxes,
) -> anyhow::Result<Report> {
    let gateway_kib = Memory::rss();
    let gw = &instances[0].gateway;
    let partners = options.partners.max(1);
    let documents = options.documents.max(2);
    let url = |i: usize| format!("http://{}", instances[i % instances.len()].addr);
    let signers = signers(pki, &url(0), alg)?;
    let senders = senders(instances.len(), partners, &url, pki, alg)?;
    let mut mixture = Mixture::default();
    let mut cases = open_cases(documents.div_ceil(2))?;
    let openers = cases.iter().map(|(kind, case)| (case, KINDS[*kind].opens));
    let openers = sign_all(gw, &signers, openers, &mut mixture)?;
    let crypto_per_sec = crypto_ceiling(gw, &openers, Duration::from_secs(2));
    let pullers = Pullers::start(pki, alg, &url)?;
    let memory = Memory::at_start(gateway_kib);

    let first = fire(&senders, openers, partners, options.rate).await?;
    // Untimed: the answers name what they answer by the ids phase 1 returned.
    for ((kind, case), id) in cases.iter_mut().zip(&first.document_ids) {
        if let Some(id) = id {
            case.accepted(KINDS[*kind].opens, id.clone());
        }
    }
    let answers = cases
        .iter()
        .zip(&first.document_ids)
        .filter(|(_, id)| id.is_some())
        .take(documents - cases.len())
        .map(|((kind, case), _)| (case, KINDS[*kind].answer));
    let answers = sign_all(gw, &signers, answers, &mut mixture)?;
    let second = fire(&senders, answers, partners, options.rate).await?;
    let ended = Instant::now();

    let pending = drain(gw).await?;
    let drained = ended.elapsed();
    let memory = memory.at_end();
    pullers.stop().await;
    verify_one_receipt(pki, &first)?;
    let mut deliveries = Deliveries::check(gw, inboxes).await?;
    deliveries.drain = drained;
    if pending > 0 {
        tracing::warn!(pending, "deliveries still pending after the drain limit");
    }

    let phases = vec![
        Phase::of("phase 1: cases opened", first.document_ids.len(), &first),
        Phase::of(
            "phase 2: answers (signed after phase 1, untimed)",
            second.document_ids.len(),
            &second,
        ),
    ];
    let mut latencies = first.latencies;
    latencies.extend(second.latencies);
    let (p50, p99) = percentiles(latencies);
    let (groups, grouped, fallbacks) = commit_groups(instances);
    let mut refusals = first.refusals;
    for (what, n) in second.refusals {
        *refusals.entry(what).or_default() += n;
    }
    Ok(Report {
        alg,
        instances: instances.len(),
        partners,
        documents: phases.iter().map(|p| p.sent).sum(),
        accepted: first.accepted + second.accepted,
        elapsed: first.elapsed + second.elapsed,
        p50,
        p99,
        crypto_per_sec,
        groups,
        grouped,
        fallbacks,
        rate: options.rate,
        refusals: refusals.into_iter().collect(),
        memory,
        mix: Some(MixReport {
            phases,
            senders: mixture.senders.into_values().collect(),
            message_types: mixture.message_types.into_iter().collect(),
            deliveries,
        }),
    })
}

/// The clients the simulated partners send through, one per instance,
/// sharing one HTTP client that keeps a connection per partner open between
/// its requests. One client per partner would hold the same connections but
/// also a TLS context each (with the system's CA certificates loaded):
/// memory of the simulation, not of the gateway, in the peak RSS. The
/// requests are signed already, so whose key a client holds does not matter.
fn senders(
    instances: usize,
    partners: usize,
    url: &dyn Fn(usize) -> String,
    pki: &Path,
    alg: Algorithm,
) -> anyhow::Result<Vec<Arc<Partner>>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(partners)
        .build()?;
    (0..instances)
        .map(|i| {
            let partner = Partner::for_agency(&url(i), pki, COURT, alg)?;
            Ok(Arc::new(partner.with_http_client(http.clone())))
        })
        .collect()
}

/// Each sending agency with its dev key for `alg`.
fn signers(
    pki: &Path,
    base_url: &str,
    alg: Algorithm,
) -> anyhow::Result<BTreeMap<&'static str, Partner>> {
    [COURT, PROCURATORATE, POLICE, PRISON, CORRECTIONS]
        .into_iter()
        .map(|agency| Ok((agency, Partner::for_agency(base_url, pki, agency, alg)?)))
        .collect()
}

/// `count` cases, one of each kind in turn, with fictional people
/// (seeded: the same run draws the same people).
fn open_cases(count: usize) -> anyhow::Result<Vec<(usize, Case)>> {
    let mut rng = StdRng::seed_from_u64(9);
    let year = time::OffsetDateTime::now_utc().year();
    (0..count)
        .map(|i| {
            let kind = i % KINDS.len();
            let person = Person::fictional(&mut rng)?;
            let n = u32::try_from(i + 1)?;
            let case = Case::new(
                KINDS[kind].plot,
                person,
                KINDS[kind].partner,
                n,
                year,
                i % 4 == 0,
            );
            Ok((kind, case))
        })
        .collect()
}

/// What was sent, by sender and by message type.
#[derive(Default)]
struct Mixture {
    senders: BTreeMap<&'static str, (String, String, usize)>,
    message_types: BTreeMap<String, usize>,
}

/// Drafts each step's document, encodes it in its sender's dialect and
/// signs it with the sender's key. Attachments are left out: the load is
/// the documents, and uploads would be requests of another kind.
fn sign_all<'a>(
    gw: &Gateway,
    signers: &BTreeMap<&'static str, Partner>,
    steps: impl Iterator<Item = (&'a Case, Step)>,
    mixture: &mut Mixture,
) -> anyhow::Result<Vec<Prepared>> {
    // Whole minutes: the prison dialect writes times to the minute (年月日 时分).
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_time(time::Time::from_hms(now.hour(), now.minute(), 0)?);
    let mut prepared = Vec::new();
    for (case, step) in steps {
        let (sender, mut doc) = case.draft(step, now, POLICE)?;
        doc["attachments"] = serde_json::json!([]);
        let (body, content_type) = demo::native(gw, sender, &doc)?;
        let signer = signers
            .get(sender)
            .ok_or_else(|| anyhow::anyhow!("no signer for {sender}"))?;
        let entry = mixture
            .senders
            .entry(sender)
            .or_insert_with(|| (sender.to_string(), content_type.clone(), 0));
        entry.2 += 1;
        let message_type = doc["message_type"].as_str().unwrap_or("?").to_string();
        *mixture.message_types.entry(message_type).or_default() += 1;
        prepared.push(prepare(signer, body, &content_type)?);
    }
    Ok(prepared)
}

/// The pulling agencies' systems: each fetches its mailbox and acks every
/// item, again and again, until told to stop after the drain.
struct Pullers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pullers {
    fn start(pki: &Path, alg: Algorithm, url: &dyn Fn(usize) -> String) -> anyhow::Result<Pullers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (i, agency) in PULLING.into_iter().enumerate() {
            let partner = Partner::for_agency(&url(i), pki, agency, alg)?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let stopping = stop.load(Ordering::SeqCst);
                    match partner.pull_and_ack().await {
                        Ok(acked) if !acked.is_empty() => continue,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(agency, error = %e, "pulling the mailbox failed"),
                    }
                    if stopping {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
        Ok(Pullers { stop, tasks })
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Waits until no delivery is pending (or [`DRAIN_LIMIT`]); how many still are.
async fn drain(gw: &Gateway) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let pending = gw.store.deliveries_in(Some("pending"), 1).await?.len();
        if pending == 0 || started.elapsed() > DRAIN_LIMIT {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Phase {
    fn of(name: &'static str, sent: usize, fired: &super::Fired) -> Phase {
        let (p50, p99) = percentiles(fired.latencies.clone());
        Phase {
            name,
            sent,
            accepted: fired.accepted,
            elapsed: fired.elapsed,
            p50,
            p99,
        }
    }
}

impl Deliveries {
    /// Every delivery the gateway holds, and how often the exchange log
    /// says each was receipted (push) or acked (pull).
    async fn check(gw: &Gateway, inboxes: &Inboxes) -> anyhow::Result<Deliveries> {
        let all = gw.store.deliveries_in(None, i64::MAX).await?;
        let mut receipts: HashMap<String, usize> = HashMap::new();
        for entry in gw.store.log_entries(0, i64::MAX).await? {
            let leaf: serde_json::Value = serde_json::from_slice(&entry.leaf)?;
            if matches!(
                leaf["event"].as_str(),
                Some("delivery.receipted" | "mailbox.acked")
            ) {
                let id = leaf["delivery_id"].as_str().unwrap_or_default().to_string();
                *receipts.entry(id).or_default() += 1;
            }
        }
        let count = |f: &dyn Fn(&Delivery) -> bool| all.iter().filter(|d| f(d)).count();
        let receipted = |d: &Delivery| receipts.get(&d.id).copied().unwrap_or(0);
        let window = |mode: Option<&str>| {
            let of_mode = || all.iter().filter(move |d| mode.is_none_or(|m| d.mode == m));
            let first = of_mode().map(|d| d.created_at_ms).min().unwrap_or(0);
            let last = of_mode()
                .filter_map(|d| d.completed_at_ms)
                .max()
                .unwrap_or(first);
            Duration::from_millis(u64::try_from(last - first).unwrap_or(0))
        };
        let latencies = all
            .iter()
            .filter_map(|d| Some(d.completed_at_ms? - d.created_at_ms))
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
            .collect();
        let (p50, p99) = percentiles(latencies);
        Ok(Deliveries {
            push: count(&|d| d.mode == "push"),
            pull: count(&|d| d.mode == "pull"),
            delivered: count(&|d| d.state == "delivered"),
            acked: count(&|d| d.state == "acked"),
            dead: count(&|d| d.state == "dead"),
            pending: count(&|d| d.state == "pending"),
            receipted_once: count(&|d| receipted(d) == 1),
            receipted_more: count(&|d| receipted(d) > 1),
            window: window(None),
            push_window: window(Some("push")),
            pull_window: window(Some("pull")),
            p50,
            p99,
            drain: Duration::ZERO,
            inboxes: inboxes.tallies(),
        })
    }
}

impl std::fmt::Display for MixReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::ms;
        for phase in &self.phases {
            writeln!(
                f,
                "{:<52} {} sent, {} accepted in {:.2} s ({:.0}/s), p50 / p99 {:.2} / {:.2} ms",
                phase.name,
                phase.sent,
                phase.accepted,
                phase.elapsed.as_secs_f64(),
                phase.accepted as f64 / phase.elapsed.as_secs_f64().max(1e-9),
                ms(phase.p50),
                ms(phase.p99)
            )?;
        }
        writeln!(f, "senders:")?;
        for (agency, content_type, n) in &self.senders {
            writeln!(f, "  {agency:<22} {content_type:<36} {n:>6}")?;
        }
        writeln!(f, "message types:")?;
        for (message_type, n) in &self.message_types {
            writeln!(f, "  {message_type:<28} {n:>6}")?;
        }
        write!(f, "{}", self.deliveries)
    }
}

impl std::fmt::Display for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::ms;
        writeln!(
            f,
            "deliveries           {} push ({}), {} pull ({})",
            self.push,
            PUSHED.join(", "),
            self.pull,
            PULLING.join(", ")
        )?;
        writeln!(
            f,
            "  completed          {} ({} receipted, {} acked), {} dead, {} pending; {:.0} completed/s \
             (first created → last completed, {:.2} s); drained {:.2} s after phase 2",
            self.completed(),
            self.delivered,
            self.acked,
            self.dead,
            self.pending,
            self.completed_per_sec(),
            self.window.as_secs_f64(),
            self.drain.as_secs_f64()
        )?;
        let rate = |n: usize, window: Duration| n as f64 / window.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "  by mode            push {:.0} receipted/s ({:.2} s), pull {:.0} acked/s ({:.2} s)",
            rate(self.delivered, self.push_window),
            self.push_window.as_secs_f64(),
            rate(self.acked, self.pull_window),
            self.pull_window.as_secs_f64()
        )?;
        writeln!(
            f,
            "  latency p50 / p99  {:.1} ms / {:.1} ms (document accepted → receipt or ack recorded)",
            ms(self.p50),
            ms(self.p99)
        )?;
        write!(
            f,
            "  receipted once     {} of {} in the exchange log ({} more than once)",
            self.receipted_once,
            self.push + self.pull,
            self.receipted_more
        )?;
        for (agency, t) in &self.inboxes {
            write!(
                f,
                "\n  inbox {agency:<20} {} pushes, {} documents processed once, {} pushed again, \
                 {} processed twice, {} refused",
                t.requests, t.documents, t.repeated, t.processed_twice, t.refused
            )?;
        }
        Ok(())
    }
}
