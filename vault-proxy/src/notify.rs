//! Telling a service manager what the gateway is doing (systemd's
//! `Type=notify` protocol, sd_notify(3)): ready once every listener is
//! bound, reloading while a SIGHUP reload runs, stopping when it drains,
//! and a watchdog heartbeat when the unit asks for one (`WatchdogSec=`).
//! Without `NOTIFY_SOCKET` in the environment every call does nothing, so
//! the gateway behaves the same outside systemd.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        // The manager is gone or the socket is wrong: serving goes on.
        tracing::debug!("service manager notification not sent: {e}");
    }
}

/// Every listener is bound and serving.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload (SIGHUP) starts; [`ready`] ends it. systemd 253 and later
/// require the monotonic time with it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The gateway drains and stops.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// Sends the watchdog heartbeat at half the interval the manager asked
/// for, from the control runtime: if that runtime stops making progress,
/// the heartbeats stop and the manager restarts the gateway.
pub async fn watchdog() {
    let Some(every) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval((every / 2).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}
