//! `/api/v1/log/…`: the exchange log for partners, auditors and witnesses.
//!
//! Checkpoints and proofs are **public** (unsigned requests): they are hashes
//! and sizes only, and a transparency log is only useful if anyone can check
//! it. The entries themselves — which agency sent what kind of document to
//! whom, and when — are read with a signed request by a registered agency,
//! and each read is logged (`log.read`) before the bytes leave, like a
//! document read (docs/decisions.md). Hashes are lower-case hex in JSON;
//! checkpoints are C2SP signed notes (base64 root), as text/plain.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::authenticate_read;
use super::openapi::{Refusals, SignedRead};
use super::problem::{signed, Problem};
use crate::app::Gateway;
use crate::violation::Bilingual;
use crate::xlog::merkle::Hash;
use crate::xlog::{self, LogEvent};

/// Most entries one `GET /api/v1/log/entries` returns.
pub const MAX_ENTRIES: u64 = 1000;

const NOTE_TYPE: &str = "text/plain; charset=utf-8";

fn parameter_invalid(name: &str) -> Problem {
    Problem::new(
        400,
        "log_parameter_invalid",
        Bilingual::new(
            format!("查询参数 {name} 缺失或格式不正确"),
            format!("query parameter {name} is missing or not valid"),
        ),
        Vec::new(),
    )
}

fn range_invalid(zh: String, en: String) -> Problem {
    Problem::new(400, "log_range_invalid", Bilingual::new(zh, en), Vec::new())
}

fn too_large(size: u64) -> Problem {
    Problem::new(
        400,
        "log_tree_size_too_large",
        Bilingual::new(
            format!("交换日志目前只有 {size} 条记录"),
            format!("the exchange log has only {size} entries"),
        ),
        Vec::new(),
    )
}

fn leaf_not_found() -> Problem {
    Problem::new(
        404,
        "log_leaf_not_found",
        Bilingual::new(
            "在该大小的日志树中没有此叶哈希",
            "no leaf with this hash in the tree of that size",
        ),
        Vec::new(),
    )
}

fn checkpoint_not_found() -> Problem {
    Problem::new(
        404,
        "log_checkpoint_not_found",
        Bilingual::new(
            "没有该大小的已发布检查点",
            "no checkpoint of that tree size was published",
        ),
        Vec::new(),
    )
}

/// The query string as name/value pairs (values here are numbers or hex: no
/// percent-decoding needed; anything else fails their parse).
fn params(req: &HttpRequest) -> Vec<(&str, &str)> {
    req.query_string()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn param<'a>(params: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A decimal parameter if present; the error is the parameter's name.
fn number(params: &[(&str, &str)], name: &'static str) -> Result<Option<u64>, &'static str> {
    match param(params, name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| name)
        }
        Some(_) => Err(name),
    }
}

fn required(params: &[(&str, &str)], name: &'static str) -> Result<u64, &'static str> {
    number(params, name)?.ok_or(name)
}

fn json(gw: &Gateway, body: &impl Serialize) -> HttpResponse {
    signed(
        &gw.identity,
        200,
        "application/json",
        serde_json::to_vec_pretty(body).unwrap_or_default(),
    )
}

fn unavailable(gw: &Gateway, e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "reading the exchange log failed");
    Problem::unavailable().response(&gw.identity)
}

/// The current size, refusing `size` beyond it.
async fn within_log(gw: &Gateway, size: u64) -> Result<u64, HttpResponse> {
    match gw.store.log_size().await {
        Ok(current) if size <= current => Ok(current),
        Ok(current) => Err(too_large(current).response(&gw.identity)),
        Err(e) => Err(unavailable(gw, e)),
    }
}

