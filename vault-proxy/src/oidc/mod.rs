//! Single sign-on with OpenID Connect for an `http` listener
//! (`[listener.oidc]`, docs/PROXY.md).
//!
//! Every request of such a listener needs a session: a sealed cookie
//! ([`cookie`]) naming the user, made by the gateway after a login. A
//! browser without one is sent to the identity provider (authorization
//! code flow with PKCE, `state` and `nonce` in a sealed login cookie); the
//! IdP sends it back to `callback_path`, where the gateway exchanges the
//! code at the token endpoint, checks the ID token (`validate`) and the
//! `allow_*` rules, and sets the session cookie. The app then gets the
//! user in `X-Forwarded-User` and `X-Forwarded-Email` (and the groups in
//! `X-Forwarded-Groups`); a client's own copies of these are always
//! removed (`headers`), as is the gateway's cookie. `logout_path` ends the
//! session (and the IdP's, when it has an end-session endpoint).
//!
//! No state is kept on the server beyond a cache of the IdP's discovery
//! document and keys, and the nonces seen in the last minutes (a replay
//! caught by this copy): copies behind a load balancer share only the
//! cookie keys.
//!
//! Every refused login ([`Denied`]) is counted in `/metrics` by reason,
//! named in the request's access-log record, and logged as one line
//! (client, listener, reason in words), rate-limited per client address
//! as refused handshakes are (`refusal_log_burst`). Tokens, codes,
//! cookies and the client secret are never logged.

pub mod client;
pub mod config;
pub mod cookie;
mod flow;
mod validate;

pub use config::OidcConfig;

use crate::error::{Error, Result};
use crate::listener::{ConnInfo, Shared};
use config::SecretSource;
use cookie::{CookieKeys, Session};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// How long a login may take from the redirect to the IdP to the callback.
pub(crate) const LOGIN_TTL: u64 = 600;
/// How long a request to the IdP may take.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most nonces remembered for replay detection.
const MAX_SEEN: usize = 100_000;

/// Why a login (or a session cookie) was refused: the `reason` label of
/// `pivault_oidc_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The callback came without a valid login cookie, or its `state`
    /// does not match (a forged or stale callback, or cookies blocked).
    LoginState,
    /// The IdP answered with an error (the user declined, for instance).
    IdpError,
    /// The IdP (discovery, JWKS) could not be reached.
    IdpUnavailable,
    /// The token endpoint refused the code or failed.
    TokenExchange,
    /// The ID token has expired.
    Expired,
    /// Its signature does not verify against the IdP's keys.
    BadSignature,
    /// Its signature algorithm is not in `id_token_algs` (or is `none`).
    AlgNotAllowed,
    /// It is for another client (`aud`).
    WrongAudience,
    /// It is from another issuer (`iss`).
    WrongIssuer,
    /// Its nonce is not this login's.
    BadNonce,
    /// Otherwise malformed, or without the user claim.
    InvalidToken,
    /// Its nonce was already used for a login (a replayed callback).
    Replayed,
    /// The user is not admitted by `allow_groups`/`allow_emails`/`allow_claims`.
    NotAllowed,
    /// A session cookie that does not open: tampered, or sealed with a key
    /// this gateway does not have.
    BadSessionCookie,
}

impl Denied {
    /// How many reasons there are.
    pub const COUNT: usize = 14;
    /// Every reason, in label order.
    pub const ALL: [Denied; Self::COUNT] = [
        Self::LoginState,
        Self::IdpError,
        Self::IdpUnavailable,
        Self::TokenExchange,
        Self::Expired,
        Self::BadSignature,
        Self::AlgNotAllowed,
        Self::WrongAudience,
        Self::WrongIssuer,
        Self::BadNonce,
        Self::InvalidToken,
        Self::Replayed,
        Self::NotAllowed,
        Self::BadSessionCookie,
    ];
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginState => "login_state",
            Self::IdpError => "idp_error",
            Self::IdpUnavailable => "idp_unavailable",
            Self::TokenExchange => "token_exchange",
            Self::Expired => "expired",
            Self::BadSignature => "bad_signature",
            Self::AlgNotAllowed => "alg_not_allowed",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::BadNonce => "bad_nonce",
            Self::InvalidToken => "invalid_token",
            Self::Replayed => "replayed",
            Self::NotAllowed => "not_allowed",
            Self::BadSessionCookie => "bad_session_cookie",
        }
    }
    /// Its index in [`Denied::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }
}

