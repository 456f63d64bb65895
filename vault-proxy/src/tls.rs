//! TLS settings and certificate loading.
//!
//! One policy for every listener: TLS 1.2 and 1.3 only, ECDHE key exchange
//! (X25519, P-256, P-384) and AEAD suites only (AES-GCM, ChaCha20-Poly1305),
//! on rustls with the *ring* provider. *ring* is the crypto library the rest
//! of pivault already uses (one audited primitive set in the binary, no C
//! toolchain or cmake for aws-lc-sys); see docs/PROXY.md for the measurement.
//!
//! A listener's [`ServerTls`] holds its current `ServerConfig` behind an
//! atomic swap: [`ServerTls::reload`] builds a new one from the files and
//! swaps it in only when everything loaded, so a bad file keeps the old
//! certificate in service. Open connections keep the config they started
//! with, except that one whose client certificate a reloaded CRL revokes
//! is closed ([`ServerTls::revoked`]).
//!
//! Client certificates (`client_ca`) are checked against the listener's
//! `client_crl` CRLs, loaded and reloaded with the certificates. The policy
//! fails closed (docs/PROXY.md, "Client certificate revocation"): every
//! certificate of the chain but the trust anchor is checked, a certificate
//! whose issuer has no CRL in `client_crl` is refused, and so is one whose
//! issuer's CRL is past its nextUpdate.

use crate::config::Listener;
use crate::error::{Error, Result};
use arc_swap::ArcSwap;
use rustls::crypto::{ring as rp, CryptoProvider};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The certificate `cert = "acme"` listeners serve now: [`crate::acme`]
/// stores a new one on issue and renewal, and the next handshake uses it
/// (no config rebuild, no restart; open connections keep theirs).
pub type AcmeSlot = Arc<ArcSwap<CertifiedKey>>;

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

/// Reads a private key from a PEM file or a sealed reference.
pub fn load_key(spec: &str, sealed: Option<&SealedKeyLoader>) -> Result<PrivateKeyDer<'static>> {
    let (data, path) = if spec.starts_with("sealed:") {
        let loader = sealed.ok_or_else(|| Error::SealedKey {
            spec: spec.into(),
            msg: "sealed keys need the vault's passphrase; run through `pivault proxy`".into(),
        })?;
        (zeroize::Zeroizing::new(loader(spec)?), PathBuf::from(spec))
    } else {
        let p = PathBuf::from(spec);
        let data = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        (zeroize::Zeroizing::new(data), p)
    };
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        Error::pem(
            &path,
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })
}

/// Loads a chain and its key and checks that they belong together.
pub fn certified_key(
    cert: &Path,
    key: &str,
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

/// The verifier for a listener's `client_ca` and `client_crl`; None
/// without `client_ca`.
///
/// With CRLs the policy fails closed: the whole chain is checked (a
/// revoked intermediate CA cuts off every client under it), a
/// certificate whose issuer has no CRL in `client_crl` is refused (a
/// forgotten CRL shows on the first connection instead of silently
/// admitting revoked certificates), and so is one whose issuer's CRL is
/// past its nextUpdate (a stale CRL cannot show recent revocations;
/// OpenSSL, and so nginx, refuse the same way).
pub fn client_verifier(li: &Listener) -> Result<Option<Arc<dyn ClientCertVerifier>>> {
    let Some(ca) = &li.client_ca else {
        return Ok(None);
    };
    let roots = Arc::new(load_roots(ca)?);
    let mut crls = Vec::new();
    for path in &li.client_crl {
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
    Ok(Some(v))
}

/// Chooses a certificate by SNI: exact names, then "*.domain" wildcards,
/// then the listener's default (also for clients without SNI or with an IP).
#[derive(Debug)]
struct SniResolver {
    default: DefaultCert,
    names: HashMap<String, Arc<CertifiedKey>>,
}

/// A listener's own certificate: from its files, or ACME's current one.
#[derive(Debug)]
enum DefaultCert {
    Fixed(Arc<CertifiedKey>),
    Acme(AcmeSlot),
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(ck) = self.names.get(&name) {
                return Some(ck.clone());
            }
            if let Some((_, rest)) = name.split_once('.') {
                if let Some(ck) = self.names.get(&format!("*.{rest}")) {
                    return Some(ck.clone());
                }
            }
        }
        Some(match &self.default {
            DefaultCert::Fixed(ck) => ck.clone(),
            DefaultCert::Acme(slot) => slot.load_full(),
        })
    }
}

/// Builds the server config of a TLS-terminating listener.
pub fn server_config(
    li: &Listener,
    alpn: &[&[u8]],
    sealed: Option<&SealedKeyLoader>,
) -> Result<ServerConfig> {
    Ok(build(li, alpn, sealed, None)?.0)
}

