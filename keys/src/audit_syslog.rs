//! Audit records to the local syslog daemon (journald or rsyslog listen on
//! `/dev/log`), so the pipeline that collects a laptop's logs (a SIEM)
//! receives them too. One datagram per record, RFC 3164 framing, facility
//! `authpriv`; failed unseals at severity `warning`, the rest `info`. A
//! missing or full syslog socket never fails the event being logged.

use crate::audit::Record;
use std::os::unix::net::UnixDatagram;

/// Facility authpriv (10) × 8.
const AUTHPRIV: u8 = 10 * 8;
const WARNING: u8 = 4;
const INFO: u8 = 6;

/// The syslog socket: `/dev/log`, or `PIVAULT_SYSLOG_SOCKET` (for tests
/// and systems with the socket elsewhere).
fn socket_path() -> std::path::PathBuf {
    std::env::var_os("PIVAULT_SYSLOG_SOCKET")
        .map(Into::into)
        .unwrap_or_else(|| "/dev/log".into())
}

/// The datagram for `rec`: `<PRI>pivault[PID]: pivault-audit <json>`.
pub(crate) fn message(rec: &Record) -> String {
    let sev = if rec.ok { INFO } else { WARNING };
    format!(
        "<{}>pivault[{}]: pivault-audit {}",
        AUTHPRIV + sev,
        rec.pid,
        rec.line()
    )
}

/// Sends `rec`; a failure is only logged as a warning on stderr.
pub(crate) fn send(rec: &Record) {
    let path = socket_path();
    let res = UnixDatagram::unbound().and_then(|s| s.send_to(message(rec).as_bytes(), &path));
    if let Err(e) = res {
        tracing::warn!(
            "could not send audit record {} to syslog at {}: {e}",
            rec.seq,
            path.display()
        );
    }
}