/// `GET /api/v1/log/checkpoint[?size=N]`: the latest signed checkpoint
/// (published now if the tree grew since the last), or the one of size N.
#[utoipa::path(
    get,
    path = "/api/v1/log/checkpoint",
    tag = "log",
    security(()),
    params(("size" = Option<u64>, Query, description = "the tree size of a published checkpoint; default the latest")),
    responses(
        (status = 200, description = "a C2SP tlog-checkpoint signed note (origin, size, base64 root, signature lines)", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "`log_checkpoint_not_found`", body = Problem, content_type = "application/problem+json"),
        Refusals
    )
)]
pub async fn checkpoint(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let size = match number(&params(&req), "size") {
        Ok(size) => size,
        Err(name) => return parameter_invalid(name).response(&gw.identity),
    };
    let found = match size {
        None => xlog::checkpoints::publish(&gw.store, &gw.log_key)
            .await
            .map(Some)
            .map_err(|e| e.to_string()),
        Some(size) => gw
            .store
            .checkpoint(Some(size))
            .await
            .map_err(|e| e.to_string()),
    };
    match found {
        Ok(Some(cp)) => signed(&gw.identity, 200, NOTE_TYPE, cp.note.into_bytes()),
        Ok(None) => checkpoint_not_found().response(&gw.identity),
        Err(e) => unavailable(&gw, e),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Entries {
    start: u64,
    end: u64,
    entries: Vec<Entry>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Entry {
    index: u64,
    /// The leaf's canonical JSON bytes, base64.
    leaf: String,
    leaf_hash: String,
}

/// `GET /api/v1/log/entries?start=S&end=E`: entries `[S, E)`, at most
/// [`MAX_ENTRIES`], for a signed request by a registered agency; logged.
#[utoipa::path(
    get,
    path = "/api/v1/log/entries",
    tag = "log",
    params(
        ("start" = u64, Query, description = "first index"),
        ("end" = u64, Query, description = "one past the last index (at most 1000 entries)"),
        SignedRead
    ),
    responses(
        (status = 200, description = "the entries' canonical-JSON leaves (base64) and leaf hashes; the read is logged", body = Entries),
        Refusals
    ),
)]
pub async fn entries(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let reader = match authenticate_read(&gw, &req) {
        Ok(verified) => verified.signer.agency,
        Err(e) => return Problem::security(&e).response(&gw.identity),
    };
    let p = params(&req);
    let (start, end) = match (required(&p, "start"), required(&p, "end")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(name), _) | (_, Err(name)) => return parameter_invalid(name).response(&gw.identity),
    };
    if start >= end {
        return range_invalid(
            "start 必须小于 end".into(),
            "start must be below end".into(),
        )
        .response(&gw.identity);
    }
    let size = match within_log(&gw, 0).await {
        Ok(size) => size,
        Err(refusal) => return refusal,
    };
    if start >= size {
        return too_large(size).response(&gw.identity);
    }
    let end = end.min(size).min(start + MAX_ENTRIES);
    let event = LogEvent::LogRead {
        reader,
        start,
        end,
        user_id: None,
    };
    if let Err(e) = gw
        .store
        .append_log(&xlog::prepare(&event, time::OffsetDateTime::now_utc()))
        .await
    {
        tracing::error!(error = %e, "could not log a log read; refusing it");
        return Problem::unavailable().response(&gw.identity);
    }
    let rows = match gw
        .store
        .log_entries(start as i64, (end - start) as i64)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(&gw, e),
    };
    let entries = rows
        .into_iter()
        .map(|r| Entry {
            index: r.index.max(0) as u64,
            leaf: B64.encode(&r.leaf),
            leaf_hash: hex::encode(&r.leaf_hash),
        })
        .collect();
    json(
        &gw,
        &Entries {
            start,
            end,
            entries,
        },
    )
}

