//! All settings, loaded once at start-up and validated there.
//!
//! Layers, later wins: built-in defaults (which make `serve` work on a fresh
//! clone) → a TOML file (`--config FILE`, else `DIR/gateway.toml` if present)
//! → `GATEWAY_*` environment variables (e.g. `GATEWAY_LISTEN`,
//! `GATEWAY_MAX_BODY_BYTES`) → command-line flags. The reference of every
//! key is `docs/operations.md` (tests/operations_doc.rs keeps it complete).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::security::agency_keys::KeyFiles;

/// The gateway's settings. Paths are resolved against the working directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Data directory: the SQLite database, the dev PKI (`pki/`) and the agency registry.
    pub dir: PathBuf,
    /// HTTP listen address. The embedded default is loopback plain HTTP (demo only).
    pub listen: String,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://DIR/gateway.db`.
    pub database_url: String,
    /// Where `schemas/`, `mappings/` and `rules/` are read from; empty means the
    /// working directory if it has them, else the source tree the binary was built from.
    pub resources: PathBuf,
    /// Agency registry file; empty means `DIR/agencies.toml`.
    pub registry: PathBuf,
    /// Trust-store roots, each holding `<agency-id>/ca.crt.pem`, signer certificates and CRLs.
    /// Empty means `certs/agencies` (production) and `DIR/pki` (dev PKI).
    pub trust_roots: Vec<PathBuf>,
    /// Largest accepted request body; a larger one gets 413 before it is read in full.
    pub max_body_bytes: usize,
    /// Largest attachment (one `PUT /api/v1/attachments/{sha256}` body, or one
    /// attachment part of a multipart submission); larger gets 413.
    pub max_attachment_bytes: u64,
    /// Largest `multipart/related` submission body (document plus attachments).
    pub max_multipart_bytes: u64,
    /// Whether every attachment a document references must be present (uploaded
    /// earlier by the sender or carried in the multipart body) for it to be accepted.
    pub require_attachments: bool,
    /// How far a signature's `created` may be from the gateway's clock (RFC 9421 §7.2.4).
    pub signature_window_secs: i64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Database connections for readers (the single SQLite writer is extra; on
    /// PostgreSQL as many writers again, at least 2).
    pub max_connections: u32,
    /// Seconds between two sweeps that mark lapsed deadlines overdue and log them.
    pub overdue_sweep_secs: u64,
    /// Consecutive failed logins after which a web account is locked.
    pub login_max_failures: u32,
    /// How long a locked web account stays locked.
    pub login_lockout_secs: u64,
    /// Lifetime of a web session.
    pub session_hours: u32,
    /// Mark web cookies `Secure` (set when the gateway is served over HTTPS).
    pub secure_cookies: bool,
    /// The exchange log's origin: first line of its checkpoints and name of its key.
    pub log_origin: String,
    /// How often a checkpoint is signed and published when the log grew.
    pub checkpoint_interval_secs: u64,
    /// Outbound delivery: retries, backoff and the push client (`[delivery]`).
    pub delivery: DeliverySettings,
    /// The agency keys the gateway holds to sign what clerks send from the web
    /// interface (`[signing_keys."corrections.620102"]` with `key` and `cert`
    /// PEM files). A corrections agency not listed uses the dev PKI's
    /// `DIR/pki/<agency>/ecdsa-p256.{key,crt}.pem` if present (`security::agency_keys`).
    pub signing_keys: BTreeMap<String, KeyFiles>,
    /// Log lines: `text` (human-readable, the default) or `json`.
    pub log_format: crate::telemetry::LogFormat,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish.
    pub shutdown_timeout_secs: u64,
    /// Seconds between checks of the trust store's certificates and CRLs and
    /// of the TLS server certificate and key for changes (reloaded without a
    /// restart); 0: only on SIGHUP.
    pub reload_secs: u64,
    /// The mutual-TLS listener for partners (`[tls]`).
    pub tls: TlsSettings,
    /// How long document bodies, attachments and personal data are kept (`[retention]`).
    pub retention: RetentionSettings,
    /// E-mail to clerks and supervisors (`[mail]`); off unless `mail.host` is set.
    pub mail: MailSettings,
}

