//! Application logs and request ids.
//!
//! Logs go to standard error, human-readable (`log_format = "text"`, the
//! default) or as JSON lines (`"json"`, for a log collector); the level comes
//! from `RUST_LOG` (default `info`). Every HTTP request gets an id — the
//! caller's `X-Request-Id` when it is sane, else a fresh UUID — that is
//! returned in the response's `X-Request-Id`, put in every problem+json
//! (`request_id`) and carried by a `request` span into every log line the
//! request causes.
//!
//! This module must never log a request's body, query string or headers
//! other than the id: log lines carry codes, statuses, route patterns and
//! gateway ids, never document content or personal data (a test scans the
//! log of a whole submission for the fixture's names and ID numbers).

use std::future::Future;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// The request-id header, in requests and responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest caller-chosen request id that is kept.
const MAX_REQUEST_ID: usize = 64;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (development).
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields (production).
    Json,
}

impl LogFormat {
    /// `GATEWAY_LOG_FORMAT` (for commands that load no settings); text unless it says `json`.
    pub fn from_env() -> LogFormat {
        match std::env::var("GATEWAY_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Installs the process's log subscriber (a second call changes nothing).
pub fn init(format: LogFormat) {
    init_at(format, "info")
}

/// [`init`] with another default level than `info` when `RUST_LOG` is not
/// set (`demo` would print a line per simulated request otherwise).
pub fn init_at(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        // Colours only for a person at a terminal, not in a log file.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // Already installed (tests start several gateways in one process): keep it.
    drop(installed);
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` as part of the request `id` (what [`current_request_id`] reads).
pub fn with_request_id<F: Future>(id: String, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// A caller's request id is kept only if it is short printable ASCII that
/// cannot forge a log line or a header: letters, digits and `-_.:/`.
pub fn sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

/// Middleware: gives the request its id, runs it inside a `request` span
/// (method, route pattern, id), answers with `X-Request-Id` and logs one line
/// when the request is done (status and duration).
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
    );
    let started = Instant::now();
    let result = with_request_id(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let mut response = result?;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(sane_request_id("0b6f3c8e-2f7a-4d8e-9d7c-6a1f0e4b9c21"));
        assert!(sane_request_id("partner:court/42_a.b"));
        for bad in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            "张三",
            &"x".repeat(65),
        ] {
            assert!(!sane_request_id(bad), "{bad:?} kept");
        }
    }

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert_eq!(current_request_id(), None);
        let seen = with_request_id("r-1".into(), async { current_request_id() }).await;
        assert_eq!(seen.as_deref(), Some("r-1"));
    }
}
