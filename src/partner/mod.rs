//! The partner side of the contract: what an agency system does to talk to
//! the gateway. Used by `corrections-gateway send`, the load benchmark and the
//! integration tests, so all three sign exactly the way protocol.md says and a
//! partner integrator can read one small module to see how. [`inbox`] is the
//! receiving end of push delivery, as the benchmark and tests run it.

pub mod inbox;

use std::path::Path;

use anyhow::Context;
use openssl::x509::X509;

use crate::clock::Clock;
use crate::security::alg::{Algorithm, SigningKey, VerifyingKey};
use crate::security::devpki::{agency_key_files, load_signing_key};
use crate::security::digest::content_digest;
use crate::security::httpsig::{self, SignatureParams, REQUEST_COMPONENTS};
use crate::security::request::RequestParts;
use crate::security::response::{verify_response, ResponseParts};
use crate::security::trust::fingerprint;
use crate::security::SecurityError;

/// How many of a mailbox page's acks [`Partner::pull_and_ack`] sends at once.
pub const ACKS_IN_FLIGHT: usize = 16;

/// An agency system's signing identity plus an HTTP client.
pub struct Partner {
    pub base_url: String,
    pub key: SigningKey,
    pub keyid: String,
    pub alg: Algorithm,
    /// `created` of each signature; the system clock unless a test shifted it.
    pub clock: Clock,
    http: reqwest::Client,
}

/// What the gateway answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

/// An agency's signing identity, borrowed: what signs a request as protocol.md
/// says. [`Partner`] signs with it before sending; the web interface signs a
/// clerk's document with the key the gateway holds for the clerk's agency and
/// hands the same parts to intake as a partner's POST would arrive.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub key: &'a SigningKey,
    pub keyid: &'a str,
    pub alg: Algorithm,
}

impl Signer<'_> {
    /// The parts of a signed request, as the gateway captures them from the
    /// wire: method, path, `@query`, `Content-Type`, `Content-Digest` (with a
    /// body), `Signature-Input` and `Signature` (`created`, a fresh nonce).
    /// `path` may carry a query (`/api/v1/cases?flow=…`): it is signed as `@query`.
    pub fn sign(
        &self,
        created: i64,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<RequestParts, SecurityError> {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(format!("?{query}"))),
            None => (path, None),
        };
        let mut parts = RequestParts {
            method: method.to_string(),
            path: path.to_string(),
            query,
            content_type: content_type.map(str::to_string),
            content_digest: body.map(content_digest),
            ..RequestParts::default()
        };
        let mut components: Vec<&str> = if body.is_some() {
            REQUEST_COMPONENTS.to_vec()
        } else {
            vec!["@method", "@path"]
        };
        if parts.query.is_some() {
            components.push("@query");
        }
        let nonce = Some(uuid::Uuid::new_v4().simple().to_string());
        let params =
            SignatureParams::new("sig1", &components, created, self.keyid, self.alg, nonce);
        let (input, signature) = httpsig::sign_message(&params, &parts, self.key)?;
        parts.signature_input = Some(input);
        parts.signature = Some(signature);
        Ok(parts)
    }
}

/// The gateway's certificate as a partner pins it.
#[derive(Clone)]
pub struct GatewayCert {
    pub keyid: String,
    pub key: VerifyingKey,
}

impl GatewayCert {
    pub fn load(path: &Path) -> anyhow::Result<GatewayCert> {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let cert = X509::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        Ok(GatewayCert {
            keyid: fingerprint(&cert),
            key: VerifyingKey::new(cert.public_key()?)
                .map_err(|e| anyhow::anyhow!(e.message().en))?,
        })
    }
}

impl Partner {
    pub fn from_files(base_url: &str, key: &Path, cert: &Path) -> anyhow::Result<Partner> {
        let (key, _cert, keyid, alg) = load_signing_key(key, cert)
            .map_err(|e| anyhow::anyhow!("loading the signing key: {}", e.message().en))?;
        Ok(Partner::new(base_url, key, keyid, alg))
    }

    /// The partner `agency` signing with its DEV-ONLY key for `alg` from the
    /// PKI directory `init-dev` wrote (the demo, the load benchmark and the
    /// tests play agencies this way).
    pub fn for_agency(
        base_url: &str,
        pki_dir: &Path,
        agency: &str,
        alg: Algorithm,
    ) -> anyhow::Result<Partner> {
        let (key, cert) = agency_key_files(pki_dir, agency, alg);
        Partner::from_files(base_url, &key, &cert)
            .with_context(|| format!("the dev key of {agency} for {}", alg.as_str()))
    }

    pub fn new(base_url: &str, key: SigningKey, keyid: String, alg: Algorithm) -> Partner {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .build()
            .unwrap_or_default();
        Partner {
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            keyid,
            alg,
            clock: Clock::system(),
            http,
        }
    }

