//! The clerks' search: documents by 案号, 文书编号, the person's name or
//! 公民身份号码 (`document_subjects`, migrations/sqlite/0007_search.sql).
//! Who may see which result is the caller's business (`web::auth::Scope`);
//! a clerk's agency is also applied here so that the limit counts only
//! documents the clerk may see.

use sqlx::Row;

use super::{Store, StoreError};

/// What to look for. A document matches if any given criterion does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Search<'a> {
    /// Contained in the 文书编号 or in the person's name (at least two characters).
    pub text: &'a str,
    /// A normalised 案号, matched exactly against the case's.
    pub case_no: Option<&'a str>,
    /// A normalised 18-character ID number, matched exactly.
    pub id_number: Option<&'a str>,
    /// Only documents this agency sent, received or was copied.
    pub party: Option<&'a str>,
    pub limit: i64,
}

/// A document found, newest first. Holds personal data (`name`,
/// `id_number`): the page masks the number and never logs either.
#[derive(Clone)]
pub struct Found {
    pub document_id: String,
    pub message_type: String,
    pub document_no: String,
    pub sender: String,
    pub received_at_ms: i64,
    pub case_id: Option<String>,
    pub case_no: Option<String>,
    pub name: Option<String>,
    pub id_number: Option<String>,
    /// Recipients and copies.
    pub parties: Vec<String>,
}

/// Shows no personal data, so a `{:?}` in a log leaks nothing.
impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("document_id", &self.document_id)
            .finish_non_exhaustive()
    }
}

/// `%text%` for LIKE … ESCAPE '\', the wildcards in `text` taken literally.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    pub async fn search_documents(&self, q: &Search<'_>) -> Result<Vec<Found>, StoreError> {
        let text = q.text.trim();
        let like = if text.chars().count() >= 2 {
            contains_pattern(text)
        } else {
            // Matches nothing: a single character would list everyone.
            String::new()
        };
        let party = if q.party.is_some() {
            " AND (d.sender = $5 OR EXISTS (SELECT 1 FROM document_parties p \
             WHERE p.document_id = d.id AND p.agency_id = $5))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT d.id, d.message_type, d.document_no, d.sender, d.received_at, d.case_id, c.case_no, \
             s.name, s.id_number \
             FROM documents d LEFT JOIN cases c ON c.id = d.case_id \
             LEFT JOIN document_subjects s ON s.document_id = d.id \
             WHERE ((d.document_no LIKE $1 ESCAPE '\\' OR s.name LIKE $1 ESCAPE '\\') \
             OR c.case_no = $2 OR s.id_number = $3){party} \
             ORDER BY d.received_at DESC, d.id DESC LIMIT $4"
        );
        let mut query = sqlx::query(&sql)
            .bind(like)
            // NULL when absent: `= NULL` matches nothing (PostgreSQL refuses
            // a NUL character as a stand-in).
            .bind(q.case_no)
            .bind(q.id_number)
            .bind(q.limit.clamp(1, 500));
        if let Some(party) = q.party {
            query = query.bind(party);
        }
        let rows = query.fetch_all(&self.reader).await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in rows {
            let document_id: String = r.get(0);
            let parties = sqlx::query(
                "SELECT agency_id FROM document_parties WHERE document_id = $1 ORDER BY agency_id",
            )
            .bind(&document_id)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|p| p.get::<String, _>(0))
            .collect();
            found.push(Found {
                document_id,
                message_type: r.get(1),
                document_no: r.get(2),
                sender: r.get(3),
                received_at_ms: r.get(4),
                case_id: r.get(5),
                case_no: r.get(6),
                name: r.get(7),
                id_number: r.get(8),
                parties,
            });
        }
        Ok(found)
    }

    /// The person's ID number of one document (for a logged reveal).
    pub async fn subject_id_number(&self, document_id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT id_number FROM document_subjects WHERE document_id = $1")
                .bind(document_id)
                .fetch_optional(&self.reader)
                .await?
                .map(|r| r.get(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_in_the_text_are_literal() {
        assert_eq!(super::contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
