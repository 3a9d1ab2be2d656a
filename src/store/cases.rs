//! Case queries for clerks and partners (listing with filters) and the
//! overdue sweep. The rows a submission writes are in `commit_document`.

use sqlx::Row;

use super::{append_log, Store, StoreError};
use crate::xlog::{LogPosition, PreparedLeaf};

/// Filters of `GET /api/v1/cases`; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases this agency is party to (a partner always sees only its own).
    pub party: Option<String>,
    pub flow: Option<String>,
    pub state: Option<String>,
    /// Only cases with a deadline past due and unanswered at `now_ms`.
    pub overdue: bool,
    pub now_ms: i64,
    /// Keyset cursor: cases opened after (opened_at, id).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// A deadline that ran out unanswered and is not yet marked overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsedDeadline {
    pub case_id: String,
    pub seq: i64,
    pub step: String,
    pub due_at_ms: i64,
}

/// SQL condition: the deadline row `d` is open and past due at `$now`.
/// `?` stands for the instant; callers number it.
const LAPSED: &str =
    "d.met_at IS NULL AND d.closed_at IS NULL AND d.due_at IS NOT NULL AND d.due_at < ?";

impl Store {
    /// Case ids matching `filter`, oldest first, at most `filter.limit`.
    pub async fn case_ids(&self, filter: &CaseFilter) -> Result<Vec<(i64, String)>, StoreError> {
        // Only the conditions of the filters present are written (PostgreSQL
        // cannot type a bare `$n IS NULL` placeholder).
        let mut q = Conditions::new("SELECT c.opened_at, c.id FROM cases c WHERE 1 = 1");
        if let Some(party) = &filter.party {
            q.and(
                "EXISTS (SELECT 1 FROM case_parties p WHERE p.case_id = c.id AND p.agency_id = ?)",
                [Value::Text(party.clone())],
            );
        }
        if let Some(flow) = &filter.flow {
            q.and("c.flow = ?", [Value::Text(flow.clone())]);
        }
        if let Some(state) = &filter.state {
            q.and("c.state = ?", [Value::Text(state.clone())]);
        }
        if filter.overdue {
            q.and(
                &format!("EXISTS (SELECT 1 FROM deadlines d WHERE d.case_id = c.id AND {LAPSED})"),
                [Value::Int(filter.now_ms)],
            );
        }
        if let Some((at, id)) = &filter.after {
            q.and(
                "(c.opened_at > ? OR (c.opened_at = ? AND c.id > ?))",
                [Value::Int(*at), Value::Int(*at), Value::Text(id.clone())],
            );
        }
        q.sql.push_str(" ORDER BY c.opened_at, c.id");
        q.push(" LIMIT ?", [Value::Int(filter.limit)]);
        let mut query = sqlx::query(&q.sql);
        for value in q.values {
            query = match value {
                Value::Text(t) => query.bind(t),
                Value::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(&self.reader).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
            .collect())
    }

    /// Deadlines past due at `now_ms` that the sweep has not marked yet, earliest first.
    pub async fn lapsed_deadlines(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<LapsedDeadline>, StoreError> {
        let sql = format!(
            "SELECT d.case_id, d.seq, d.step, d.due_at FROM deadlines d \
             WHERE {} AND d.status = 'due' ORDER BY d.due_at, d.case_id, d.seq LIMIT $2",
            LAPSED.replace('?', "$1")
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| LapsedDeadline {
                case_id: r.get(0),
                seq: r.get(1),
                step: r.get(2),
                due_at_ms: r.get(3),
            })
            .collect())
    }

    /// Marks one lapsed deadline overdue and logs it, in one transaction.
    /// `None` when it was answered, closed or marked in the meantime (by a
    /// submission or another gateway instance): each deadline is logged as
    /// missed exactly once.
    pub async fn mark_overdue(
        &self,
        lapsed: &LapsedDeadline,
        leaf: &PreparedLeaf,
    ) -> Result<Option<LogPosition>, StoreError> {
        use sqlx::Connection;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let marked = sqlx::query(
            "UPDATE deadlines SET status = 'overdue' WHERE case_id = $1 AND seq = $2 \
             AND status = 'due' AND met_at IS NULL AND closed_at IS NULL",
        )
        .bind(&lapsed.case_id)
        .bind(lapsed.seq)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let position = append_log(&mut tx, leaf).await?;
        tx.commit().await?;
        Ok(Some(position))
    }
}

/// A bind value of a statement built at run time.
enum Value {
    Text(String),
    Int(i64),
}

/// A statement whose `?` placeholders become `$1, $2, …` in the order they
/// are added, so SQLite and PostgreSQL read the same text.
struct Conditions {
    sql: String,
    values: Vec<Value>,
}

impl Conditions {
    fn new(select: &str) -> Conditions {
        Conditions {
            sql: select.to_string(),
            values: Vec::new(),
        }
    }

    fn and<const N: usize>(&mut self, condition: &str, values: [Value; N]) {
        self.sql.push_str(" AND ");
        self.push(condition, values);
    }

    fn push<const N: usize>(&mut self, text: &str, values: [Value; N]) {
        let mut parts = text.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        for (part, value) in parts.zip(values) {
            self.values.push(value);
            self.sql.push_str(&format!("${}", self.values.len()));
            self.sql.push_str(part);
        }
    }
}
