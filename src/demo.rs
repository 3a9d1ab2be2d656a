//! `corrections-gateway demo`: a month of traffic for the embedded default,
//! so that the first `serve` shows a living system.
//!
//! Simulated partner agencies (court, procuratorate, police, prison) and the
//! corrections agency's own system exchange documents of all three flows —
//! handover 交付接收, investigation assessment 调查评估 and revocation
//! 撤销缓刑/假释、收监执行 — with an in-process gateway, over real HTTP, each
//! request signed with the agency's DEV-ONLY key exactly as `send` does, each
//! pulled copy acknowledged with a signed ack. The gateway's clock is moved
//! through the month with a [`ClockDial`] shared by the gateway and the
//! partners, so periods start, run and lapse as they would have: some
//! answers come late (the overdue sweep logs the missed deadline), some
//! submissions are refused (a broken signature, an ID number with a wrong
//! check digit, a sender that does not match its key, a replay), and every
//! revocation ruling goes to a push-delivered detention centre whose system
//! is down (nothing listens at its registered endpoint), so those deliveries
//! dead-letter after their retries.
//!
//! The people are fictional: generated names and ID numbers with valid
//! check characters ([`IdNumber::compose`]); none of them reaches the
//! exchange log (its leaves hold ids and digests only).
//!
//! It runs only on a data directory with the DEV-ONLY PKI and an empty
//! database, never on a production gateway's, and refuses a second run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use time::{Date, Duration, OffsetDateTime, Time};

use crate::app::{self, Gateway};
use crate::clock::{Clock, ClockDial};
use crate::config::Settings;
use crate::model::IdNumber;
use crate::partner::Partner;
use crate::registry::DeliveryMode;
use crate::security::alg::Algorithm;
use crate::timefmt::{self, unix_ms, BEIJING};

pub(crate) const COURT: &str = "court.620102";
pub(crate) const PROCURATORATE: &str = "procuratorate.620102";
pub(crate) const POLICE: &str = "police.620102";
pub(crate) const PRISON: &str = "prison.620000.3";
pub(crate) const CORRECTIONS: &str = "corrections.620102";

/// What the demo made.
#[derive(Debug, Default)]
pub struct Summary {
    pub first_day: Option<Date>,
    pub last_day: Option<Date>,
    /// Cases opened, by flow (`handover`, `assessment`, `revocation`).
    pub cases: BTreeMap<&'static str, usize>,
    /// Documents accepted.
    pub accepted: usize,
    /// Submissions refused (each logged as `submission.rejected`).
    pub rejected: usize,
    /// Deadlines the overdue sweep marked missed.
    pub missed_deadlines: usize,
    /// Push deliveries dead-lettered.
    pub dead_letters: i64,
    /// The web logins created (user name, role, password): DEV ONLY, shown once.
    pub logins: Vec<(String, String, String)>,
    /// Where the logins were also written (mode 0600).
    pub logins_file: Option<std::path::PathBuf>,
    /// The fictional people's names and ID numbers (tests check that none
    /// of them reached the exchange log).
    pub people: Vec<(String, String)>,
}

/// Fills the data directory of `settings` with `days` days of traffic
/// ending yesterday (Beijing time). Runs `init-dev` first (it keeps what
/// the directory holds); refuses a directory whose PKI is not the DEV-ONLY
/// one, and a database that holds documents already.
pub async fn run(mut settings: Settings, days: u32) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        (1..=366).contains(&days),
        "--days must be between 1 and 366 / 天数须在 1 至 366 之间"
    );
    let refuse = |settings: &Settings| {
        anyhow::ensure!(
            app::is_dev_pki(settings),
            "{} does not hold the DEV-ONLY PKI of the embedded default: the demo never fills a \
             production gateway / 该数据目录不是开发演示环境（非 DEV-ONLY 证书），演示数据不会写入",
            settings.dir.display()
        );
        Ok(())
    };
    // A production directory is refused before anything is written to it.
    if app::has_pki(&settings) {
        refuse(&settings)?;
    }
    // Idempotent: keeps what is there, adds what is missing (the registry, keys).
    app::init_dev(&settings)?;
    refuse(&settings)?;
    // The demo's own gateway: an ephemeral port, a quick outbox worker (the
    // clock jumps, so retries fall due at once) and no reload watcher.
    settings.listen = "127.0.0.1:0".into();
    settings.workers = 2;
    settings.reload_secs = 0;
    settings.delivery.poll_ms = 20;
    settings.delivery.timeout_ms = 2_000;
    let mut gateway = Gateway::load(settings).await?;
    let documents = gateway.store.count("documents").await?;
    anyhow::ensure!(
        documents == 0,
        "the database already holds {documents} documents: the demo fills an empty gateway only \
         (delete {} or use another --dir to run it again) / 数据库中已有文书，演示只写入空库",
        gateway.settings.dir.display()
    );
    let mut summary = Summary::default();
    if let Some((file, logins)) = crate::web::users::seed_dev_users_listed(&gateway).await? {
        summary.logins = logins;
        summary.logins_file = Some(file);
    }
    let today = OffsetDateTime::now_utc().to_offset(BEIJING).date();
    let first = today - Duration::days(i64::from(days));
    gateway
        .calendar
        .ensure_covers(first)
        .and_then(|_| gateway.calendar.ensure_covers(today))
        .map_err(|e| anyhow::anyhow!("{} / {}", e.message().zh, e.message().en))?;
    let (clock, dial) = Clock::dialled(at(first, 8, 0));
    gateway.clock = clock;
    let running = app::start(gateway)?;
    let base_url = format!("http://{}", running.addr);
    let gw = running.gateway.clone();
    let mut sim = Sim::new(gw.clone(), dial, &base_url, clock, days)?;
    let simulated = sim.month(first, today, &mut summary).await;
    // Back to the system time: what is still open runs on from here.
    sim.dial.reset();
    let finished = async {
        simulated?;
        summary.missed_deadlines += crate::jobs::sweep_overdue(&gw).await?;
        sim.settle().await?;
        summary.dead_letters = gw.store.deliveries_in(Some("dead"), 100_000).await?.len() as i64;
        summary.accepted = gw.store.count("documents").await? as usize;
        anyhow::Ok(())
    }
    .await;
    drop(sim);
    drop(gw);
    // A graceful stop also publishes the last checkpoint.
    running.handle.stop(true).await;
    let _ = running.task.await;
    finished?;
    summary.first_day = Some(first);
    summary.last_day = Some(today - Duration::days(1));
    Ok(summary)
}