/// The server config, and its client verifier when the listener has
/// `client_crl` (for [`ServerTls::revoked`]).
fn build(
    li: &Listener,
    alpn: &[&[u8]],
    sealed: Option<&SealedKeyLoader>,
    acme: Option<&AcmeSlot>,
) -> Result<(ServerConfig, Option<Arc<dyn ClientCertVerifier>>)> {
    let default = match (li.cert_file(), li.key.as_deref(), acme) {
        (Some(cert), Some(key), _) => DefaultCert::Fixed(certified_key(cert, key, sealed)?),
        (None, _, Some(slot)) => DefaultCert::Acme(slot.clone()),
        // Without a certificate (`cert = "acme"` checked without the
        // ACME state, as `proxy check` does) there is nothing to serve.
        _ => DefaultCert::Fixed(crate::acme::placeholder(&[])?),
    };
    let mut names = HashMap::new();
    for s in &li.sni {
        let ck = certified_key(&s.cert, &s.key, sealed)?;
        for n in &s.names {
            names.insert(n.to_ascii_lowercase(), ck.clone());
        }
    }
    let what = format!("listener {}", li.listen);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Tls {
            what: what.clone(),
            source: e,
        })?;
    let verifier = client_verifier(li)?;
    let builder = match &verifier {
        // Notes the certificate a refused client presented, for the
        // refusal's log line (crate::refusal).
        Some(v) => builder
            .with_client_cert_verifier(Arc::new(crate::refusal::RecordingVerifier(v.clone()))),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(SniResolver { default, names }));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg.ignore_client_order = true;
    Ok((cfg, verifier.filter(|_| !li.client_crl.is_empty())))
}

/// A TLS listener's current config, swapped atomically on reload.
pub struct ServerTls {
    listener: Listener,
    alpn: Vec<Vec<u8>>,
    sealed: Option<SealedKeyLoader>,
    acme: Option<AcmeSlot>,
    /// TLS-ALPN-01 challenges answered at this listener's handshakes.
    tls_alpn: Option<Arc<crate::acme::Challenges>>,
    current: ArcSwap<ServerConfig>,
    stamps: std::sync::Mutex<Vec<Option<SystemTime>>>,
    /// The client verifier of `current` when the listener has
    /// `client_crl`: open connections check their chain against it again
    /// after each reload ([`ServerTls::revoked`]).
    crl_verifier: std::sync::Mutex<Option<Arc<dyn ClientCertVerifier>>>,
    /// Counts successful reloads; open connections wait on it.
    reloads: tokio::sync::watch::Sender<u64>,
}

impl ServerTls {
    /// Loads the listener's certificates, keys, client CA and CRLs.
    pub fn new(li: &Listener, alpn: &[&[u8]], sealed: Option<SealedKeyLoader>) -> Result<Self> {
        Self::with_acme(li, alpn, sealed, None)
    }

