//! RFC 9457 problem details: the one place where a refusal becomes HTTP.
//!
//! Body: `type` (`urn:corrections-gateway:problem:<code>`), `title` (English),
//! `status`, and the extensions partners program against: `code` (stable,
//! listed in docs/errors.md), `message` {zh, en}, `errors` [{code, path,
//! message}] and `request_id`. Messages never contain submitted values.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::intake::Rejection;
use crate::security::devpki::GatewayIdentity;
use crate::security::SecurityError;
use crate::violation::{Bilingual, Violation, Violations};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem (`application/problem+json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:corrections-gateway:problem:invalid_document",
    "title": "the document is not valid",
    "status": 422,
    "code": "invalid_document",
    "message": {"zh": "文书内容不符合规范", "en": "the document is not valid"},
    "errors": [{
        "code": "invalid_id_check_digit",
        "path": "/subject/id_number",
        "message": {"zh": "身份证号码校验位错误", "en": "the ID number's check digit is wrong"}
    }],
    "request_id": "0b6f3c8e-2f7a-4d8e-9d7c-6a1f0e4b9c21"
}))]
pub struct Problem {
    /// `urn:corrections-gateway:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The English message.
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code (docs/errors.md).
    pub code: &'static str,
    pub message: Bilingual,
    /// Every problem with a field, each with its JSON pointer or XPath `path`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Violation>)]
    pub errors: Violations,
    /// The request's id (`X-Request-Id`), also in every log line of the request.
    pub request_id: String,
    /// Seconds a client should wait before retrying (503 only).
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: u16, code: &'static str, message: Bilingual, errors: Violations) -> Problem {
        Problem {
            kind: format!("urn:corrections-gateway:problem:{code}"),
            title: message.en.clone(),
            status,
            code,
            message,
            errors,
            request_id: crate::telemetry::current_request_id()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            retry_after: None,
        }
    }

    pub fn from_violation(status: u16, v: Violation) -> Problem {
        Problem::new(status, v.code, v.message.clone(), vec![v])
    }

    pub fn rejection(r: Rejection) -> Problem {
        Problem::new(r.status, r.code, r.title, r.problems)
    }

    pub fn security(e: &SecurityError) -> Problem {
        Problem::new(e.http_status(), e.code(), e.message(), Vec::new())
    }

    pub fn not_found() -> Problem {
        Problem::new(
            404,
            "not_found",
            Bilingual::new("未找到所请求的资源", "no such resource"),
            Vec::new(),
        )
    }

    /// A path the gateway serves, with a method it does not serve there.
    pub fn method_not_allowed(method: &str, allowed: &str) -> Problem {
        Problem::new(
            405,
            "method_not_allowed",
            Bilingual::new(
                format!("此地址不支持 {method} 方法，可用：{allowed}"),
                format!("{method} is not served at this path; allowed: {allowed}"),
            ),
            Vec::new(),
        )
    }

    /// Retention purged the document's body and attachments after their
    /// period; its digests, receipt and log entries remain (docs/operations.md).
    pub fn document_purged() -> Problem {
        Problem::new(
            410,
            "document_purged",
            Bilingual::new(
                "该文书已超过保存期限，正文与附件已按保存策略清除；其摘要、回执和交换日志记录仍保留",
                "the document's retention period has ended: its body and attachments were purged; \
                 its digests, receipt and exchange-log entries remain",
            ),
            Vec::new(),
        )
    }

    pub fn body_too_large(limit: usize) -> Problem {
        Problem::new(
            413,
            "body_too_large",
            Bilingual::new(
                format!("请求体超过上限 {limit} 字节"),
                format!("the request body exceeds the limit of {limit} bytes"),
            ),
            Vec::new(),
        )
    }

    /// The database could not record the request: nothing was stored and no
    /// receipt was issued; the client should retry.
    pub fn unavailable() -> Problem {
        let mut p = Problem::new(
            503,
            "storage_unavailable",
            Bilingual::new(
                "存储暂不可用，未保存任何内容，请稍后重试",
                "storage is unavailable; nothing was stored, retry later",
            ),
            Vec::new(),
        );
        p.retry_after = Some(5);
        p
    }

    fn body(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The problem as a signed response.
    pub fn response(&self, identity: &GatewayIdentity) -> HttpResponse {
        let mut response = signed(identity, self.status, CONTENT_TYPE, self.body());
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(secs),
            );
        }
        response
    }

    /// For answers given before the gateway state is at hand (unknown routes).
    pub fn response_unsigned(&self) -> HttpResponse {
        HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST))
            .content_type(CONTENT_TYPE)
            .body(self.body())
    }
}

/// A response signed by the gateway (RFC 9421 §2.2.9 `@status`, plus the
/// content type and RFC 9530 digest of the body), so a partner can prove
/// what the gateway answered.
pub fn signed(
    identity: &GatewayIdentity,
    status: u16,
    content_type: &str,
    body: Vec<u8>,
) -> HttpResponse {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status_code);
    builder.content_type(content_type.to_string());
    match crate::security::response::sign_response(identity, status, content_type, &body) {
        Ok(headers) => {
            for (name, value) in headers {
                builder.insert_header((name, value));
            }
        }
        Err(e) => tracing::error!(error = %e, "could not sign a response"),
    }
    builder.body(body)
}
