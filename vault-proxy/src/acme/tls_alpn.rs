//! TLS-ALPN-01 (RFC 8737): the CA connects to port 443 offering only ALPN
//! `acme-tls/1`, with SNI the domain being validated, and expects a
//! self-signed certificate for it carrying the critical acmeIdentifier
//! extension (the SHA-256 of the key authorization). A `cert = "acme"`
//! listener with `challenge = "tls-alpn-01"` reads each ClientHello
//! first ([`accept`]): such a check gets the challenge certificate and
//! the connection ends after the handshake; every other client gets the
//! listener's own configuration, so ordinary ALPN (h2, http/1.1) is
//! untouched.

use super::Challenges;
use crate::error::{Error, Result};
use rustls::server::{Acceptor, ServerConfig};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::PrivateKeyDer;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

/// The ALPN protocol of TLS-ALPN-01.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The challenge certificate for `domain` and the key authorization's
/// `digest`.
pub(super) fn cert(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>> {
    let e = |e: rcgen::Error| Error::Acme(format!("tls-alpn-01 certificate: {e}"));
    let mut p = rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(e)?;
    p.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let cert = p.self_signed(&key).map_err(e)?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|m| Error::Acme(format!("tls-alpn-01 key: {m}")))?;
    let signer = crate::tls::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| Error::Tls {
            what: "tls-alpn-01 key".into(),
            source: e,
        })?;
    // No `keys_match`: it parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension; the key is the one
    // that just signed it.
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// The config of one answer: the challenge certificate, ALPN
/// `acme-tls/1` only, no client certificate.
fn config(ck: Arc<CertifiedKey>) -> Result<Arc<ServerConfig>> {
    let mut cfg = ServerConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls {
            what: "tls-alpn-01".into(),
            source: e,
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(ck)));
    cfg.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// The server handshake of a listener answering TLS-ALPN-01: None when
/// the connection was a CA's check (answered, to be closed), else the
/// stream under `normal`.
pub async fn accept<IO>(
    io: IO,
    challenges: &Challenges,
    normal: Arc<ServerConfig>,
) -> std::io::Result<Option<TlsStream<IO>>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = tokio_rustls::LazyConfigAcceptor::new(Acceptor::default(), io).await?;
    let challenge = {
        let hello = start.client_hello();
        let acme = hello
            .alpn()
            .is_some_and(|mut a| a.any(|p| p == ACME_TLS_ALPN));
        hello
            .server_name()
            .filter(|_| acme)
            .and_then(|n| challenges.tls_alpn_cert(n))
    };
    match challenge {
        Some(ck) => {
            let cfg = config(ck).map_err(std::io::Error::other)?;
            // The CA only looks at the handshake.
            let _ = start.into_stream(cfg).await;
            Ok(None)
        }
        None => start.into_stream(normal).await.map(Some),
    }
}
