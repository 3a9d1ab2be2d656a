//! Prometheus metrics (`GET /metrics`) through the `metrics` facade and its
//! Prometheus exporter: requests and their latency by route, rejections by
//! code, deliveries by outcome, dead letters, missed deadlines, and the
//! exchange log's size. Labels are route patterns, codes and outcomes —
//! never ids, agencies' documents or personal data.
//!
//! The recorder is process-wide (the `metrics` facade allows one), so it is
//! installed once and shared by every gateway in the process (tests start many).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Seconds buckets of the request latency histogram (1 ms … 10 s).
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    "gateway_http_request_duration_seconds".into(),
                ),
                &LATENCY_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then this
        // handle renders nothing, which `/metrics` makes visible.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Middleware: counts each request and times it, by method, route pattern and status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await?;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("gateway_http_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// A submission was accepted (201) or refused with `code`.
pub fn submission(outcome: Result<u16, &str>) {
    match outcome {
        Ok(status) => {
            metrics::counter!("gateway_documents_accepted_total", "status" => status.to_string())
                .increment(1)
        }
        Err(code) => {
            metrics::counter!("gateway_rejections_total", "code" => code.to_owned()).increment(1)
        }
    }
}

/// One push attempt ended: `delivered` or the failure code.
pub fn delivery_attempt(outcome: &str) {
    metrics::counter!("gateway_delivery_attempts_total", "outcome" => outcome.to_owned())
        .increment(1);
    if outcome != "delivered" {
        metrics::counter!("gateway_delivery_retries_total").increment(1);
    }
}

pub fn dead_letter() {
    metrics::counter!("gateway_dead_letters_total").increment(1);
}

pub fn deadline_missed() {
    metrics::counter!("gateway_deadlines_missed_total").increment(1);
}

/// The exchange log's size, set when `/metrics` is scraped.
pub fn log_size(entries: i64) {
    metrics::gauge!("gateway_log_entries").set(entries as f64);
}

/// Leaves appended but not yet in the leaf-hash index (docs/log.md), set
/// when `/metrics` is scraped: near 0 unless the indexer falls behind.
pub fn leaf_index_lag(leaves: u64) {
    metrics::gauge!("gateway_log_leaf_index_lag").set(leaves as f64);
}

/// The size of each group of documents committed in one transaction
/// (`store/group.rs`): 1 when idle, growing with the load.
pub fn commit_group(documents: usize) {
    metrics::histogram!("gateway_commit_group_documents").record(documents as f64);
}

/// A group's table-by-table write failed and it was written one document at
/// a time (`store/group.rs`): rare; often means PostgreSQL instances racing
/// on twin documents, or a database error pinned on one document.
pub fn commit_group_fallback() {
    metrics::counter!("gateway_commit_group_fallbacks_total").increment(1);
}

/// One mail sending attempt ended: `sent` or the failure code (docs/mail.md).
pub fn mail_sent(outcome: &str) {
    metrics::counter!("gateway_mail_attempts_total", "outcome" => outcome.to_owned()).increment(1);
}
