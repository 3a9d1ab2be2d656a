//! Partners over mutual TLS (protocol.md "Transport"): a client certificate
//! from the agency's CA is required at the handshake, a revoked one is
//! refused once its CA's CRL says so, the signature must come from the
//! certificate's own agency, and the server certificate, key and CRLs are
//! swapped without a restart (file change, or SIGHUP for the binary) — for
//! the handshake and for signatures alike.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::served::Served;
use common::{court_notice, TestGateway};
use corrections_gateway::app;
use corrections_gateway::config::Settings;
use corrections_gateway::partner::Partner;
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::devpki;
use openssl::x509::X509;

fn mutual_tls(settings: &mut Settings) {
    settings.tls.listen = "127.0.0.1:0".into();
    settings.reload_secs = 1;
}

/// A PEM private key as native-tls wants it (PKCS#8, without the DEV banner).
fn pkcs8(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("-----BEGIN").expect("a PEM key");
    text.as_bytes()[at..].to_vec()
}

/// An HTTPS client that trusts the dev gateway CA and presents the
/// certificate `stem` of `agency` (none when `None`); no connection reuse,
/// so every request is a new handshake.
fn client(pki: &Path, agency: Option<(&str, &str)>) -> reqwest::Client {
    let ca = std::fs::read(pki.join("gateway-ca.crt.pem")).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    if let Some((agency, stem)) = agency {
        let dir = pki.join(agency);
        let cert = std::fs::read(dir.join(format!("{stem}.crt.pem"))).unwrap();
        let key = pkcs8(&dir.join(format!("{stem}.key.pem")));
        builder = builder.identity(reqwest::Identity::from_pkcs8_pem(&cert, &key).unwrap());
    }
    builder.build().unwrap()
}

fn tls_url(gw: &TestGateway) -> String {
    format!("https://{}", gw.running.tls_addr.expect("a TLS listener"))
}

/// A partner that signs as `signer` and connects with `tls_agency`'s certificate.
fn partner_over_tls(gw: &TestGateway, signer: &str, tls_agency: &str) -> Partner {
    let dir = gw.pki().join(signer);
    Partner::from_files(
        &tls_url(gw),
        &dir.join("ecdsa-p256.key.pem"),
        &dir.join("ecdsa-p256.crt.pem"),
    )
    .unwrap()
    .with_http_client(client(&gw.pki(), Some((tls_agency, "ecdsa-p256"))))
}

/// The SHA-256 of the certificate the server presented for a request.
async fn server_certificate(client: &reqwest::Client, url: &str) -> reqwest::Result<Vec<u8>> {
    let response = client.get(format!("{url}/healthz")).send().await?;
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info")
        .peer_certificate()
        .expect("a server certificate")
        .to_vec();
    Ok(openssl::sha::sha256(&info).to_vec())
}

fn fingerprint(path: &Path) -> Vec<u8> {
    let cert = X509::from_pem(&std::fs::read(path).unwrap()).unwrap();
    openssl::sha::sha256(&cert.to_der().unwrap()).to_vec()
}

/// Replaces the TLS server key and certificate of the data directory `dir`
/// (init-dev makes what is missing); returns the new certificate's fingerprint.
fn new_server_certificate(dir: &Path) -> Vec<u8> {
    let pki = dir.join("pki");
    std::fs::remove_file(pki.join("tls-server.key.pem")).unwrap();
    std::fs::remove_file(pki.join("tls-server.crt.pem")).unwrap();
    app::init_dev(&Settings::for_dir(dir)).unwrap();
    fingerprint(&pki.join("tls-server.crt.pem"))
}

/// Polls `check` every 200 ms for up to 15 s (the watcher looks every second).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what} did not happen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn an_agency_certificate_posts_a_signed_document_and_gets_its_receipt() {
    let gw = TestGateway::start_with(mutual_tls).await;
    let court = partner_over_tls(&gw, "court.620102", "court.620102");
    let answer = court
        .submit(&court_notice(1), "application/xml")
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.verify(&gw.gateway_cert()).unwrap();
    // The plain loopback listener of the embedded default still serves.
    let plain = reqwest::get(format!("{}/healthz", gw.base_url))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
}