    /// As [`ServerTls::new`]; a `cert = "acme"` listener serves what
    /// `acme` holds.
    pub fn with_acme(
        li: &Listener,
        alpn: &[&[u8]],
        sealed: Option<SealedKeyLoader>,
        acme: Option<AcmeSlot>,
    ) -> Result<Self> {
        let (cfg, verifier) = build(li, alpn, sealed.as_ref(), acme.as_ref())?;
        let t = ServerTls {
            listener: li.clone(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            sealed,
            acme,
            tls_alpn: None,
            current: ArcSwap::from_pointee(cfg),
            stamps: std::sync::Mutex::new(Vec::new()),
            crl_verifier: std::sync::Mutex::new(verifier),
            reloads: tokio::sync::watch::Sender::new(0),
        };
        *t.stamps.lock().unwrap_or_else(|e| e.into_inner()) = t.file_stamps();
        Ok(t)
    }

    /// Also answers the TLS-ALPN-01 challenges of `c` (a handshake
    /// offering `acme-tls/1` for a domain under validation).
    pub fn answering_tls_alpn(mut self, c: Option<Arc<crate::acme::Challenges>>) -> Self {
        self.tls_alpn = c;
        self
    }

    /// The TLS-ALPN-01 challenges this listener answers, if any.
    pub fn tls_alpn(&self) -> Option<&Arc<crate::acme::Challenges>> {
        self.tls_alpn.as_ref()
    }

    /// The config new connections use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// The listener's address as configured.
    pub fn name(&self) -> &str {
        &self.listener.listen
    }

    /// The listener's settings, as loaded with its certificates.
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    fn files(&self) -> Vec<PathBuf> {
        let li = &self.listener;
        let mut v: Vec<PathBuf> = li.cert_file().into_iter().map(PathBuf::from).collect();
        v.extend(
            li.key
                .iter()
                .filter(|k| !k.starts_with("sealed:"))
                .map(PathBuf::from),
        );
        v.extend(li.client_ca.iter().cloned());
        v.extend(li.client_crl.iter().cloned());
        for s in &li.sni {
            v.push(s.cert.clone());
            if !s.key.starts_with("sealed:") {
                v.push(PathBuf::from(&s.key));
            }
        }
        v
    }

    fn file_stamps(&self) -> Vec<Option<SystemTime>> {
        self.files()
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// True when a certificate, key, CA or CRL file changed since the last
    /// load.
    pub fn changed_on_disk(&self) -> bool {
        let now = self.file_stamps();
        let mut old = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if *old != now {
            *old = now;
            true
        } else {
            false
        }
    }

    /// Loads everything again and swaps it in; on error the old config stays.
    pub fn reload(&self) -> Result<()> {
        let alpn: Vec<&[u8]> = self.alpn.iter().map(|v| v.as_slice()).collect();
        let (cfg, verifier) = build(
            &self.listener,
            &alpn,
            self.sealed.as_ref(),
            self.acme.as_ref(),
        )?;
        // The verifier first: a connection woken by the count must find
        // the new CRLs.
        *self.crl_verifier.lock().unwrap_or_else(|e| e.into_inner()) = verifier;
        self.current.store(Arc::new(cfg));
        self.reloads.send_modify(|n| *n += 1);
        Ok(())
    }

    /// How many reloads have succeeded: read before a handshake takes
    /// [`ServerTls::config`], it says which CRLs the handshake saw.
    pub fn generation(&self) -> u64 {
        *self.reloads.borrow()
    }

    /// What [`ServerTls::revoked`] needs of a connection whose handshake
    /// began at `generation`: the chain its client presented (end entity
    /// first), when the listener has `client_crl`; None otherwise.
    pub fn revocable(&self, conn: &rustls::ServerConnection, generation: u64) -> Option<Revocable> {
        if self.listener.client_crl.is_empty() {
            return None;
        }
        let chain = conn.peer_certificates()?;
        Some(Revocable {
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            generation,
        })
    }

    /// Resolves when a reload brings a CRL that revokes `r`'s chain (its
    /// end entity or a CA of it), with rustls' verdict; pends forever
    /// otherwise. A revoked certificate is refused at its next handshake
    /// anyway; this also ends the connections it already has open, so a
    /// revocation takes effect at the reload, not when the client chooses
    /// to reconnect. Only `Revoked` ends a connection: a reload whose CRL
    /// is expired, or lacks an issuer, refuses new handshakes but does not
    /// cut every open connection at once.
    pub async fn revoked(&self, r: &Revocable) -> rustls::Error {
        let Some((ee, rest)) = r.chain.split_first() else {
            return std::future::pending().await;
        };
        let mut rx = self.reloads.subscribe();
        let mut seen = r.generation;
        loop {
            // A reload between the handshake and this subscription is
            // seen here too: its count differs from the handshake's.
            let now_at = *rx.borrow_and_update();
            if now_at != seen {
                seen = now_at;
                let v = self
                    .crl_verifier
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(v) = v {
                    let now = rustls_pki_types::UnixTime::now();
                    if let Err(
                        e @ rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked),
                    ) = v.verify_client_cert(ee, rest, now)
                    {
                        return e;
                    }
                }
            }
            if rx.changed().await.is_err() {
                // The listener is gone: nothing will revoke anything.
                return std::future::pending().await;
            }
        }
    }
}

/// A connection's client chain and the reload count its handshake saw.
#[derive(Debug)]
pub struct Revocable {
    chain: Vec<CertificateDer<'static>>,
    generation: u64,
}

/// The client config of an `originate` listener: full verification against
/// `ca` or the system roots, optional client certificate.
pub fn client_config(li: &Listener) -> Result<ClientConfig> {
    let roots = match &li.ca {
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
    let what = format!("listener {}", li.listen);
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Tls {
            what: what.clone(),
            source: e,
        })?
        .with_root_certificates(roots);
    let cfg = match (&li.client_cert, &li.client_key) {
        (Some(c), Some(k)) => {
            let chain = load_certs(c)?;
            let key = load_key(&k.to_string_lossy(), None)?;
            b.with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls {
                    what: format!("client_cert {}", c.display()),
                    source: e,
                })?
        }
        _ => b.with_no_client_auth(),
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
    use crate::config::Mode;
    if let Some(a) = &cfg.acme {
        crate::acme::check(a)?;
    }
    for li in &cfg.listener {
        match li.mode {
            Mode::Http | Mode::Tcp => {
                let uses_sealed = li.key.as_deref().is_some_and(|k| k.starts_with("sealed:"))
                    || li.sni.iter().any(|s| s.key.starts_with("sealed:"));
                if uses_sealed && sealed.is_none() {
                    if let Some(c) = li.cert_file() {
                        load_certs(c)?;
                    }
                    for s in &li.sni {
                        load_certs(&s.cert)?;
                    }
                    client_verifier(li)?;
                } else {
                    server_config(li, &[], sealed)?;
                }
                if let Some(o) = &li.oidc {
                    if sealed.is_some() || o.sealed_specs().next().is_none() {
                        crate::oidc::Oidc::load(o, sealed)?;
                    }
                }
            }
            Mode::Originate => {
                if li.ca.is_some() || li.client_cert.is_some() {
                    client_config(li)?;
                }
            }
            Mode::Redirect => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
