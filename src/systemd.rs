//! Talking to systemd (`Type=notify`): readiness, the watchdog, reloads and
//! stopping, as `sd_notify(3)` datagrams to `$NOTIFY_SOCKET`. Without that
//! variable (not started by systemd) every call here does nothing.
//!
//! A failed notification is logged and otherwise ignored: the server serves
//! the same whether or not its supervisor heard it.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use crate::domain::Core;

/// Tells systemd the server is ready: the store is open and the listener
/// bound, so a connection made from now on is answered.
pub fn ready() {
    send(&[NotifyState::Ready], "READY");
}

/// Tells systemd the server is draining and will exit.
pub fn stopping() {
    send(&[NotifyState::Stopping], "STOPPING");
}

/// Tells systemd a reload has started. systemd 253 and later match the
/// reload to this message by the monotonic time it carries.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(e) => tracing::warn!(error = %e, "cannot read the monotonic clock for systemd"),
    }
    send(&states, "RELOADING");
}

/// Tells systemd a reload is over (whether or not it changed anything).
pub fn reloaded() {
    send(&[NotifyState::Ready], "READY after reload");
}

/// When systemd asked for a watchdog (`WatchdogSec=`, passed on as
/// `$WATCHDOG_USEC` for this process), pings it at half that interval for
/// as long as the server is healthy: the runtime runs this task and the
/// store answers a read. A wedged runtime or an unreadable store stops the
/// pings, and systemd restarts the service.
///
/// The task holds the core only while it checks it, so shutdown, which
/// waits for the last holder of the store, never waits for the watchdog.
pub fn start_watchdog(core: &Arc<Core>) -> Option<JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(Duration::from_millis(1));
    tracing::info!(
        interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        "systemd watchdog enabled"
    );
    let core = Arc::downgrade(core);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A failure is logged when it starts, not at every ping.
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(core) = core.upgrade() else { return };
            let result = match core.store().read() {
                Ok(_) => sd_notify::notify(&[NotifyState::Watchdog])
                    .map_err(|e| format!("cannot notify systemd (WATCHDOG): {e}")),
                Err(e) => Err(format!("store unreadable, not pinging the watchdog: {e}")),
            };
            drop(core);
            match result {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    tracing::warn!("{e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }))
}

fn send(states: &[NotifyState], what: &str) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd ({what})");
    }
}