/// `hour:minute` Beijing time on `date`.
fn at(date: Date, hour: u8, minute: u8) -> OffsetDateTime {
    date.with_time(Time::from_hms(hour, minute, 0).unwrap_or(Time::MIDNIGHT))
        .assume_offset(BEIJING)
}

/// RFC 3339 in Beijing time, whole seconds (how partner systems write it).
fn stamp(instant: OffsetDateTime) -> String {
    timefmt::beijing(instant.replace_nanosecond(0).unwrap_or(instant))
}

fn ymd(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A document before its envelope is filled in: sender, message type,
/// document number, recipients, copies, the answered document, attachments
/// (kind, file name) and body.
type Draft = (
    &'static str,
    &'static str,
    String,
    Vec<String>,
    Vec<String>,
    Option<String>,
    Vec<(&'static str, &'static str)>,
    Value,
);

/// A fictional person.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    name: String,
    gender: &'static str,
    ethnicity: &'static str,
    birth_date: Date,
    id_number: String,
    address: String,
}

impl Person {
    /// A fictional person living in 城关区, drawn from `rng`: a generated
    /// name (some with the middle dot) and an ID number with a valid check
    /// character, belonging to no one.
    pub(crate) fn fictional(rng: &mut StdRng) -> anyhow::Result<Person> {
        let born = Date::from_calendar_date(
            rng.gen_range(1962..=2004),
            time::Month::try_from(rng.gen_range(1..=12u8))?,
            rng.gen_range(1..=28),
        )?;
        let (name, gender, ethnicity) = if rng.gen_ratio(1, 8) {
            let (name, gender, ethnicity) = DOT_NAMES[rng.gen_range(0..DOT_NAMES.len())];
            (name.to_string(), gender, ethnicity)
        } else {
            let male = rng.gen_bool(0.7);
            let given = if male { MEN } else { WOMEN };
            let name = format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                given[rng.gen_range(0..given.len())]
            );
            let ethnicity = if rng.gen_ratio(1, 5) { "03" } else { "01" };
            (name, if male { "1" } else { "2" }, ethnicity)
        };
        // Sequence code: odd for men, even for women (GB 11643-1999).
        let sequence = rng.gen_range(0..500u16) * 2 + u16::from(gender == "1");
        let id = IdNumber::compose("620102", born, sequence)
            .context("composing a fictional ID number")?;
        let address = format!(
            "甘肃省兰州市城关区{}{}号",
            STREETS[rng.gen_range(0..STREETS.len())],
            rng.gen_range(1..400)
        );
        Ok(Person {
            name,
            gender,
            ethnicity,
            birth_date: born,
            id_number: id.as_str().to_string(),
            address,
        })
    }

    fn subject(&self) -> Value {
        json!({
            "name": self.name,
            "gender": self.gender,
            "ethnicity": self.ethnicity,
            "birth_date": ymd(self.birth_date),
            "id_number": self.id_number,
            "residence": {"division": "620102", "address": self.address},
        })
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "罗", "𠮷",
];
const MEN: &[&str] = &[
    "建国", "志强", "文博", "小龙", "晓东", "永刚", "海涛", "立新", "振华", "俊杰",
];
const WOMEN: &[&str] = &[
    "秀英", "海燕", "丽娟", "春梅", "淑兰", "晓燕", "文静", "玉兰", "慧敏", "红霞",
];
/// Fictional names in the Uyghur (05) and Tibetan (04) manner, with the
/// middle dot U+00B7 that must survive every translation.
const DOT_NAMES: &[(&str, &str, &str)] = &[
    ("艾力·托乎提", "1", "05"),
    ("阿依努尔·吾斯曼", "2", "05"),
    ("扎西·次仁", "1", "04"),
    ("卓玛·拉姆", "2", "04"),
];
const STREETS: &[&str] = &[
    "东岗西路",
    "庆阳路",
    "张掖路",
    "皋兰路",
    "雁滩路",
    "天水北路",
    "白银路",
    "静宁路",
];

const OFFENCES: &[&str] = &["危险驾驶罪", "盗窃罪", "故意伤害罪", "诈骗罪"];
const CHARGES: &[&str] = &["盗窃罪", "危险驾驶罪", "帮助信息网络犯罪活动罪"];

