//! `corrections-gateway log export`: writes the exchange log, every stored
//! checkpoint, the log's verifier key and the gateway certificate into a
//! bundle directory that [`super::verify`] checks offline. It copies what is
//! stored, as stored — it checks nothing itself, so tampering reaches the
//! verifier intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::verify::BundleEntry;
use crate::store::{Store, StoreError};

const PAGE: i64 = 10_000;

const README: &str = "Exchange log bundle of corrections-gateway (社区矫正 交换日志).\n\n\
log.pub              the log's signed-note verifier key <name>+<key id>+<base64 0x01||Ed25519 key>\n\
gateway.crt.pem      the gateway's certificate (verifies receipts)\n\
checkpoints/N.note   every signed checkpoint (C2SP tlog-checkpoint), N = tree size\n\
entries.jsonl        one entry a line: index, leaf (base64 canonical JSON), leaf_hash (hex),\n\
                     nodes (hex hashes of the subtrees this leaf completes, level 1 up)\n\n\
Check it with: corrections-gateway log verify <this directory>\n";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub entries: u64,
    pub checkpoints: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |e| ExportError::Io(path.to_path_buf(), e)
}

/// `log export`: opens the database of `settings` and writes the bundle.
pub async fn run(settings: &crate::config::Settings, out: &Path) -> anyhow::Result<Exported> {
    use anyhow::Context;
    let store = Store::open(&settings.database_url, 2, &settings.resources)
        .await
        .context("opening the database")?;
    let pki = settings.pki_dir();
    let signer = crate::security::devpki::load_log_key(&pki, &settings.log_origin)
        .map_err(|e| anyhow::anyhow!("loading the log key: {}", e.message().en))?;
    let certificate = std::fs::read(pki.join("gateway.crt.pem"))
        .with_context(|| format!("reading {}", pki.join("gateway.crt.pem").display()))?;
    let exported = export(&store, &signer.verifier_key(), &certificate, out).await?;
    store.close().await;
    Ok(exported)
}

/// Writes the bundle into `out` (created; existing files are replaced).
pub async fn export(
    store: &Store,
    verifier_key: &str,
    gateway_certificate: &[u8],
    out: &Path,
) -> Result<Exported, ExportError> {
    let checkpoints_dir = out.join("checkpoints");
    std::fs::create_dir_all(&checkpoints_dir).map_err(io(&checkpoints_dir))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| ExportError::Io(path, e))
    };
    write("README.txt", README.as_bytes())?;
    write("log.pub", format!("{}\n", verifier_key.trim()).as_bytes())?;
    write("gateway.crt.pem", gateway_certificate)?;

    let mut checkpoints = 0;
    let mut after = None;
    loop {
        let page = store.checkpoints(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.tree_size);
        for cp in &page {
            let path = checkpoints_dir.join(format!("{}.note", cp.tree_size));
            std::fs::write(&path, cp.note.as_bytes()).map_err(io(&path))?;
            checkpoints += 1;
        }
    }

    let path = out.join("entries.jsonl");
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    let mut lines = std::io::BufWriter::new(file);
    let mut from = 0i64;
    let mut entries = 0u64;
    loop {
        let page = store.log_entries(from, PAGE).await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            break;
        };
        let (start, end) = (first.index.max(0) as u64, last.index.max(0) as u64 + 1);
        let nodes = store.log_nodes_completed(start, end).await?;
        let mut nodes = nodes.into_iter().peekable();
        for entry in &page {
            let index = entry.index.max(0) as u64;
            let mut completed = Vec::new();
            while let Some((id, hash)) = nodes.next_if(|(id, _)| id.leaves().1 <= index + 1) {
                if id.leaves().1 == index + 1 {
                    completed.push(hex::encode(hash));
                }
            }
            let line = BundleEntry {
                index,
                leaf: B64.encode(&entry.leaf),
                leaf_hash: hex::encode(&entry.leaf_hash),
                nodes: completed,
            };
            serde_json::to_writer(&mut lines, &line)
                .map_err(|e| ExportError::Io(path.clone(), e.into()))?;
            lines.write_all(b"\n").map_err(io(&path))?;
            entries += 1;
        }
        from = last.index + 1;
    }
    lines.flush().map_err(io(&path))?;
    Ok(Exported {
        entries,
        checkpoints,
    })
}
