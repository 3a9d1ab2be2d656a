//! Inter-agency document exchange gateway for community corrections (社区矫正).
//!
//! A document's path through the crate, one module per stage:
//!
//! receive (`api`) → verify (`security`) → decode (`formats`) → validate
//! (`validate`, `model`) → check attachments (`attachments`) → route
//! (`workflow`, `registry`) → commit (`store`) → deliver (`delivery`) → log
//! (`xlog`). `intake` runs the stages in that
//! order for one submission; everything else is a stage or its data.

/// Partner HTTP endpoints (documents, cases) and the one place errors become problem+json.
pub mod api;
/// Wiring: loads configuration and data, builds the shared state, runs the HTTP server.
pub mod app;
/// Attachments: content-addressed blob store, uploads, multipart/related, reference checks.
pub mod attachments;
/// Online backup of the embedded SQLite gateway (database snapshot, blobs, keys).
pub mod backup;
/// Load-benchmark command: simulated partners over real HTTP (court notices, or `--mix`: every dialect and flow, delivered by push and pull), with the crypto-only ceiling and peak memory.
pub mod bench;
/// The one source of "now" (shiftable by tests and the demo, never by configuration).
pub mod clock;
/// All settings, loaded once from a file plus `GATEWAY_*` environment variables.
pub mod config;
/// Outbound delivery: the outbox worker, signed push with verified receipts, backoff, mailbox translation.
pub mod delivery;
/// `demo`: a month of simulated partner traffic for the embedded default (DEV ONLY).
pub mod demo;
/// Native dialects ↔ canonical JSON, driven by the declarative files in `mappings/`.
pub mod formats;
/// One submission through verify → decode → validate → route → commit, and its receipt.
pub mod intake;
/// Background jobs driven by time: the overdue sweep.
pub mod jobs;
/// Prometheus metrics: the recorder, the request middleware and the counters stages bump.
pub mod metrics;
/// The canonical document and its value types (AgencyId, IdNumber, CaseNo …).
pub mod model;
/// E-mail to clerks and supervisors: notifications from the exchange log and deadlines, the mail outbox, SMTP.
pub mod notify;
/// Partner-side client: signs and posts documents, verifies the gateway's receipts; a push inbox that signs receipts.
pub mod partner;
/// The agency registry: who exists, which dialect each speaks, where each is delivered.
pub mod registry;
/// Retention: purges (or archives, then purges) bodies, attachments and personal data after their period; digests and the log stay.
pub mod retention;
/// Content digests, RFC 9421 signatures, algorithms, trust store and the dev PKI.
pub mod security;
/// Process signals of `serve`: graceful stop on SIGTERM/SIGINT, TLS reload on SIGHUP.
pub mod signals;
/// Durable storage through sqlx; the only module that writes SQL.
pub mod store;
/// Application logs (text or JSON) and the request id of every HTTP request.
pub mod telemetry;
/// Instants in storage (Unix ms), in the log (UTC) and for people (Beijing time).
pub mod timefmt;
/// Integrator and clerk tools behind the CLI: translate, validate, due.
pub mod tools;
/// JSON Schema (from `schemas/`) and the identity and business rules of the domain.
pub mod validate;
/// Shared shape of an input problem: stable code, field path, bilingual message.
pub mod violation;
/// Clerk and auditor web interface (sessions, roles, pages).
pub mod web;
/// Flows, routing rules, the official calendar and legal deadlines.
pub mod workflow;
/// The exchange log: canonical-JSON leaves, hashes, and (later) the Merkle tree.
pub mod xlog;
