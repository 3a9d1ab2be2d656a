//! Statements built for many rows at once: one concept, used by the group
//! writer (`rows.rs`), the log (`log.rs`) and receipts.

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection};

/// Rows per multi-row INSERT: bounds a statement's size (SQLite allows
/// 32,766 values, PostgreSQL 65,535) while saving most round trips.
pub(super) const INSERT_CHUNK: usize = 64;

/// `prefix (…), (…), …` for `rows` rows of `columns` values, with the
/// placeholders of `conn`'s database: `$1, $2 …` on PostgreSQL, `?` on
/// SQLite. Not `$n` on SQLite too: sqlx binds each numbered parameter after
/// looking its name up with `sqlite3_bind_parameter_name`, a linear search of
/// the statement's names, so a 700-value insert cost ~250,000 steps to bind
/// (perf: 5 % of all CPU under load); anonymous `?`s have no names to search.
pub(super) fn values_sql(
    conn: &AnyConnection,
    prefix: &str,
    columns: usize,
    rows: usize,
) -> String {
    let numbered = !is_sqlite(conn);
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 6);
    sql.push_str(prefix);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            n += 1;
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${n}"));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Whether `conn` talks to SQLite (else PostgreSQL).
pub(super) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

pub(super) type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// A statement whose text depends on how many rows it carries. On SQLite
/// it is kept out of the connection's cache of prepared statements unless it
/// is for one row: sqlx keeps 100 per connection (fixed for SQLite, whose URL
/// has no setting for it), least recently used out first, and the texts for
/// each count of rows up to [`INSERT_CHUNK`], a dozen tables each, pushed the
/// fixed statements out, so those were prepared again and again (perf: 3.8 %
/// of all CPU in `sqlite3_prepare` under load); preparing is local and a
/// many-row text seldom recurs. Not on PostgreSQL, where an uncached
/// statement costs a round trip to parse each time: measured, alternated,
/// 1,484–1,510 → 1,315–1,354 docs/s (docs/benchmarks.md §10).
pub(super) fn many<'q>(conn: &AnyConnection, sql: &'q str, rows: usize) -> Query<'q> {
    sqlx::query(sql).persistent(rows <= 1 || !is_sqlite(conn))
}

/// `INSERT … VALUES (…), (…)` of `rows`, [`INSERT_CHUNK`] to a statement.
pub(super) async fn insert_many<T>(
    conn: &mut AnyConnection,
    prefix: &str,
    columns: usize,
    rows: &[T],
    bind: impl for<'q> Fn(Query<'q>, &'q T) -> Query<'q>,
) -> Result<(), sqlx::Error> {
    insert_many_then(conn, prefix, columns, rows, "", bind).await
}

/// [`insert_many`] with `suffix` after the values (`ON CONFLICT …`).
pub(super) async fn insert_many_then<T>(
    conn: &mut AnyConnection,
    prefix: &str,
    columns: usize,
    rows: &[T],
    suffix: &str,
    bind: impl for<'q> Fn(Query<'q>, &'q T) -> Query<'q>,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = values_sql(&*conn, prefix, columns, chunk.len());
        sql.push_str(suffix);
        let mut query = many(&*conn, &sql, chunk.len());
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