#[derive(Serialize, utoipa::ToSchema)]
struct InclusionView {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// `GET /api/v1/log/proof/inclusion?index=N&tree_size=M` (or
/// `?leaf_hash=HEX&tree_size=M`): RFC 9162 §2.1.3 audit path.
#[utoipa::path(
    get,
    path = "/api/v1/log/proof/inclusion",
    tag = "log",
    security(()),
    params(
        ("tree_size" = u64, Query, description = "the tree size the proof is for"),
        ("index" = Option<u64>, Query, description = "the leaf's index (or give leaf_hash)"),
        ("leaf_hash" = Option<String>, Query, description = "the leaf's hash, lowercase hex (or give index)")
    ),
    responses(
        (status = 200, description = "RFC 9162 §2.1.3 inclusion proof", body = InclusionView),
        (status = 404, description = "`log_leaf_not_found`", body = Problem, content_type = "application/problem+json"),
        Refusals
    )
)]
pub async fn inclusion(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let p = params(&req);
    let tree_size = match required(&p, "tree_size") {
        Ok(n) => n,
        Err(name) => return parameter_invalid(name).response(&gw.identity),
    };
    if let Err(refusal) = within_log(&gw, tree_size).await {
        return refusal;
    }
    let index = match (number(&p, "index"), param(&p, "leaf_hash")) {
        (Err(name), _) => return parameter_invalid(name).response(&gw.identity),
        (Ok(Some(index)), None) => index,
        (Ok(None), Some(hash)) => {
            let hash: Option<Hash> = (hash.len() == 64)
                .then(|| hex::decode(hash).ok())
                .flatten()
                .and_then(|h| h.try_into().ok());
            let Some(hash) = hash else {
                return parameter_invalid("leaf_hash").response(&gw.identity);
            };
            match gw.store.leaf_index(&hash, tree_size).await {
                Ok(Some(index)) => index,
                Ok(None) => return leaf_not_found().response(&gw.identity),
                Err(e) => return unavailable(&gw, e),
            }
        }
        _ => return parameter_invalid("index").response(&gw.identity),
    };
    if index >= tree_size {
        return range_invalid(
            format!("index 必须小于 tree_size（{tree_size}）"),
            format!("index must be below tree_size ({tree_size})"),
        )
        .response(&gw.identity);
    }
    match gw.store.inclusion_proof(index, tree_size).await {
        Ok(proof) => json(
            &gw,
            &InclusionView {
                index,
                tree_size,
                leaf_hash: hex::encode(proof.leaf_hash),
                root_hash: hex::encode(proof.root),
                proof: hexes(&proof.path),
            },
        ),
        Err(e) => unavailable(&gw, e),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct ConsistencyView {
    first: u64,
    second: u64,
    first_root: String,
    second_root: String,
    proof: Vec<String>,
}

/// `GET /api/v1/log/proof/consistency?first=A&second=B`: RFC 9162 §2.1.4.
#[utoipa::path(
    get,
    path = "/api/v1/log/proof/consistency",
    tag = "log",
    security(()),
    params(
        ("first" = u64, Query, description = "the smaller tree size"),
        ("second" = u64, Query, description = "the larger tree size")
    ),
    responses(
        (status = 200, description = "RFC 9162 §2.1.4 consistency proof", body = ConsistencyView),
        Refusals
    )
)]
pub async fn consistency(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let p = params(&req);
    let (first, second) = match (required(&p, "first"), required(&p, "second")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(name), _) | (_, Err(name)) => return parameter_invalid(name).response(&gw.identity),
    };
    if first > second {
        return range_invalid(
            "first 不得大于 second".into(),
            "first must not exceed second".into(),
        )
        .response(&gw.identity);
    }
    if let Err(refusal) = within_log(&gw, second).await {
        return refusal;
    }
    match gw.store.consistency_proof(first, second).await {
        Ok(proof) => json(
            &gw,
            &ConsistencyView {
                first,
                second,
                first_root: hex::encode(proof.first_root),
                second_root: hex::encode(proof.second_root),
                proof: hexes(&proof.path),
            },
        ),
        Err(e) => unavailable(&gw, e),
    }
}
