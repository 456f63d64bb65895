//! Every refused TLS handshake is seen: one structured line in the access
//! log and the gateway's log (client address, listener, the reason in
//! words, the presented certificate's subject and SPKI pin where there was
//! one), and a labelled count in `/metrics`. 17.04(4) asks a firm to
//! monitor for unauthorized access; a forged certificate that claims an
//! allowed name is exactly such an attempt, and rustls refuses it before
//! any request exists to log.
//!
//! The presented certificate: rustls reports a failed verification without
//! the certificate, so the client verifier is wrapped
//! ([`RecordingVerifier`]) to note the end-entity certificate on the
//! thread that verifies it. The verification and the handshake's failure
//! happen in the same poll of the accept future, on the same thread, so
//! the listener reads the note right after the failure; where it cannot
//! (a task resumed elsewhere), the line just lacks the certificate.
//!
//! Floods: each client address gets `refusal_log_burst` lines per
//! `refusal_log_window_s`; beyond that refusals are counted, and the next
//! line from that address says how many were not logged (counted, never
//! dropped from `/metrics`).

use crate::access::PeerCert;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

thread_local! {
    /// The client certificate last presented to a verifier on this thread.
    static PRESENTED: RefCell<Option<PeerCert>> = const { RefCell::new(None) };
}

/// Forgets any certificate noted on this thread (before a handshake).
pub(crate) fn clear_presented() {
    PRESENTED.with(|p| p.borrow_mut().take());
}

/// The certificate the handshake that just failed on this thread presented.
pub(crate) fn take_presented() -> Option<PeerCert> {
    PRESENTED.with(|p| p.borrow_mut().take())
}

/// A client verifier that notes each presented end-entity certificate and
/// otherwise defers to the real one.
#[derive(Debug)]
pub(crate) struct RecordingVerifier(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        PRESENTED.with(|p| *p.borrow_mut() = PeerCert::parse(end_entity.as_ref()));
        self.0.verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }
}

/// The reason a handshake failed, in words for a log reader.
pub(crate) fn words(e: &std::io::Error) -> String {
    use rustls::{CertificateError as C, Error as E, PeerIncompatible as P};
    let Some(t) = e.get_ref().and_then(|r| r.downcast_ref::<E>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => {
                "the client closed the connection during the handshake".into()
            }
            _ => format!("handshake failed: {e}"),
        };
    };
    match t {
        E::NoCertificatesPresented => "no client certificate presented".into(),
        E::InvalidCertRevocationList(c) => format!(
            "client certificate revocation status unknown: its issuer's CRL in client_crl does not verify ({c:?}); replace it with the CA's CRL"
        ),
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "client certificate not issued by client_ca (unknown issuer)".into()
            }
            C::Expired | C::ExpiredContext { .. } => "client certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "client certificate not valid yet".into()
            }
            C::Revoked => {
                "client certificate revoked (it, or a CA certificate of its chain, is listed in a client_crl CRL)"
                    .into()
            }
            C::UnknownRevocationStatus => {
                "client certificate revocation status unknown: no CRL in client_crl from its issuer (or from the issuer of a CA certificate of its chain)"
                    .into()
            }
            C::ExpiredRevocationList => {
                "client certificate revocation status unknown: its issuer's CRL in client_crl is past its nextUpdate; install a fresh CRL".into()
            }
            C::ExpiredRevocationListContext { next_update, .. } => format!(
                "client certificate revocation status unknown: its issuer's CRL in client_crl expired at {} (nextUpdate); install a fresh CRL",
                rfc3339(*next_update)
            ),
            C::BadEncoding => {
                "client certificate malformed (or an unsupported version, e.g. X.509 v1)".into()
            }
            C::BadSignature => "client certificate signature does not verify".into(),
            other => format!("client certificate refused: {other:?}"),
        },
        E::PeerIncompatible(p) => match p {
            P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled
            | P::SupportedVersionsExtensionRequired
            | P::Tls13RequiredForQuic => {
                "no TLS version in common (only TLS 1.2 and 1.3 are accepted)".into()
            }
            other => format!("no cipher suite or group in common ({other:?})"),
        },
        E::InvalidMessage(_)
        | E::InappropriateHandshakeMessage { .. }
        | E::InappropriateMessage { .. } => "not TLS, or a malformed handshake message".into(),
        other => format!("handshake refused: {other}"),
    }
}

/// A certificate-check time as an RFC 3339 UTC timestamp.
fn rfc3339(t: rustls::pki_types::UnixTime) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Per client address: how many refusal lines were written in the current
/// window, and how many were not.
#[derive(Default)]
pub struct RefusalLog {
    seen: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    start_ms: u64,
    logged: u32,
    suppressed: u64,
}

/// Whether to write a line for a refusal from `ip` now, and how many of
/// its refusals went unlogged before it.
pub(crate) struct Verdict {
    pub log: bool,
    pub unlogged_before: u64,
}

impl RefusalLog {
    /// Decides for one refusal from `ip`.
    pub(crate) fn note(&self, ip: IpAddr, burst: u32, window_s: u64) -> Verdict {
        let now = crate::watch::now_ms();
        let window_ms = window_s.max(1) * 1000;
        let mut m = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= 4096 {
            // Many addresses: forget the ones whose window has passed.
            m.retain(|_, w| now.saturating_sub(w.start_ms) < window_ms);
        }
        let w = m.entry(ip).or_insert(Window {
            start_ms: now,
            logged: 0,
            suppressed: 0,
        });
        let mut unlogged_before = 0;
        if now.saturating_sub(w.start_ms) >= window_ms {
            unlogged_before = w.suppressed;
            *w = Window {
                start_ms: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < burst {
            w.logged += 1;
            Verdict {
                log: true,
                unlogged_before,
            }
        } else {
            w.suppressed += 1;
            Verdict {
                log: false,
                unlogged_before: 0,
            }
        }
    }
}
