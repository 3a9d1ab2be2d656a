//! The mutual-TLS listener's OpenSSL configuration (protocol.md "Transport").
//!
//! - TLS 1.2 minimum, Mozilla "intermediate" cipher suites;
//! - a client certificate is required and verified against the agency CAs
//!   of the trust store (`<root>/<agency-id>/ca.crt.pem`), with every CRL of
//!   the trust store (`*.crl.pem`) checked for the client's certificate. A
//!   CA without a CRL refuses its clients (fail closed; `init-dev` writes an
//!   empty CRL per dev CA);
//! - the client certificate must be bound (SAN URI) to the agency whose CA
//!   issued it; that agency is handed to the HTTP layer ([`TlsPeer`]) and a
//!   request signed by another agency is refused there
//!   (`SecurityError::TlsAgencyMismatch`);
//! - no session resumption (tickets or cache): a resumed session would skip
//!   the certificate and CRL check, so a revoked client must not get one;
//! - the server certificate, its key, the CAs and the CRLs are re-read
//!   without a restart ([`ServerTls::reload`], on SIGHUP or when a file
//!   changes): new handshakes use the new material, connections already
//!   open keep theirs.
//!
//! actix-web takes one `SslAcceptor` for the life of the listener, so
//! rotation swaps the `SSL_CTX` of each new connection in OpenSSL's
//! client-hello callback (`SSL_set_SSL_CTX`, the mechanism OpenSSL documents
//! for choosing a context per connection). No crate does this for actix.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};

use openssl::ssl::{
    ClientHelloResponse, SslAcceptor, SslAcceptorBuilder, SslContext, SslFiletype, SslMethod,
    SslOptions, SslRef, SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Name, X509StoreContextRef, X509};

use super::digest::sha256_hex;
use super::trust::{agency_dirs, agency_of, files_ending, stamps, FileStamp};

/// Why the TLS material could not be loaded. The listener keeps its
/// previous material when a reload fails.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {what}")]
    File { path: PathBuf, what: String },
    #[error("the trust store has no agency CA: no client could connect")]
    NoClientCa,
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

fn file_error(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// Where the listener's material is read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// Trust-store roots (the agency CAs and CRLs).
    pub trust_roots: Vec<PathBuf>,
}

/// The agency of a connection's verified client certificate, kept with the
/// connection for the requests made over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    pub agency: String,
}

/// One load of the material.
struct Loaded {
    context: SslContext,
    /// SHA-256 of each agency CA's DER → the agency id (its directory).
    ca_agencies: HashMap<String, String>,
    /// Each file read, with its modification time and length when read.
    stamps: Vec<FileStamp>,
}

/// The latest load (`None` only while the first is being made).
type Current = RwLock<Option<Arc<Loaded>>>;

fn latest(current: &Current) -> Option<Arc<Loaded>> {
    match current.read() {
        Ok(loaded) => loaded.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// The mutual-TLS configuration of the listener, reloadable while it serves.
pub struct ServerTls {
    files: TlsFiles,
    current: Arc<Current>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

impl ServerTls {
    /// Loads the material; fails with the file that is wrong.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let tls = ServerTls {
            files,
            current: Arc::new(RwLock::new(None)),
        };
        tls.reload()?;
        Ok(tls)
    }

    /// The acceptor to give the listener: configured like every load, and
    /// switching each connection to the current load's context.
    pub fn acceptor(&self) -> Result<SslAcceptorBuilder, TlsError> {
        let (builder, _, _) = configure(&self.files, Arc::downgrade(&self.current))?;
        Ok(builder)
    }

    /// Re-reads every file; on failure the previous material stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (builder, ca_agencies, stamps) = configure(&self.files, Arc::downgrade(&self.current))?;
        let loaded = Arc::new(Loaded {
            context: builder.build().into_context(),
            ca_agencies,
            stamps,
        });
        match self.current.write() {
            Ok(mut current) => *current = Some(loaded),
            Err(poisoned) => *poisoned.into_inner() = Some(loaded),
        }
        Ok(())
    }

    /// Reloads if a file read last time changed, or one appeared or vanished
    /// in the trust store; returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = tls_stamps(&self.files);
        let changed = latest(&self.current).is_none_or(|loaded| loaded.stamps != now);
        if changed {
            self.reload()?;
        }
        Ok(changed)
    }
}

/// The files a load reads, with their stamps: the server cert and key, and
/// every CA and CRL file of the trust store.
fn tls_stamps(files: &TlsFiles) -> Vec<FileStamp> {
    let mut paths = vec![files.cert.clone(), files.key.clone()];
    for (_, dir) in agency_dirs(&files.trust_roots) {
        paths.push(dir.join("ca.crt.pem"));
        paths.extend(files_ending(&dir, ".crl.pem").unwrap_or_default());
    }
    stamps(paths)
}

