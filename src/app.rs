//! Wiring: loads the configuration's data files once, builds the shared
//! [`Gateway`] state and runs the HTTP server. Nothing here decides anything
//! about a document; it only puts the stages together.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;

use crate::attachments::BlobStore;
use crate::clock::Clock;
use crate::config::Settings;
use crate::formats::Formats;
use crate::registry::Registry;
use crate::security::agency_keys::AgencyKeys;
use crate::security::devpki::GatewayIdentity;
use crate::security::reload::Reloadable;
use crate::security::tls::{ServerTls, TlsFiles};
use crate::security::trust::TrustStore;
use crate::store::Store;
use crate::validate::Validator;
use crate::workflow::calendar::Calendar;
use crate::workflow::handover::HandoverDocuments;
use crate::workflow::period::PeriodRules;
use crate::xlog::note::NoteSigner;

/// Everything a request needs, loaded once at start-up (shared through an `Arc`).
pub struct Gateway {
    pub settings: Settings,
    pub store: Store,
    /// Reloadable while serving (`security::reload`), hence shared.
    pub trust: Arc<TrustStore>,
    pub registry: Registry,
    pub formats: Formats,
    pub validator: Validator,
    pub calendar: Calendar,
    pub periods: PeriodRules,
    /// The legal documents each correction type requires (`rules/handover_documents.toml`).
    pub handover_documents: HandoverDocuments,
    /// The gateway's own key and certificate: signs receipts and responses.
    pub identity: GatewayIdentity,
    /// Attachment bytes, content-addressed under `DIR/blobs`.
    pub blobs: BlobStore,
    /// "Now" for every decision; the system clock unless a test or the demo shifted it.
    pub clock: Clock,
    /// Signs the exchange log's checkpoints (Ed25519, `DIR/pki/log.key.pem`).
    pub log_key: NoteSigner,
    /// The agency keys the gateway holds: what a clerk sends from the web
    /// interface is signed with their agency's (`signing_keys`).
    pub agency_keys: AgencyKeys,
}

impl Gateway {
    /// Loads every data file and opens the database; fails with a message
    /// naming the file that is wrong.
    pub async fn load(settings: Settings) -> anyhow::Result<Gateway> {
        let registry = Registry::load(&settings.registry).with_context(|| {
            format!(
                "loading the agency registry {}",
                settings.registry.display()
            )
        })?;
        let trust =
            Arc::new(TrustStore::load(&settings.trust_roots).context("loading the trust store")?);
        let identity = GatewayIdentity::load(&settings.pki_dir()).with_context(|| {
            format!(
                "loading the gateway key from {}",
                settings.pki_dir().display()
            )
        })?;
        let formats = Formats::load(&settings.mappings_dir())
            .map_err(|e| {
                anyhow::anyhow!(
                    "loading mappings from {}: {e}",
                    settings.mappings_dir().display()
                )
            })?
            // Native formats name agencies as well as coding them.
            .with_agency_names(registry.names());
        let validator = Validator::load(&settings.schemas_dir()).map_err(|e| {
            anyhow::anyhow!(
                "loading schemas from {}: {e}",
                settings.schemas_dir().display()
            )
        })?;
        let rules = settings.rules_dir();
        let calendar = Calendar::load(&rules.join("calendar/cn-official-days.tsv"))
            .map_err(|e| anyhow::anyhow!("loading the official calendar: {e}"))?;
        let periods = PeriodRules::load(&rules.join("periods.toml"))
            .map_err(|e| anyhow::anyhow!("loading rules/periods.toml: {e}"))?;
        let handover_documents = HandoverDocuments::load(&rules.join("handover_documents.toml"))
            .map_err(|e| anyhow::anyhow!("loading rules/handover_documents.toml: {e}"))?;
        let store = Store::open(
            &settings.database_url,
            settings.max_connections,
            &settings.resources,
        )
        .await
        .context("opening the database")?;
        // Leaves stored before the Merkle tree existed get their subtrees now.
        store
            .integrate_log(50_000)
            .await
            .context("building the exchange log's Merkle tree")?;
        // The upper subtrees proofs need, in memory from the first proof on
        // (a few thousand rows per million leaves).
        store
            .warm_log_cache()
            .await
            .context("reading the exchange log's upper subtrees")?;
        let log_key_file = settings.pki_dir().join("log.key.pem");
        if !log_key_file.exists() {
            anyhow::bail!(
                "no exchange-log key {} (run init-dev)",
                log_key_file.display()
            );
        }
        // Also keeps log.pub in step with the configured origin.
        let log_key =
            crate::security::devpki::generate_log_key(&settings.pki_dir(), &settings.log_origin)
                .map_err(|e| anyhow::anyhow!("loading the log key: {}", e.message().en))?;
        let agency_keys = AgencyKeys::load(
            &settings.signing_keys,
            &settings.pki_dir(),
            registry.iter().map(|a| a.id.as_str()),
        )
        .map_err(|e| anyhow::anyhow!("loading the agency signing keys: {e}"))?;
        let blobs = BlobStore::open(&settings.blobs_dir()).with_context(|| {
            format!(
                "opening the attachment store {}",
                settings.blobs_dir().display()
            )
        })?;
        Ok(Gateway {
            settings,
            store,
            trust,
            registry,
            formats,
            validator,
            calendar,
            periods,
            handover_documents,
            identity,
            blobs,
            clock: Clock::system(),
            log_key,
            agency_keys,
        })
    }
}

