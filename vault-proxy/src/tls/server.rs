//! A TLS-terminating listener's live config ([`ServerTls`]): built from
//! its [`TlsIn`] settings, held behind an atomic swap, and rebuilt by
//! [`ServerTls::reload`] from the files, swapped in only when everything
//! loaded, so a bad file keeps the old certificate in service. Open
//! connections keep the config they started with, except that one whose
//! client certificate a reloaded CRL revokes is closed
//! ([`ServerTls::revoked`]).
//!
//! Certificates are chosen by SNI (`SniResolver`), the default one from
//! files or from ACME's current certificate.

use super::{certified_key, client_verifier, provider, SealedKeyLoader, VERSIONS};
use crate::access::AllowList;
use crate::config::{ServerCert, TlsIn};
use crate::error::{Error, Result};
use arc_swap::ArcSwap;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// The certificate `cert = "acme"` listeners serve now: [`crate::acme`]
/// stores a new one on issue and renewal, and the next handshake uses it
/// (no config rebuild, no restart; open connections keep theirs).
pub type AcmeSlot = Arc<ArcSwap<CertifiedKey>>;

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

/// Builds the server config of a TLS-terminating listener (`name` in
/// messages).
pub fn server_config(
    name: &str,
    tls: &TlsIn,
    alpn: &[&[u8]],
    sealed: Option<&SealedKeyLoader>,
) -> Result<ServerConfig> {
    Ok(build(name, tls, alpn, sealed, None)?.0)
}

/// The server config, and its client verifier when the listener has
/// `client_crl` (for [`ServerTls::revoked`]).
fn build(
    name: &str,
    tls: &TlsIn,
    alpn: &[&[u8]],
    sealed: Option<&SealedKeyLoader>,
    acme: Option<&AcmeSlot>,
) -> Result<(ServerConfig, Option<Arc<dyn ClientCertVerifier>>)> {
    let default = match (&tls.cert, acme) {
        (ServerCert::Files { chain, key }, _) => {
            DefaultCert::Fixed(certified_key(chain, key, sealed)?)
        }
        (ServerCert::Acme, Some(slot)) => DefaultCert::Acme(slot.clone()),
        // `cert = "acme"` checked without the ACME state, as `proxy
        // check` does: there is nothing to serve, only the rest to check.
        (ServerCert::Acme, None) => DefaultCert::Fixed(crate::acme::placeholder(&[])?),
    };
    let mut names = HashMap::new();
    for s in &tls.sni {
        let ck = certified_key(&s.cert, &s.key, sealed)?;
        for n in &s.names {
            names.insert(n.to_ascii_lowercase(), ck.clone());
        }
    }
    let what = format!("listener {name}");
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Tls {
            what: what.clone(),
            source: e,
        })?;
    let verifier = tls.clients.as_ref().map(client_verifier).transpose()?;
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
    Ok((cfg, verifier.filter(|_| !tls.crls().is_empty())))
}

/// A TLS listener's current config, swapped atomically on reload.
pub struct ServerTls {
    /// The listener's `listen` as configured.
    name: String,
    settings: TlsIn,
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
    /// Loads the certificates, keys, client CA and CRLs of listener
    /// `name`.
    pub fn new(
        name: &str,
        tls: &TlsIn,
        alpn: &[&[u8]],
        sealed: Option<SealedKeyLoader>,
    ) -> Result<Self> {
        Self::with_acme(name, tls, alpn, sealed, None)
    }

    /// As [`ServerTls::new`]; a `cert = "acme"` listener serves what
    /// `acme` holds.
    pub fn with_acme(
        name: &str,
        tls: &TlsIn,
        alpn: &[&[u8]],
        sealed: Option<SealedKeyLoader>,
        acme: Option<AcmeSlot>,
    ) -> Result<Self> {
        let (cfg, verifier) = build(name, tls, alpn, sealed.as_ref(), acme.as_ref())?;
        let t = ServerTls {
            name: name.to_string(),
            settings: tls.clone(),
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
        &self.name
    }

    /// The settings the certificates were loaded from.
    pub fn settings(&self) -> &TlsIn {
        &self.settings
    }

    /// The `allow` rules a client certificate must match after the
    /// handshake; None when every verified client is admitted.
    pub fn allow_list(&self) -> Option<&AllowList> {
        self.settings.allow_list()
    }

    fn files(&self) -> Vec<PathBuf> {
        let t = &self.settings;
        let mut v: Vec<PathBuf> = Vec::new();
        if let ServerCert::Files { chain, .. } = &t.cert {
            v.push(chain.clone());
        }
        v.extend(t.keys().filter_map(|k| k.file()).map(PathBuf::from));
        if let Some(c) = &t.clients {
            v.push(c.ca.clone());
            v.extend(c.crl.iter().cloned());
        }
        v.extend(t.sni.iter().map(|s| s.cert.clone()));
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
            &self.name,
            &self.settings,
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
        if self.settings.crls().is_empty() {
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