/// Which flow a case runs and how it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plot {
    /// Handover answered in time: receipt, then the offender reports.
    HandoverOnTime,
    /// Documents incomplete: correction request, the court's correction, receipt, report.
    HandoverCorrected,
    /// The receipt comes a week late (the receipt deadline is missed first),
    /// the offender never reports.
    HandoverLate,
    /// Assessment answered in time.
    AssessmentOnTime,
    /// Assessment answered after the period ran out.
    AssessmentLate,
    /// The assessment cannot be made.
    AssessmentUnable,
    /// Revocation proposal, ruling, committal.
    Revocation,
    /// With an arrest request the court answers a day after its 48 hours.
    RevocationArrestLate,
}

impl Plot {
    fn flow(self) -> &'static str {
        match self {
            Plot::HandoverOnTime | Plot::HandoverCorrected | Plot::HandoverLate => "handover",
            Plot::AssessmentOnTime | Plot::AssessmentLate | Plot::AssessmentUnable => "assessment",
            Plot::Revocation | Plot::RevocationArrestLate => "revocation",
        }
    }
}

/// One step a case takes at a planned instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Notice,
    CorrectionRequest,
    Correction,
    Receipt,
    Report,
    Request,
    Opinion,
    Unable,
    Proposal,
    ArrestRequest,
    ArrestDecision,
    Ruling,
    Committal,
}

/// A submission meant to be refused, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The body was changed after it was signed.
    TamperedBody,
    /// The subject's ID number has a wrong check character.
    BadCheckDigit,
    /// The procuratorate's key signs a document that names the court as sender.
    ForeignSender,
    /// The same signed request sent twice.
    Replay,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Step(usize, Step),
    Refuse(Refusal),
}

pub(crate) struct Case {
    plot: Plot,
    person: Person,
    /// The requester (assessment) or the decision organ (handover).
    partner: &'static str,
    case_no: String,
    /// Sequence number used in its documents' numbers.
    n: u32,
    /// Gateway document ids of its steps so far.
    documents: HashMap<&'static str, String>,
    expedited: bool,
    /// Its steps in order, and how many are done: a step whose predecessor
    /// a day off pushed later waits for it (a case moves one step at a time).
    plan: Vec<Step>,
    done: usize,
}

impl Case {
    /// A case of `plot` opened in `year` by `partner` (the requester or the
    /// decision organ), numbered `n`: its 案号 is the one the opening
    /// agency would give it. No steps planned.
    pub(crate) fn new(
        plot: Plot,
        person: Person,
        partner: &'static str,
        n: u32,
        year: i32,
        expedited: bool,
    ) -> Case {
        let case_no = match (plot.flow(), partner) {
            ("assessment", PROCURATORATE) => format!("城检刑诉〔{year}〕{}号", 100 + n),
            ("assessment", POLICE) => format!("城公刑侦〔{year}〕{}号", 300 + n),
            ("revocation", _) => format!("（{}）甘0102刑初{}号", year - 1, 500 + n),
            _ => format!("（{year}）甘0102刑初{}号", 100 + n),
        };
        Case {
            plot,
            person,
            partner,
            case_no,
            n,
            documents: HashMap::new(),
            expedited,
            plan: Vec::new(),
            done: 0,
        }
    }

    /// Records the gateway document id of a step the gateway accepted, so
    /// that the answers to it can name it in `in_reply_to`.
    pub(crate) fn accepted(&mut self, step: Step, document_id: String) {
        self.documents.insert(step.key(), document_id);
    }
}

impl Step {
    /// The name a case keeps the step's document under (what `in_reply_to` looks up).
    fn key(self) -> &'static str {
        match self {
            Step::Notice => "notice",
            Step::CorrectionRequest => "correction_request",
            Step::Correction => "correction",
            Step::Receipt => "receipt",
            Step::Report => "report",
            Step::Request => "request",
            Step::Opinion => "opinion",
            Step::Unable => "unable",
            Step::Proposal => "proposal",
            Step::ArrestRequest => "arrest_request",
            Step::ArrestDecision => "arrest_decision",
            Step::Ruling => "ruling",
            Step::Committal => "committal",
        }
    }
}

struct Sim {
    gw: Arc<Gateway>,
    dial: ClockDial,
    clock: Clock,
    partners: BTreeMap<&'static str, Partner>,
    /// Agencies that pull their mailbox (each acknowledges what it fetched).
    pullers: Vec<&'static str>,
    /// The police agency rulings go to: a push-delivered one (its endpoint
    /// is down) when the registry has one, else the main police.
    custody: String,
    rng: StdRng,
    cases: Vec<Case>,
    agenda: Vec<(OffsetDateTime, Action)>,
    next_no: u32,
}

