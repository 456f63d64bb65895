//! `[limits]`: connection and request limits, each with a default, and
//! the bounds they are held to so that no deadline or semaphore can
//! overflow or be zero.

use super::Source;
use crate::error::Result;
use serde::Deserialize;

/// The largest value of a `[limits]` timeout, in seconds (a day).
const MAX_SECONDS: u64 = 86_400;
/// The largest value of a `[limits]` count.
const MAX_COUNT: u64 = 10_000_000;

/// `[limits]`: every one has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections per process, taken before the TLS handshake.
    pub max_connections: usize,
    /// Seconds a client has to finish the TLS handshake.
    pub handshake_timeout_s: u64,
    /// Seconds a client has to send a whole request header (slowloris).
    pub header_timeout_s: u64,
    /// Seconds without a byte either way before a connection is closed.
    pub idle_timeout_s: u64,
    /// Largest request header block in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Seconds the upstream has to begin its response once the request
    /// (with its whole body) is sent; then 504.
    pub upstream_timeout_s: u64,
    /// Seconds a request body may pause between two bytes; then 408.
    pub body_timeout_s: u64,
    /// Seconds to connect to an upstream; then 502.
    pub connect_timeout_s: u64,
    /// Idle keep-alive upstream connections kept per worker thread and
    /// `http` listener (nginx's `keepalive`); 0 opens one per request.
    pub upstream_idle: usize,
    /// Seconds in-flight work may take to finish after SIGTERM.
    pub drain_timeout_s: u64,
    /// Open client connections per listener (so that one listener's
    /// clients cannot take every slot of `max_connections`).
    pub max_connections_per_listener: usize,
    /// Open client connections per client IP address, per listener.
    pub max_connections_per_client: usize,
    /// Seconds an HTTP/2 connection may stay open with no stream open;
    /// PINGs and window updates do not count as activity.
    pub h2_idle_timeout_s: u64,
    /// Open upstream connections per `http` listener, idle or busy; at
    /// the cap a request waits (up to `upstream_timeout_s`) for one, then
    /// gets 503.
    pub max_upstream_connections: usize,
    /// Requests of one HTTP/2 client connection that go upstream at once;
    /// its other streams wait their turn.
    pub max_upstream_per_connection: usize,
    /// Lines logged per client address and window for refused TLS
    /// handshakes; beyond that they are counted and the next line says
    /// how many were not logged.
    pub refusal_log_burst: u32,
    /// The window of `refusal_log_burst`, in seconds.
    pub refusal_log_window_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            handshake_timeout_s: 10,
            header_timeout_s: 10,
            idle_timeout_s: 75,
            max_header_bytes: 65_536,
            upstream_timeout_s: 60,
            body_timeout_s: 60,
            connect_timeout_s: 5,
            upstream_idle: 64,
            drain_timeout_s: 30,
            max_connections_per_listener: 5_000,
            max_connections_per_client: 512,
            h2_idle_timeout_s: 75,
            max_upstream_connections: 512,
            max_upstream_per_connection: 16,
            refusal_log_burst: 5,
            refusal_log_window_s: 60,
        }
    }
}

impl Limits {
    /// Refuses a zero or out-of-range limit, naming it and its bounds.
    pub(super) fn check(&self, at: &Source<'_>) -> Result<()> {
        let l = self;
        for (k, v) in [
            ("max_connections", l.max_connections as u64),
            ("handshake_timeout_s", l.handshake_timeout_s),
            ("header_timeout_s", l.header_timeout_s),
            ("idle_timeout_s", l.idle_timeout_s),
            ("upstream_timeout_s", l.upstream_timeout_s),
            ("connect_timeout_s", l.connect_timeout_s),
            ("body_timeout_s", l.body_timeout_s),
            (
                "max_connections_per_listener",
                l.max_connections_per_listener as u64,
            ),
            (
                "max_connections_per_client",
                l.max_connections_per_client as u64,
            ),
            ("h2_idle_timeout_s", l.h2_idle_timeout_s),
            (
                "max_upstream_connections",
                l.max_upstream_connections as u64,
            ),
            (
                "max_upstream_per_connection",
                l.max_upstream_per_connection as u64,
            ),
        ] {
            if v == 0 {
                return Err(at.key(None, k, "expected a number greater than 0"));
            }
            // Bounded so that deadlines and semaphores cannot overflow.
            let (max, what) = if k.ends_with("_s") {
                (MAX_SECONDS, " seconds (a day)")
            } else {
                (MAX_COUNT, "")
            };
            if v > max {
                return Err(at.key(None, k, format!("expected at most {max}{what}")));
            }
        }
        if l.max_header_bytes < 1024 {
            return Err(at.key(None, "max_header_bytes", "expected at least 1024 bytes"));
        }
        Ok(())
    }
}