/// What happens to a document's body, attachments and personal data after
/// its period (`[retention]` in the TOML file, `GATEWAY_RETENTION__<KEY>` in
/// the environment; docs/operations.md "Retention", src/retention.rs). The
/// digests, signatures, receipts and the exchange log are always kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// `off` (keep everything), `purge`, or `archive` (write what is purged
    /// to `archive_dir` first).
    pub mode: RetentionMode,
    /// Days a closed case's documents are kept, counted from the day the
    /// case reached its final state.
    pub closed_case_days: u32,
    /// Days after which a case nobody has written to is treated as closed
    /// (a case that never reaches its final state must not keep personal data forever).
    pub inactive_case_days: u32,
    /// Days a document that belongs to no case is kept, counted from its commit.
    pub document_days: u32,
    /// Seconds between two retention runs of a serving gateway.
    pub run_secs: u64,
    /// Documents purged per transaction (and per `retention.purged` log entry).
    pub batch: u32,
    /// Where archive mode writes its bundles; empty means `DIR/archive`.
    pub archive_dir: PathBuf,
}

/// What retention does with an expired document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionMode {
    Off,
    Purge,
    Archive,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            mode: RetentionMode::Off,
            closed_case_days: 1825,
            inactive_case_days: 3650,
            document_days: 1825,
            run_secs: 3600,
            batch: 200,
            archive_dir: PathBuf::new(),
        }
    }
}

/// How a mail server connection is secured (`mail.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain SMTP (a relay on the same host only: credentials travel in clear).
    None,
    /// SMTP, then STARTTLS before anything else is said (required, never optional).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// E-mail notifications (`[mail]` in the TOML file, `GATEWAY_MAIL__<KEY>` in
/// the environment; docs/operations.md and docs/mail.md). Off unless `host` is set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    /// SMTP server host name (checked against its certificate); empty: no mail.
    pub host: String,
    /// SMTP port; 0 means the usual one for `tls` (25, 587 or 465).
    pub port: u16,
    pub tls: MailTls,
    /// SMTP AUTH user name; empty: no authentication.
    pub username: String,
    /// SMTP AUTH password: set it through `GATEWAY_MAIL__PASSWORD` or
    /// `password_file`, never in a file kept in a repository.
    pub password: String,
    /// A file whose first line is the password (e.g. a container secret).
    pub password_file: PathBuf,
    /// The sender, e.g. `社区矫正网关 <gateway@sfj.example.gov.cn>`.
    pub from: String,
    /// An extra CA certificate (PEM) to trust for the SMTP server, besides the system's.
    pub ca_cert: PathBuf,
    /// Where people open the web interface, for the links in mail
    /// (`https://gateway.example`); empty means `http://<listen>`.
    pub base_url: String,
    /// How often the notifier reads new events and sends due mail.
    pub poll_ms: u64,
    /// First retry delay ceiling after a failed send (full jitter, doubling).
    pub backoff_base_ms: u64,
    /// Ceiling of any retry delay.
    pub backoff_max_ms: u64,
    /// Attempts before a message is given up (`failed`, kept in the outbox).
    pub max_attempts: u32,
    /// Time allowed for one SMTP conversation.
    pub timeout_ms: u64,
    /// Hour (Beijing time, 0–23) from which each day's digest is sent.
    pub digest_hour: u8,
    /// Events older than this when the notifier first reads them are not
    /// mailed (mail was off or the gateway was down for long).
    pub max_event_age_hours: u64,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("password_file", &self.password_file)
            .field("from", &self.from)
            .field("ca_cert", &self.ca_cert)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            host: String::new(),
            port: 0,
            tls: MailTls::Starttls,
            username: String::new(),
            password: String::new(),
            password_file: PathBuf::new(),
            from: String::new(),
            ca_cert: PathBuf::new(),
            base_url: String::new(),
            poll_ms: 5_000,
            backoff_base_ms: 30_000,
            backoff_max_ms: 3_600_000,
            max_attempts: 50,
            timeout_ms: 30_000,
            digest_hour: 8,
            max_event_age_hours: 72,
        }
    }
}

