//! Group commit: documents accepted at about the same moment share one
//! database transaction, so they share its one flush to disk
//! (`synchronous=FULL` on SQLite, the WAL flush on PostgreSQL) instead of
//! paying one each. That flush, not the signature checks or the parsing, is
//! what limited accepted documents per second (docs/benchmarks.md §5).
//!
//! How a group forms: every submission puts its document in the queue and
//! waits for its turn at the writer; whoever gets the turn takes every
//! document queued by then (at most [`MAX_GROUP`]) and commits them together
//! (table by table, `rows.rs`). While that transaction flushes, the next
//! submissions queue up and become the next group, so groups grow with the
//! load and a lone document is committed at once, alone.
//!
//! What stays as it was: every answer waits for the commit of the
//! transaction that holds its document, so a receipt is never issued for
//! something a crash could undo. A replay, a duplicate or a moved case
//! writes nothing and is answered so. Any database error rolls the whole
//! group back, and it is written again one document at a time, each in a
//! savepoint: the document that hit the error is answered with it, the others
//! are committed without it — except a deadlock or serialisation failure
//! (PostgreSQL, several instances), after which the whole group is tried
//! again. The work runs in a task of its own, so a
//! client that goes away mid-commit cancels nobody else's commit.
//!
//! The commits run on a thread of their own (a one-thread tokio runtime that
//! runs nothing else). A commit is a conversation of many statements with the
//! database, each one an `await`; run on the HTTP workers, every one of those
//! waited behind the signature checks and parsing of all the other requests
//! on that worker, and the single SQLite writer sat idle between statements
//! (docs/benchmarks.md §6: the writer busy a third of the time).
//!
//! Other writes join the same queue ([`join`]): a push's receipt, a pull's
//! ack, a failed attempt, a claim of due outbox rows, a mailbox page's reads,
//! a lone log entry. Each runs in the group's transaction
//! after the documents (in a savepoint of its own when the group is written
//! one at a time), its leaves go into the group's one
//! append, and what depends on where they landed (an ack's answer) is
//! written after it. On their own, each was a transaction with its own
//! flush that held the `log_head` row through it: on PostgreSQL 44 of ~110
//! database-seconds of the mixed load were spent queueing for that row
//! (docs/benchmarks.md §8).
//!
//! Hand-written: sqlx offers transactions and savepoints, not batching of
//! independent callers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::oneshot;

use super::log::append_leaves;
use super::rows::{write_document, write_group, Written};
use super::{insert_receipts, Committed, NewDocument, Store, StoreError};
use crate::xlog::{LogPosition, PreparedLeaf};

/// Most documents in one transaction (bounds its size and the wait of the
/// group's last member).
pub const MAX_GROUP: usize = 128;

/// Most other works ([`join`]) in a group that has documents ([`take_group`]).
pub const JOINED_BESIDE_DOCUMENTS: usize = 8;

/// Builds a document's receipt body from where its leaf landed in the log
/// (called again if its group is committed again without a failed member).
pub type ReceiptFn = Box<dyn Fn(&NewDocument, &LogPosition) -> Vec<u8> + Send + Sync>;

struct DocumentJob {
    doc: NewDocument,
    leaf: PreparedLeaf,
    receipt: ReceiptFn,
    answer: oneshot::Sender<Result<Committed, StoreError>>,
}

/// What waits in the queue: a document, or other work that joins the group.
// Documents are most of the queue: boxing them to shrink the enum would
// allocate once per document for nothing.
#[allow(clippy::large_enum_variant)]
enum Job {
    Document(DocumentJob),
    Joined(Box<dyn Joined>),
}

/// Work that is not a document but shares a group's transaction ([`join`]).
///
/// It may run more than once: when a group's first attempt fails it is
/// written again (see [`commit_group`]), so `write` must compute everything
/// from the database each time and keep nothing from an earlier run but
/// what it overwrites.
///
/// In a group's first attempt it runs without a savepoint of its own (two
/// statements fewer each: on PostgreSQL two round trips on the group's
/// critical path). So [`Kept::Nothing`] must mean that it wrote nothing, and
/// an error fails the attempt: the group is then written one at a time, each
/// work in a savepoint, and only the failing work gets the error.
pub(super) trait Work: Send + 'static {
    /// What the caller gets once the group committed.
    type Output: Send + 'static;
    /// Writes its rows in the group's transaction.
    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>>;
    /// After the group's append, with where its leaves landed (in their
    /// order): the rows that depend on it.
    fn logged<'a>(
        &'a mut self,
        _tx: &'a mut AnyConnection,
        _positions: &'a [LogPosition],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn output(self) -> Self::Output;
}

/// What [`Work::write`] decided.
pub(super) enum Kept {
    /// Keep its rows and append these leaves (maybe none).
    Rows(Vec<PreparedLeaf>),
    /// It wrote nothing (and when in a savepoint, that is rolled back).
    Nothing,
}

/// A [`Work`] with its caller's answer, as the queue holds it.
trait Joined: Send {
    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>>;
    fn logged<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
        positions: &'a [LogPosition],
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn answer(self: Box<Self>, result: Result<(), StoreError>);
}

