//! TLS policy and the loading of what it needs: the crypto provider, and
//! certificates, keys, CA bundles and CRLs read from files (or, for a
//! sealed key, through the loader the binary provides).
//!
//! One policy for every listener: TLS 1.2 and 1.3 only, ECDHE key exchange
//! (X25519, P-256, P-384) and AEAD suites only (AES-GCM, ChaCha20-Poly1305),
//! on rustls with the *ring* provider. *ring* is the crypto library the rest
//! of pivault already uses (one audited primitive set in the binary, no C
//! toolchain or cmake for aws-lc-sys); see docs/PROXY.md for the measurement.
//!
//! Client certificates (`client_ca`) are checked against the listener's
//! `client_crl` CRLs. The policy fails closed (docs/PROXY.md, "Client
//! certificate revocation"): every certificate of the chain but the trust
//! anchor is checked, a certificate whose issuer has no CRL in
//! `client_crl` is refused, and so is one whose issuer's CRL is past its
//! nextUpdate.
//!
//! A TLS-terminating listener's live, reloadable config is [`ServerTls`]
//! (module `server`).

mod server;

pub use server::{server_config, AcmeSlot, Revocable, ServerTls};

use crate::config::{ClientAuth, ClientCert, KeySource, ListenerKind, ServerCert, TlsIn};
use crate::error::{Error, Result};
use rustls::crypto::{ring as rp, CryptoProvider};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Turns a `sealed:VAULT_DIR:NAME` key reference into PEM bytes.
pub type SealedKeyLoader = Arc<dyn Fn(&str) -> Result<Vec<u8>> + Send + Sync>;

/// The crypto provider with pivault's suite and group policy.
pub fn provider() -> Arc<CryptoProvider> {
    use rp::cipher_suite::*;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_256_GCM_SHA384,
            TLS13_AES_128_GCM_SHA256,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![
            rp::kx_group::X25519,
            rp::kx_group::SECP256R1,
            rp::kx_group::SECP384R1,
        ],
        ..rp::default_provider()
    })
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::pem(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(Error::pem(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// Reads a private key from a PEM file or through the sealed-key loader.
pub fn load_key(
    key: &KeySource,
    sealed: Option<&SealedKeyLoader>,
) -> Result<PrivateKeyDer<'static>> {
    let data = match key {
        KeySource::Sealed(spec) => {
            let loader = sealed.ok_or_else(|| Error::SealedKey {
                spec: spec.clone(),
                msg: "sealed keys need the vault's passphrase; run through `pivault proxy`".into(),
            })?;
            zeroize::Zeroizing::new(loader(spec)?)
        }
        KeySource::File(p) => {
            zeroize::Zeroizing::new(std::fs::read(p).map_err(|e| Error::io(p, e))?)
        }
    };
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        Error::pem(
            key.to_string(),
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })
}

/// Loads a chain and its key and checks that they belong together.
pub fn certified_key(
    cert: &Path,
    key: &KeySource,
    sealed: Option<&SealedKeyLoader>,
) -> Result<Arc<CertifiedKey>> {
    let chain = load_certs(cert)?;
    let der = load_key(key, sealed)?;
    let signer = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| Error::Tls {
            what: format!("key {key}"),
            source: e,
        })?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|e| Error::Tls {
        what: format!("{} and key {key} do not match", cert.display()),
        source: e,
    })?;
    Ok(Arc::new(ck))
}

/// Reads a PEM CA bundle into a root store.
pub fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots.add(c).map_err(|e| Error::Tls {
            what: format!("CA file {}", path.display()),
            source: e,
        })?;
    }
    Ok(roots)
}

/// Reads a CRL file: DER (one CRL), or PEM with one or more
/// `X509 CRL` blocks. Whether each CRL is one rustls can use is
/// [`client_verifier`]'s to check, with the roots.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // A DER CRL is an ASN.1 SEQUENCE (0x30); anything else is read as PEM.
    if data.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(data)]);
    }
    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&data)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::pem(path, format!("not a PEM CRL file: {e}; {CRL_HINT}")))?;
    if crls.is_empty() {
        return Err(Error::pem(
            path,
            format!("no X509 CRL block found; {CRL_HINT}"),
        ));
    }
    Ok(crls)
}

/// What a bad `client_crl` file message tells the reader to do.
const CRL_HINT: &str = "expected a CRL in PEM (-----BEGIN X509 CRL-----) or DER from the client CA \
(`openssl crl -in FILE -noout -text` shows what the file holds); fix the file or remove it from `client_crl`";