#[actix_web::test]
async fn without_a_certificate_of_an_agency_ca_the_handshake_fails() {
    let gw = TestGateway::start_with(mutual_tls).await;
    let url = tls_url(&gw);
    let anonymous = client(&gw.pki(), None);
    assert!(
        server_certificate(&anonymous, &url).await.is_err(),
        "a client without a certificate was served"
    );
    // The gateway's own receipt certificate is issued by the gateway CA, not an agency CA.
    let outsider = {
        let ca = std::fs::read(gw.pki().join("gateway-ca.crt.pem")).unwrap();
        let cert = std::fs::read(gw.pki().join("gateway.crt.pem")).unwrap();
        let key = pkcs8(&gw.pki().join("gateway.key.pem"));
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .identity(reqwest::Identity::from_pkcs8_pem(&cert, &key).unwrap())
            .build()
            .unwrap()
    };
    assert!(
        outsider.get(format!("{url}/healthz")).send().await.is_err(),
        "a certificate of no agency CA was accepted"
    );
    let court = client(&gw.pki(), Some(("court.620102", "ecdsa-p256")));
    assert!(server_certificate(&court, &url).await.is_ok());
}

#[actix_web::test]
async fn a_request_signed_by_another_agency_than_the_tls_certificate_is_refused() {
    let gw = TestGateway::start_with(mutual_tls).await;
    // Connected as the court, signed by the police.
    let impostor = partner_over_tls(&gw, "police.620102", "court.620102");
    let answer = impostor
        .submit(&court_notice(2), "application/xml")
        .await
        .unwrap();
    assert_eq!(answer.status, 403);
    let problem = answer.json().unwrap();
    assert_eq!(problem["code"], "tls_agency_mismatch");
    assert!(problem["message"]["zh"]
        .as_str()
        .unwrap()
        .contains("TLS 客户端证书"));
    assert!(problem["message"]["en"]
        .as_str()
        .unwrap()
        .contains("TLS client certificate"));
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    // Reads are held to the same rule.
    let read = impostor.get("/api/v1/mailbox").await.unwrap();
    assert_eq!(read.status, 403);
}

