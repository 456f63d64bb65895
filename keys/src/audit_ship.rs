//! Shipping the audit log to the firm's log pipeline over TLS, losing
//! nothing: every record as an RFC 5424 syslog message with structured
//! data, framed by octet counting over TLS (RFC 5425), to a server whose
//! certificate is verified.
//!
//! The log itself is the spool. `audit.log` is local, append-only and
//! already holds every record with its `seq`; what has been delivered is
//! one marker beside it, `audit.shipped` (`{"remote":…,"seq":N}`: records
//! up to N are delivered to that remote). A shipment sends every record
//! after the marker, in order, on one connection, then closes it cleanly
//! and waits for the server to close its side: the server has then read
//! every byte sent. Only then does the marker move. A server that dies
//! mid-way (a restart) leaves the marker where it was, and the next
//! shipment sends those records again: delivery is at least once, and the
//! receiver sees repeats and gaps by `seq` (and each message carries the
//! signed record, so it can verify it without the vault).
//!
//! Shipping runs after each append when a remote is configured
//! (`--audit-remote`, `PIVAULT_AUDIT_REMOTE`, or `/etc/pivault/audit.toml`),
//! and by hand with `pivault audit ship`.

use crate::audit::{self, Record};
use crate::{Error, Result};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The marker's file name in the vault directory.
pub const SHIPPED_FILE: &str = "audit.shipped";

/// The structured-data ID of pivault's parameters. 32473 is the private
/// enterprise number that RFC 5612 reserves for documentation; it stands
/// until pivault has one of its own.
const SD_ID: &str = "pivault@32473";

/// Facility authpriv (10) × 8, as the local syslog copy uses.
const AUTHPRIV: u8 = 10 * 8;

/// How long a connection, a write or the server's close may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the audit log goes: a syslog-over-TLS server and how to trust it.
#[derive(Clone)]
pub struct Remote {
    url: String,
    host: String,
    port: u16,
    name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// The configuration file a machine's administrator puts in place
/// (`/etc/pivault/audit.toml`, or `PIVAULT_AUDIT_CONFIG`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    remote: String,
    #[serde(default)]
    ca: Option<PathBuf>,
}

/// The default configuration file.
pub const CONFIG_FILE: &str = "/etc/pivault/audit.toml";

impl Remote {
    /// `tls://host:port`, trusting the CA certificates in the PEM file `ca`,
    /// or the system's roots when there is none.
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Remote> {
        let bad = |why: &str| Error::AuditRemote(format!("{url}: {why}"));
        let rest = url.strip_prefix("tls://").ok_or_else(|| {
            bad("use tls://HOST:PORT (syslog over TLS, RFC 5425; port 6514 is usual)")
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("no port (tls://HOST:6514)"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| bad("the host is not a valid DNS name or IP address"))?;
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(ca) => {
                let pem = std::fs::read(ca).map_err(|e| Error::io(ca, e))?;
                let mut any = false;
                for cert in rustls_pemfile_certs(&pem) {
                    roots
                        .add(cert)
                        .map_err(|e| Error::AuditRemote(format!("{}: {e}", ca.display())))?;
                    any = true;
                }
                if !any {
                    return Err(Error::AuditRemote(format!(
                        "{}: no PEM certificate in it",
                        ca.display()
                    )));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(bad(
                        "no system CA certificates found; name the server's CA with --audit-ca",
                    ));
                }
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::AuditRemote(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Remote {
            url: url.to_string(),
            host,
            port,
            name,
            tls: Arc::new(tls),
        })
    }

    /// The remote a configuration file names.
    pub fn from_config_file(path: &Path) -> Result<Remote> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: FileConfig = toml::from_str(&text)
            .map_err(|e| Error::AuditRemote(format!("{}: {e}", path.display())))?;
        Remote::new(&cfg.remote, cfg.ca.as_deref())
    }

    /// The URL it was made from.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

static REMOTE: OnceLock<Remote> = OnceLock::new();

/// Ships every record after each append to `remote` (for the process).
pub fn enable(remote: Remote) {
    let _ = REMOTE.set(remote);
}

/// The remote enabled for this process, if any.
pub fn enabled() -> Option<&'static Remote> {
    REMOTE.get()
}

/// What a shipment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// Records sent.
    pub sent: usize,
    /// The last record now delivered, if any is.
    pub through: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    remote: String,
    seq: u64,
}

/// The marker's path in `vault`.
pub fn marker_path(vault: &Path) -> PathBuf {
    vault.join(SHIPPED_FILE)
}

fn read_marker(path: &Path) -> Result<Option<Marker>> {
    match crate::read_regular(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::AuditRemote(format!(
                "{}: {e}; remove it to ship the whole log again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The records of `vault`'s log not yet delivered to `remote`.
pub fn backlog(vault: &Path, remote: &Remote) -> Result<Vec<Record>> {
    let done = read_marker(&marker_path(vault))?
        .filter(|m| m.remote == remote.url)
        .map(|m| m.seq);
    let records = audit::read(vault)?;
    Ok(match done {
        // A log shorter than the marker was replaced or cut: send it all
        // (the receiver sees `seq` start again).
        Some(n) if records.last().is_some_and(|r| r.seq >= n) => {
            records.into_iter().filter(|r| r.seq > n).collect()
        }
        _ => records,
    })
}

/// Sends `vault`'s backlog to `remote` and moves the marker once the server
/// has read it all. One shipper at a time per vault: a lock on the vault
/// directory itself (no lock file: a shipment that fails leaves the vault
/// as it was), which no other pivault lock uses.
pub fn ship(vault: &Path, remote: &Remote) -> Result<Shipped> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        vault,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(vault, e.into()))?;
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(vault, e.into()))?;
    let todo = backlog(vault, remote)?;
    let Some(last) = todo.last().map(|r| r.seq) else {
        return Ok(Shipped {
            sent: 0,
            through: read_marker(&marker_path(vault))?.map(|m| m.seq),
        });
    };
    let mut out = Vec::new();
    for r in &todo {
        frame(&message(r), &mut out);
    }
    deliver(remote, &out)?;
    let m = serde_json::to_vec(&Marker {
        remote: remote.url.clone(),
        seq: last,
    })
    .map_err(|e| Error::AuditRemote(e.to_string()))?;
    let path = marker_path(vault);
    crate::write_atomic(&path, &m, 0o600)?;
    Ok(Shipped {
        sent: todo.len(),
        through: Some(last),
    })
}

/// Connects, sends `bytes`, closes cleanly and waits for the server's
/// close: success means the server read everything.
fn deliver(remote: &Remote, bytes: &[u8]) -> Result<()> {
    let fail = |what: String| Error::AuditRemote(format!("{}: {what}", remote.url));
    let addrs: Vec<_> = (remote.host.as_str(), remote.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve: {e}")))?
        .collect();
    let mut last_err = None;
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        fail(format!(
            "cannot connect: {}",
            last_err.map_or("no address".into(), |e| e.to_string())
        ))
    })?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .and_then(|_| tcp.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| fail(e.to_string()))?;
    let conn = rustls::ClientConnection::new(remote.tls.clone(), remote.name.clone())
        .map_err(|e| fail(e.to_string()))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The handshake happens on the first write; a certificate the CA does
    // not vouch for fails it, naming why.
    tls.write_all(bytes)
        .and_then(|_| tls.flush())
        .map_err(|e| fail(format!("TLS or send failed: {e}")))?;
    tls.conn.send_close_notify();
    tls.flush()
        .map_err(|e| fail(format!("close failed: {e}")))?;
    while tls.conn.wants_write() {
        tls.conn
            .write_tls(&mut tls.sock)
            .map_err(|e| fail(format!("close failed: {e}")))?;
    }
    let _ = tls.sock.shutdown(std::net::Shutdown::Write);
    // The server closes its side once it has read up to our close: an
    // orderly end of stream (with or without its close_notify).
    let mut sink = [0u8; 512];
    loop {
        match tls.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(fail(format!("the server did not confirm: {e}"))),
        }
    }
}

