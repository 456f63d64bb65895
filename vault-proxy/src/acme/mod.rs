//! ACME (`cert = "acme"` with `[acme]`): certificates obtained from and
//! renewed with an ACME CA (Let's Encrypt, or an internal one such as
//! step-ca or Vault PKI, with external account binding), without a
//! restart. The protocol is instant-acme's; this module keeps the state
//! and decides when to act.
//!
//! - The account is opened once, at the first start (a CA that cannot
//!   be reached then stops the gateway: there is nothing to serve), and
//!   its key is kept in `[acme] storage` ([`store`], mode 0700, files
//!   0600) with the certificate and its key.
//! - At start a stored certificate that is still valid for `domains` is
//!   served at once; without one, a temporary self-signed certificate is
//!   served (and logged) while the first is obtained, because the CA's
//!   challenge check needs the gateway's listeners up.
//! - HTTP-01: tokens are answered by the `redirect` listener
//!   ([`Challenges`], `/.well-known/acme-challenge/TOKEN`). TLS-ALPN-01:
//!   the `cert = "acme"` listeners answer a ClientHello offering
//!   `acme-tls/1` for a domain under validation with the challenge
//!   certificate (crate::listener::tls_accept).
//! - Renewal ([`Acme::run`], renew.rs): at two thirds of the lifetime, or
//!   earlier when the CA's renewal information (ARI) says so; a failure
//!   keeps the old certificate, is logged and counted, and is retried with
//!   exponential back-off and jitter (capped at 6 h). A new certificate
//!   is stored in the listeners' [`AcmeSlot`]: the next handshake uses it.

pub mod config;
mod http;
mod renew;
pub mod store;
pub mod tls_alpn;

pub use config::{AcmeConfig, Challenge, Eab};

use crate::error::{Error, Result};
use crate::oidc::client::IdpHttp;
use crate::tls::AcmeSlot;
use arc_swap::ArcSwap;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::Store;
use zeroize::Zeroizing;

/// How long one request to the CA may take.
const CA_TIMEOUT: Duration = Duration::from_secs(30);