#[actix_web::test]
async fn a_revoked_client_certificate_is_refused_once_the_crl_says_so() {
    let gw = TestGateway::start_with(mutual_tls).await;
    let url = tls_url(&gw);
    let court = client(&gw.pki(), Some(("court.620102", "ecdsa-p256")));
    assert!(server_certificate(&court, &url).await.is_ok());

    devpki::revoke(
        &gw.pki(),
        "court.620102",
        &gw.pki().join("court.620102/ecdsa-p256.crt.pem"),
    )
    .unwrap();
    // No restart: the listener sees the new CRL.
    eventually("refusing the revoked certificate", || async {
        server_certificate(&court, &url).await.is_err()
    })
    .await;
    // Refused for being revoked, nothing else (TLS 1.2: the alert arrives in the handshake).
    let (addr, pki) = (gw.running.tls_addr.unwrap(), gw.pki());
    let refusal = tokio::task::spawn_blocking(move || {
        handshake(addr, &pki, openssl::ssl::SslVersion::TLS1_2)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(refusal.contains("revoked"), "{refusal}");
    // Signatures made with it are refused too, still without a restart.
    let signed = gw
        .partner("court.620102", Algorithm::EcdsaP256Sha256)
        .submit(&court_notice(3), "application/xml")
        .await
        .unwrap();
    assert_eq!(signed.status, 403);
    assert_eq!(signed.json().unwrap()["code"], "certificate_revoked");
    // The agency's other certificates are still good.
    let other = client(&gw.pki(), Some(("court.620102", "rsa")));
    assert!(server_certificate(&other, &url).await.is_ok());

    // A CA without a CRL refuses its clients (fail closed).
    std::fs::remove_file(gw.pki().join("court.620102/ca.crl.pem")).unwrap();
    eventually("refusing the clients of a CA without a CRL", || async {
        server_certificate(&other, &url).await.is_err()
    })
    .await;
    let police = client(&gw.pki(), Some(("police.620102", "ecdsa-p256")));
    assert!(server_certificate(&police, &url).await.is_ok());
}

#[actix_web::test]
async fn a_new_server_certificate_is_served_to_new_handshakes_without_a_restart() {
    let gw = TestGateway::start_with(mutual_tls).await;
    let url = tls_url(&gw);
    let court = client(&gw.pki(), Some(("court.620102", "ecdsa-p256")));
    let cert_file = gw.pki().join("tls-server.crt.pem");
    let old = fingerprint(&cert_file);
    assert_eq!(server_certificate(&court, &url).await.unwrap(), old);

    // The two files change one after the other: a half-changed pair is not loaded.
    let new = new_server_certificate(gw.dir.path());
    assert_ne!(old, new);
    eventually("serving the new certificate", || async {
        server_certificate(&court, &url).await.ok() == Some(new.clone())
    })
    .await;
}

#[actix_web::test]
async fn the_binary_reloads_its_certificate_on_sighup() {
    let gw = Served::start(
        &["--tls-listen", "127.0.0.1:0"],
        &[("GATEWAY_RELOAD_SECS", "0")],
    );
    let url = format!("https://{}", gw.tls_addr.as_ref().unwrap());
    let court = client(&gw.pki(), Some(("court.620102", "ecdsa-p256")));
    let cert_file = gw.pki().join("tls-server.crt.pem");
    let old = fingerprint(&cert_file);
    assert_eq!(server_certificate(&court, &url).await.unwrap(), old);

    let new = new_server_certificate(&gw.dir.path().join("data"));
    // Without a file watcher, nothing changes until the operator says so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server_certificate(&court, &url).await.unwrap(), old);
    gw.signal("HUP");
    eventually("serving the new certificate after SIGHUP", || async {
        server_certificate(&court, &url).await.ok() == Some(new.clone())
    })
    .await;
    let log = gw.log_text();
    assert!(log.contains("SIGHUP: reloading"), "{log}");
    assert!(
        log.contains("TLS certificate, key, CAs and CRLs reloaded"),
        "{log}"
    );
}

/// A raw OpenSSL handshake as the court, offering at most `max`.
fn handshake(
    addr: std::net::SocketAddr,
    pki: &Path,
    max: openssl::ssl::SslVersion,
) -> Result<(), String> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_max_proto_version(Some(max)).unwrap();
    // Let this client offer TLS 1.1 at all (OpenSSL 3 refuses it from level 1).
    connector.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    let dir = pki.join("court.620102");
    connector
        .set_certificate_file(dir.join("ecdsa-p256.crt.pem"), SslFiletype::PEM)
        .unwrap();
    connector
        .set_private_key_file(dir.join("ecdsa-p256.key.pem"), SslFiletype::PEM)
        .unwrap();
    connector.set_verify(SslVerifyMode::NONE);
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let mut tls = connector
        .build()
        .connect("localhost", stream)
        .map_err(|e| e.to_string())?;
    use std::io::{Read, Write};
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    answer
        .starts_with("HTTP/1.1 200")
        .then_some(())
        .ok_or(answer)
}

#[actix_web::test]
async fn the_tls_listener_needs_tls_1_2_at_least() {
    let gw = TestGateway::start_with(mutual_tls).await;
    let addr = gw.running.tls_addr.unwrap();
    let pki = gw.pki();
    let (old, current) = tokio::task::spawn_blocking(move || {
        (
            handshake(addr, &pki, openssl::ssl::SslVersion::TLS1_1),
            handshake(addr, &pki, openssl::ssl::SslVersion::TLS1_2),
        )
    })
    .await
    .unwrap();
    assert!(old.is_err(), "a TLS 1.1 handshake succeeded");
    assert_eq!(current, Ok(()), "the same client with TLS 1.2 is served");
}