impl Sim {
    fn new(
        gw: Arc<Gateway>,
        dial: ClockDial,
        base_url: &str,
        clock: Clock,
        days: u32,
    ) -> anyhow::Result<Sim> {
        let pki = gw.settings.pki_dir();
        let mut partners = BTreeMap::new();
        for (agency, alg) in [
            (COURT, Algorithm::Sm2Sm3),
            (PROCURATORATE, Algorithm::RsaPssSha512),
            (POLICE, Algorithm::Ed25519),
            (PRISON, Algorithm::EcdsaP256Sha256),
            (CORRECTIONS, Algorithm::Sm2Sm3),
        ] {
            anyhow::ensure!(
                gw.registry.get(agency).is_some(),
                "the demo needs agency {agency} in the registry {} (the demo registry \
                 rules/agencies.demo.toml has it) / 机构名录中缺少演示所需的机构",
                gw.settings.registry.display()
            );
            let mut partner = Partner::for_agency(base_url, &pki, agency, alg)?;
            partner.clock = clock;
            partners.insert(agency, partner);
        }
        let pullers = partners
            .keys()
            .copied()
            .filter(|a| {
                gw.registry
                    .get(a)
                    .is_some_and(|a| a.delivery == DeliveryMode::Pull)
            })
            .collect();
        let custody = gw
            .registry
            .iter()
            .find(|a| {
                a.id.as_str().starts_with("police.620102.") && a.delivery == DeliveryMode::Push
            })
            .map(|a| a.id.as_str().to_string())
            .unwrap_or_else(|| POLICE.to_string());
        Ok(Sim {
            gw,
            dial,
            clock,
            partners,
            pullers,
            custody,
            rng: StdRng::seed_from_u64(u64::from(days)),
            cases: Vec::new(),
            agenda: Vec::new(),
            next_no: 0,
        })
    }

    fn number(&mut self) -> u32 {
        self.next_no += 1;
        self.next_no
    }

    /// Opens a case on `day` at `hour` and plans its steps.
    fn open(&mut self, plot: Plot, day: Date, hour: u8) -> anyhow::Result<()> {
        let person = Person::fictional(&mut self.rng)?;
        let n = self.number();
        let partner = match plot {
            Plot::AssessmentOnTime | Plot::AssessmentLate | Plot::AssessmentUnable => {
                [COURT, PROCURATORATE, POLICE][self.rng.gen_range(0..3)]
            }
            _ => COURT,
        };
        let index = self.cases.len();
        let expedited = plot == Plot::AssessmentLate || self.rng.gen_ratio(1, 4);
        self.cases
            .push(Case::new(plot, person, partner, n, day.year(), expedited));
        let start = at(day, hour, self.rng.gen_range(0..50));
        let minutes = |m: i64| start + Duration::minutes(m);
        let days = |d: i64, h: u8| at(day + Duration::days(d), h, 20);
        let plan: Vec<(OffsetDateTime, Step)> = match plot {
            Plot::HandoverOnTime => vec![
                (start, Step::Notice),
                (days(1, 15), Step::Receipt),
                (days(self.rng.gen_range(2..6), 10), Step::Report),
            ],
            Plot::HandoverCorrected => vec![
                (start, Step::Notice),
                (days(1, 10), Step::CorrectionRequest),
                (days(3, 14), Step::Correction),
                (days(4, 11), Step::Receipt),
                (days(6, 16), Step::Report),
            ],
            Plot::HandoverLate => vec![(start, Step::Notice), (days(9, 15), Step::Receipt)],
            Plot::AssessmentOnTime => vec![
                (start, Step::Request),
                (days(self.rng.gen_range(3..6), 16), Step::Opinion),
            ],
            Plot::AssessmentLate => vec![(start, Step::Request), (days(11, 16), Step::Opinion)],
            Plot::AssessmentUnable => vec![(start, Step::Request), (days(3, 11), Step::Unable)],
            Plot::Revocation => vec![
                (start, Step::Proposal),
                (days(self.rng.gen_range(3..6), 15), Step::Ruling),
                (days(7, 11), Step::Committal),
            ],
            Plot::RevocationArrestLate => vec![
                (start, Step::Proposal),
                (minutes(20), Step::ArrestRequest),
                (days(3, 16), Step::ArrestDecision),
                (days(5, 15), Step::Ruling),
                (days(7, 11), Step::Committal),
            ],
        };
        for (when, step) in plan {
            self.cases[index].plan.push(step);
            self.agenda
                .push((self.office_hours(when)?, Action::Step(index, step)));
        }
        Ok(())
    }

    /// Offices answer on working days: an instant on a day off moves to
    /// the next working day, same time.
    fn office_hours(&self, mut when: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
        for _ in 0..15 {
            if self
                .gw
                .calendar
                .is_working_day(when.to_offset(BEIJING).date())
                .map_err(|e| anyhow::anyhow!("{}", e.message().en))?
            {
                return Ok(when);
            }
            when += Duration::days(1);
        }
        Ok(when)
    }

    /// The whole month: every working day opens a few cases; every half
    /// hour of every day the planned steps due are made, the partner
    /// systems fetch and acknowledge their mail at set hours, and the
    /// outbox worker makes the retries due; each evening the overdue sweep runs.
    async fn month(&mut self, first: Date, end: Date, summary: &mut Summary) -> anyhow::Result<()> {
        let mut day = first;
        let mut working_days = 0;
        while day < end {
            let working = self
                .gw
                .calendar
                .is_working_day(day)
                .map_err(|e| anyhow::anyhow!("{}", e.message().en))?;
            if working {
                working_days += 1;
                self.plan_day(day, working_days)?;
            }
            for half_hour in 0..20u8 {
                let tick = at(day, 8 + half_hour / 2, 30 * (half_hour % 2));
                self.dial.set(tick);
                self.run_due(tick, summary).await?;
                if matches!(half_hour, 2 | 6 | 12 | 17) {
                    self.pull_all().await?;
                }
                self.settle().await?;
            }
            self.dial.set(at(day, 18, 0));
            summary.missed_deadlines += crate::jobs::sweep_overdue(&self.gw).await?;
            day += Duration::days(1);
        }
        for case in &self.cases {
            *summary.cases.entry(case.plot.flow()).or_default() += 1;
            summary
                .people
                .push((case.person.name.clone(), case.person.id_number.clone()));
        }
        Ok(())
    }

