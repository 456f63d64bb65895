//! The JSON-lines access log: one object per HTTP request or TCP/originate
//! connection, with time, client address, client certificate subject,
//! listener, signed-in user (OIDC), method, path, status, bytes in/out, duration, upstream and the
//! TLS version and suite. Written to a file (append) or stdout ("-"); the
//! file is reopened on SIGHUP, so logrotate can move it away and signal.
//!
//! The file is created mode 0640 (client addresses and certificate
//! subjects are not for every local user) and never opened through a
//! symbolic link: someone who can write the log's directory could
//! otherwise point the name at another file between a rotation and the
//! SIGHUP, and have the gateway append to it.

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

/// One access-log record.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339 UTC time at which the request ended.
    pub time: String,
    /// Client address ip:port.
    pub client: String,
    /// Client certificate subject, when one was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// SHA-256 pin of the client certificate's public key, on refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_spki: Option<String>,
    /// Why the connection was refused before any request (`reason:
    /// words`); absent for requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Refusals from this address that were not logged since its last
    /// line (rate limit; all are counted in `/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusals_not_logged: Option<u64>,
    /// The signed-in user (`[listener.oidc]`), as sent in `X-Forwarded-User`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The listener's configured address.
    pub listener: String,
    /// http | tcp | originate | redirect.
    pub mode: &'static str,
    /// HTTP method (empty for tcp and originate).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Request path and query.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// HTTP/1.1, HTTP/2.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proto: String,
    /// Response status (0 for tcp and originate).
    pub status: u16,
    /// Bytes from the client (body or stream).
    pub bytes_in: u64,
    /// Bytes to the client (body or stream).
    pub bytes_out: u64,
    /// Milliseconds from request (or connection) start to end.
    pub duration_ms: u64,
    /// The upstream it went to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// TLS version with the client (or upstream, for originate).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_version: String,
    /// TLS cipher suite.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_suite: String,
}

/// Where access records go.
pub struct AccessLog {
    target: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl AccessLog {
    /// Opens `target`: a file path (created, appended) or "-" for stdout.
    pub fn open(target: &str) -> Result<Self> {
        Ok(AccessLog {
            target: target.to_string(),
            out: Mutex::new(open_target(target)?),
        })
    }

    /// Opens the file again by name (after logrotate moved it) and writes
    /// to the new one from now on. On failure the old file stays in use.
    pub fn reopen(&self) -> Result<()> {
        if self.target == "-" {
            return Ok(());
        }
        let new = open_target(&self.target)?;
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.flush();
        *out = new;
        Ok(())
    }

    /// The configured target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Writes one record as a single line (one write call, so lines from
    /// several threads never interleave).
    pub fn write(&self, mut e: Entry) {
        e.time = rfc3339_now();
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = out.write_all(&line).and_then(|_| out.flush()) {
            tracing::warn!("access log write failed: {err}");
        }
    }
}

fn open_target(target: &str) -> Result<Box<dyn Write + Send>> {
    if target == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                let msg = "is a symbolic link; the access log is not opened through one \
                           (point `access_log` at the file itself)";
                Error::io(target, std::io::Error::other(msg))
            } else {
                Error::io(target, e)
            }
        })?;
    Ok(Box::new(f))
}

/// Now as "2026-01-31T12:34:56.789Z".
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_log_is_created_0640_and_never_through_a_symlink() {
        let d = std::env::temp_dir().join(format!("pivault-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("a.log");
        super::open_target(log.to_str().unwrap()).unwrap();
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "{mode:o}");
        let link = d.join("link.log");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        let e = super::open_target(link.to_str().unwrap()).err().unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn time_format_shape() {
        let t = super::rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