/// The challenges the CA may check now: HTTP-01 tokens with their key
/// authorizations, and TLS-ALPN-01 certificates by domain.
#[derive(Debug, Default)]
pub struct Challenges {
    http: Mutex<HashMap<String, String>>,
    tls_alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The answer to `GET /.well-known/acme-challenge/TOKEN`, if the
    /// token is one of an order under way.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
    /// The TLS-ALPN-01 certificate for `name`, if an order under way
    /// has one.
    pub fn tls_alpn_cert(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.tls_alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }
    fn put(&self, token: String, key_auth: String) {
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, key_auth);
    }
    fn put_tls_alpn(&self, name: String, ck: Arc<CertifiedKey>) {
        self.tls_alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ck);
    }
    fn clear(&self) {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.tls_alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// What the certificate served now is, for renewal.
#[derive(Debug, Clone)]
struct Served {
    leaf: CertificateDer<'static>,
    not_before: SystemTime,
    not_after: SystemTime,
    /// When it was obtained (its file's time after a restart).
    obtained: SystemTime,
}

/// `account.json`: the account and the directory it belongs to (another
/// `directory` in the config means another account).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The gateway's ACME state.
pub struct Acme {
    cfg: AcmeConfig,
    store: Store,
    slot: AcmeSlot,
    challenges: Arc<Challenges>,
    http: IdpHttp,
    /// (kid, HMAC key) of the external account binding.
    eab: Option<(String, Zeroizing<Vec<u8>>)>,
    account: tokio::sync::Mutex<Option<Account>>,
    served: Mutex<Option<Served>>,
    /// False once the CA said it has no renewal information.
    ari: std::sync::atomic::AtomicBool,
}

/// What `pivault proxy check` verifies of `[acme]` without contacting
/// the CA: the storage directory's permissions, the EAB key file and the
/// CA bundle for the API.
pub fn check(cfg: &AcmeConfig) -> Result<()> {
    Store::open(&cfg.storage)?;
    crate::tls::idp_client_config(cfg.ca_file.as_deref())?;
    if let Some(e) = &cfg.eab {
        read_hmac(&e.hmac_file)?;
    }
    Ok(())
}

impl Acme {
    /// Checks the storage, reads the EAB key and the trust for the CA,
    /// and loads a stored certificate that is still good. Contacts no one.
    pub fn open(cfg: &AcmeConfig) -> Result<Acme> {
        let store = Store::open(&cfg.storage)?;
        let tls = crate::tls::idp_client_config(cfg.ca_file.as_deref())?;
        let http = IdpHttp::new(Arc::new(tls), CA_TIMEOUT);
        let eab = match &cfg.eab {
            Some(e) => Some((e.kid.clone(), read_hmac(&e.hmac_file)?)),
            None => None,
        };
        let (ck, served) = match load_stored(&store, &cfg.domains) {
            Ok(Some((ck, s))) => {
                tracing::info!(
                    "acme: serving the stored certificate for {} (valid until {})",
                    cfg.domains.join(", "),
                    humantime::format_rfc3339_seconds(s.not_after)
                );
                (ck, Some(s))
            }
            Ok(None) => (placeholder(&cfg.domains)?, None),
            Err(e) => {
                tracing::warn!(
                    "acme: the stored certificate is not used ({e}); a new one will be obtained"
                );
                (placeholder(&cfg.domains)?, None)
            }
        };
        if served.is_none() {
            tracing::warn!(
                "acme: no certificate for {} yet: serving a temporary self-signed one until the CA issues it",
                cfg.domains.join(", ")
            );
        }
        Ok(Acme {
            cfg: cfg.clone(),
            store,
            slot: Arc::new(ArcSwap::new(ck)),
            challenges: Arc::default(),
            http,
            eab,
            account: tokio::sync::Mutex::new(None),
            served: Mutex::new(served),
            ari: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The certificate slot `cert = "acme"` listeners serve from.
    pub fn slot(&self) -> AcmeSlot {
        self.slot.clone()
    }

    /// The HTTP-01 tokens, for the `redirect` listener.
    pub fn challenges(&self) -> Arc<Challenges> {
        self.challenges.clone()
    }

    /// The challenges `cert = "acme"` listeners answer at the handshake:
    /// Some with TLS-ALPN-01.
    pub fn tls_alpn(&self) -> Option<Arc<Challenges>> {
        (self.cfg.challenge == Challenge::TlsAlpn01).then(|| self.challenges.clone())
    }

    /// At start: opens the account if none is stored for `directory`
    /// (the CA must answer; an error names `directory`). A stored
    /// account is not checked here, so that a restart while the CA is
    /// down still serves the stored certificate.
    pub async fn prepare(&self) -> Result<()> {
        if self.stored_account()?.is_some() {
            return Ok(());
        }
        let a = self.create_account().await?;
        *self.account.lock().await = Some(a);
        Ok(())
    }

    fn stored_account(&self) -> Result<Option<AccountCredentials>> {
        let Some(data) = self.store.read(store::ACCOUNT)? else {
            return Ok(None);
        };
        let s: StoredAccount = serde_json::from_slice(&data).map_err(|e| {
            Error::Acme(format!(
                "{}: not an account file ({e}); move it away to open a new account",
                self.store.dir().join(store::ACCOUNT).display()
            ))
        })?;
        Ok((s.directory == self.cfg.directory).then_some(s.credentials))
    }

    fn builder(&self) -> instant_acme::AccountBuilder {
        Account::builder_with_http(Box::new(http::AcmeHttp(self.http.clone())))
    }

    async fn create_account(&self) -> Result<Account> {
        let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
        let eak = self
            .eab
            .as_ref()
            .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
        let (account, credentials) = self
            .builder()
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.cfg.directory.clone(),
                eak.as_ref(),
            )
            .await
            .map_err(|e| {
                Error::Acme(format!(
                    "[acme] directory `{}`: cannot open an account: {e}",
                    self.cfg.directory
                ))
            })?;
        let json = Zeroizing::new(
            serde_json::to_vec(&StoredAccount {
                directory: self.cfg.directory.clone(),
                credentials,
            })
            .map_err(|e| Error::Acme(format!("account: {e}")))?,
        );
        self.store.write(store::ACCOUNT, &json)?;
        tracing::info!(
            "acme: account opened at {} (kept in {})",
            self.cfg.directory,
            self.store.dir().display()
        );
        Ok(account)
    }

    /// The account, from memory, the storage, or a new one.
    async fn account(&self) -> Result<Account> {
        let mut cached = self.account.lock().await;
        if let Some(a) = &*cached {
            return Ok(a.clone());
        }
        let a = match self.stored_account()? {
            Some(c) => self
                .builder()
                .from_credentials(c)
                .await
                .map_err(|e| Error::Acme(format!("directory `{}`: {e}", self.cfg.directory)))?,
            None => self.create_account().await?,
        };
        *cached = Some(a.clone());
        Ok(a)
    }

    /// Obtains a certificate for `domains`, stores it and serves it.
    async fn obtain(&self) -> Result<Served> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = self
            .cfg
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let order = match account.new_order(&NewOrder::new(&ids)).await {
            Err(instant_acme::Error::Api(p))
                if p.r#type.as_deref()
                    == Some("urn:ietf:params:acme:error:accountDoesNotExist") =>
            {
                // The CA forgot the account (a reset test CA, a
                // deactivation): open a new one rather than fail forever.
                tracing::warn!("acme: the CA no longer knows the account; opening a new one");
                let a = self.create_account().await?;
                *self.account.lock().await = Some(a.clone());
                a.new_order(&NewOrder::new(&ids)).await
            }
            r => r,
        };
        let mut order = order.map_err(|e| Error::Acme(format!("new order: {e}")))?;
        let r = self.validate_and_finalize(&mut order).await;
        self.challenges.clear();
        let (chain_pem, key_pem) = r?;
        let (ck, mut served) = certified(chain_pem.as_bytes(), &key_pem)?;
        if !covers(&served.leaf, &self.cfg.domains) {
            return Err(Error::Acme(
                "the CA issued a certificate that does not name every domain".into(),
            ));
        }
        self.store.write(store::KEY, &key_pem)?;
        self.store.write(store::CERT, chain_pem.as_bytes())?;
        served.obtained = SystemTime::now();
        self.slot.store(ck);
        *self.served.lock().unwrap_or_else(|e| e.into_inner()) = Some(served.clone());
        Ok(served)
    }

    /// Answers the order's HTTP-01 challenges, waits for the CA, sends
    /// the CSR of a new P-256 key; the chain and the key, as PEM.
    async fn validate_and_finalize(
        &self,
        order: &mut instant_acme::Order,
    ) -> Result<(String, Zeroizing<Vec<u8>>)> {
        let e = |what: &str, err: instant_acme::Error| Error::Acme(format!("{what}: {err}"));
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(|err| e("authorization", err))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => {
                    return Err(Error::Acme(format!(
                        "authorization for {:?} is {s:?}",
                        a.identifier()
                    )))
                }
            }
            let (kind, name) = match self.cfg.challenge {
                Challenge::Http01 => (ChallengeType::Http01, "http-01"),
                Challenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "tls-alpn-01"),
            };
            let mut ch = a.challenge(kind).ok_or_else(|| {
                Error::Acme(format!("the CA offers no {name} challenge for a domain"))
            })?;
            match self.cfg.challenge {
                Challenge::Http01 => self.challenges.put(
                    ch.token.clone(),
                    ch.key_authorization().as_str().to_string(),
                ),
                Challenge::TlsAlpn01 => {
                    let domain = match ch.identifier().identifier {
                        Identifier::Dns(d) => d.to_ascii_lowercase(),
                        other => {
                            return Err(Error::Acme(format!(
                                "tls-alpn-01 for {other:?}: only DNS names are ordered"
                            )))
                        }
                    };
                    let ck = tls_alpn::cert(&domain, ch.key_authorization().digest().as_ref())?;
                    self.challenges.put_tls_alpn(domain, ck);
                }
            }
            ch.set_ready().await.map_err(|err| e("challenge", err))?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|err| e("waiting for validation", err))?;
        if status != OrderStatus::Ready {
            return Err(Error::Acme(format!(
                "the order is {status:?} after validation (did the CA reach {}?)",
                match self.cfg.challenge {
                    Challenge::Http01 => "the `redirect` listener on port 80",
                    Challenge::TlsAlpn01 => "the `cert = \"acme\"` listener on port 443",
                }
            )));
        }
        let ge = |err: rcgen::Error| Error::Acme(format!("certificate request: {err}"));
        let key = rcgen::KeyPair::generate().map_err(ge)?;
        let mut params = rcgen::CertificateParams::new(self.cfg.domains.clone()).map_err(ge)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key).map_err(ge)?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|err| e("finalize", err))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|err| e("certificate", err))?;
        Ok((chain, Zeroizing::new(key.serialize_pem().into_bytes())))
    }
}