    /// The cases a working day brings. The first working days open one case
    /// of each plot and try each refusal, so even a short demo shows all of
    /// them; later days open a random few.
    fn plan_day(&mut self, day: Date, nth: u32) -> anyhow::Result<()> {
        let scripted: &[(Plot, u8)] = match nth {
            1 => &[
                (Plot::HandoverLate, 9),
                (Plot::AssessmentOnTime, 10),
                (Plot::RevocationArrestLate, 11),
                (Plot::HandoverOnTime, 14),
            ],
            2 => &[
                (Plot::HandoverCorrected, 9),
                (Plot::AssessmentUnable, 10),
                (Plot::Revocation, 15),
            ],
            3 => &[(Plot::AssessmentLate, 10), (Plot::HandoverOnTime, 11)],
            _ => &[],
        };
        for &(plot, hour) in scripted {
            self.open(plot, day, hour)?;
        }
        let refusals: &[(Refusal, u8)] = match nth {
            1 => &[(Refusal::BadCheckDigit, 13)],
            2 => &[(Refusal::TamperedBody, 11), (Refusal::Replay, 16)],
            3 => &[(Refusal::ForeignSender, 14)],
            _ => &[],
        };
        for &(refusal, hour) in refusals {
            self.agenda
                .push((at(day, hour, 40), Action::Refuse(refusal)));
        }
        if nth > 3 {
            const PLOTS: &[(Plot, u32)] = &[
                (Plot::HandoverOnTime, 30),
                (Plot::HandoverCorrected, 8),
                (Plot::HandoverLate, 6),
                (Plot::AssessmentOnTime, 22),
                (Plot::AssessmentLate, 5),
                (Plot::AssessmentUnable, 4),
                (Plot::Revocation, 8),
                (Plot::RevocationArrestLate, 2),
            ];
            let total: u32 = PLOTS.iter().map(|(_, w)| w).sum();
            for _ in 0..self.rng.gen_range(1..=3) {
                let mut pick = self.rng.gen_range(0..total);
                let plot = PLOTS
                    .iter()
                    .find(|(_, w)| {
                        if pick < *w {
                            true
                        } else {
                            pick -= w;
                            false
                        }
                    })
                    .map(|(p, _)| *p)
                    .unwrap_or(Plot::HandoverOnTime);
                let hour = self.rng.gen_range(9..17);
                self.open(plot, day, hour)?;
            }
            if self.rng.gen_ratio(1, 6) {
                let refusal = [
                    Refusal::TamperedBody,
                    Refusal::BadCheckDigit,
                    Refusal::ForeignSender,
                ][self.rng.gen_range(0..3)];
                self.agenda.push((
                    at(day, self.rng.gen_range(9..17), 50),
                    Action::Refuse(refusal),
                ));
            }
        }
        self.agenda.sort_by_key(|(when, _)| *when);
        Ok(())
    }

    /// Makes every planned action due by `tick`, in order.
    async fn run_due(&mut self, tick: OffsetDateTime, summary: &mut Summary) -> anyhow::Result<()> {
        while self.agenda.first().is_some_and(|(when, _)| *when <= tick) {
            let (when, action) = self.agenda.remove(0);
            // Never back in time (an action of last evening made this morning).
            self.dial.set(when.max(self.clock.now()));
            match action {
                Action::Step(case, step) => {
                    let c = &self.cases[case];
                    if c.plan.get(c.done) != Some(&step) {
                        // Its predecessor comes later: the next working day.
                        let later = self.office_hours(when + Duration::days(1))?;
                        self.agenda.push((later, action));
                        self.agenda.sort_by_key(|(when, _)| *when);
                        continue;
                    }
                    self.step(case, step).await?;
                    self.cases[case].done += 1;
                }
                Action::Refuse(refusal) => {
                    self.refuse(refusal).await?;
                    summary.rejected += 1;
                }
            }
        }
        Ok(())
    }

    /// Every pull agency fetches its mailbox and acknowledges each item.
    async fn pull_all(&self) -> anyhow::Result<()> {
        for agency in &self.pullers {
            self.partners[agency]
                .pull_and_ack()
                .await
                .with_context(|| format!("{agency} pulling its mailbox"))?;
        }
        Ok(())
    }