type Configured = (SslAcceptorBuilder, HashMap<String, String>, Vec<FileStamp>);

/// Builds one acceptor from the files (see the module documentation).
fn configure(files: &TlsFiles, current: Weak<Current>) -> Result<Configured, TlsError> {
    let stamps = tls_stamps(files);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_certificate_chain_file(&files.cert)
        .map_err(|e| file_error(&files.cert, format!("not a PEM certificate chain ({e})")))?;
    b.set_private_key_file(&files.key, SslFiletype::PEM)
        .map_err(|e| file_error(&files.key, format!("not a PEM private key ({e})")))?;
    b.check_private_key()
        .map_err(|_| file_error(&files.key, "is not the key of the server certificate"))?;

    let mut store = X509StoreBuilder::new()?;
    let mut names = Stack::<X509Name>::new()?;
    let mut ca_agencies = HashMap::new();
    let mut crls = Vec::new();
    for (agency, dir) in agency_dirs(&files.trust_roots) {
        let ca_path = dir.join("ca.crt.pem");
        let pem = std::fs::read(&ca_path).map_err(|e| file_error(&ca_path, e))?;
        let ca = X509::from_pem(&pem).map_err(|_| file_error(&ca_path, "not a PEM certificate"))?;
        ca_agencies.insert(sha256_hex(&ca.to_der()?), agency.clone());
        names.push(ca.subject_name().to_owned()?)?;
        store.add_cert(ca)?;
        let found = files_ending(&dir, ".crl.pem").map_err(|e| file_error(&dir, e))?;
        if found.is_empty() {
            tracing::warn!(agency = %agency, "the agency CA has no CRL: its TLS clients are refused");
        }
        crls.extend(found);
    }
    if ca_agencies.is_empty() {
        return Err(TlsError::NoClientCa);
    }
    let lookup = store.add_lookup(X509Lookup::file())?;
    for crl in &crls {
        lookup
            .load_crl_file(crl, SslFiletype::PEM)
            .map_err(|e| file_error(crl, format!("not a PEM CRL ({e})")))?;
    }
    // The client's own certificate must not be revoked (its CA is a trust anchor).
    store.set_flags(X509VerifyFlags::CRL_CHECK)?;
    b.set_verify_cert_store(store.build())?;
    b.set_client_ca_list(names);

    let verify_state = current.clone();
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        move |preverified, ctx| verify_client(&verify_state, preverified, ctx),
    );
    b.set_client_hello_callback(move |ssl, _alert| {
        if let Some(loaded) = current.upgrade().and_then(|c| latest(&c)) {
            ssl.set_ssl_context(&loaded.context)?;
        }
        Ok(ClientHelloResponse::SUCCESS)
    });
    Ok((b, ca_agencies, stamps))
}

/// OpenSSL's verdict on each certificate of the client's chain, plus ours on
/// the client's own: it must be bound to the agency whose CA issued it.
fn verify_client(
    current: &Weak<Current>,
    preverified: bool,
    ctx: &mut X509StoreContextRef,
) -> bool {
    if !preverified {
        // The reason (revoked, unknown CA, CRL expired …) for the operator;
        // never the certificate's subject.
        tracing::info!(
            depth = ctx.error_depth(),
            reason = ctx.error().error_string(),
            "TLS client certificate refused"
        );
        return false;
    }
    if ctx.error_depth() != 0 {
        return true;
    }
    let Some(loaded) = current.upgrade().and_then(|c| latest(&c)) else {
        return false;
    };
    let anchor = ctx
        .chain()
        .and_then(|chain| chain.iter().last())
        .and_then(|ca| ca.to_der().ok())
        .and_then(|der| loaded.ca_agencies.get(&sha256_hex(&der)).cloned());
    let bound = ctx.current_cert().and_then(agency_of);
    match (anchor, bound) {
        (Some(issuer), Some(agency)) if issuer == agency => true,
        (issuer, agency) => {
            tracing::info!(issuer = ?issuer, bound_to = ?agency, "TLS client certificate not bound to the agency of its CA; refused");
            false
        }
    }
}

/// The agency of a TLS connection's client certificate (verified at the
/// handshake), for [`actix_web::HttpServer::on_connect`].
pub fn peer_of(ssl: &SslRef) -> Option<TlsPeer> {
    let cert = ssl.peer_certificate()?;
    agency_of(&cert).map(|agency| TlsPeer { agency })
}

/// `on_connect` hook: remembers a TLS connection's client agency.
pub fn on_connect(connection: &dyn Any, data: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = connection.downcast_ref::<Tls>() {
        if let Some(peer) = peer_of(tls.ssl()) {
            data.insert(peer);
        }
    }
}
