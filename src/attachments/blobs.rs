//! The content-addressed blob store: `DIR/blobs/<aa>/<bb>/<sha256>`.
//!
//! Bytes arrive in a temporary file under `DIR/blobs/tmp/` (same file system,
//! so the final `rename` is atomic), are hashed on the way in, fsynced, and
//! only then renamed to the name their digest gives them; the directory is
//! fsynced too before anyone is told the blob exists. A blob's name is its
//! content, so a file at a final path is always complete and correct, two
//! documents sharing a scan store it once, and writing the same bytes twice is
//! harmless.
//!
//! Removal is the only dangerous operation: a blob may be removed only when
//! no row names it ([`crate::store::Store::blob_referenced`]). Writers that
//! promote blobs and then commit rows referencing them hold [`BlobStore::gc`]
//! shared for the whole span; removers hold it exclusively while they check
//! and delete, so a blob cannot vanish between its promotion and the commit
//! that references it (one gateway process per data directory).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::sync::RwLock;

use crate::security::digest::{BodyDigests, StreamDigester};

/// Handle to the blob directory; one per gateway (it owns the removal lock).
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    /// Shared: promote-then-commit; exclusive: check-then-remove.
    pub gc: RwLock<()>,
}

impl BlobStore {
    /// Creates the directories and clears temporary files a crash left behind.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(BlobStore {
            root: root.to_path_buf(),
            tmp,
            gc: RwLock::new(()),
        })
    }

    /// The store of a gateway that may be running (the `retention run`
    /// command): like [`BlobStore::open`] but leaves `tmp/` alone, where
    /// the serving gateway's uploads are being written.
    pub fn attach(root: &Path) -> io::Result<BlobStore> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        Ok(BlobStore {
            root: root.to_path_buf(),
            tmp,
            gc: RwLock::new(()),
        })
    }

    /// Where the blob with this digest lives (the digest must be 64 hex digits).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root
            .join(&sha256[..2])
            .join(&sha256[2..4])
            .join(sha256)
    }

    pub fn exists(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.path(sha256).is_file()
    }

    /// A new, empty temporary file that is removed unless promoted.
    pub fn temp(&self) -> io::Result<TempBlob> {
        TempBlob::new_in(&self.tmp)
    }

    /// The directory temporary blobs are made in (for blocking workers).
    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp.clone()
    }

    /// Moves a finished temporary file to its content address. Returns whether
    /// this call created the blob (false: the same bytes were already there).
    /// Blocking file-system work runs off the async executor.
    pub async fn promote(&self, temp: TempBlob, sha256: &str) -> io::Result<bool> {
        if !is_sha256_hex(sha256) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "blob names are lowercase hex SHA-256",
            ));
        }
        let target = self.path(sha256);
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || promote_blocking(temp, &root, &target))
            .await
            .map_err(io::Error::other)?
    }

    /// Removes the blob. Callers hold [`BlobStore::gc`] exclusively and have
    /// checked that no row names it.
    pub fn remove(&self, sha256: &str) -> io::Result<()> {
        if !is_sha256_hex(sha256) {
            return Ok(());
        }
        match std::fs::remove_file(self.path(sha256)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn promote_blocking(mut temp: TempBlob, root: &Path, target: &Path) -> io::Result<bool> {
    if let Some(file) = temp.file.take() {
        file.sync_all()?;
    }
    let dir = target.parent().unwrap_or(root);
    let existed = target.is_file();
    // Create and fsync each missing level so the new directory entries survive a crash.
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() && d != root {
        missing.push(d.to_path_buf());
        d = d.parent().unwrap_or(root);
    }
    std::fs::create_dir_all(dir)?;
    std::fs::rename(&temp.path, target)?;
    temp.promoted = true;
    sync_dir(dir)?;
    for created in &missing {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(!existed)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A temporary file being filled; hashes what is written and deletes itself
/// when dropped unless [`BlobStore::promote`] moved it.
#[derive(Debug)]
pub struct TempBlob {
    path: PathBuf,
    file: Option<std::fs::File>,
    digester: StreamDigester,
    promoted: bool,
}

impl TempBlob {
    /// A new, empty temporary file in `dir` (the blob store's `tmp/`).
    pub fn new_in(dir: &Path) -> io::Result<TempBlob> {
        let path = dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempBlob {
            path,
            file: Some(file),
            digester: StreamDigester::default(),
            promoted: false,
        })
    }

    /// The digests of everything written so far.
    pub fn digests(&self) -> BodyDigests {
        self.digester.clone().finish()
    }

    pub fn size(&self) -> u64 {
        self.digester.size()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for TempBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("temporary blob already closed"))?;
        let n = file.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.promoted {
            self.file.take();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// 64 lowercase hex digits: the only names the store accepts (no path tricks).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blob_lands_at_its_digest_once_and_temp_files_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut t = store.temp().unwrap();
        t.write_all(b"scan").unwrap();
        let sha = t.digests().sha256_hex();
        let temp_path = t.path().to_path_buf();
        assert!(store.promote(t, &sha).await.unwrap(), "created");
        assert!(!temp_path.exists());
        assert_eq!(std::fs::read(store.path(&sha)).unwrap(), b"scan");
        assert!(store
            .path(&sha)
            .starts_with(dir.path().join(&sha[..2]).join(&sha[2..4])));
        let mut again = store.temp().unwrap();
        again.write_all(b"scan").unwrap();
        assert!(!store.promote(again, &sha).await.unwrap(), "already there");
        let dropped = store.temp().unwrap();
        let dropped_path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!dropped_path.exists());
        store.remove(&sha).unwrap();
        assert!(!store.exists(&sha));
        assert!(!is_sha256_hex("../etc/passwd"));
    }
}
