//! Process signals of `serve`: SIGTERM and SIGINT stop the gateway
//! gracefully — no new connections, requests in flight finish (up to
//! `shutdown_timeout_secs`), then the background jobs end — and a second
//! one stops at once; SIGHUP reloads the trust store (agency CAs, signer
//! certificates, CRLs) and the mutual-TLS listener's certificate and key. In-process servers (tests) are stopped through their
//! handle instead and install no signal handler.

use anyhow::Context;

use crate::app::Running;

/// Serves until the server ends or a stop signal arrives, then waits for the
/// graceful shutdown; `Ok` when everything stopped cleanly.
#[cfg(unix)]
pub async fn run_until_stopped(running: Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let Running {
        handle,
        reloadable,
        mut task,
        ..
    } = running;
    loop {
        tokio::select! {
            served = &mut task => return Ok(served.context("server task")??),
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping gracefully (no new connections; requests in flight finish)");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping gracefully (no new connections; requests in flight finish)");
                break;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading certificates, keys and CRLs");
                let reloadable = reloadable.clone();
                let _ = tokio::task::spawn_blocking(move || reloadable.reload_now()).await;
            }
        }
    }
    let graceful = handle.stop(true);
    tokio::pin!(graceful);
    tokio::select! {
        _ = &mut graceful => {}
        _ = term.recv() => {
            tracing::warn!("second SIGTERM: stopping now");
            handle.stop(false).await;
        }
        _ = int.recv() => {
            tracing::warn!("second SIGINT: stopping now");
            handle.stop(false).await;
        }
    }
    Ok(task.await.context("server task")??)
}

/// Serves until the server ends or Ctrl-C, then stops gracefully.
#[cfg(not(unix))]
pub async fn run_until_stopped(running: Running) -> anyhow::Result<()> {
    let Running {
        handle, mut task, ..
    } = running;
    tokio::select! {
        served = &mut task => return Ok(served.context("server task")??),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping gracefully"),
    }
    handle.stop(true).await;
    Ok(task.await.context("server task")??)
}