/// Reads the EAB HMAC key: base64url as CAs hand it out (padding and
/// surrounding white space allowed). Its bytes are never logged.
fn read_hmac(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let raw = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let text = std::str::from_utf8(&raw)
        .map_err(|_| Error::pem(path, "[acme] eab_hmac_file: not text"))?
        .trim()
        .trim_end_matches('=');
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| {
            Error::pem(
                path,
                "[acme] eab_hmac_file: expected the HMAC key in base64url, as the CA gave it",
            )
        })?;
    if key.is_empty() {
        return Err(Error::pem(path, "[acme] eab_hmac_file: empty"));
    }
    Ok(Zeroizing::new(key))
}

/// A chain and key (PEM) as a checked [`CertifiedKey`], and its validity.
fn certified(chain_pem: &[u8], key_pem: &[u8]) -> Result<(Arc<CertifiedKey>, Served)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Acme(format!("certificate chain: {e}")))?;
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| Error::Acme("empty certificate chain".into()))?;
    let der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Acme(format!("certificate key: {e}")))?;
    let signer = crate::tls::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| Error::Tls {
            what: "ACME certificate key".into(),
            source: e,
        })?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|e| Error::Tls {
        what: "ACME certificate and key do not match".into(),
        source: e,
    })?;
    let (_, x) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| Error::Acme(format!("certificate: {e}")))?;
    let at = |t: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    let served = Served {
        not_before: at(x.validity().not_before.timestamp()),
        not_after: at(x.validity().not_after.timestamp()),
        leaf,
        obtained: SystemTime::now(),
    };
    Ok((Arc::new(ck), served))
}