/// One listener's single sign-on.
pub struct Oidc {
    cfg: OidcConfig,
    keys: CookieKeys,
    secret: Zeroizing<String>,
    idp: validate::Idp,
    session_ctx: [u8; 32],
    login_ctx: [u8; 32],
    login_cookie: String,
    /// Nonces of completed logins, with when they may be forgotten.
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

/// Reads a secret file, or a sealed secret through `sealed`.
fn read_secret(
    src: &SecretSource,
    sealed: Option<&crate::tls::SealedKeyLoader>,
) -> Result<Zeroizing<Vec<u8>>> {
    match src {
        SecretSource::File(p) => std::fs::read(p)
            .map(Zeroizing::new)
            .map_err(|e| Error::io(p, e)),
        SecretSource::Sealed(spec) => {
            let loader = sealed.ok_or_else(|| Error::SealedKey {
                spec: spec.clone(),
                msg: "sealed secrets need the vault's passphrase; run through `pivault proxy`"
                    .into(),
            })?;
            loader(spec).map(Zeroizing::new)
        }
    }
}

fn source_path(src: &SecretSource) -> std::path::PathBuf {
    match src {
        SecretSource::File(p) => p.clone(),
        SecretSource::Sealed(s) => s.into(),
    }
}

impl Oidc {
    /// Reads the client secret, the cookie keys and `ca_file` for `cfg`.
    /// Opens no connection: the IdP is discovered at the first login.
    pub fn load(cfg: &OidcConfig, sealed: Option<&crate::tls::SealedKeyLoader>) -> Result<Oidc> {
        let raw = read_secret(&cfg.client_secret, sealed)?;
        let secret = std::str::from_utf8(&raw)
            .map(|s| Zeroizing::new(s.trim().to_string()))
            .map_err(|_| {
                Error::pem(
                    source_path(&cfg.client_secret),
                    "the client secret is not text",
                )
            })?;
        if secret.is_empty() {
            return Err(Error::pem(
                source_path(&cfg.client_secret),
                "the client secret is empty",
            ));
        }
        let raw = read_secret(&cfg.cookie_keys, sealed)?;
        let keys = std::str::from_utf8(&raw)
            .map_err(|_| "not text".to_string())
            .and_then(|t| CookieKeys::parse(t).map_err(|e| e.to_string()))
            .map_err(|e| Error::pem(source_path(&cfg.cookie_keys), format!("cookie keys: {e}")))?;
        let tls = crate::tls::idp_client_config(cfg.ca_file.as_deref())?;
        let issuer = openidconnect::IssuerUrl::new(cfg.issuer.clone())
            .map_err(|e| Error::pem(&cfg.issuer, format!("issuer: {e}")))?;
        let idp = validate::Idp::new(
            issuer,
            client::IdpHttp::new(std::sync::Arc::new(tls), IDP_TIMEOUT),
        );
        // What a cookie is bound to: the IdP, the client, and who may sign
        // in (a cookie made under other rules does not open).
        let rules = format!("{:?}", cfg.allow);
        let parts = [
            cfg.issuer.as_str(),
            cfg.client_id.as_str(),
            rules.as_str(),
            cfg.cookie_name.as_str(),
            cfg.user_claim.as_str(),
        ];
        Ok(Oidc {
            session_ctx: cookie::Context::digest("session", &parts),
            login_ctx: cookie::Context::digest("login", &parts),
            login_cookie: format!("{}-login", cfg.cookie_name),
            cfg: cfg.clone(),
            keys,
            secret,
            idp,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// The session the request's cookie names: Ok(None) without one (or
    /// an expired one), Err when the cookie is not one of ours.
    pub(crate) fn session(
        &self,
        headers: &hyper::HeaderMap,
    ) -> std::result::Result<Option<Session>, cookie::Opened> {
        let Some(v) = cookie::find(headers, &self.cfg.cookie_name) else {
            return Ok(None);
        };
        let s: Session = cookie::open_json(&self.keys, &self.session_ctx, v)?;
        let now = now();
        // Enforced from the sealed login time: the cookie's Max-Age is
        // only the browser's to honour. A session from the future (a
        // clock set back) is not trusted either.
        let fresh =
            s.issued.saturating_add(self.cfg.session_ttl.as_secs()) > now && s.issued <= now + 300;
        Ok(fresh.then_some(s))
    }

    /// Notes a completed login's nonce; false when it was already used.
    fn first_use(&self, nonce: &str, until: u64) -> bool {
        let d = ring::digest::digest(&ring::digest::SHA256, nonce.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(d.as_ref());
        let now = now();
        let mut m = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SEEN {
            m.retain(|_, t| *t > now);
        }
        if m.len() >= MAX_SEEN {
            // Full of live entries (a flood of valid logins): forget
            // rather than refuse logins; the nonce still binds each
            // token to its login cookie.
            m.clear();
        }
        m.insert(k, until).is_none_or(|t| t <= now)
    }

    /// Counts and logs one refusal; the access-log `refused` text.
    pub(crate) fn deny(&self, info: &ConnInfo, sh: &Shared, why: Denied, words: &str) -> String {
        info.metrics(sh).oidc_denied(why);
        let v = sh.refusals.note(
            info.peer.ip(),
            sh.limits.refusal_log_burst,
            sh.limits.refusal_log_window_s,
        );
        if v.log {
            tracing::warn!(
                listener = %info.listener,
                client = %info.peer,
                reason = why.as_str(),
                unlogged_before = v.unlogged_before,
                "OIDC login refused: {words}"
            );
        }
        format!("oidc {}: {words}", why.as_str())
    }
}

/// Now, in Unix seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