/// A running server: its addresses and a handle to stop it.
pub struct Running {
    /// The plain-HTTP listener (loopback in the embedded default).
    pub addr: std::net::SocketAddr,
    /// The mutual-TLS listener, when `tls.listen` is set.
    pub tls_addr: Option<std::net::SocketAddr>,
    /// The trust store and the TLS listener's material, reloadable while serving.
    pub reloadable: Reloadable,
    pub handle: actix_web::dev::ServerHandle,
    pub gateway: Arc<Gateway>,
    /// Ends when the server has stopped (graceful: requests in flight
    /// finished, up to `shutdown_timeout_secs`) and the background jobs with it.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds the listen addresses and starts serving in the background, with the
/// outbox worker (`delivery`), the overdue sweep, mail (`notify`, when
/// configured), checkpoint publishing and
/// the watcher that reloads changed certificates and CRLs alongside. Signals are not handled
/// here: `signals::run_until_stopped` does for the binary.
pub fn start(gateway: Gateway) -> anyhow::Result<Running> {
    let mailer = crate::notify::mailer(&gateway.settings).context("setting up mail (`[mail]`)")?;
    let listener = TcpListener::bind(&gateway.settings.listen)
        .with_context(|| format!("binding {}", gateway.settings.listen))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "plain HTTP on a non-loopback address: put it behind a TLS-terminating proxy; partners should use the mutual-TLS listener");
    }
    let workers = match gateway.settings.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let tls = match gateway.settings.tls.listen.as_str() {
        "" => None,
        tls_listen => {
            let tls = ServerTls::load(TlsFiles {
                cert: gateway.settings.tls.cert.clone(),
                key: gateway.settings.tls.key.clone(),
                trust_roots: gateway.settings.trust_roots.clone(),
            })
            .context("loading the TLS listener's certificate, key, CAs and CRLs")?;
            let tls_listener =
                TcpListener::bind(tls_listen).with_context(|| format!("binding {tls_listen}"))?;
            Some((Arc::new(tls), tls_listener))
        }
    };
    let gateway = Arc::new(gateway);
    crate::metrics::handle();
    let data = actix_web::web::Data::from(gateway.clone());
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(crate::metrics::track))
            .wrap(actix_web::middleware::from_fn(crate::telemetry::request_id))
            .app_data(data.clone())
            .configure(crate::web::routes)
            .configure(crate::api::routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(gateway.settings.shutdown_timeout_secs)
    .on_connect(crate::security::tls::on_connect)
    .listen(listener)?;
    let (mut tls_addr, mut tls_server) = (None, None);
    if let Some((tls, tls_listener)) = tls {
        tls_addr = Some(tls_listener.local_addr()?);
        server = server.listen_openssl(tls_listener, tls.acceptor()?)?;
        tls_server = Some(tls);
    }
    let server = server.run();
    let handle = server.handle();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut jobs = vec![
        crate::jobs::spawn_overdue_sweep(
            gateway.clone(),
            std::time::Duration::from_secs(gateway.settings.overdue_sweep_secs),
            stopped.clone(),
        ),
        crate::jobs::spawn_leaf_indexer(
            gateway.clone(),
            std::time::Duration::from_secs(1),
            stopped.clone(),
        ),
        crate::xlog::checkpoints::spawn_publisher(
            Arc::downgrade(&gateway),
            |gw: &Gateway| (&gw.store, &gw.log_key),
            std::time::Duration::from_secs(gateway.settings.checkpoint_interval_secs),
            stopped.clone(),
        ),
    ];
    jobs.extend(crate::retention::spawn_job(
        gateway.clone(),
        stopped.clone(),
    ));
    // Mail (src/notify): off unless `mail.host` is set.
    if let Some(mailer) = mailer {
        jobs.push(crate::notify::spawn(
            gateway.clone(),
            mailer,
            stopped.clone(),
        ));
    }
    let reloadable = Reloadable {
        trust: gateway.trust.clone(),
        tls: tls_server,
    };
    if gateway.settings.reload_secs > 0 {
        jobs.push(crate::security::reload::spawn_watcher(
            reloadable.clone(),
            std::time::Duration::from_secs(gateway.settings.reload_secs),
            stopped,
        ));
    }
    // The outbox worker lives as long as the server.
    let worker = crate::delivery::Worker::spawn(gateway.clone());
    let task = tokio::spawn(async move {
        let served = server.await;
        // Requests are done: let each job finish what it is doing, then stop.
        let _ = stop.send(true);
        for job in jobs {
            let _ = job.await;
        }
        worker.stop().await;
        tracing::info!("stopped: no request in flight, background jobs ended");
        served
    });
    Ok(Running {
        addr,
        tls_addr,
        reloadable,
        handle,
        gateway,
        task,
    })
}