impl RetentionSettings {
    fn check(&self) -> anyhow::Result<()> {
        for (name, days) in [
            ("closed_case_days", self.closed_case_days),
            ("inactive_case_days", self.inactive_case_days),
            ("document_days", self.document_days),
        ] {
            if !(1..=36_500).contains(&days) {
                anyhow::bail!("retention.{name} must be between 1 and 36500");
            }
        }
        if self.inactive_case_days < self.closed_case_days {
            anyhow::bail!("retention.inactive_case_days must be >= retention.closed_case_days");
        }
        if !(60..=604_800).contains(&self.run_secs) {
            anyhow::bail!("retention.run_secs must be between 60 and 604800");
        }
        if !(1..=5_000).contains(&self.batch) {
            anyhow::bail!("retention.batch must be between 1 and 5000");
        }
        Ok(())
    }
}

impl MailSettings {
    /// Whether mail is configured at all.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        match (self.port, self.tls) {
            (0, MailTls::None) => 25,
            (0, MailTls::Starttls) => 587,
            (0, MailTls::Tls) => 465,
            (port, _) => port,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            anyhow::bail!("mail.from must be an e-mail address (optionally `Name <address>`)");
        }
        if !self.password.is_empty() && !self.password_file.as_os_str().is_empty() {
            anyhow::bail!("set mail.password or mail.password_file, not both");
        }
        if self.username.is_empty()
            && (!self.password.is_empty() || !self.password_file.as_os_str().is_empty())
        {
            anyhow::bail!("mail.password needs mail.username");
        }
        let base = self.base_url.as_str();
        if !(base.is_empty() || base.starts_with("https://") || base.starts_with("http://")) {
            anyhow::bail!("mail.base_url must start with https:// or http://");
        }
        if !(100..=600_000).contains(&self.poll_ms) {
            anyhow::bail!("mail.poll_ms must be between 100 and 600000");
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            anyhow::bail!("mail.backoff_base_ms must be > 0 and <= mail.backoff_max_ms");
        }
        if !(1..=1000).contains(&self.max_attempts) {
            anyhow::bail!("mail.max_attempts must be between 1 and 1000");
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            anyhow::bail!("mail.timeout_ms must be between 100 and 600000");
        }
        if self.digest_hour > 23 {
            anyhow::bail!("mail.digest_hour must be between 0 and 23");
        }
        if self.max_event_age_hours == 0 {
            anyhow::bail!("mail.max_event_age_hours must be at least 1");
        }
        Ok(())
    }
}

/// The mutual-TLS listener (`[tls]` in the TOML file, `GATEWAY_TLS__<KEY>` in
/// the environment; docs/operations.md). Off unless `listen` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// Address of the HTTPS listener that requires client certificates; empty: none.
    pub listen: String,
    /// Server certificate chain (PEM, leaf first); empty means `DIR/pki/tls-server.crt.pem`.
    pub cert: PathBuf,
    /// Server private key (PEM); empty means `DIR/pki/tls-server.key.pem`.
    pub key: PathBuf,
}

/// How the outbox worker pushes documents (`[delivery]` in the TOML file,
/// `GATEWAY_DELIVERY__<KEY>` in the environment; docs/operations.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliverySettings {
    /// First retry delay ceiling; attempt n waits a random time in
    /// `[0, min(backoff_max_ms, backoff_base_ms · 2^(n-1))]` (full jitter).
    pub backoff_base_ms: u64,
    /// Ceiling of any retry delay.
    pub backoff_max_ms: u64,
    /// Attempts before a push delivery is dead-lettered.
    pub max_attempts: u32,
    /// Time allowed for one push attempt (connect, send, receipt).
    pub timeout_ms: u64,
    /// Push attempts in flight at once, in all.
    pub concurrency: usize,
    /// Push attempts in flight at once to any one recipient (more than
    /// `concurrency` counts as `concurrency`, so lowering `concurrency`
    /// alone still starts): a slow partner cannot hold up the others'
    /// deliveries.
    pub per_recipient: usize,
    /// How often the worker looks for due deliveries.
    pub poll_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            backoff_base_ms: 30_000,
            backoff_max_ms: 3_600_000,
            max_attempts: 10,
            timeout_ms: 30_000,
            concurrency: 64,
            per_recipient: 8,
            poll_ms: 1_000,
        }
    }
}

