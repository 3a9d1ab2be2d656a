//! What is wrong with a piece of input, and where: the one shape every stage
//! (verify, decode, validate, route) uses to report a problem to a partner.
//!
//! A [`Violation`] carries a stable machine-readable `code` (listed in
//! `docs/errors.md` and pinned by tests), the JSON pointer or XPath of the
//! offending field, and a message in Chinese and in English. It never carries
//! the offending *value*: values may be personal data, and violations end up
//! in responses, application logs and the exchange log.

use serde::Serialize;

/// A message in both languages the gateway speaks (zh-CN first: it is the
/// working language of every user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }
}

/// One problem with one field (or with the whole input when `path` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// Stable snake_case code, e.g. `invalid_id_check_digit`.
    pub code: &'static str,
    /// JSON pointer (`/subject/id_number`) into the canonical document, or an
    /// XPath-like path (`/FYJHWS/ZF/SFZH`) into the native document.
    pub path: String,
    pub message: Bilingual,
}

impl Violation {
    pub fn new(
        code: &'static str,
        path: impl Into<String>,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        Self {
            code,
            path: path.into(),
            message: Bilingual::new(zh, en),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(
            f,
            "{} at {}: {} / {}",
            self.code, path, self.message.zh, self.message.en
        )
    }
}

/// Every problem found in one input, collected rather than stopping at the first.
pub type Violations = Vec<Violation>;
