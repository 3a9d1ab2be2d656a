//! Talking to the SMTP server through `lettre`: the transport built once
//! from `[mail]` (TLS mode, the extra CA, AUTH), one message per connection,
//! and what a failure means (the outcome codes of docs/mail.md).
//!
//! TLS is native-tls (OpenSSL here, already the gateway's TLS library): the
//! server's certificate is checked against the system's CAs plus `ca_cert`,
//! and its name against `mail.host`. STARTTLS is required when chosen: a
//! server that does not offer it gets no credentials and no mail.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, MailTls};
use crate::store::MailRow;

/// The configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right part of Message-IDs: the sender's domain.
    domain: String,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a message was not sent: a stable code for the outbox and the log
/// (never the server's text, which may quote an address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The server refused the credentials (or demanded some): `smtp_auth`.
    Auth,
    /// No connection, or it broke: `smtp_unavailable`.
    Unavailable,
    /// The TLS handshake failed (certificate, name, no STARTTLS): `smtp_tls`.
    Tls,
    /// No answer in time: `smtp_timeout`.
    Timeout,
    /// A 4xx answer (try later): `smtp_deferred`.
    Deferred,
    /// A 5xx answer to the message or its recipient: `smtp_rejected`.
    Rejected,
    /// The stored address does not parse: `bad_address` (never retried).
    BadAddress,
}

impl SendFailure {
    pub fn code(self) -> &'static str {
        match self {
            SendFailure::Auth => "smtp_auth",
            SendFailure::Unavailable => "smtp_unavailable",
            SendFailure::Tls => "smtp_tls",
            SendFailure::Timeout => "smtp_timeout",
            SendFailure::Deferred => "smtp_deferred",
            SendFailure::Rejected => "smtp_rejected",
            SendFailure::BadAddress => "bad_address",
        }
    }

    /// Whether trying again could help (only a malformed address cannot).
    pub fn retryable(self) -> bool {
        self != SendFailure::BadAddress
    }
}

impl Mailer {
    /// Builds the transport; fails (at start-up) on an unreadable password
    /// file or CA certificate.
    pub fn from_settings(s: &MailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = s
            .from
            .parse()
            .context("mail.from is not an e-mail address")?;
        let domain = from.email.domain().to_string();
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str()).port(s.port());
        if s.tls != MailTls::None {
            let mut tls = TlsParameters::builder(s.host.clone());
            if !s.ca_cert.as_os_str().is_empty() {
                let pem = std::fs::read(&s.ca_cert)
                    .with_context(|| format!("reading mail.ca_cert {}", s.ca_cert.display()))?;
                let cert = Certificate::from_pem(&pem).with_context(|| {
                    format!(
                        "mail.ca_cert {} is not a PEM certificate",
                        s.ca_cert.display()
                    )
                })?;
                tls = tls.add_root_certificate(cert);
            }
            let tls = tls.build_native().context("setting up TLS for mail")?;
            builder = builder.tls(match s.tls {
                MailTls::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if !s.username.is_empty() {
            let password = if s.password_file.as_os_str().is_empty() {
                s.password.clone()
            } else {
                let text = std::fs::read_to_string(&s.password_file).with_context(|| {
                    format!("reading mail.password_file {}", s.password_file.display())
                })?;
                text.lines().next().unwrap_or("").to_string()
            };
            builder = builder
                .credentials(Credentials::new(s.username.clone(), password))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let timeout = Duration::from_millis(s.timeout_ms);
        Ok(Mailer {
            transport: builder.timeout(Some(timeout)).build(),
            from,
            domain,
            timeout,
        })
    }

    /// Sends one queued message (text/plain, UTF-8), dated `date`, with a
    /// Message-ID made from its outbox id: a copy sent again after a crash
    /// carries the same id, so mail clients show it once.
    pub async fn send(&self, mail: &MailRow, date: SystemTime) -> Result<(), SendFailure> {
        let to: Mailbox = mail.address.parse().map_err(|_| SendFailure::BadAddress)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .message_id(Some(format!("<{}@{}>", mail.id, self.domain)))
            .date(date)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|_| SendFailure::BadAddress)?;
        // lettre's timeout is per command; this bounds the whole conversation.
        match tokio::time::timeout(self.timeout * 4, self.transport.send(message)).await {
            Err(_) => Err(SendFailure::Timeout),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendFailure {
    if let Some(code) = e.status() {
        // 530 authentication required, 534/538 mechanism or encryption
        // needed, 535 credentials invalid, 454 temporary auth failure.
        return match u16::from(code) {
            530 | 534 | 535 | 538 | 454 => SendFailure::Auth,
            c if c >= 500 => SendFailure::Rejected,
            _ => SendFailure::Deferred,
        };
    }
    if e.is_tls() {
        SendFailure::Tls
    } else if e.is_timeout() {
        SendFailure::Timeout
    } else {
        SendFailure::Unavailable
    }
}
