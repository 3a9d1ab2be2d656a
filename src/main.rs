//! `corrections-gateway`: command-line parsing only; every subcommand calls
//! into the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use corrections_gateway::app::{self, Gateway};
use corrections_gateway::config::{Overrides, RetentionMode, Settings};
use corrections_gateway::formats::Dialect;
use corrections_gateway::tools::{self, Engines};
use corrections_gateway::{backup, bench, delivery, partner, retention, signals, telemetry, xlog};
use std::io::Write;

/// mimalloc rather than the system allocator: translating a document makes
/// a few hundred small allocations, and with glibc malloc they were about a
/// quarter of the instructions (docs/benchmarks.md, translation).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "corrections-gateway",
    version,
    about = "社区矫正 inter-agency document exchange gateway"
)]
struct Cli {
    /// Configuration file (TOML); default DIR/gateway.toml when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (runs init-dev first when DIR holds no PKI).
    Serve {
        /// Data directory (database, dev PKI, agency registry).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Listen address.
        #[arg(long)]
        listen: Option<String>,
        /// Database URL (sqlite://… or postgres://…).
        #[arg(long)]
        database_url: Option<String>,
        /// Also serve partners over mutual TLS on this address (e.g. 0.0.0.0:8443).
        #[arg(long)]
        tls_listen: Option<String>,
    },
    /// Fill DIR (the embedded default, DEV ONLY) with a month of simulated
    /// partner traffic and demo web users, so that `serve` shows a living system.
    Demo {
        /// Data directory (as for `serve`; `init-dev` runs first when it holds no PKI).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Database URL (sqlite://… or postgres://…), as for `serve`.
        #[arg(long)]
        database_url: Option<String>,
        /// Days of traffic, ending yesterday.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Write the DEV-ONLY PKI and the demo agency registry into DIR (idempotent).
    InitDev {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Sign a native document as a partner agency, post it and verify the receipt.
    Send {
        /// Gateway base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Signer private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// Signer certificate (PEM); its SHA-256 fingerprint is the keyid.
        #[arg(long)]
        cert: PathBuf,
        /// The gateway's certificate, to verify the signed receipt.
        #[arg(long, default_value = "data/pki/gateway.crt.pem")]
        gateway_cert: PathBuf,
        /// Content-Type; default by the file's first byte (XML or JSON).
        #[arg(long)]
        content_type: Option<String>,
        /// The native document to send.
        file: PathBuf,
    },
    /// Translate a native document into another dialect (output on stdout, in the target's charset).
    Translate {
        /// Source dialect: court, procuratorate, police, prison, corrections.
        #[arg(long)]
        from: String,
        /// Target dialect.
        #[arg(long)]
        to: String,
        file: PathBuf,
    },
    /// Check a native document and print every problem at once.
    Validate {
        /// Dialect; default: recognised from the file's shape.
        #[arg(long)]
        dialect: Option<String>,
        file: PathBuf,
    },
    /// The due instant of a legal period (5d, 10wd, 48h) from a time, Beijing time.
    Due {
        /// Period: Nd (days), Nwd (working days) or Nh (hours).
        period: String,
        /// Start: RFC 3339, Beijing local 2024-09-27T16:40, or a date.
        #[arg(long)]
        from: String,
    },
    /// Web users (clerks, supervisors, auditors, admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Load benchmark: concurrent simulated partners over real HTTP against a
    /// gateway with durable storage, plus the crypto-only ceiling.
    Bench(bench::Options),
    /// The exchange log: export a bundle, verify one offline.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Outbound deliveries: list them, retry a dead letter by hand.
    Deliveries {
        #[command(subcommand)]
        action: DeliveriesCommand,
    },
    /// Retention: purge (or archive and purge) bodies, attachments and
    /// personal data past their period ([retention] settings).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Online backup of a gateway on the embedded SQLite database into a new
    /// directory that is itself a data directory (PostgreSQL: use pg_dump).
    Backup {
        /// Data directory of the gateway.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The backup directory to create (must not exist or be empty).
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// One retention run now (the serving gateway also runs one every retention.run_secs).
    Run {
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only report what has run out; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Write the log, its checkpoints, the log key and the gateway certificate into a bundle directory.
    Export {
        /// Data directory of the gateway (its database and PKI).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify offline (no database): a log bundle directory (every leaf, node,
    /// checkpoint and their consistency) or a case's evidence bundle file
    /// (documents, signatures, receipts, inclusion proofs, checkpoint).
    Verify {
        /// The bundle directory, or an evidence bundle `.json` file.
        bundle: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// List deliveries in a state (pending, delivered, acked, dead, or all).
    List {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value = "dead")]
        state: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Put a dead letter back in the outbox (logged as delivery.retried by `operator`).
    Retry {
        /// The delivery id.
        id: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a web user; the password is read from GATEWAY_USER_PASSWORD or
    /// the first line of standard input (never from the command line).
    Add {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        username: String,
        /// clerk, supervisor, auditor or admin.
        #[arg(long)]
        role: String,
        /// A clerk's agency id (registry).
        #[arg(long)]
        agency: Option<String>,
        /// A supervisor's division prefix (62 = 甘肃省, 6201 = 兰州市).
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `serve` installs its logger once its settings are loaded (`log_format`).
    match cli.command {
        Command::Serve { .. } => {}
        Command::Demo { .. } => telemetry::init_at(telemetry::LogFormat::from_env(), "error"),
        _ => telemetry::init(telemetry::LogFormat::from_env()),
    }
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve {
            dir,
            listen,
            database_url,
            tls_listen,
        } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                listen,
                database_url,
                tls_listen,
            })?;
            telemetry::init(settings.log_format);
            if !app::has_pki(&settings) {
                let setup = app::init_dev(&settings)?;
                tracing::info!(agencies = setup.agencies.len(), dir = %settings.dir.display(), "generated the DEV-ONLY PKI");
            }
            let dev = app::is_dev_pki(&settings);
            let gateway = Gateway::load(settings).await?;
            if dev {
                if let Some(file) =
                    corrections_gateway::web::users::seed_dev_users(&gateway).await?
                {
                    println!(
                        "web logins of the demo (DEV ONLY) written to {}",
                        file.display()
                    );
                }
            }
            let running = app::start(gateway)?;
            println!("corrections-gateway listening on http://{} (plain HTTP on loopback: demo default only); web interface: http://{}/ui/", running.addr, running.addr);
            if let Some(tls_addr) = running.tls_addr {
                println!(
                    "partners over mutual TLS: https://{tls_addr} (client certificate required)"
                );
            }
            signals::run_until_stopped(running).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Demo {
            dir,
            database_url,
            days,
        } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                database_url,
                ..Overrides::default()
            })?;
            let dir = settings.dir.clone();
            println!(
                "simulating {days} days of partner traffic (DEV ONLY) in {} …",
                dir.display()
            );
            let summary = corrections_gateway::demo::run(settings, days).await?;
            println!("{}", summary.report());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::InitDev { dir } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            let setup = app::init_dev(&settings)?;
            println!(
                "dev PKI (DEV ONLY, never for production) for {} agencies in {}{}",
                setup.agencies.len(),
                settings.pki_dir().display(),
                if setup.registry_created {
                    "; demo agency registry written"
                } else {
                    ""
                }
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Users(UsersCommand::Add {
            dir,
            username,
            role,
            agency,
            region,
            email,
        }) => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            let password = match std::env::var("GATEWAY_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let gateway = Gateway::load(settings).await?;
            corrections_gateway::web::users::add(
                &gateway,
                corrections_gateway::web::users::NewUser {
                    username: username.clone(),
                    password,
                    role,
                    agency,
                    region,
                    email,
                },
            )
            .await?;
            println!("user {username} created");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Send {
            url,
            key,
            cert,
            gateway_cert,
            content_type,
            file,
        } => {
            let body =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let content_type =
                content_type.unwrap_or_else(|| partner::guess_content_type(&body).to_string());
            let partner = partner::Partner::from_files(&url, &key, &cert)?;
            let answer = partner.submit(&body, &content_type).await?;
            let verdict = match partner::GatewayCert::load(&gateway_cert) {
                Ok(gateway) => match answer.verify(&gateway) {
                    Ok(_) => "signature verified".to_string(),
                    Err(e) => format!("SIGNATURE NOT VALID: {}", e.message().en),
                },
                Err(e) => format!("not verified ({e:#})"),
            };
            eprintln!("HTTP {} — gateway {}", answer.status, verdict);
            println!("{}", String::from_utf8_lossy(&answer.body));
            let ok = (200..300).contains(&answer.status) && verdict == "signature verified";
            Ok(if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Translate { from, to, file } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                ..Overrides::default()
            })?;
            let engines = Engines::load(&settings)?;
            let (from, to) = (dialect(&from)?, dialect(&to)?);
            match engines.translate(from, to, &tools::read(&file)?) {
                Ok(bytes) => {
                    std::io::stdout().write_all(&bytes)?;
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprint!("{}", tools::render_problems(&problems));
                    Ok(std::process::ExitCode::FAILURE)
                }
            }
        }
        Command::Validate {
            dialect: name,
            file,
        } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                ..Overrides::default()
            })?;
            let engines = Engines::load(&settings)?;
            let bytes = tools::read(&file)?;
            let dialect = match name {
                Some(name) => dialect(&name)?,
                None => tools::detect_dialect(&bytes).context(
                    "cannot tell the file's dialect; name it with --dialect / 无法识别文书格式，请用 --dialect 指定",
                )?,
            };
            match engines.check(dialect, &bytes) {
                Ok(doc) => {
                    println!(
                        "ok: a valid {} document in the {} dialect",
                        doc["message_type"].as_str().unwrap_or("?"),
                        dialect
                    );
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprint!("{}", tools::render_problems(&problems));
                    eprintln!(
                        "{} problem(s) / 共 {} 处问题",
                        problems.len(),
                        problems.len()
                    );
                    Ok(std::process::ExitCode::FAILURE)
                }
            }
        }
        Command::Due { period, from } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                ..Overrides::default()
            })?;
            let calendar = corrections_gateway::workflow::calendar::Calendar::load(
                &settings.rules_dir().join("calendar/cn-official-days.tsv"),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", tools::due(&calendar, &period, &from)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Bench(options) => {
            bench::run(options).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Log {
            command: LogCommand::Export { dir, out },
        } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            let exported = xlog::export::run(&settings, &out).await?;
            println!(
                "exported {} entries and {} checkpoints to {}",
                exported.entries,
                exported.checkpoints,
                out.display()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Log {
            command: LogCommand::Verify { bundle },
        } if bundle.is_file() => {
            let verified = std::fs::read(&bundle)
                .map_err(|e| xlog::evidence::Failure(format!("{}: {e}", bundle.display())))
                .and_then(|bytes| xlog::evidence::verify(&bytes));
            match verified {
                Ok(v) => {
                    println!(
                        "ok: case {}: {} documents, {} log entries included in the signed tree of {} entries, root {} / 校验通过\nlog key (compare it with yours): {}",
                        v.case_id,
                        v.documents,
                        v.entries,
                        v.tree_size,
                        hex::encode(v.root),
                        v.log_key
                    );
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(failure) => {
                    println!("FAILED / 校验失败: {failure}");
                    Ok(std::process::ExitCode::FAILURE)
                }
            }
        }
        Command::Log {
            command: LogCommand::Verify { bundle },
        } => match xlog::verify::verify_bundle(&bundle) {
            Ok(v) => {
                println!(
                    "ok: {} entries, {} checkpoints, root {} / 校验通过",
                    v.entries,
                    v.checkpoints,
                    hex::encode(v.root)
                );
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(failure) => {
                println!("FAILED / 校验失败: {failure}");
                Ok(std::process::ExitCode::FAILURE)
            }
        },
        Command::Retention {
            command: RetentionCommand::Run { dir, dry_run },
        } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            if settings.retention.mode == RetentionMode::Off && !dry_run {
                anyhow::bail!(
                    "retention.mode is off: nothing is purged (set it to purge or archive, or use --dry-run)"
                );
            }
            let store = delivery::open_store(&settings).await?;
            let blobs = corrections_gateway::attachments::BlobStore::attach(&settings.blobs_dir())?;
            let report = retention::run(
                &store,
                &blobs,
                &settings.retention,
                time::OffsetDateTime::now_utc(),
                dry_run,
            )
            .await?;
            store.close().await;
            println!("{report}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Backup { dir, to } => {
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            let done = backup::run(&settings, &to).await?;
            println!(
                "backup written to {} / 备份完成: database snapshot {}, {} blob files, {} key and configuration files",
                to.display(),
                done.database.display(),
                done.blobs,
                done.files
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Deliveries { action } => {
            let dir = match &action {
                DeliveriesCommand::List { dir, .. } | DeliveriesCommand::Retry { dir, .. } => {
                    dir.clone()
                }
            };
            let settings = Settings::load(&Overrides {
                config_file: cli.config,
                dir,
                ..Overrides::default()
            })?;
            let store = delivery::open_store(&settings).await?;
            match action {
                DeliveriesCommand::List { state, limit, .. } => {
                    print!("{}", delivery::list(&store, &state, limit).await?);
                }
                DeliveriesCommand::Retry { id, .. } => {
                    println!("{}", delivery::retry_by_operator(&store, &id).await?);
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn dialect(name: &str) -> anyhow::Result<Dialect> {
    Dialect::parse(name).with_context(|| {
        format!("unknown dialect {name:?}: use court, procuratorate, police, prison or corrections / 未知的文书格式")
    })
}