/// RFC 5425 framing: the message's length in octets, a space, the message.
fn frame(msg: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
    out.extend_from_slice(msg.as_bytes());
}

/// `rec` as an RFC 5424 message: header fields from the record, pivault's
/// structured data (seq, event, outcome, slot, user), and the signed
/// record itself, as JSON, for a receiver that verifies it.
pub fn message(rec: &Record) -> String {
    let sev = if rec.ok { 6 } else { 4 };
    let mut sd = format!(
        "[{SD_ID} seq=\"{}\" event=\"{}\" ok=\"{}\"",
        rec.seq,
        sd_escape(&rec.event),
        rec.ok
    );
    if let Some(slot) = rec.slot {
        sd.push_str(&format!(" slot=\"{slot}\""));
    }
    sd.push_str(&format!(
        " user=\"{}\" uid=\"{}\"]",
        sd_escape(&rec.user),
        rec.uid
    ));
    format!(
        "<{}>1 {} {} pivault {} {} {sd} {}",
        AUTHPRIV + sev,
        rec.time,
        header_field(&rec.host, 255),
        rec.pid,
        header_field(&rec.event, 32),
        rec.line()
    )
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// octets, `-` when empty (RFC 5424 §6).
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event: &str, ok: bool) -> Record {
        Record {
            seq: 7,
            ts: 0,
            time: "2026-12-03T15:00:00Z".into(),
            event: event.into(),
            ok,
            slot: Some(1),
            user: "ana \"x\"]".into(),
            uid: 1000,
            host: "lap top".into(),
            pid: 42,
            reason: None,
            details: Default::default(),
            prev: "00".into(),
            sig: None,
        }
    }

    #[test]
    fn a_record_becomes_an_rfc5424_message_with_escaped_structured_data() {
        let m = message(&rec("unseal-failed", false));
        assert!(
            m.starts_with("<84>1 2026-12-03T15:00:00Z laptop pivault 42 unseal-failed [pivault@32473 seq=\"7\" event=\"unseal-failed\" ok=\"false\" slot=\"1\" user=\"ana \\\"x\\\"\\]\" uid=\"1000\"] {"),
            "{m}"
        );
        // The signed record follows, whole.
        assert!(m.ends_with(&rec("unseal-failed", false).line()));
        let mut out = Vec::new();
        frame(&m, &mut out);
        assert!(out.starts_with(format!("{} <84>", m.len()).as_bytes()));
    }

    #[test]
    fn bad_urls_are_refused_naming_what_to_write() {
        for (url, why) in [
            ("udp://h:514", "use tls://"),
            ("tls://host", "no port"),
            ("tls://host:x", "not a number"),
        ] {
            let e = Remote::new(url, None).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