/// What `init-dev` found or made.
#[derive(Debug)]
pub struct DevSetup {
    pub registry_created: bool,
    pub agencies: Vec<String>,
}

/// Prepares a data directory for the embedded default: copies the demo agency
/// registry (if the directory has none) and generates the DEV-ONLY PKI for
/// every registered agency plus the gateway's own key. Idempotent: existing
/// files are kept.
pub fn init_dev(settings: &Settings) -> anyhow::Result<DevSetup> {
    std::fs::create_dir_all(&settings.dir)
        .with_context(|| format!("creating {}", settings.dir.display()))?;
    let mut registry_created = false;
    if !settings.registry.exists() {
        let template = settings.rules_dir().join("agencies.demo.toml");
        std::fs::copy(&template, &settings.registry).with_context(|| {
            format!(
                "copying {} to {}",
                template.display(),
                settings.registry.display()
            )
        })?;
        registry_created = true;
    }
    let registry = Registry::load(&settings.registry)?;
    let agencies: Vec<(String, String)> = registry
        .iter()
        .map(|a| (a.id.as_str().to_string(), a.name.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = agencies
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    crate::security::devpki::generate(&settings.pki_dir(), &refs)
        .map_err(|e| anyhow::anyhow!("generating the dev PKI: {}", e.message().en))?;
    crate::security::devpki::generate_log_key(&settings.pki_dir(), &settings.log_origin)
        .map_err(|e| anyhow::anyhow!("generating the log key: {}", e.message().en))?;
    Ok(DevSetup {
        registry_created,
        agencies: agencies.into_iter().map(|(id, _)| id).collect(),
    })
}

/// Writes the demo agency registry into the data directory with each agency
/// of `push` delivered by push to the endpoint given for it, for simulated
/// partner systems that listen in the same process (the load benchmark, the
/// delivery tests); [`init_dev`] then keeps it and issues the dev PKI.
pub fn write_dev_registry(settings: &Settings, push: &[(&str, String)]) -> anyhow::Result<()> {
    let template = settings.rules_dir().join("agencies.demo.toml");
    let text = std::fs::read_to_string(&template)
        .with_context(|| format!("reading {}", template.display()))?;
    let mut registry: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", template.display()))?;
    let entries = registry
        .get_mut("agency")
        .and_then(|a| a.as_array_mut())
        .context("the demo registry has no [[agency]] entries")?;
    for entry in entries.iter_mut().filter_map(|e| e.as_table_mut()) {
        let id = entry.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        if let Some((_, url)) = push.iter().find(|(agency, _)| *agency == id) {
            entry.insert("delivery".into(), "push".into());
            entry.insert("endpoint".into(), url.clone().into());
        }
    }
    std::fs::create_dir_all(&settings.dir)
        .with_context(|| format!("creating {}", settings.dir.display()))?;
    std::fs::write(&settings.registry, toml::to_string(&registry)?)
        .with_context(|| format!("writing {}", settings.registry.display()))
}

/// Whether a data directory already holds a PKI (`serve` runs `init-dev` otherwise).
pub fn has_pki(settings: &Settings) -> bool {
    settings.pki_dir().join("gateway.crt.pem").exists()
        && settings.pki_dir().join("log.key.pem").exists()
}

/// Whether the gateway runs on the DEV-ONLY PKI written by `init-dev` (its
/// key file says so in its first line): only then are demo web users seeded.
pub fn is_dev_pki(settings: &Settings) -> bool {
    std::fs::read_to_string(settings.pki_dir().join("gateway.key.pem"))
        .is_ok_and(|text| text.starts_with("# DEV ONLY"))
}