struct Waiting<W: Work> {
    work: W,
    answer: oneshot::Sender<Result<W::Output, StoreError>>,
}

impl<W: Work> Joined for Waiting<W> {
    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>> {
        self.work.write(tx)
    }
    fn logged<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
        positions: &'a [LogPosition],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.work.logged(tx, positions)
    }
    fn answer(self: Box<Self>, result: Result<(), StoreError>) {
        let Waiting { work, answer } = *self;
        let _ = answer.send(result.map(|()| work.output()));
    }
}

/// The queue of documents waiting for a commit, and the turn at the writer.
pub(super) struct Group {
    queue: Mutex<Vec<Job>>,
    turn: tokio::sync::Mutex<()>,
    /// The connections group commits write with. On SQLite the one writer
    /// connection (it belongs to no runtime: sqlx talks to it through a
    /// thread of its own); on PostgreSQL a pool of its own, so its
    /// connections are opened on, and their sockets driven by, the
    /// committer's runtime and never by a busy HTTP worker's.
    pool: AnyPool,
    committer: OnceLock<Option<Committer>>,
    /// Groups committed and the documents in them, since start.
    groups: AtomicU64,
    documents: AtomicU64,
    /// Groups whose table-by-table write failed and were written one
    /// document at a time instead.
    fallbacks: AtomicU64,
}

impl Group {
    pub(super) fn new(pool: AnyPool) -> Group {
        Group {
            queue: Mutex::default(),
            turn: tokio::sync::Mutex::default(),
            pool,
            committer: OnceLock::new(),
            groups: AtomicU64::new(0),
            documents: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// Where commit turns run: the committer thread, started on first use
    /// (`None` if the thread could not be started: then on the caller's
    /// runtime, slower but correct).
    fn spawner(&self) -> Option<&tokio::runtime::Handle> {
        self.committer
            .get_or_init(|| match Committer::start() {
                Ok(committer) => Some(committer),
                Err(e) => {
                    tracing::warn!(error = %e, "group commit: no committer thread, committing on the request's runtime");
                    None
                }
            })
            .as_ref()
            .map(|c| &c.handle)
    }
}

/// A thread running a one-thread tokio runtime for commit turns only. It ends
/// when the [`Group`] is dropped (the last `Store` clone); turns still queued
/// then are dropped and their callers answered with an error.
struct Committer {
    handle: tokio::runtime::Handle,
    _stop: oneshot::Sender<()>,
}

impl Committer {
    fn start() -> std::io::Result<Committer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("group-commit")
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Committer {
            handle,
            _stop: stop,
        })
    }
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