impl DeliverySettings {
    fn check(&self) -> anyhow::Result<()> {
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            anyhow::bail!("delivery.backoff_base_ms must be > 0 and <= delivery.backoff_max_ms");
        }
        if !(1..=100).contains(&self.max_attempts) {
            anyhow::bail!("delivery.max_attempts must be between 1 and 100");
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            anyhow::bail!("delivery.timeout_ms must be between 100 and 600000");
        }
        if !(1..=256).contains(&self.concurrency) {
            anyhow::bail!("delivery.concurrency must be between 1 and 256");
        }
        if !(1..=256).contains(&self.per_recipient) {
            anyhow::bail!("delivery.per_recipient must be between 1 and 256");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            anyhow::bail!("delivery.poll_ms must be between 10 and 60000");
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dir: PathBuf::from("data"),
            listen: "127.0.0.1:8080".into(),
            database_url: String::new(),
            resources: PathBuf::new(),
            registry: PathBuf::new(),
            trust_roots: Vec::new(),
            max_body_bytes: 10 * 1024 * 1024,
            max_attachment_bytes: 50 * 1024 * 1024,
            max_multipart_bytes: 200 * 1024 * 1024,
            require_attachments: true,
            signature_window_secs: 300,
            workers: 0,
            max_connections: 8,
            overdue_sweep_secs: 60,
            login_max_failures: 5,
            login_lockout_secs: 900,
            session_hours: 8,
            secure_cookies: false,
            delivery: DeliverySettings::default(),
            log_origin: "corrections-gateway.example/log".into(),
            checkpoint_interval_secs: 10,
            log_format: crate::telemetry::LogFormat::Text,
            shutdown_timeout_secs: 30,
            reload_secs: 30,
            tls: TlsSettings::default(),
            retention: RetentionSettings::default(),
            mail: MailSettings::default(),
            signing_keys: BTreeMap::new(),
        }
    }
}

/// Flags that the command line may set on top of the layers.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub tls_listen: Option<String>,
}

impl Settings {
    /// Loads the layers described in the module documentation and fills in
    /// every derived default, so the rest of the program never sees an empty path.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let dir = overrides
            .dir
            .clone()
            .or_else(|| std::env::var_os("GATEWAY_DIR").map(PathBuf::from));
        let file = overrides
            .config_file
            .clone()
            .or_else(|| {
                dir.as_ref()
                    .map(|d| d.join("gateway.toml"))
                    .filter(|p| p.exists())
            })
            .or_else(|| Some(PathBuf::from("data/gateway.toml")).filter(|p| p.exists()));
        if let Some(file) = &file {
            if !file.exists() {
                anyhow::bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("GATEWAY_").split("__"));
        let mut settings: Settings = figment.extract()?;
        if let Some(dir) = &overrides.dir {
            settings.dir = dir.clone();
        }
        if let Some(listen) = &overrides.listen {
            settings.listen = listen.clone();
        }
        if let Some(url) = &overrides.database_url {
            settings.database_url = url.clone();
        }
        if let Some(listen) = &overrides.tls_listen {
            settings.tls.listen = listen.clone();
        }
        settings.fill_defaults();
        settings.check()?;
        Ok(settings)
    }

    /// Settings for a data directory with every default (tests, bench, `init-dev`).
    pub fn for_dir(dir: &Path) -> Settings {
        let mut settings = Settings {
            dir: dir.to_path_buf(),
            ..Settings::default()
        };
        settings.fill_defaults();
        settings
    }

