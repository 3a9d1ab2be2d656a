//! `corrections-gateway backup --to DIR`: an online backup of a gateway on
//! the embedded SQLite database, taken while it serves.
//!
//! The backup directory is itself a data directory — `gateway.db`, `blobs/`,
//! `pki/` (the gateway, log and dev agency keys), the agency registry and
//! `gateway.toml` when present — so restoring is copying it into place and
//! starting `serve --dir` on it (docs/operations.md, "Backup and restore").
//!
//! Order matters, because blobs live outside the database: every blob is
//! copied first, then the database is snapshotted with `VACUUM INTO` (one
//! consistent read transaction; writers carry on in WAL mode), then blobs
//! that arrived meanwhile are copied. A document in the snapshot committed
//! after its blobs were promoted (src/intake), so each of its blobs was in
//! the first or the second copy. PostgreSQL is backed up with its own tools
//! (`pg_dump`), the blob directory and keys as here.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::config::Settings;

/// What a backup wrote.
#[derive(Debug, Clone, Default)]
pub struct Backup {
    pub database: PathBuf,
    /// Blob files copied.
    pub blobs: u64,
    /// Other files copied (keys, registry, configuration).
    pub files: u64,
}

/// Backs up the gateway of `settings` into `to`, which must not exist or be empty.
pub async fn run(settings: &Settings, to: &Path) -> anyhow::Result<Backup> {
    let Some(database) = crate::store::sqlite_path(&settings.database_url) else {
        anyhow::bail!(
            "backup --to works on the embedded SQLite database; back up PostgreSQL with pg_dump \
             and copy DIR/blobs and DIR/pki as docs/operations.md (Backup and restore) describes"
        );
    };
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: back up into a new directory",
            to.display()
        );
    }
    if !database.is_file() {
        anyhow::bail!("no database at {}", database.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut backup = Backup {
        database: to.join("gateway.db"),
        ..Backup::default()
    };
    let blobs = settings.blobs_dir();
    backup.blobs += copy_tree(&blobs, &to.join("blobs"), true)?;
    snapshot(&database, &backup.database).await?;
    backup.blobs += copy_tree(&blobs, &to.join("blobs"), true)?;
    backup.files += copy_tree(&settings.pki_dir(), &to.join("pki"), false)?;
    for file in [settings.registry.clone(), settings.dir.join("gateway.toml")] {
        if file.is_file() {
            let name = file.file_name().unwrap_or_default();
            std::fs::copy(&file, to.join(name))
                .with_context(|| format!("copying {}", file.display()))?;
            backup.files += 1;
        }
    }
    sync_dir(to)?;
    Ok(backup)
}

/// `VACUUM INTO`: a consistent, compacted copy of the database, written
/// while the gateway goes on writing (SQLite ≥ 3.27).
async fn snapshot(database: &Path, target: &Path) -> anyhow::Result<()> {
    let options =
        sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", database.display()))?
            .read_only(true)
            .busy_timeout(std::time::Duration::from_secs(30));
    let mut conn = options
        .connect()
        .await
        .with_context(|| format!("opening {}", database.display()))?;
    let target_text = target
        .to_str()
        .context("the backup directory's path is not UTF-8")?;
    // VACUUM takes no bound parameters for its file name in every SQLite
    // version: quote it as an SQL string literal instead.
    let sql = format!("VACUUM INTO '{}'", target_text.replace('\'', "''"));
    conn.execute(sql.as_str())
        .await
        .context("VACUUM INTO (the database snapshot)")?;
    conn.close().await?;
    std::fs::File::open(target)?.sync_all()?;
    Ok(())
}

/// Copies the files under `from` that `to` lacks (blob names are their
/// content, so an existing file is the same file); `skip_tmp` leaves out the
/// blob store's `tmp/`. Returns how many files it copied.
fn copy_tree(from: &Path, to: &Path, skip_tmp: bool) -> anyhow::Result<u64> {
    if !from.is_dir() {
        return Ok(0);
    }
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skip_tmp && name == "tmp" {
            continue;
        }
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copied += copy_tree(&entry.path(), &target, false)?;
        } else if kind.is_file() && !target.exists() {
            let partial = target.with_extension("part");
            match std::fs::copy(entry.path(), &partial) {
                Ok(_) => {}
                // Removed since the listing (retention, an orphan): nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("copying {}", entry.path().display()))
                }
            }
            std::fs::File::open(&partial)?.sync_all()?;
            std::fs::rename(&partial, &target)?;
            copied += 1;
        }
    }
    sync_dir(to)?;
    Ok(copied)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