/// True when the certificate's DNS names include every domain.
fn covers(leaf: &CertificateDer<'_>, domains: &[String]) -> bool {
    let Ok((_, x)) = x509_parser::parse_x509_certificate(leaf) else {
        return false;
    };
    let names: Vec<String> = match x.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    domains.iter().all(|d| names.contains(d))
}

/// The stored certificate, if there is one that is still valid for
/// `domains`.
fn load_stored(store: &Store, domains: &[String]) -> Result<Option<(Arc<CertifiedKey>, Served)>> {
    let (Some(chain), Some(key)) = (store.read(store::CERT)?, store.read(store::KEY)?) else {
        return Ok(None);
    };
    let (ck, mut served) = certified(&chain, &key)?;
    if served.not_after <= SystemTime::now() {
        return Err(Error::Acme("it has expired".into()));
    }
    if !covers(&served.leaf, domains) {
        return Err(Error::Acme(
            "it does not name every domain of [acme]".into(),
        ));
    }
    served.obtained = store.modified(store::CERT).unwrap_or(served.not_before);
    Ok(Some((ck, served)))
}

/// A self-signed certificate for `names`, served until the CA issues the
/// real one (and by `proxy check`, which does not contact the CA). No
/// client trusts it; that is the point: nothing is served as if it were
/// the CA's.
pub fn placeholder(names: &[String]) -> Result<Arc<CertifiedKey>> {
    let e = |e: rcgen::Error| Error::Acme(format!("temporary certificate: {e}"));
    let mut p = rcgen::CertificateParams::new(names.to_vec()).map_err(e)?;
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        "pivault temporary certificate (ACME order pending)",
    );
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let cert = p.self_signed(&key).map_err(e)?;
    let pem = Zeroizing::new(key.serialize_pem().into_bytes());
    Ok(certified(cert.pem().as_bytes(), &pem)?.0)
}
