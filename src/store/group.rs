//! Group commit: documents accepted at about the same moment share one
//! database transaction, so they share its one flush to disk
//! (`synchronous=FULL` on SQLite, the WAL flush on PostgreSQL) instead of
//! paying one each. That flush, not the signature checks or the parsing, is
//! what limited accepted documents per second (docs/benchmarks.md §5).
//!
//! How a group forms: every submission puts its document in the queue and
//! waits for its turn at the writer; whoever gets the turn takes every
//! document queued by then (at most [`MAX_GROUP`]) and commits them together,
//! each inside a savepoint. While that transaction flushes, the next
//! submissions queue up and become the next group, so groups grow with the
//! load and a lone document is committed at once, alone.
//!
//! What stays as it was: every answer waits for the commit of the
//! transaction that holds its document, so a receipt is never issued for
//! something a crash could undo. A replay, a duplicate or a moved case rolls
//! back its own savepoint only. Any database error rolls the whole group back:
//! the document that hit it is answered with the error, the others are
//! committed again without it — except a deadlock or serialisation failure
//! (PostgreSQL, several instances), after which the whole group is tried
//! again. The work runs in a task of its own, so a
//! client that goes away mid-commit cancels nobody else's commit.
//!
//! Hand-written: sqlx offers transactions and savepoints, not batching of
//! independent callers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sqlx::Connection;
use tokio::sync::oneshot;

use super::{write_document, Committed, NewDocument, Store, StoreError};
use crate::xlog::{LogPosition, PreparedLeaf};

/// Most documents in one transaction (bounds its size and the wait of the
/// group's last member).
pub const MAX_GROUP: usize = 128;

/// Builds a document's receipt body from where its leaf landed in the log
/// (called again if its group is committed again without a failed member).
pub type ReceiptFn = Box<dyn Fn(&NewDocument, &LogPosition) -> Vec<u8> + Send + Sync>;

struct Job {
    doc: NewDocument,
    leaf: PreparedLeaf,
    receipt: ReceiptFn,
    answer: oneshot::Sender<Result<Committed, StoreError>>,
}

/// The queue of documents waiting for a commit, and the turn at the writer.
#[derive(Default)]
pub(super) struct Group {
    queue: Mutex<Vec<Job>>,
    turn: tokio::sync::Mutex<()>,
    /// Groups committed and the documents in them, since start.
    groups: AtomicU64,
    documents: AtomicU64,
}

impl Store {
    /// (groups, documents) committed by this process so far: documents per
    /// group is the batching that group commit achieved.
    pub fn commit_groups(&self) -> (u64, u64) {
        (
            self.group.groups.load(Ordering::Relaxed),
            self.group.documents.load(Ordering::Relaxed),
        )
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").finish_non_exhaustive()
    }
}

/// Queues the document, takes a turn, commits whatever group is queued then
/// (maybe including this document, maybe not: then an earlier turn took it
/// or a later one will), and answers once this document's group committed.
///
/// Every queued document has its submitter waiting for a turn, and every
/// turn takes at least one queued document, so none is left behind.
pub(super) async fn commit(
    store: &Store,
    doc: NewDocument,
    leaf: PreparedLeaf,
    receipt: ReceiptFn,
) -> Result<Committed, StoreError> {
    let (answer, answered) = oneshot::channel();
    let store = store.clone();
    let turn = tokio::spawn(async move {
        lock(&store.group.queue).push(Job {
            doc,
            leaf,
            receipt,
            answer,
        });
        let _turn = store.group.turn.lock().await;
        let jobs: Vec<Job> = {
            let mut queue = lock(&store.group.queue);
            let n = queue.len().min(MAX_GROUP);
            queue.drain(..n).collect()
        };
        if !jobs.is_empty() {
            commit_group(&store, jobs).await;
        }
    });
    // The turn finishes even if this caller goes away.
    drop(turn);
    answered.await.unwrap_or_else(|_| {
        Err(StoreError::Group(
            "the commit task ended without an answer".into(),
        ))
    })
}

fn lock(queue: &Mutex<Vec<Job>>) -> std::sync::MutexGuard<'_, Vec<Job>> {
    // A panic while holding this lock cannot leave the Vec half-changed.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Commits `jobs` in one transaction and answers each. On a database error
/// the transaction is rolled back, the document that hit it is answered with
/// the error and the rest are tried again.
async fn commit_group(store: &Store, mut jobs: Vec<Job>) {
    crate::metrics::commit_group(jobs.len());
    let mut retries = 0;
    while !jobs.is_empty() {
        match try_group(store, &jobs).await {
            Ok(outcomes) => {
                store.group.groups.fetch_add(1, Ordering::Relaxed);
                store
                    .group
                    .documents
                    .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.answer.send(Ok(outcome));
                }
                return;
            }
            Err((_, e)) if is_transient(&e) && retries < MAX_RETRIES => {
                // PostgreSQL chose this group as a deadlock victim (another
                // instance's group waits for a document of ours while holding
                // the log head we need) or could not serialise it: nothing of
                // it was stored; the same group is tried again.
                retries += 1;
                tracing::debug!(error = %e, retries, "group commit: transient conflict, trying again");
            }
            Err((Some(failed), e)) => {
                let job = jobs.remove(failed);
                let _ = job.answer.send(Err(e));
            }
            Err((None, e)) => {
                // The transaction itself failed (begin or commit): nothing of
                // the group was stored.
                let message = e.to_string();
                let mut first = Some(e);
                for job in jobs {
                    let error = first
                        .take()
                        .unwrap_or_else(|| StoreError::Group(message.clone()));
                    let _ = job.answer.send(Err(error));
                }
                return;
            }
        }
    }
}

/// Times a group is tried again after a deadlock or serialisation failure.
const MAX_RETRIES: u32 = 5;

/// A deadlock (`40P01`) or serialisation failure (`40001`): the database
/// rolled the whole transaction back and the same work may succeed again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

/// One attempt: every job in a savepoint of one transaction. The error names
/// the job that hit it (`None`: the transaction as a whole).
async fn try_group(
    store: &Store,
    jobs: &[Job],
) -> Result<Vec<Committed>, (Option<usize>, StoreError)> {
    let whole = |e: sqlx::Error| (None, StoreError::from(e));
    let mut conn = store.writer.acquire().await.map_err(whole)?;
    let mut tx = conn.begin().await.map_err(whole)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (n, job) in jobs.iter().enumerate() {
        match write_document(&mut tx, &job.doc, &job.leaf, &job.receipt).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => return Err((Some(n), e)),
        }
    }
    tx.commit().await.map_err(whole)?;
    Ok(outcomes)
}
