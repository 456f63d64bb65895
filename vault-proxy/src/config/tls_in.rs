//! The TLS side of an `http` or `tcp` listener ([`TlsIn`]): the
//! certificate it serves (files, with a key that may be sealed in a
//! vault, or ACME's), the certificates chosen by SNI, and what it asks of
//! clients: `client_ca`, `client_crl` and `allow` as one [`ClientAuth`],
//! present only with `client_ca`, so `allow` and `client_crl` cannot be
//! set without the CA they depend on.
//!
//! `allow` becomes an [`Access`]: absent admits every verified client,
//! and `allow = []` is refused rather than read either way (it looks like
//! "no one" and used to admit everyone). A rule that does not parse is an
//! error at that rule.

use super::raw::{RawListener, RawSni};
use super::Source;
use crate::access::{Access, AllowList, AllowRule};
use crate::acme::config::CertSource;
use crate::error::Result;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a TLS-terminating (`http`, `tcp`) listener serves and asks of
/// clients.
#[derive(Debug, Clone)]
pub struct TlsIn {
    /// The default certificate.
    pub cert: ServerCert,
    /// More certificates, chosen by SNI.
    pub sni: Vec<Sni>,
    /// Client certificates, when `client_ca` is set.
    pub clients: Option<ClientAuth>,
}

impl TlsIn {
    /// The `allow` rules a client certificate must match; None when
    /// every verified client (or, without `client_ca`, every client) is
    /// admitted.
    pub fn allow_list(&self) -> Option<&AllowList> {
        match &self.clients {
            Some(ClientAuth {
                access: Access::Only(list),
                ..
            }) => Some(list),
            _ => None,
        }
    }

    /// The `client_crl` files (none without `client_ca`).
    pub fn crls(&self) -> &[PathBuf] {
        self.clients.as_ref().map_or(&[], |c| &c.crl)
    }

    /// Every private key it names, the default certificate's first.
    pub fn keys(&self) -> impl Iterator<Item = &KeySource> {
        let own = match &self.cert {
            ServerCert::Files { key, .. } => Some(key),
            ServerCert::Acme => None,
        };
        own.into_iter().chain(self.sni.iter().map(|s| &s.key))
    }
}

/// Where the default certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCert {
    /// `cert` and `key` files.
    Files {
        /// PEM chain, leaf first.
        chain: PathBuf,
        /// Its private key.
        key: KeySource,
    },
    /// `cert = "acme"`: the certificate `[acme]` obtains and renews.
    Acme,
}

/// A private key: a PEM file, or a key sealed in a vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file (PKCS#8, PKCS#1 or SEC1).
    File(PathBuf),
    /// `sealed:VAULT_DIR:NAME`, kept whole: the loader the binary
    /// provides ([`crate::tls::SealedKeyLoader`]) takes it as written.
    Sealed(String),
}

impl KeySource {
    /// Parses `key`: `sealed:VAULT_DIR:NAME` or a file path.
    pub fn parse(k: &str) -> std::result::Result<KeySource, String> {
        if let Some(rest) = k.strip_prefix("sealed:") {
            match rest.rsplit_once(':') {
                Some((v, n)) if !v.is_empty() && !n.is_empty() => Ok(KeySource::Sealed(k.into())),
                _ => Err(format!("`{k}`: expected sealed:VAULT_DIR:NAME")),
            }
        } else if k.is_empty() {
            Err("empty key path: expected a PEM file or sealed:VAULT_DIR:NAME".into())
        } else {
            Ok(KeySource::File(k.into()))
        }
    }

    /// The file, for a key that is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeySource::File(p) => Some(p),
            KeySource::Sealed(_) => None,
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "{}", p.display()),
            KeySource::Sealed(spec) => f.write_str(spec),
        }
    }
}

/// One `[[listener.sni]]`.
#[derive(Debug, Clone)]
pub struct Sni {
    /// Server names this certificate is for ("*.example.com" allowed);
    /// at least one.
    pub names: Vec<String>,
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: KeySource,
}

