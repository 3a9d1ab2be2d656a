//! SQLite and PostgreSQL run the same migrations: every file in
//! `migrations/sqlite` has its port in `migrations/postgres` under the same
//! number and name (docs/decisions.md, "Storage"), and both give the same
//! tables with the same columns (compared on the PostgreSQL run).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::Row;

fn migration_files(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_migration_exists_for_both_backends_under_the_same_number_and_name() {
    let sqlite = migration_files("sqlite");
    let postgres = migration_files("postgres");
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|n| !b.contains(n)).cloned().collect()
    };
    assert_eq!(
        (only(&sqlite, &postgres), only(&postgres, &sqlite)),
        (vec![], vec![]),
        "(only in migrations/sqlite, only in migrations/postgres): port each \
         migration to the other backend with the same number and name"
    );
    let mut numbers: Vec<&str> = sqlite
        .iter()
        .map(|n| n.split('_').next().unwrap_or(n))
        .collect();
    numbers.dedup();
    assert_eq!(numbers.len(), sqlite.len(), "two migrations share a number");
}

/// Table → its columns as (name, type, nullable), as the migrations left them.
/// Types are compared by meaning: SQLite's INTEGER / BLOB / TEXT are
/// PostgreSQL's bigint / bytea / text here.
type Schema = BTreeMap<String, Vec<(String, String, bool)>>;

async fn schema_of(url: &str) -> Schema {
    let store =
        corrections_gateway::store::Store::open(url, 1, Path::new(env!("CARGO_MANIFEST_DIR")))
            .await
            .expect("migrations run");
    store.close().await;
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    // SQLite lets a non-INTEGER primary-key column hold NULL unless declared
    // NOT NULL; PostgreSQL never does: count key columns as not null.
    let sql = if url.starts_with("sqlite:") {
        "SELECT m.name, p.name, lower(p.type), CASE WHEN p.\"notnull\" = 0 AND p.pk = 0 THEN 1 ELSE 0 END \
         FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'"
    } else {
        "SELECT table_name::text, column_name::text, data_type::text, \
         CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'"
    };
    let mut schema = Schema::new();
    for row in conn.fetch_all(sql).await.unwrap() {
        let ty = match row.get::<String, _>(2).as_str() {
            "integer" | "bigint" => "integer".to_string(),
            "blob" | "bytea" => "bytes".to_string(),
            other => other.to_string(),
        };
        schema.entry(row.get::<String, _>(0)).or_default().push((
            row.get::<String, _>(1),
            ty,
            row.get::<i32, _>(3) == 1,
        ));
    }
    for columns in schema.values_mut() {
        columns.sort();
    }
    conn.close().await.unwrap();
    schema
}

#[tokio::test]
async fn both_backends_end_with_the_same_tables_and_columns() {
    let database = common::TestDatabase::create();
    let Some(postgres) = database.url() else {
        eprintln!(
            "SQLite-only run: set {} to compare with PostgreSQL (scripts/test.sh does)",
            common::DATABASE_URL_VAR
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let sqlite_schema = schema_of(&sqlite).await;
    assert!(sqlite_schema.contains_key("documents"));
    assert_eq!(sqlite_schema, schema_of(postgres).await);
}