    fn fill_defaults(&mut self) {
        if self.database_url.is_empty() {
            self.database_url = format!(
                "sqlite://{}?mode=rwc",
                self.dir.join("gateway.db").display()
            );
        }
        if self.resources.as_os_str().is_empty() {
            self.resources = default_resources();
        }
        if self.registry.as_os_str().is_empty() {
            self.registry = self.dir.join("agencies.toml");
        }
        if self.retention.archive_dir.as_os_str().is_empty() {
            self.retention.archive_dir = self.dir.join("archive");
        }
        if self.tls.cert.as_os_str().is_empty() {
            self.tls.cert = self.pki_dir().join("tls-server.crt.pem");
        }
        if self.tls.key.as_os_str().is_empty() {
            self.tls.key = self.pki_dir().join("tls-server.key.pem");
        }
        if self.trust_roots.is_empty() {
            self.trust_roots = vec![self.resources.join("certs/agencies"), self.pki_dir()];
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.max_body_bytes < 1024 {
            anyhow::bail!("max_body_bytes must be at least 1024");
        }
        if self.max_attachment_bytes < 1024 {
            anyhow::bail!("max_attachment_bytes must be at least 1024");
        }
        if self.max_multipart_bytes < self.max_body_bytes as u64 {
            anyhow::bail!("max_multipart_bytes must be at least max_body_bytes");
        }
        if !(1..=86_400).contains(&self.overdue_sweep_secs) {
            anyhow::bail!("overdue_sweep_secs must be between 1 and 86400");
        }
        self.delivery.check()?;
        self.retention.check()?;
        self.mail.check()?;
        if !(1..=3600).contains(&self.signature_window_secs) {
            anyhow::bail!("signature_window_secs must be between 1 and 3600");
        }
        if self.log_origin.is_empty()
            || self
                .log_origin
                .contains(|c: char| c.is_whitespace() || c == '+')
        {
            anyhow::bail!("log_origin must be non-empty, without spaces or '+'");
        }
        if !(1..=3600).contains(&self.checkpoint_interval_secs) {
            anyhow::bail!("checkpoint_interval_secs must be between 1 and 3600");
        }
        if !(1..=3600).contains(&self.shutdown_timeout_secs) {
            anyhow::bail!("shutdown_timeout_secs must be between 1 and 3600");
        }
        if self.reload_secs > 86_400 {
            anyhow::bail!("reload_secs must be between 0 (SIGHUP only) and 86400");
        }
        for sub in ["schemas", "mappings", "rules"] {
            if !self.resources.join(sub).is_dir() {
                anyhow::bail!(
                    "resources directory {} has no {sub}/",
                    self.resources.display()
                );
            }
        }
        Ok(())
    }

    /// The dev PKI written by `init-dev`.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }
    /// The content-addressed attachment store (`blobs/<aa>/<bb>/<sha256>`).
    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs")
    }
    pub fn schemas_dir(&self) -> PathBuf {
        self.resources.join("schemas")
    }
    pub fn mappings_dir(&self) -> PathBuf {
        self.resources.join("mappings")
    }
    pub fn rules_dir(&self) -> PathBuf {
        self.resources.join("rules")
    }
}

/// The working directory if it holds the data files, else the source tree
/// this binary was built from (so `cargo run` from anywhere in a clone works).
fn default_resources() -> PathBuf {
    let cwd = PathBuf::from(".");
    if cwd.join("schemas").is_dir() && cwd.join("mappings").is_dir() {
        cwd
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

#[cfg(test)]
mod tests {
    use super::DeliverySettings;

    #[test]
    fn a_recipient_has_at_least_one_place_and_a_lower_concurrency_alone_still_starts() {
        let defaults = DeliverySettings::default();
        assert!(defaults.check().is_ok());
        assert!(defaults.per_recipient < defaults.concurrency);
        for (concurrency, per_recipient, ok) in
            [(4, 8, true), (4, 1, true), (4, 257, false), (4, 0, false)]
        {
            let settings = DeliverySettings {
                concurrency,
                per_recipient,
                ..DeliverySettings::default()
            };
            let checked = settings.check();
            assert_eq!(
                checked.is_ok(),
                ok,
                "{concurrency}/{per_recipient}: {checked:?}"
            );
            if let Err(e) = checked {
                assert!(e.to_string().contains("delivery.per_recipient"), "{e}");
            }
        }
    }
}