/// Client certificates: required, checked against `ca` and the CRLs,
/// then against `access`.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// PEM CA bundle every client certificate must chain to.
    pub ca: PathBuf,
    /// CRL files (PEM or DER); the policy is docs/PROXY.md's.
    pub crl: Vec<PathBuf>,
    /// Which verified clients are admitted.
    pub access: Access,
}

/// The TLS side of an `http` or `tcp` listener.
pub(super) fn tls_in(
    raw: &RawListener,
    here: Option<usize>,
    has_acme: bool,
    at: &Source<'_>,
) -> Result<TlsIn> {
    let m = raw.mode.as_str();
    let key = |k: &toml::Spanned<String>, name: &str| {
        KeySource::parse(k.get_ref()).map_err(|e| at.span(k.span(), name, e))
    };
    let cert = match (&raw.cert, &raw.key) {
        (None, _) => {
            return Err(at.key(
                here,
                "cert",
                format!("mode \"{m}\" needs `cert` (PEM chain, or \"acme\" with an [acme] table)"),
            ))
        }
        (Some(CertSource::Acme), Some(_)) => {
            return Err(at.key(here, "key", crate::acme::config::NO_KEY))
        }
        (Some(CertSource::Acme), None) if !has_acme => {
            return Err(at.key(
                here,
                "cert",
                "`cert = \"acme\"` needs an [acme] table (directory, domains, storage)",
            ))
        }
        (Some(CertSource::Acme), None) => ServerCert::Acme,
        (Some(CertSource::File(_)), None) => {
            return Err(at.key(
                here,
                "key",
                format!("mode \"{m}\" needs `key` (PEM file or sealed:VAULT_DIR:NAME)"),
            ))
        }
        (Some(CertSource::File(chain)), Some(k)) => ServerCert::Files {
            chain: chain.clone(),
            key: key(k, "key")?,
        },
    };
    let sni = raw
        .sni
        .iter()
        .map(|s: &RawSni| {
            let key = key(&s.key, "key")?;
            if s.names.is_empty() {
                return Err(at.key(
                    here,
                    "names",
                    "`names` is empty: expected at least one server name",
                ));
            }
            Ok(Sni {
                names: s.names.clone(),
                cert: s.cert.clone(),
                key,
            })
        })
        .collect::<Result<_>>()?;
    let clients = match &raw.client_ca {
        None => {
            if raw.allow.is_some() {
                return Err(at.key(
                    here,
                    "allow",
                    "needs `client_ca` (client certificates are checked against it first; without it none is asked for)",
                ));
            }
            if !raw.client_crl.is_empty() {
                return Err(at.key(
                    here,
                    "client_crl",
                    "needs `client_ca` (the CRLs revoke certificates of the CAs in it; without it no client certificate is asked for)",
                ));
            }
            None
        }
        Some(ca) => {
            let crl = raw
                .client_crl
                .iter()
                .map(|p| {
                    if p.get_ref().as_os_str().is_empty() {
                        Err(at.span(
                            p.span(),
                            "client_crl",
                            "an empty path: expected CRL files such as [\"ca.crl\"]",
                        ))
                    } else {
                        Ok(p.get_ref().clone())
                    }
                })
                .collect::<Result<_>>()?;
            Some(ClientAuth {
                ca: ca.clone(),
                crl,
                access: access(raw, at)?,
            })
        }
    };
    Ok(TlsIn { cert, sni, clients })
}

/// `allow`: absent admits every verified client; otherwise every rule
/// must parse, and there must be one.
fn access(raw: &RawListener, at: &Source<'_>) -> Result<Access> {
    let Some(allow) = &raw.allow else {
        return Ok(Access::AnyVerifiedClient);
    };
    let rules = allow
        .get_ref()
        .iter()
        .map(|r| AllowRule::parse(r.get_ref()).map_err(|e| at.span(r.span(), "allow", e)))
        .collect::<Result<Vec<_>>>()?;
    match AllowList::new(rules) {
        Some(list) => Ok(Access::Only(list)),
        None => Err(at.span(
            allow.span(),
            "allow",
            "an empty list would admit no one, and is not read as \"everyone\": list the certificates to admit (such as [\"CN=alice\"]), or remove `allow` to admit every client certificate that chains to `client_ca`",
        )),
    }
}
