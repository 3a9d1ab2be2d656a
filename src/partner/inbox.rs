//! The receiving side of push delivery (docs/delivery.md), as a partner
//! system implements it: an HTTP endpoint that checks the gateway's signed
//! push, processes each gateway document id once and answers with a receipt
//! signed by the agency's own key. Delivery is at-least-once, so a second
//! push of the same document is answered again but not processed again.
//!
//! The load benchmark runs one per push-delivered agency in its own process;
//! the delivery tests build misbehaving receivers on the same signature
//! check ([`verify_gateway`]). The gateway itself never uses this module.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{web, HttpRequest, HttpResponse};

use super::GatewayCert;
use crate::delivery::push::{DOCUMENT_ID_HEADER, PUSH_COMPONENTS};
use crate::security::devpki::GatewayIdentity;
use crate::security::digest::verify_content_digest;
use crate::security::httpsig::{self, MessageComponents};
use crate::security::response::sign_response;

/// The path the inbox listens on.
pub const INBOX_PATH: &str = "/inbox";

/// A push-delivered agency's inbox.
pub struct Inbox {
    pub agency: String,
    /// The agency's own signing key: the gateway accepts only a receipt
    /// signed by a certificate bound to the agency it pushed to.
    signer: GatewayIdentity,
    gateway: GatewayCert,
    requests: AtomicUsize,
    refused: AtomicUsize,
    /// Gateway document id → (pushes received, times processed).
    seen: Mutex<HashMap<String, (usize, usize)>>,
}

/// What an inbox received, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Push requests, counting the gateway's retries.
    pub requests: usize,
    /// Requests whose gateway signature did not verify (answered 401).
    pub refused: usize,
    /// Distinct documents processed.
    pub documents: usize,
    /// Documents pushed more than once (processed once all the same).
    pub repeated: usize,
    /// Documents processed more than once: must be 0.
    pub processed_twice: usize,
}

impl Inbox {
    pub fn new(agency: &str, signer: GatewayIdentity, gateway: GatewayCert) -> Arc<Inbox> {
        Arc::new(Inbox {
            agency: agency.to_string(),
            signer,
            gateway,
            requests: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            seen: Mutex::new(HashMap::new()),
        })
    }

    pub fn tally(&self) -> Tally {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        Tally {
            requests: self.requests.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
            documents: seen.len(),
            repeated: seen.values().filter(|(pushes, _)| *pushes > 1).count(),
            processed_twice: seen.values().filter(|(_, done)| *done > 1).count(),
        }
    }

    /// The gateway document ids processed.
    pub fn documents(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.keys().cloned().collect()
    }

    /// Counts a push of `document_id`; whether it is the first (to be processed).
    fn first_push(&self, document_id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = seen.entry(document_id.to_string()).or_insert((0, 0));
        entry.0 += 1;
        if entry.1 == 0 {
            entry.1 = 1;
            return true;
        }
        false
    }
}

/// The covered components of the gateway's push, as a receiver sees them.
pub struct Incoming<'a>(pub &'a HttpRequest);

impl MessageComponents for Incoming<'_> {
    fn component(&self, name: &str) -> Option<String> {
        match name {
            "@method" => Some(self.0.method().as_str().to_owned()),
            "@path" => Some(self.0.path().to_owned()),
            header => self
                .0
                .headers()
                .get(header)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}

/// Checks a push as docs/delivery.md tells a receiver to: the body matches
/// `Content-Digest`, and the signature covers [`PUSH_COMPONENTS`] and is the
/// gateway's (the certificate the partner pinned).
pub fn verify_gateway(gateway: &GatewayCert, req: &HttpRequest, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    verify_content_digest(&header("content-digest")?, body).map_err(|e| format!("{e}"))?;
    let (params, signature) =
        httpsig::parse_signature(&header("signature-input")?, &header("signature")?)
            .map_err(|e| format!("{e}"))?;
    httpsig::require_components(&params, &PUSH_COMPONENTS).map_err(|e| format!("{e}"))?;
    if params.keyid != gateway.keyid {
        return Err("not the gateway's key".into());
    }
    httpsig::verify_message(&params, &signature, &Incoming(req), &gateway.key)
        .map_err(|e| format!("{e}"))
}

/// The receipt body a partner answers a push with: the gateway checks that
/// it names the document it pushed.
pub fn receipt_body(agency: &str, document_id: &str) -> Vec<u8> {
    let received_at = crate::timefmt::beijing(time::OffsetDateTime::now_utc());
    serde_json::json!({
        "receipt_id": uuid::Uuid::new_v4().to_string(),
        "document_id": document_id,
        "agency": agency,
        "received_at": received_at,
    })
    .to_string()
    .into_bytes()
}

async fn receive(inbox: web::Data<Arc<Inbox>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    inbox.requests.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = verify_gateway(&inbox.gateway, &req, &body) {
        inbox.refused.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().body(e);
    }
    let Some(document_id) = req
        .headers()
        .get(DOCUMENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return HttpResponse::BadRequest().body("no gateway-document-id");
    };
    // A real system would store the document here, once.
    inbox.first_push(document_id);
    let receipt = receipt_body(&inbox.agency, document_id);
    match sign_response(&inbox.signer, 200, "application/json", &receipt) {
        Ok(headers) => {
            let mut answer = HttpResponse::Ok();
            answer.content_type("application/json");
            for header in headers {
                answer.insert_header(header);
            }
            answer.body(receipt)
        }
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// Serves `inbox` at [`INBOX_PATH`] on an already bound listener, on the
/// current runtime, with `workers` threads.
pub fn serve(
    listener: TcpListener,
    inbox: Arc<Inbox>,
    workers: usize,
) -> std::io::Result<actix_web::dev::ServerHandle> {
    let data = web::Data::new(inbox);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route(INBOX_PATH, web::post().to(receive))
    })
    .workers(workers.max(1))
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}
