//! Background jobs that act on time passing rather than on a request: the
//! overdue sweep, the leaf-hash indexer of the exchange log, and
//! [`spawn_every`], the loop every periodic job runs in. (The delivery worker
//! lives with delivery, checkpoint publishing with the log.)
//!
//! The sweep finds deadlines that ran out unanswered, marks each overdue and
//! writes a `deadline.missed` entry to the exchange log in the same
//! transaction. Marking is guarded by the deadline's current status, so a
//! deadline is logged as missed once however many sweeps (or gateway
//! instances) see it, and a document that answers it first wins.

use std::sync::Arc;
use std::time::Duration;

use crate::app::Gateway;
use crate::store::StoreError;
use crate::timefmt::{self, unix_ms};
use crate::xlog::{self, LogEvent};

/// At most this many deadlines are marked per sweep; the rest wait for the next.
const SWEEP_BATCH: i64 = 500;

/// One sweep at the gateway clock's "now"; returns how many deadlines it marked overdue.
pub async fn sweep_overdue(gw: &Gateway) -> Result<usize, StoreError> {
    let now = gw.clock.now();
    let lapsed = gw.store.lapsed_deadlines(unix_ms(now), SWEEP_BATCH).await?;
    let mut marked = 0;
    for deadline in &lapsed {
        let event = LogEvent::DeadlineMissed {
            case_id: deadline.case_id.clone(),
            step: deadline.step.clone(),
            due_at: timefmt::utc_ms(deadline.due_at_ms),
        };
        if let Some(position) = gw
            .store
            .mark_overdue(deadline, &xlog::prepare(&event, now))
            .await?
        {
            marked += 1;
            crate::metrics::deadline_missed();
            // E-mail to the case's clerks follows from the `deadline.missed`
            // entry just logged: src/notify reads the log (once per entry).
            tracing::info!(case_id = %deadline.case_id, step = %deadline.step, log_index = position.index, "deadline missed");
        }
    }
    Ok(marked)
}

/// Runs [`sweep_overdue`] every `interval` until `stop` says so (a sweep
/// under way is finished first: its marks and log entries commit together).
pub fn spawn_overdue_sweep(
    gw: Arc<Gateway>,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn_every(interval, stop, move || {
        let gw = gw.clone();
        async move {
            if let Err(e) = sweep_overdue(&gw).await {
                tracing::warn!(error = %e, "overdue sweep failed; will try again");
            }
        }
    })
}

/// Leaves per transaction of the leaf-hash indexer: small enough that group
/// commits waiting for the (SQLite: single) writer connection get it back
/// within milliseconds.
const LEAF_INDEX_BATCH: u64 = 10_000;

/// Keeps the exchange log's leaf-hash index (`?leaf_hash=` proofs) caught up
/// with the log, every `interval`. Lookups are right while it lags (they scan
/// the unindexed tail), only slower.
pub fn spawn_leaf_indexer(
    gw: Arc<Gateway>,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn_every(interval, stop, move || {
        let gw = gw.clone();
        async move {
            if let Err(e) = gw.store.index_leaf_hashes(LEAF_INDEX_BATCH).await {
                tracing::warn!(error = %e, "leaf-hash indexing failed; will try again");
            }
        }
    })
}

/// Runs `round` every `interval` (the first at once) until `stop` says so or
/// its sender is gone; a round under way is finished, never cut short.
pub fn spawn_every<F, Fut>(
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    round: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            round().await;
        }
    })
}