    /// Uses `http` to talk to the gateway: e.g. a client with the agency's
    /// TLS client certificate for the mutual-TLS listener.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Partner {
        self.http = http;
        self
    }

    /// The headers that sign a request: `Content-Digest` (with a body),
    /// `Signature-Input` and `Signature` with `created` = now.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Vec<(&'static str, String)>, SecurityError> {
        let signer = Signer {
            key: &self.key,
            keyid: &self.keyid,
            alg: self.alg,
        };
        let parts = signer.sign(
            self.clock.now().unix_timestamp(),
            method,
            path,
            content_type,
            body,
        )?;
        let mut headers = Vec::new();
        if let Some(digest) = parts.content_digest {
            headers.push(("content-digest", digest));
        }
        headers.extend(parts.signature_input.map(|v| ("signature-input", v)));
        headers.extend(parts.signature.map(|v| ("signature", v)));
        Ok(headers)
    }

    /// Signs and posts one native document to `POST /api/v1/documents`.
    pub async fn submit(&self, body: &[u8], content_type: &str) -> anyhow::Result<Answer> {
        let path = "/api/v1/documents";
        let headers = self.sign("POST", path, Some(content_type), Some(body))?;
        self.send(
            reqwest::Method::POST,
            path,
            Some((content_type, body.to_vec())),
            headers,
        )
        .await
    }

    /// A signed GET (documents, cases, mailbox). `path` may carry a query
    /// string, signed as `@query` ([`Partner::sign`]).
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let headers = self.sign("GET", path, None, None)?;
        self.send(reqwest::Method::GET, path, None, headers).await
    }

    /// Signs and posts a small JSON body (mailbox acks, delivery retries).
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<Answer> {
        let bytes = serde_json::to_vec(body)?;
        let headers = self.sign("POST", path, Some("application/json"), Some(&bytes))?;
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes)),
            headers,
        )
        .await
    }

    /// Pulls the mailbox and acknowledges every item in it (as an agency
    /// system does after storing each document); returns the acknowledged
    /// gateway document ids. The ack is what starts a period counted from receipt.
    pub async fn pull_and_ack(&self) -> anyhow::Result<Vec<String>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let mut acked = Vec::new();
        let mut path = "/api/v1/mailbox".to_string();
        loop {
            let page = self.get(&path).await?;
            anyhow::ensure!(page.status == 200, "mailbox: HTTP {}", page.status);
            let page = page.json()?;
            let mut items = Vec::new();
            for item in page["items"].as_array().into_iter().flatten() {
                let (Some(ack), Some(document_id)) =
                    (item["ack"].as_str(), item["document_id"].as_str())
                else {
                    anyhow::bail!("mailbox item without ack link or document id");
                };
                items.push((ack.to_string(), document_id.to_string()));
            }
            // A page's acks are independent of one another, so they are sent
            // together, not one after another: each waits for the gateway's
            // next durable commit, and in turn each would get one commit to
            // itself (docs/benchmarks.md §11). Answers are read in page order.
            let answers: Vec<String> = stream::iter(items)
                .map(|(ack, document_id)| async move {
                    let body = serde_json::json!({ "document_id": document_id });
                    let answer = self.post_json(&ack, &body).await?;
                    anyhow::ensure!(answer.status == 200, "ack: HTTP {}", answer.status);
                    Ok(document_id)
                })
                .buffered(ACKS_IN_FLIGHT)
                .try_collect()
                .await?;
            acked.extend(answers);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/mailbox?cursor={cursor}"),
                None => return Ok(acked),
            }
        }
    }

    /// Sends a request with the given headers as they are (tests use it to
    /// send tampered requests).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base_url, path));
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.context("sending the request")?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.context("reading the answer")?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Verifies the gateway's signature over this answer (status, content
    /// type and body digest).
    pub fn verify(&self, gateway: &GatewayCert) -> Result<SignatureParams, SecurityError> {
        let parts = ResponseParts {
            status: self.status,
            content_type: self.header("content-type"),
            content_digest: self.header("content-digest"),
        };
        let input = self
            .header("signature-input")
            .ok_or(SecurityError::MissingSignature)?;
        let signature = self
            .header("signature")
            .ok_or(SecurityError::MissingSignature)?;
        verify_response(
            &parts,
            &input,
            &signature,
            &self.body,
            &gateway.key,
            &gateway.keyid,
        )
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the answer is not JSON")
    }
}

/// The Content-Type to send a native file with: XML or JSON by its first
/// significant byte; the charset of an XML file is in its own prolog.
pub fn guess_content_type(body: &[u8]) -> &'static str {
    let first = body
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF);
    match first {
        Some(b'<') => "application/xml",
        _ => "application/json",
    }
}