    /// Groups whose table-by-table write failed, so they were written one
    /// document at a time (on PostgreSQL with several instances, a twin
    /// document another instance committed after our reads).
    pub fn commit_fallbacks(&self) -> u64 {
        self.group.fallbacks.load(Ordering::Relaxed)
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
/// Every queued job has its submitter waiting for a turn, and every turn
/// takes at least one queued job, so none is left behind.
pub(super) async fn commit(
    store: &Store,
    doc: NewDocument,
    leaf: PreparedLeaf,
    receipt: ReceiptFn,
) -> Result<Committed, StoreError> {
    let (answer, answered) = oneshot::channel();
    enqueue(
        store,
        Job::Document(DocumentJob {
            doc,
            leaf,
            receipt,
            answer,
        }),
    );
    answered.await.unwrap_or_else(|_| Err(no_answer()))
}

/// Has `work` written in the next group's transaction, and answers once that
/// committed.
pub(super) async fn join<W: Work>(store: &Store, work: W) -> Result<W::Output, StoreError> {
    let (answer, answered) = oneshot::channel();
    enqueue(store, Job::Joined(Box::new(Waiting { work, answer })));
    answered.await.unwrap_or_else(|_| Err(no_answer()))
}

fn no_answer() -> StoreError {
    StoreError::Group("the commit task ended without an answer".into())
}

/// Puts `job` in the queue and spawns its turn.
fn enqueue(store: &Store, job: Job) {
    let store = store.clone();
    let group = store.group.clone();
    let turn = async move {
        lock(&store.group.queue).push(job);
        let _turn = store.group.turn.lock().await;
        let jobs = take_group(&mut lock(&store.group.queue));
        if !jobs.is_empty() {
            commit_group(&store, jobs).await;
        }
    };
    // The turn finishes even if its caller goes away.
    match group.spawner() {
        Some(committer) => drop(committer.spawn(turn)),
        None => drop(tokio::spawn(turn)),
    }
}

/// The next group from the queue: its documents first (at most
/// [`MAX_GROUP`]), and beside them at most [`JOINED_BESIDE_DOCUMENTS`] other
/// works, oldest first; with no document waiting, up to [`MAX_GROUP`] works.
/// A submitter waits for its receipt while a delivery's receipt or ack can
/// wait a group longer: on PostgreSQL each joined work is a few round trips
/// on the group's path, and without the bound the mixed load's deliveries
/// made the documents beside them wait (docs/benchmarks.md §11). Every
/// queued job still has a turn of its own, so the works left are taken by
/// the next turns.
fn take_group(queue: &mut Vec<Job>) -> Vec<Job> {
    let documents = queue
        .iter()
        .filter(|j| matches!(j, Job::Document(_)))
        .count();
    let (mut documents_left, mut joined_left) = match documents {
        0 => (0, MAX_GROUP),
        n => (n.min(MAX_GROUP), JOINED_BESIDE_DOCUMENTS),
    };
    let mut taken = Vec::new();
    let mut kept = Vec::with_capacity(queue.len());
    for job in queue.drain(..) {
        let room = match job {
            Job::Document(_) => &mut documents_left,
            Job::Joined(_) => &mut joined_left,
        };
        if *room > 0 {
            *room -= 1;
            taken.push(job);
        } else {
            kept.push(job);
        }
    }
    *queue = kept;
    taken
}

fn lock(queue: &Mutex<Vec<Job>>) -> std::sync::MutexGuard<'_, Vec<Job>> {
    // A panic while holding this lock cannot leave the Vec half-changed.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Commits `jobs` in one transaction and answers each: the whole group's
/// rows at once, or if that fails, one document at a time.
async fn commit_group(store: &Store, jobs: Vec<Job>) {
    let (docs, mut joined) = split(jobs);
    if !docs.is_empty() {
        crate::metrics::commit_group(docs.len());
    }
    match try_batch(store, &docs, &mut joined).await {
        Ok((committed, outcomes)) => {
            answer_all(store, docs, committed, joined, outcomes);
            return;
        }
        Err(e) => {
            // Nothing of the attempt was stored; one document at a time
            // finds which one it was, or gets past another instance's twin.
            store.group.fallbacks.fetch_add(1, Ordering::Relaxed);
            crate::metrics::commit_group_fallback();
            tracing::debug!(error = %e, documents = docs.len(), joined = joined.len(), "group commit: written one at a time");
        }
    }
    commit_one_by_one(store, docs, joined).await;
}

/// The group's documents, in queue order, and its joined work.
fn split(jobs: Vec<Job>) -> (Vec<DocumentJob>, Vec<Box<dyn Joined>>) {
    let mut docs = Vec::new();
    let mut joined = Vec::new();
    for job in jobs {
        match job {
            Job::Document(doc) => docs.push(doc),
            Job::Joined(work) => joined.push(work),
        }
    }
    (docs, joined)
}

/// Commits `docs` one document at a time (each in a savepoint), then the
/// joined work, and answers each. On a database error the transaction is
/// rolled back, the document that hit it is answered with the error and the
/// rest are tried again.
async fn commit_one_by_one(
    store: &Store,
    mut docs: Vec<DocumentJob>,
    mut joined: Vec<Box<dyn Joined>>,
) {
    let mut retries = 0;
    while !docs.is_empty() || !joined.is_empty() {
        match try_group(store, &docs, &mut joined).await {
            Ok((committed, outcomes)) => {
                answer_all(store, docs, committed, joined, outcomes);
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
                let job = docs.remove(failed);
                let _ = job.answer.send(Err(e));
            }
            Err((None, e)) => {
                // The transaction itself failed (begin, the log append or
                // commit): nothing of the group was stored.
                let message = e.to_string();
                let mut first = Some(e);
                let mut error = || {
                    first
                        .take()
                        .unwrap_or_else(|| StoreError::Group(message.clone()))
                };
                for job in docs {
                    let _ = job.answer.send(Err(error()));
                }
                for work in joined {
                    work.answer(Err(error()));
                }
                return;
            }
        }
    }
}

fn answer_all(
    store: &Store,
    docs: Vec<DocumentJob>,
    committed: Vec<Committed>,
    joined: Vec<Box<dyn Joined>>,
    outcomes: Vec<Outcome>,
) {
    if !docs.is_empty() {
        store.group.groups.fetch_add(1, Ordering::Relaxed);
        store
            .group
            .documents
            .fetch_add(docs.len() as u64, Ordering::Relaxed);
    }
    for (job, outcome) in docs.into_iter().zip(committed) {
        let _ = job.answer.send(Ok(outcome));
    }
    for (work, outcome) in joined.into_iter().zip(outcomes) {
        work.answer(match outcome {
            Outcome::Failed(e) => Err(e),
            Outcome::Rows(_) | Outcome::Nothing => Ok(()),
        });
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

/// The usual attempt: the whole group's rows written table by table
/// (`rows::write_group`), the joined work, then the leaves and receipts.
/// Any error: nothing of it is stored, and [`try_group`] takes over.
async fn try_batch(
    store: &Store,
    docs: &[DocumentJob],
    joined: &mut [Box<dyn Joined>],
) -> Result<(Vec<Committed>, Vec<Outcome>), StoreError> {
    let mut conn = store.group.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let written = match docs.is_empty() {
        true => Vec::new(),
        false => {
            let docs: Vec<&NewDocument> = docs.iter().map(|job| &job.doc).collect();
            write_group(&mut tx, &docs).await?
        }
    };
    let outcomes = write_joined(&mut tx, joined, false).await?;
    let committed = finish(&mut tx, docs, &written, joined, &outcomes).await?;
    tx.commit().await?;
    Ok((committed, outcomes))
}

/// One attempt of one document at a time: every document in a savepoint of
/// one transaction, then the joined work, then the leaves of those stored
/// appended to the log at once and their receipts written. The error names
/// the document that hit it (`None`: the transaction as a whole).
async fn try_group(
    store: &Store,
    docs: &[DocumentJob],
    joined: &mut [Box<dyn Joined>],
) -> Result<(Vec<Committed>, Vec<Outcome>), (Option<usize>, StoreError)> {
    let whole = |e: StoreError| (None, e);
    let mut conn = store
        .group
        .pool
        .acquire()
        .await
        .map_err(|e| whole(e.into()))?;
    let mut tx = conn.begin().await.map_err(|e| whole(e.into()))?;
    let mut written = Vec::with_capacity(docs.len());
    for (n, job) in docs.iter().enumerate() {
        match write_document(&mut tx, &job.doc).await {
            Ok(outcome) => written.push(outcome),
            Err(e) => return Err((Some(n), e)),
        }
    }
    let outcomes = write_joined(&mut tx, joined, true).await.map_err(whole)?;
    let committed = finish(&mut tx, docs, &written, joined, &outcomes)
        .await
        .map_err(whole)?;
    tx.commit().await.map_err(|e| whole(e.into()))?;
    Ok((committed, outcomes))
}

/// What became of one joined work in the group's transaction.
enum Outcome {
    /// Its rows are kept; these leaves are appended with the group's.
    Rows(Vec<PreparedLeaf>),
    /// Nothing of it was kept (its own decision).
    Nothing,
    /// It failed and its savepoint was rolled back; the rest of the group
    /// goes on, and it is answered with this error.
    Failed(StoreError),
}

/// Each joined work in turn. With `savepoints`, each in one of its own, so
/// what it decides not to keep, or a database error it hits, undoes its
/// rows only; a deadlock or serialisation failure is still the whole
/// transaction's, returned for the group to be tried again. Without, any
/// error is the attempt's ([`Work`]).
async fn write_joined(
    tx: &mut AnyConnection,
    joined: &mut [Box<dyn Joined>],
    savepoints: bool,
) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(joined.len());
    for work in joined.iter_mut() {
        if !savepoints {
            outcomes.push(match work.write(tx).await? {
                Kept::Rows(leaves) => Outcome::Rows(leaves),
                Kept::Nothing => Outcome::Nothing,
            });
            continue;
        }
        let mut savepoint = tx.begin().await?;
        let outcome = match work.write(&mut savepoint).await {
            Ok(Kept::Rows(leaves)) => {
                savepoint.commit().await?;
                Outcome::Rows(leaves)
            }
            Ok(Kept::Nothing) => {
                savepoint.rollback().await?;
                Outcome::Nothing
            }
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => {
                savepoint.rollback().await?;
                Outcome::Failed(e)
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The group's leaves appended to the log at once (its stored documents',
/// then its joined work's), the documents' receipts written, what the
/// joined work writes after the append, and each document's answer.
///
/// The log append comes last so that the `log_head` row, which serialises
/// appends, is held only from there to the commit: on PostgreSQL a group no
/// longer holds it while it waits for another instance's transaction (a
/// twin document's unique key), which is how groups used to deadlock.
async fn finish(
    tx: &mut AnyConnection,
    docs: &[DocumentJob],
    written: &[Written],
    joined: &mut [Box<dyn Joined>],
    outcomes: &[Outcome],
) -> Result<Vec<Committed>, StoreError> {
    let stored: Vec<usize> = (0..docs.len())
        .filter(|&n| matches!(written[n], Written::New))
        .collect();
    let mut leaves: Vec<&PreparedLeaf> = stored.iter().map(|&n| &docs[n].leaf).collect();
    let of_documents = leaves.len();
    for outcome in outcomes {
        if let Outcome::Rows(kept) = outcome {
            leaves.extend(kept);
        }
    }
    let positions = append_leaves(tx, &leaves).await?;
    let (positions, mut joined_positions) = positions.split_at(of_documents);
    for (work, outcome) in joined.iter_mut().zip(outcomes) {
        if let Outcome::Rows(kept) = outcome {
            let (own, rest) = joined_positions.split_at(kept.len());
            work.logged(tx, own).await?;
            joined_positions = rest;
        }
    }
    let receipts: Vec<Vec<u8>> = stored
        .iter()
        .zip(positions)
        .map(|(&n, position)| (docs[n].receipt)(&docs[n].doc, position))
        .collect();
    let rows: Vec<(&str, &str, &[u8], i64)> = stored
        .iter()
        .zip(&receipts)
        .map(|(&n, body)| {
            let doc = &docs[n].doc;
            (
                doc.receipt_id.as_str(),
                doc.id.as_str(),
                body.as_slice(),
                doc.received_at_ms,
            )
        })
        .collect();
    insert_receipts(tx, &rows).await?;
    // Each document's answer; a duplicate of a document stored earlier in
    // this group gets that document's receipt.
    let receipt_of: std::collections::HashMap<&str, &Vec<u8>> = stored
        .iter()
        .zip(&receipts)
        .map(|(&n, receipt)| (docs[n].doc.id.as_str(), receipt))
        .collect();
    let mut new = positions.iter().zip(receipts.iter());
    written
        .iter()
        .map(|w| {
            Ok(match w {
                Written::New => {
                    let (position, receipt) = new.next().ok_or_else(|| {
                        StoreError::Group("a stored document of the group has no leaf".into())
                    })?;
                    Committed::New {
                        position: position.clone(),
                        receipt: receipt.clone(),
                    }
                }
                Written::Duplicate(receipt) => Committed::Duplicate {
                    receipt: receipt.clone(),
                },
                Written::DuplicateInGroup { original } => Committed::Duplicate {
                    receipt: receipt_of
                        .get(original.as_str())
                        .map(|r| (*r).clone())
                        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?,
                },
                Written::Replayed => Committed::Replayed,
                Written::CaseMoved => Committed::CaseMoved,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! A group formed by hand, so what only happens when documents meet in
    //! one group happens every time: a duplicate of a document stored earlier
    //! in the same group, and a signature used twice within it.

    use super::*;
    use crate::store::SignatureEvidence;
    use crate::xlog::{self, LogEvent};

    fn document(id: &str, body_sha256: &str, signature_sha256: &str) -> NewDocument {
        NewDocument {
            id: id.into(),
            receipt_id: format!("receipt-{id}"),
            sender: "court.620102".into(),
            message_type: "handover.notice".into(),
            dialect: "court-xml".into(),
            content_type: "application/xml".into(),
            body_sha256: body_sha256.into(),
            original: b"<x/>".to_vec(),
            canonical: "{}".into(),
            document_no: format!("no-{id}"),
            received_at_ms: 1_795_000_000_000,
            recipients: Vec::new(),
            copies: Vec::new(),
            signature: SignatureEvidence {
                keyid: "court-key".into(),
                alg: "ed25519".into(),
                signature_input: "sig1=()".into(),
                signature: "sig1=:AA==:".into(),
                signature_base: "\"@method\": POST".into(),
                signature_sha256: signature_sha256.into(),
                signer_agency: "court.620102".into(),
                signer_certificate: "-----BEGIN CERTIFICATE-----".into(),
                verified_at_ms: 1_795_000_000_000,
            },
            case: None,
            attachments: Vec::new(),
            envelope: None,
            deliveries: Vec::new(),
            subject: None,
        }
    }

    fn job(doc: NewDocument) -> (Job, oneshot::Receiver<Result<Committed, StoreError>>) {
        let event = LogEvent::DocumentRead {
            document_id: doc.id.clone(),
            reader: doc.sender.clone(),
            view: "canonical".into(),
        };
        let (answer, answered) = oneshot::channel();
        let job = Job::Document(DocumentJob {
            leaf: xlog::prepare(&event, time::OffsetDateTime::now_utc()),
            doc,
            receipt: Box::new(|doc, position| {
                format!("{} at {}", doc.id, position.index).into_bytes()
            }),
            answer,
        });
        (job, answered)
    }

    /// A joined work that writes nothing.
    struct Nothing;

    impl Work for Nothing {
        type Output = ();
        fn write<'a>(
            &'a mut self,
            _tx: &'a mut AnyConnection,
        ) -> BoxFuture<'a, Result<Kept, StoreError>> {
            Box::pin(async { Ok(Kept::Nothing) })
        }
        fn output(self) {}
    }

    fn idle_work() -> Job {
        let (answer, _) = oneshot::channel();
        Job::Joined(Box::new(Waiting {
            work: Nothing,
            answer,
        }))
    }

    fn kinds(jobs: &[Job]) -> String {
        jobs.iter()
            .map(|j| match j {
                Job::Document(_) => 'd',
                Job::Joined(_) => 'j',
            })
            .collect()
    }

    #[test]
    fn documents_go_first_and_other_work_beside_them_is_bounded() {
        // 12 works queued before 3 documents and after them 2 more works.
        let mut queue: Vec<Job> = (0..12).map(|_| idle_work()).collect();
        for n in 0..3 {
            queue.push(
                job(document(
                    &format!("d{n}"),
                    &format!("b{n}"),
                    &format!("s{n}"),
                ))
                .0,
            );
        }
        queue.extend((0..2).map(|_| idle_work()));
        let first = take_group(&mut queue);
        assert_eq!(
            kinds(&first),
            format!("{}ddd", "j".repeat(JOINED_BESIDE_DOCUMENTS))
        );
        assert_eq!(kinds(&queue), "jjjjjj", "the works left, oldest first");
        // With no document waiting, the works are taken together.
        let second = take_group(&mut queue);
        assert_eq!((kinds(&second).as_str(), queue.len()), ("jjjjjj", 0));
        // More than a group's worth of documents: a group takes MAX_GROUP.
        let mut queue: Vec<Job> = (0..MAX_GROUP + 5)
            .map(|n| {
                job(document(
                    &format!("d{n}"),
                    &format!("b{n}"),
                    &format!("s{n}"),
                ))
                .0
            })
            .collect();
        queue.push(idle_work());
        let third = take_group(&mut queue);
        assert_eq!(third.len(), MAX_GROUP + 1);
        assert_eq!(kinds(&queue), "ddddd");
    }

    #[tokio::test]
    async fn a_group_answers_its_duplicates_and_replays_with_its_own_receipts() {
        check_group(false).await;
    }

    /// The same group through the path taken when its table-by-table write
    /// fails: one document at a time, each in a savepoint.
    #[tokio::test]
    async fn one_document_at_a_time_gives_the_same_answers() {
        check_group(true).await;
    }

    /// Commits `jobs` as one group, the usual way or one document at a time.
    async fn commit(store: &Store, jobs: Vec<Job>, one_by_one: bool) {
        if one_by_one {
            let (docs, joined) = split(jobs);
            commit_one_by_one(store, docs, joined).await
        } else {
            commit_group(store, jobs).await
        }
    }

    async fn open(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        Store::open(&url, 2, std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
            .await
            .unwrap()
    }

    async fn check_group(one_by_one: bool) {
        let commit = |store: &Store, jobs| {
            let store = store.clone();
            async move { commit(&store, jobs, one_by_one).await }
        };
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (a, a_answer) = job(document("a", "body-1", "sig-a"));
        let (b, b_answer) = job(document("b", "body-2", "sig-b"));
        // The same bytes as `a` under another signature: a duplicate of a
        // document stored earlier in this very group.
        let (twin, twin_answer) = job(document("twin", "body-1", "sig-twin"));
        // `b`'s signature again: a replay.
        let (replay, replay_answer) = job(document("replay", "body-3", "sig-b"));
        commit(&store, vec![a, b, twin, replay]).await;

        let Ok(Committed::New {
            position: pa,
            receipt: ra,
        }) = a_answer.await.unwrap()
        else {
            panic!("a is stored")
        };
        let Ok(Committed::New {
            position: pb,
            receipt: rb,
        }) = b_answer.await.unwrap()
        else {
            panic!("b is stored")
        };
        assert_eq!((pa.index, pb.index), (0, 1), "one append, in group order");
        assert_eq!(ra, b"a at 0");
        assert_eq!(rb, b"b at 1");
        match twin_answer.await.unwrap() {
            Ok(Committed::Duplicate { receipt }) => assert_eq!(receipt, ra, "a's receipt"),
            other => panic!("twin: {other:?}"),
        }
        assert!(matches!(
            replay_answer.await.unwrap(),
            Ok(Committed::Replayed)
        ));
        assert_eq!(store.count("documents").await.unwrap(), 2);
        assert_eq!(store.count("receipts").await.unwrap(), 2);
        assert_eq!(store.log_size().await.unwrap(), 2);
        assert_eq!(store.commit_groups(), (1, 4));

        // The twin again, in a later group: the stored receipt; `a`'s
        // signature on new bytes: a replay of a stored signature.
        let (late, late_answer) = job(document("late", "body-1", "sig-late"));
        let (again, again_answer) = job(document("again", "body-4", "sig-a"));
        commit(&store, vec![late, again]).await;
        match late_answer.await.unwrap() {
            Ok(Committed::Duplicate { receipt }) => assert_eq!(receipt, ra),
            other => panic!("late twin: {other:?}"),
        }
        assert!(matches!(
            again_answer.await.unwrap(),
            Ok(Committed::Replayed)
        ));
        assert_eq!(store.log_size().await.unwrap(), 2);
        assert_eq!(store.count("documents").await.unwrap(), 2);
        assert_eq!(store.commit_fallbacks(), 0);
        store.close().await;
    }

    /// Joined work for the test: records a used signature and keeps it with
    /// one leaf, writes nothing, or writes and then hits a database error.
    struct Signature {
        sha256: &'static str,
        then: Then,
        positions: Vec<LogPosition>,
        runs: u32,
    }

    #[derive(Clone, Copy)]
    enum Then {
        Keep,
        Discard,
        Fail,
    }

    impl Work for Signature {
        type Output = (Vec<LogPosition>, u32);

        fn write<'a>(
            &'a mut self,
            tx: &'a mut AnyConnection,
        ) -> BoxFuture<'a, Result<Kept, StoreError>> {
            Box::pin(async move {
                self.runs += 1;
                if let Then::Discard = self.then {
                    return Ok(Kept::Nothing);
                }
                let insert = "INSERT INTO seen_signatures (keyid, signature_sha256, seen_at) VALUES ('k', $1, 0)";
                sqlx::query(insert)
                    .bind(self.sha256)
                    .execute(&mut *tx)
                    .await?;
                if let Then::Fail = self.then {
                    // The same key again: a unique violation.
                    sqlx::query(insert)
                        .bind(self.sha256)
                        .execute(&mut *tx)
                        .await?;
                }
                let event = LogEvent::DocumentRead {
                    document_id: self.sha256.into(),
                    reader: "court.620102".into(),
                    view: "canonical".into(),
                };
                Ok(Kept::Rows(vec![xlog::prepare(
                    &event,
                    time::OffsetDateTime::now_utc(),
                )]))
            })
        }

        fn logged<'a>(
            &'a mut self,
            _tx: &'a mut AnyConnection,
            positions: &'a [LogPosition],
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            self.positions = positions.to_vec();
            Box::pin(async { Ok(()) })
        }

        fn output(self) -> (Vec<LogPosition>, u32) {
            (self.positions, self.runs)
        }
    }

    type SignatureAnswer = oneshot::Receiver<Result<(Vec<LogPosition>, u32), StoreError>>;

    fn joined(sha256: &'static str, then: Then) -> (Job, SignatureAnswer) {
        let (answer, answered) = oneshot::channel();
        let work = Signature {
            sha256,
            then,
            positions: Vec::new(),
            runs: 0,
        };
        (Job::Joined(Box::new(Waiting { work, answer })), answered)
    }

    #[tokio::test]
    async fn joined_work_shares_the_group_transaction() {
        check_joined(false).await;
    }

    /// Joined work runs without a savepoint in the group's first attempt: an
    /// error there sends the group one at a time, where each work has a
    /// savepoint, and only the failing one is undone and answered with it.
    #[tokio::test]
    async fn a_failing_joined_work_is_undone_alone() {
        check_joined(true).await;
    }

    async fn check_joined(failing: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (keep, keep_answer) = joined("joined-keep", Then::Keep);
        let (a, a_answer) = job(document("a", "body-1", "sig-a"));
        let (discard, discard_answer) = joined("joined-discard", Then::Discard);
        let (b, b_answer) = job(document("b", "body-2", "sig-b"));
        let mut jobs = vec![keep, a, discard, b];
        let mut fail_answer = None;
        if failing {
            let (fail, answer) = joined("joined-fail", Then::Fail);
            jobs.insert(3, fail);
            fail_answer = Some(answer);
        }
        commit_group(&store, jobs).await;

        // Documents first in the append, whatever the queue order, then the
        // joined work's leaves.
        for (answer, index) in [(a_answer, 0), (b_answer, 1)] {
            match answer.await.unwrap() {
                Ok(Committed::New { position, .. }) => assert_eq!(position.index, index),
                other => panic!("document: {other:?}"),
            }
        }
        let (positions, runs) = keep_answer.await.unwrap().unwrap();
        assert_eq!(positions.len(), 1);
        assert_eq!(positions[0].index, 2);
        // Once, or: the first attempt, then one at a time.
        assert_eq!(runs, if failing { 2 } else { 1 });
        // Answered, its nothing kept (the rows below).
        discard_answer.await.unwrap().unwrap();
        if let Some(answer) = fail_answer {
            assert!(
                matches!(answer.await.unwrap(), Err(StoreError::Database(_))),
                "the failed work gets its own error"
            );
        }
        // Its rows and the discarded one's are gone; the rest is committed.
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT signature_sha256 FROM seen_signatures WHERE keyid = 'k' ORDER BY 1",
        )
        .fetch_all(&store.reader)
        .await
        .unwrap();
        assert_eq!(kept, ["joined-keep"]);
        assert_eq!(store.log_size().await.unwrap(), 3);
        assert_eq!(store.count("documents").await.unwrap(), 2);
        assert_eq!(store.commit_groups(), (1, 2), "one transaction");
        assert_eq!(store.commit_fallbacks(), u64::from(failing));

        // Work alone, with no document, is a group of its own.
        let (alone, alone_answer) = joined("joined-alone", Then::Keep);
        commit_group(&store, vec![alone]).await;
        let (positions, _) = alone_answer.await.unwrap().unwrap();
        assert_eq!(positions[0].index, 3);
        assert_eq!(store.log_size().await.unwrap(), 4);
        store.close().await;
    }

    fn opener(id: &str, case: &str) -> NewDocument {
        NewDocument {
            case: Some(crate::store::CaseWrite::Open(crate::store::NewCase {
                id: case.into(),
                flow: "handover".into(),
                state: "notified".into(),
                opened_by: "court.620102".into(),
                corrections_agency: "corrections.620102".into(),
                case_no: None,
                parties: vec!["court.620102".into(), "corrections.620102".into()],
                deadlines: Vec::new(),
            })),
            ..document(id, &format!("body-{id}"), &format!("sig-{id}"))
        }
    }

    fn answer(id: &str, case: &str, from: &str, to: &str) -> NewDocument {
        NewDocument {
            case: Some(crate::store::CaseWrite::Advance(crate::store::CaseUpdate {
                id: case.into(),
                from_state: from.into(),
                to_state: to.into(),
                parties: vec!["corrections.620102".into()],
                deadlines: Vec::new(),
            })),
            ..document(id, &format!("body-{id}"), &format!("sig-{id}"))
        }
    }

    #[tokio::test]
    async fn answers_in_one_group_move_their_cases_once_each() {
        check_answers(false).await;
    }

    #[tokio::test]
    async fn answers_written_one_at_a_time_move_their_cases_the_same() {
        check_answers(true).await;
    }

    /// Two answers to one case in one group: the first moves it, the second
    /// finds it moved. An answer that read a state the case no longer has
    /// finds it moved too; the others move theirs.
    async fn check_answers(one_by_one: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (x, _) = job(opener("open-x", "case-x"));
        let (y, _) = job(opener("open-y", "case-y"));
        let (z, _) = job(opener("open-z", "case-z"));
        commit(&store, vec![x, y, z], one_by_one).await;

        let (first, first_answer) = job(answer("first", "case-x", "notified", "received"));
        let (second, second_answer) = job(answer("second", "case-x", "notified", "received"));
        let (stale, stale_answer) = job(answer("stale", "case-y", "received", "reported"));
        let (other, other_answer) = job(answer("other", "case-z", "notified", "received"));
        commit(&store, vec![first, second, stale, other], one_by_one).await;
        assert!(matches!(
            first_answer.await.unwrap(),
            Ok(Committed::New { .. })
        ));
        assert!(matches!(
            second_answer.await.unwrap(),
            Ok(Committed::CaseMoved)
        ));
        assert!(matches!(
            stale_answer.await.unwrap(),
            Ok(Committed::CaseMoved)
        ));
        assert!(matches!(
            other_answer.await.unwrap(),
            Ok(Committed::New { .. })
        ));
        let states: Vec<(String, String)> =
            sqlx::query_as("SELECT id, state FROM cases ORDER BY id")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let states: Vec<(&str, &str)> = states
            .iter()
            .map(|(id, state)| (id.as_str(), state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("case-x", "received"),
                ("case-y", "notified"),
                ("case-z", "received")
            ]
        );
        // Only the stored answers' documents and leaves.
        assert_eq!(store.count("documents").await.unwrap(), 5);
        assert_eq!(store.log_size().await.unwrap(), 5);
        if !one_by_one {
            assert_eq!(store.commit_fallbacks(), 0, "the batch path itself");
        }
        store.close().await;
    }

    /// A partner that re-sends its ack (another signature) before the first
    /// one's group committed: both acks meet in one group. The second gets
    /// the first one's answer, which the group writes only after its append.
    #[tokio::test]
    async fn two_acks_of_one_delivery_in_one_group_get_the_same_answer() {
        use crate::store::{Acked, Evidence, NewDelivery};
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (doc, _) = job(NewDocument {
            deliveries: vec![NewDelivery {
                id: "delivery-1".into(),
                agency_id: "police.620102".into(),
                role: "copy".into(),
                starts_clock: false,
                mode: "pull".into(),
            }],
            ..document("doc", "body-doc", "sig-doc")
        });
        commit_group(&store, vec![doc]).await;

        let ack = |signature: &'static str| {
            let store = store.clone();
            async move {
                let evidence = Evidence {
                    keyid: "police-key".into(),
                    signature_input: "sig1=()".into(),
                    signature: format!("sig1=:{signature}:"),
                    body: b"{}".to_vec(),
                    sha256: "00".into(),
                };
                store
                    .record_ack(
                        "delivery-1",
                        "police.620102",
                        signature,
                        &evidence,
                        1_795_000_000_000,
                        |row: &crate::store::NewDeadline| row.clone(),
                        |_events| {
                            let event = LogEvent::DocumentRead {
                                document_id: "doc".into(),
                                reader: "police.620102".into(),
                                view: "ack".into(),
                            };
                            xlog::prepare(&event, time::OffsetDateTime::now_utc())
                        },
                        |position: &LogPosition| {
                            format!("acked at {}", position.index).into_bytes()
                        },
                    )
                    .await
            }
        };
        // Both queued behind a held turn, so they form one group.
        let turn = store.group.turn.lock().await;
        let first = tokio::spawn(ack("ack-1"));
        let second = tokio::spawn(ack("ack-2"));
        while lock(&store.group.queue).len() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        drop(turn);
        let answers = [
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        ];
        let new: Vec<&Vec<u8>> = answers
            .iter()
            .filter_map(|a| match a {
                Acked::New { answer } => Some(answer),
                _ => None,
            })
            .collect();
        let again: Vec<&Vec<u8>> = answers
            .iter()
            .filter_map(|a| match a {
                Acked::Again { answer } => Some(answer),
                _ => None,
            })
            .collect();
        assert_eq!((new.len(), again.len()), (1, 1), "{answers:?}");
        assert_eq!(new[0], b"acked at 1");
        assert_eq!(again[0], new[0], "the first ack's answer");
        assert_eq!(store.log_size().await.unwrap(), 2, "one leaf for the ack");
        store.close().await;
    }
}
