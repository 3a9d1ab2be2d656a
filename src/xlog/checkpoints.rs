//! Publishing signed checkpoints: the tree's size and root, signed with the
//! log key (Ed25519, `DIR/pki/log.key.pem`), stored in `checkpoints`. A
//! background task publishes at a fixed interval when the tree grew, and
//! `GET /api/v1/log/checkpoint` publishes on demand, so what a partner
//! fetches always covers its receipt.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::note::{Checkpoint, NoteError, NoteSigner};
use crate::store::{Store, StoreError, StoredCheckpoint};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing the checkpoint: {0}")]
    Sign(#[from] NoteError),
}

/// Publishes a checkpoint for the current tree if the latest one is smaller
/// (or there is none); returns the latest checkpoint either way.
pub async fn publish(store: &Store, signer: &NoteSigner) -> Result<StoredCheckpoint, PublishError> {
    let size = store.log_size().await?;
    if let Some(latest) = store.checkpoint(None).await? {
        if latest.tree_size >= size {
            return Ok(latest);
        }
    }
    let root = store.log_root(size).await?;
    let checkpoint = Checkpoint {
        origin: signer.name.clone(),
        size,
        root,
    };
    let note = signer.sign(&checkpoint.text())?;
    let now = crate::timefmt::unix_ms(time::OffsetDateTime::now_utc());
    store.insert_checkpoint(size, &note, now).await?;
    // Another publisher may have won the race for this size: serve what is stored.
    Ok(store
        .checkpoint(Some(size))
        .await?
        .unwrap_or(StoredCheckpoint {
            tree_size: size,
            note,
            published_at_ms: now,
        }))
}

/// Runs [`publish`] every `interval` while `owner` is alive (the gateway)
/// and until `stop` says so; then publishes once more, so the last
/// checkpoint covers every entry written before the shutdown.
pub fn spawn_publisher<T: Send + Sync + 'static>(
    owner: Weak<T>,
    parts: impl Fn(&T) -> (&Store, &NoteSigner) + Send + 'static,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.changed() => true,
            };
            let Some(owner): Option<Arc<T>> = owner.upgrade() else {
                return;
            };
            let (store, signer) = parts(&owner);
            // At shutdown the pool may hand out a PostgreSQL connection that
            // an HTTP worker opened on its own runtime, which has just
            // stopped; the pool then drops it, and the next try opens a fresh
            // one here.
            let tries = if stopping { 3 } else { 1 };
            for attempt in 1..=tries {
                match publish(store, signer).await {
                    Ok(_) => break,
                    Err(e) if attempt < tries => {
                        tracing::debug!(error = %e, attempt, "final checkpoint: retrying");
                    }
                    Err(e) => tracing::error!(error = %e, "could not publish a log checkpoint"),
                }
            }
            if stopping {
                return;
            }
        }
    })
}