    /// Waits until the outbox worker has made every push attempt due now.
    async fn settle(&self) -> anyhow::Result<()> {
        for _ in 0..1_000 {
            if self.gw.store.pushes_due(unix_ms(self.clock.now())).await? == 0 {
                return Ok(());
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        anyhow::bail!("the outbox worker did not make the attempts due within 10 s")
    }

    /// The canonical document of a case's step, and who sends it.
    fn document(&mut self, index: usize, step: Step) -> anyhow::Result<(&'static str, Value)> {
        self.cases[index].draft(step, self.clock.now(), &self.custody)
    }
}

impl Case {
    /// The canonical document of the case's `step` made at `now`, and who
    /// sends it; revocation rulings go to `custody` (a police agency).
    pub(crate) fn draft(
        &self,
        step: Step,
        now: OffsetDateTime,
        custody: &str,
    ) -> anyhow::Result<(&'static str, Value)> {
        let now = now.to_offset(BEIJING);
        let today = now.date();
        let year = today.year();
        let issued = stamp(now - Duration::minutes(12));
        let custody = custody.to_string();
        let case = self;
        let n = case.n;
        let reply = |key: &str| -> anyhow::Result<String> {
            case.documents
                .get(key)
                .cloned()
                .with_context(|| format!("case {n}: no {key} to answer"))
        };
        let (sender, message_type, document_no, recipients, copies, in_reply_to, attachments, body): Draft = match step {
            Step::Notice => {
                let effective = today - Duration::days(2);
                (
                    case.partner,
                    "handover.notice",
                    format!("甘0102刑执通〔{year}〕{n}号"),
                    vec![CORRECTIONS.into()],
                    vec![],
                    None,
                    if case.plot == Plot::HandoverCorrected {
                        vec![("judgment", "刑事判决书.pdf"), ("execution_notice", "执行通知书.pdf")]
                    } else {
                        vec![
                            ("judgment", "刑事判决书.pdf"),
                            ("execution_notice", "执行通知书.pdf"),
                            ("closing_form", "结案登记表.pdf"),
                        ]
                    },
                    json!({
                        "decision_organ": COURT,
                        "effective_date": ymd(effective),
                        "correction_type": "probation",
                        "offence": (OFFENCES[n as usize % OFFENCES.len()]),
                        "sentence_text": "有期徒刑一年，缓刑二年",
                        "term": {"start": ymd(effective), "end": ymd(effective + Duration::days(730))},
                        "report_by": ymd(effective + Duration::days(10)),
                    }),
                )
            }
            Step::CorrectionRequest => (
                CORRECTIONS,
                "handover.correction_request",
                format!("城矫补〔{year}〕{n}号"),
                vec![case.partner.into()],
                vec![],
                Some(reply("notice")?),
                vec![],
                json!({"missing": ["closing_form"], "errors": ["/subject/residence/address"]}),
            ),
            Step::Correction => (
                case.partner,
                "handover.correction",
                format!("甘0102刑执补〔{year}〕{n}-1号"),
                vec![CORRECTIONS.into()],
                vec![],
                Some(reply("correction_request")?),
                vec![("closing_form", "结案登记表.pdf")],
                json!({"missing": ["closing_form"], "errors": ["/subject/residence/address"]}),
            ),
            Step::Receipt => (
                CORRECTIONS,
                "handover.receipt",
                format!("城矫接〔{year}〕{n}号"),
                vec![case.partner.into()],
                vec![],
                Some(reply("notice")?),
                vec![],
                json!({"received_at": issued}),
            ),
            Step::Report => (
                CORRECTIONS,
                "handover.report_status",
                format!("城矫报〔{year}〕{n}号"),
                vec![case.partner.into()],
                vec![],
                Some(reply("notice")?),
                vec![],
                json!({"reported": true, "reported_at": stamp(now - Duration::hours(1))}),
            ),
            Step::Request => (
                case.partner,
                "assessment.request",
                match case.partner {
                    PROCURATORATE => format!("城检评委〔{year}〕{n}号"),
                    POLICE => format!("城公评委〔{year}〕{n}号"),
                    // A prison proposing parole (`bench --mix` sends these).
                    PRISON => format!("甘狱三评委〔{year}〕{n}号"),
                    _ => format!("甘0102刑评委〔{year}〕{n}号"),
                },
                vec![CORRECTIONS.into()],
                vec![],
                None,
                vec![("indictment", "起诉意见书.pdf")],
                json!({
                    "procedure": if case.expedited { "expedited" } else { "ordinary" },
                    "charge": (CHARGES[n as usize % CHARGES.len()]),
                    // A prison asks only about release: parole or medical parole.
                    "proposed_measure": if case.partner == PRISON { "parole" } else { "probation" },
                }),
            ),
            Step::Opinion => (
                CORRECTIONS,
                "assessment.opinion",
                format!("城矫评〔{year}〕{n}号"),
                vec![case.partner.into()],
                vec![],
                Some(reply("request")?),
                vec![("assessment_opinion", "调查评估意见书.pdf")],
                if n % 5 == 0 {
                    json!({"conclusion": "not_suitable", "reasons": "经走访，其居住地社区及被害人家属反对，家庭无监管条件", "investigator_count": 2})
                } else {
                    json!({"conclusion": "suitable", "reasons": "认罪认罚，有固定住所和稳定工作，家庭成员愿意协助监管", "investigator_count": 2})
                },
            ),
            Step::Unable => (
                CORRECTIONS,
                "assessment.unable",
                format!("城矫评不〔{year}〕{n}号"),
                vec![case.partner.into()],
                vec![],
                Some(reply("request")?),
                vec![],
                json!({"reasons": "被告人在执行地无固定住所，经走访无法核实其居住及社会关系情况"}),
            ),
            Step::Proposal => (
                CORRECTIONS,
                "revocation.proposal",
                format!("城矫撤建〔{year}〕{n}号"),
                vec![COURT.into()],
                vec![],
                None,
                vec![("warning_decision", "警告决定书.pdf")],
                json!({
                    "kind": "revoke_probation",
                    "correction_type": "probation",
                    "grounds": "社区矫正对象在缓刑考验期内违反监督管理规定，经两次警告仍不改正",
                    "violations": [
                        {"date": ymd(today - Duration::days(40)), "description": "未经批准离开兰州市前往外省"},
                        {"date": ymd(today - Duration::days(12)), "description": "未按规定参加教育学习，拒不报告活动情况"},
                    ],
                }),
            ),
            Step::ArrestRequest => (
                CORRECTIONS,
                "revocation.arrest_request",
                format!("城矫提捕〔{year}〕{n}号"),
                vec![COURT.into()],
                vec![],
                Some(reply("proposal")?),
                vec![],
                json!({"grounds": "社区矫正对象已购买离兰车票，有逃跑可能"}),
            ),
            Step::ArrestDecision => (
                COURT,
                "revocation.arrest_decision",
                format!("（{year}）甘0102刑更{n}号之一"),
                vec![CORRECTIONS.into(), POLICE.into()],
                vec![],
                Some(reply("arrest_request")?),
                vec![],
                json!({"decision": "arrest", "decided_at": stamp(now - Duration::hours(1))}),
            ),
            Step::Ruling => (
                COURT,
                "revocation.ruling",
                format!("（{year}）甘0102刑更{n}号"),
                vec![CORRECTIONS.into(), custody],
                vec![],
                Some(reply("proposal")?),
                vec![("ruling", "刑事裁定书.pdf")],
                json!({
                    "decision": "revoked",
                    "ruling_no": format!("（{year}）甘0102刑更{n}号"),
                    "effective_date": ymd(today),
                    "reasons": "罪犯在缓刑考验期内违反监督管理规定，情节严重，依法撤销缓刑，执行原判刑罚",
                }),
            ),
            Step::Committal => (
                PRISON,
                "revocation.committal",
                format!("甘狱三收〔{year}〕{n}号"),
                vec![CORRECTIONS.into(), COURT.into()],
                vec![],
                Some(reply("ruling")?),
                vec![],
                json!({
                    "ruling_ref": format!("（{year}）甘0102刑更{n}号"),
                    "facility": PRISON,
                    "committed_at": stamp(now - Duration::hours(3)),
                }),
            ),
        };
        let case_no = if matches!(step, Step::Ruling | Step::Committal | Step::ArrestDecision) {
            format!("（{year}）甘0102刑更{n}号")
        } else {
            case.case_no.clone()
        };
        let mut doc = json!({
            "message_type": message_type,
            "document_no": document_no,
            "case_no": case_no,
            "sender": sender,
            "recipients": recipients,
            "copies": copies,
            "issued_at": issued,
            "attachments": attachments.iter().map(|(kind, file)| {
                let bytes = attachment_bytes(&document_no, kind);
                json!({
                    "kind": kind,
                    "file_name": file,
                    "media_type": "application/pdf",
                    "sha256": crate::security::digest::sha256_hex(&bytes),
                    "size": bytes.len(),
                })
            }).collect::<Vec<_>>(),
            "subject": case.person.subject(),
            "body": body,
        });
        if let Some(reply) = in_reply_to {
            doc["in_reply_to"] = json!(reply);
        }
        Ok((sender, doc))
    }
}

impl Sim {
    /// Uploads a document's attachments (signed PUTs), then signs and posts
    /// the document in its sender's dialect; the gateway's receipt.
    async fn submit(&self, sender: &str, doc: &Value) -> anyhow::Result<crate::partner::Answer> {
        let partner = &self.partners[sender];
        for attachment in doc["attachments"].as_array().into_iter().flatten() {
            let (Some(kind), Some(sha)) =
                (attachment["kind"].as_str(), attachment["sha256"].as_str())
            else {
                continue;
            };
            let bytes = attachment_bytes(doc["document_no"].as_str().unwrap_or(""), kind);
            let path = format!("/api/v1/attachments/{sha}");
            let headers = partner.sign("PUT", &path, Some("application/pdf"), Some(&bytes))?;
            let answer = partner
                .send(
                    reqwest::Method::PUT,
                    &path,
                    Some(("application/pdf", bytes)),
                    headers,
                )
                .await?;
            anyhow::ensure!(
                answer.status < 300,
                "uploading an attachment: HTTP {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let (bytes, content_type) = self.native(sender, doc)?;
        partner.submit(&bytes, &content_type).await
    }

    /// The document in the sender's native dialect.
    fn native(&self, sender: &str, doc: &Value) -> anyhow::Result<(Vec<u8>, String)> {
        native(&self.gw, sender, doc)
    }

    async fn step(&mut self, index: usize, step: Step) -> anyhow::Result<()> {
        let (sender, doc) = self.document(index, step)?;
        let answer = self.submit(sender, &doc).await?;
        anyhow::ensure!(
            answer.status == 201,
            "the demo's {} of case {} was refused: HTTP {} {}",
            doc["message_type"],
            self.cases[index].n,
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        let receipt = answer.json()?;
        let id = receipt["document_id"]
            .as_str()
            .context("a receipt without document_id")?
            .to_string();
        self.cases[index].accepted(step, id);
        Ok(())
    }

    /// A submission the gateway must refuse (and log as `submission.rejected`).
    async fn refuse(&mut self, refusal: Refusal) -> anyhow::Result<()> {
        let person = Person::fictional(&mut self.rng)?;
        let n = self.number();
        let year = self.clock.now().to_offset(BEIJING).year();
        let plot = match refusal {
            Refusal::BadCheckDigit | Refusal::ForeignSender => Plot::HandoverOnTime,
            _ => Plot::AssessmentOnTime,
        };
        let partner = if refusal == Refusal::TamperedBody || refusal == Refusal::Replay {
            POLICE
        } else {
            COURT
        };
        self.cases.push(Case {
            plot,
            person,
            partner,
            case_no: format!("（{year}）甘0102刑初{}号", 100 + n),
            n,
            documents: HashMap::new(),
            expedited: false,
            plan: vec![Step::Request, Step::Opinion],
            done: 1,
        });
        let index = self.cases.len() - 1;
        let first_step = if plot == Plot::HandoverOnTime {
            Step::Notice
        } else {
            Step::Request
        };
        let (sender, mut doc) = self.document(index, first_step)?;
        if refusal != Refusal::Replay {
            // Not a case the month follows: it is counted as a refusal only.
            self.cases.pop();
        }
        let answer = match refusal {
            Refusal::BadCheckDigit => {
                let id = doc["subject"]["id_number"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let last = if id.ends_with('0') { '1' } else { '0' };
                doc["subject"]["id_number"] = json!(format!("{}{last}", &id[..17]));
                self.submit(sender, &doc).await?
            }
            Refusal::ForeignSender => {
                // In the procuratorate's own dialect, naming the court as sender.
                doc["attachments"] = json!([]);
                let (bytes, content_type) = self.native(PROCURATORATE, &doc)?;
                self.partners[PROCURATORATE]
                    .submit(&bytes, &content_type)
                    .await?
            }
            Refusal::TamperedBody | Refusal::Replay => {
                doc["attachments"] = json!([]);
                let (bytes, content_type) = self.native(sender, &doc)?;
                let partner = &self.partners[sender];
                let path = "/api/v1/documents";
                let headers = partner.sign("POST", path, Some(&content_type), Some(&bytes))?;
                let mut sent = bytes.clone();
                if refusal == Refusal::TamperedBody {
                    // Changed on the way after it was signed: the digest no longer matches.
                    sent.extend_from_slice(b"\n");
                } else {
                    let first = partner
                        .send(
                            reqwest::Method::POST,
                            path,
                            Some((&content_type, bytes)),
                            headers.clone(),
                        )
                        .await?;
                    anyhow::ensure!(
                        first.status == 201,
                        "the replayed request's first sending was refused: HTTP {} {}",
                        first.status,
                        String::from_utf8_lossy(&first.body)
                    );
                    // The first sending opened a case, answered in due course.
                    let id = first.json()?["document_id"]
                        .as_str()
                        .context("a receipt without document_id")?
                        .to_string();
                    self.cases[index].documents.insert("request", id);
                    let when = self.office_hours(self.clock.now() + Duration::days(4))?;
                    self.agenda.push((when, Action::Step(index, Step::Opinion)));
                    self.agenda.sort_by_key(|(when, _)| *when);
                }
                self.partners[sender]
                    .send(
                        reqwest::Method::POST,
                        path,
                        Some((&content_type, sent)),
                        headers,
                    )
                    .await?
            }
        };
        anyhow::ensure!(
            answer.status >= 400,
            "the demo's {refusal:?} submission was accepted (HTTP {})",
            answer.status
        );
        Ok(())
    }
}

/// A canonical document in the native dialect of `sender` (as the registry
/// says it speaks), with the Content-Type to send it with.
pub(crate) fn native(gw: &Gateway, sender: &str, doc: &Value) -> anyhow::Result<(Vec<u8>, String)> {
    let dialect = gw
        .registry
        .get(sender)
        .map(|a| a.dialect)
        .context("sender not in the registry")?;
    let bytes = gw
        .formats
        .encode(dialect, doc)
        .map_err(|e| anyhow::anyhow!("encoding a demo document for {sender}: {e:?}"))?;
    Ok((bytes, gw.formats.content_type(dialect)))
}

/// The bytes of a demo attachment: a minimal PDF naming the document and its
/// kind (unique per document, so each has its own digest).
fn attachment_bytes(document_no: &str, kind: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n% corrections-gateway demo attachment (DEV ONLY): {kind} of {document_no}\n%%EOF\n"
    )
    .into_bytes()
}

impl Summary {
    /// What the command prints: the month in figures, then the logins (once).
    pub fn report(&self) -> String {
        let mut out = String::new();
        if let (Some(first), Some(last)) = (self.first_day, self.last_day) {
            out.push_str(&format!(
                "demo traffic from {first} to {last} (Beijing time):\n"
            ));
        }
        for (flow, n) in &self.cases {
            out.push_str(&format!("  {n:>4} {flow} cases\n"));
        }
        out.push_str(&format!(
            "  {:>4} documents accepted, {} submissions refused, {} deadlines missed, {} deliveries dead-lettered\n",
            self.accepted, self.rejected, self.missed_deadlines, self.dead_letters
        ));
        if self.logins.is_empty() {
            out.push_str("web users existed already: none created\n");
        } else {
            out.push_str(
                "\nweb logins — DEV ONLY, shown once, never use them in production / 仅供开发演示:\n",
            );
            for (user, role, password) in &self.logins {
                out.push_str(&format!("  {user:<32} {role:<10} {password}\n"));
            }
            if let Some(file) = &self.logins_file {
                out.push_str(&format!("(also in {}, mode 0600)\n", file.display()));
            }
        }
        out.push_str("\nnow run: corrections-gateway serve (same --dir), then open http://127.0.0.1:8080/ui/\n");
        out
    }
}
