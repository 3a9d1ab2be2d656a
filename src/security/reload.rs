//! Re-reading key material while the gateway serves: the signature trust
//! store (agency CAs, signer certificates, CRLs) and the mutual-TLS
//! listener's files (server certificate and key, agency CAs, CRLs). Both
//! are re-read on SIGHUP ([`reload_now`]) and, every `reload_secs`, when one
//! of their files changed ([`spawn_watcher`]). A reload that fails is logged
//! and the previous material stays in use; it is tried again at the next
//! change or signal.

use std::sync::Arc;
use std::time::Duration;

use super::tls::ServerTls;
use super::trust::TrustStore;

/// What can be reloaded: the trust store, and the TLS listener if there is one.
#[derive(Clone)]
pub struct Reloadable {
    pub trust: Arc<TrustStore>,
    pub tls: Option<Arc<ServerTls>>,
}

impl Reloadable {
    /// Reloads everything now (SIGHUP); true when all of it loaded.
    pub fn reload_now(&self) -> bool {
        let mut ok = true;
        match self.trust.reload() {
            Ok(()) => {
                tracing::info!("trust store (agency CAs, signer certificates, CRLs) reloaded")
            }
            Err(e) => {
                ok = false;
                tracing::error!(error = %e, "the trust store cannot be loaded; keeping the previous")
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate, key, CAs and CRLs reloaded"),
                Err(e) => {
                    ok = false;
                    tracing::error!(error = %e, "TLS material cannot be loaded; keeping the previous")
                }
            }
        }
        ok
    }

    /// Reloads what changed since it was last read.
    pub fn reload_changed(&self) {
        match self.trust.reload_if_changed() {
            Ok(true) => tracing::info!("trust store changed: reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "the trust store changed but cannot be loaded; keeping the previous")
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate, key, CAs or CRLs changed: reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "TLS material changed but cannot be loaded; keeping the previous")
                }
            }
        }
    }
}

/// Checks for changed files every `interval` until `stop` says so.
pub fn spawn_watcher(
    what: Reloadable,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::jobs::spawn_every(interval, stop, move || {
        let what = what.clone();
        async move {
            // File reads and certificate parsing: off the async workers.
            let _ = tokio::task::spawn_blocking(move || what.reload_changed()).await;
        }
    })
}