/// The verifier for a listener's `client_ca` and `client_crl`.
///
/// With CRLs the policy fails closed: the whole chain is checked (a
/// revoked intermediate CA cuts off every client under it), a
/// certificate whose issuer has no CRL in `client_crl` is refused (a
/// forgotten CRL shows on the first connection instead of silently
/// admitting revoked certificates), and so is one whose issuer's CRL is
/// past its nextUpdate (a stale CRL cannot show recent revocations;
/// OpenSSL, and so nginx, refuse the same way).
pub fn client_verifier(clients: &ClientAuth) -> Result<Arc<dyn ClientCertVerifier>> {
    let ca = &clients.ca;
    let roots = Arc::new(load_roots(ca)?);
    let mut crls = Vec::new();
    for path in &clients.crl {
        crls.push((path, load_crls(path)?));
    }
    let build = |crls: Vec<CertificateRevocationListDer<'static>>| {
        let b = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
        if crls.is_empty() {
            b.build()
        } else {
            b.with_crls(crls).enforce_revocation_expiration().build()
        }
    };
    let all = crls.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
    let v = match build(all) {
        Ok(v) => v,
        Err(e) => {
            // Name the file at fault: the first that fails on its own.
            for (path, c) in &crls {
                if let Err(e) = build(c.clone()) {
                    return Err(Error::pem(
                        *path,
                        format!("not a usable CRL ({e}); {CRL_HINT}"),
                    ));
                }
            }
            return Err(Error::pem(ca, format!("unusable client CA: {e}")));
        }
    };
    Ok(v)
}

/// The client config of an `originate` listener (`name` in messages):
/// full verification against `ca` or the system roots, optional client
/// certificate.
pub fn client_config(
    name: &str,
    ca: Option<&Path>,
    client_cert: Option<&ClientCert>,
) -> Result<ClientConfig> {
    let roots = match ca {
        Some(ca) => load_roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(Error::pem(
                    "system trust store",
                    "no system CA certificates found; install ca-certificates or set `ca`",
                ));
            }
            roots
        }
    };
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Tls {
            what: format!("listener {name}"),
            source: e,
        })?
        .with_root_certificates(roots);
    let cfg = match client_cert {
        Some(c) => {
            let chain = load_certs(&c.chain)?;
            let key = load_key(&KeySource::File(c.key.clone()), None)?;
            b.with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls {
                    what: format!("client_cert {}", c.chain.display()),
                    source: e,
                })?
        }
        None => b.with_no_client_auth(),
    };
    Ok(cfg)
}

/// The client config for an OIDC identity provider (`[listener.oidc]`):
/// full verification against `ca_file` or the system roots, HTTP/1.1.
pub fn idp_client_config(ca: Option<&Path>) -> Result<ClientConfig> {
    let roots = match ca {
        Some(ca) => load_roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(Error::pem(
                    "system trust store",
                    "no system CA certificates found for the identity provider; install ca-certificates or set `ca_file`",
                ));
            }
            roots
        }
    };
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Tls {
            what: "identity provider client".into(),
            source: e,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Loads every certificate, key, CA and CRL a config names, without binding:
/// what `pivault proxy check` runs. Sealed keys are skipped unless a loader
/// is given.
pub fn check_files(cfg: &crate::config::Config, sealed: Option<&SealedKeyLoader>) -> Result<()> {
    if let Some(a) = &cfg.acme {
        crate::acme::check(a)?;
    }
    for li in &cfg.listener {
        match &li.kind {
            ListenerKind::Http { tls, oidc, .. } => {
                check_tls_in(&li.listen, tls, sealed)?;
                if let Some(o) = oidc {
                    if sealed.is_some() || o.sealed_specs().next().is_none() {
                        crate::oidc::Oidc::load(o, sealed)?;
                    }
                }
            }
            ListenerKind::Tcp { tls, .. } => check_tls_in(&li.listen, tls, sealed)?,
            ListenerKind::Originate {
                ca, client_cert, ..
            } => {
                // Without either, the system roots are all there is to
                // load, and they are the machine's, not the config's.
                if ca.is_some() || client_cert.is_some() {
                    client_config(&li.listen, ca.as_deref(), client_cert.as_ref())?;
                }
            }
            ListenerKind::Redirect { .. } => {}
        }
    }
    Ok(())
}

/// [`check_files`] for one TLS-terminating listener: everything but the
/// sealed keys when there is no loader for them.
fn check_tls_in(name: &str, tls: &TlsIn, sealed: Option<&SealedKeyLoader>) -> Result<()> {
    let uses_sealed = tls.keys().any(|k| matches!(k, KeySource::Sealed(_)));
    if uses_sealed && sealed.is_none() {
        if let ServerCert::Files { chain, .. } = &tls.cert {
            load_certs(chain)?;
        }
        for s in &tls.sni {
            load_certs(&s.cert)?;
        }
        if let Some(c) = &tls.clients {
            client_verifier(c)?;
        }
    } else {
        server_config(name, tls, &[], sealed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
