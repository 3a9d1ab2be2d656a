//! Simulated partner endpoints for delivery tests: a real actix-web server
//! that verifies the gateway's push signature, processes each gateway
//! document id once and answers with a receipt signed by the agency's own
//! dev key (or misbehaves on request: slow, corrupt or foreign signatures).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use corrections_gateway::config::{DeliverySettings, Settings};
use corrections_gateway::delivery::push::DOCUMENT_ID_HEADER;
use corrections_gateway::partner::inbox::verify_gateway;
use corrections_gateway::partner::GatewayCert;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::devpki::{agency_key_files, GatewayIdentity};
use corrections_gateway::security::response::sign_response;

use super::TestGateway;

const COURT: &str = "court.620102";

/// Short backoff so that three attempts and a dead letter take about a second.
pub fn fast(settings: &mut Settings) {
    settings.delivery = DeliverySettings {
        backoff_base_ms: 100,
        backoff_max_ms: 300,
        max_attempts: 3,
        timeout_ms: 1_000,
        concurrency: 4,
        per_recipient: 2,
        poll_ms: 50,
    };
}

/// A gateway whose registry sends `push` agencies to the given endpoints.
pub async fn gateway_pushing_to(push: &[(&str, String)]) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    corrections_gateway::app::write_dev_registry(&Settings::for_dir(dir.path()), push).unwrap();
    TestGateway::start_in(dir, fast).await
}

/// How a simulated partner endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A receipt signed with the agency's own key.
    Receipt,
    /// The next `n` requests are answered only after the gateway gave up.
    SlowFor(u32),
    /// Every answer waits this long first (a busy partner).
    Delay(u64),
    /// The signature does not verify (it was made over another status).
    CorruptSignature,
    /// A valid signature, but by another agency's certificate.
    SignedByOther,
    /// `200` with bytes that are no receipt and no signature (a proxy's error page).
    Garbage,
    /// `200` with a valid signature over bytes that are not a receipt.
    SignedGarbage,
}

/// What a broken partner answers instead of a receipt.
const GARBAGE: &[u8] = b"<html><body>502 upstream \xff\xfe</body></html>";

/// A partner system's inbox: verifies the gateway, processes each gateway
/// document id once, answers with a signed receipt.
pub struct Receiver {
    pub agency: &'static str,
    pub own: GatewayIdentity,
    pub other: GatewayIdentity,
    pub gateway: GatewayCert,
    pub behaviour: Mutex<Behaviour>,
    pub requests: AtomicUsize,
    pub bad_gateway_signatures: AtomicUsize,
    /// Gateway document id → (requests for it, times processed).
    pub seen: Mutex<BTreeMap<String, (usize, usize)>>,
    /// (Content-Type, body) of each document processed.
    pub processed: Mutex<Vec<(String, Vec<u8>)>>,
    /// The receipt bodies answered, by document id (the last one).
    pub receipts: Mutex<BTreeMap<String, Vec<u8>>>,
}

pub fn identity(gw: &TestGateway, agency: &str) -> GatewayIdentity {
    let (key, cert) = agency_key_files(&gw.pki(), agency, Algorithm::EcdsaP256Sha256);
    GatewayIdentity::from_files(&key, &cert).unwrap()
}

impl Receiver {
    pub fn new(gw: &TestGateway, agency: &'static str, behaviour: Behaviour) -> Arc<Receiver> {
        Arc::new(Receiver {
            agency,
            own: identity(gw, agency),
            other: identity(gw, COURT),
            gateway: gw.gateway_cert(),
            behaviour: Mutex::new(behaviour),
            requests: AtomicUsize::new(0),
            bad_gateway_signatures: AtomicUsize::new(0),
            seen: Mutex::new(BTreeMap::new()),
            processed: Mutex::new(Vec::new()),
            receipts: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn keyid(&self) -> String {
        self.own.keyid.clone()
    }

    /// Documents processed, each of which must have been processed exactly once.
    pub fn processed_once(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        for (id, (_, processed)) in seen.iter() {
            assert_eq!(*processed, 1, "document {id} processed {processed} times");
        }
        seen.keys().cloned().collect()
    }

    pub fn requests_for(&self, document_id: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .get(document_id)
            .map(|(n, _)| *n)
            .unwrap_or(0)
    }
}

pub async fn inbox(
    state: web::Data<Arc<Receiver>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let r = state.get_ref();
    r.requests.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = verify_gateway(&r.gateway, &req, &body) {
        r.bad_gateway_signatures.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().body(e);
    }
    let document_id = req
        .headers()
        .get(DOCUMENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // De-duplicate by gateway document id: process the first copy only.
    {
        let mut seen = r.seen.lock().unwrap();
        let entry = seen.entry(document_id.clone()).or_insert((0, 0));
        entry.0 += 1;
        if entry.1 == 0 {
            entry.1 += 1;
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            r.processed
                .lock()
                .unwrap()
                .push((content_type, body.to_vec()));
        }
    }
    let behaviour = {
        let mut b = r.behaviour.lock().unwrap();
        let now = *b;
        if let Behaviour::SlowFor(n) = now {
            *b = if n > 1 {
                Behaviour::SlowFor(n - 1)
            } else {
                Behaviour::Receipt
            };
        }
        now
    };
    match behaviour {
        Behaviour::SlowFor(_) => tokio::time::sleep(Duration::from_millis(2_500)).await,
        Behaviour::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    match behaviour {
        Behaviour::Garbage => {
            return HttpResponse::Ok()
                .content_type("text/html")
                .body(GARBAGE.to_vec())
        }
        Behaviour::SignedGarbage => {
            let headers = sign_response(&r.own, 200, "application/json", GARBAGE).unwrap();
            let mut answer = HttpResponse::Ok();
            answer.content_type("application/json");
            for (name, value) in headers {
                answer.insert_header((name, value));
            }
            return answer.body(GARBAGE.to_vec());
        }
        _ => {}
    }
    let receipt = serde_json::to_vec(&serde_json::json!({
        "receipt_id": uuid::Uuid::new_v4().to_string(),
        "document_id": document_id,
        "agency": r.agency,
        "received_at": "2026-11-20T10:20:00+08:00",
    }))
    .unwrap();
    let (signer, signed_status) = match behaviour {
        Behaviour::CorruptSignature => (&r.own, 299),
        Behaviour::SignedByOther => (&r.other, 200),
        _ => (&r.own, 200),
    };
    let headers = sign_response(signer, signed_status, "application/json", &receipt).unwrap();
    r.receipts
        .lock()
        .unwrap()
        .insert(document_id, receipt.clone());
    let mut answer = HttpResponse::Ok();
    answer.content_type("application/json");
    for (name, value) in headers {
        answer.insert_header((name, value));
    }
    answer.body(receipt)
}

/// Serves a receiver on an already bound listener.
pub fn serve(listener: TcpListener, receiver: Arc<Receiver>) -> actix_web::dev::ServerHandle {
    let data = web::Data::new(receiver);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/inbox", web::post().to(inbox))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

pub fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/inbox", listener.local_addr().unwrap());
    (listener, url)
}
