//! The identity provider as the gateway knows it (discovery document and
//! signing keys, cached and refreshed) and the checks of an ID token:
//! signature by a key of the provider's JWKS with an allowed algorithm,
//! issuer, audience, expiry and nonce, all by `openidconnect`; then who
//! the user is and whether `allow_*` admits them.
//!
//! Key rotation: a token signed with a key id the cached JWKS lacks makes
//! the gateway fetch the JWKS again, once (concurrent logins share the
//! fetch), and check the token against the new set.

use super::client::IdpHttp;
use super::config::{Allow, EmailRule, OidcConfig};
use super::Denied;
use arc_swap::ArcSwapOption;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IdTokenVerifier, IssuerUrl, JsonWebKeySet, Nonce,
    ProviderMetadataWithLogout, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse,
};
use percent_encoding::{AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every claim of the ID token beyond the standard ones, kept so that
/// `groups_claim`, `user_claim` and `allow_claims` can name any.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extra {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}
impl AdditionalClaims for Extra {}

type Fields = IdTokenFields<
    Extra,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJwsSigningAlgorithm,
>;
/// The token endpoint's answer.
pub(crate) type TokenResponse = StandardTokenResponse<Fields, CoreTokenType>;
/// An ID token with [`Extra`] claims.
pub(crate) type IdToken = openidconnect::IdToken<
    Extra,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJwsSigningAlgorithm,
>;
/// The client as built from discovery.
pub(crate) type Client = openidconnect::Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// After a failed discovery, how long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// One fetched discovery document with its JWKS.
pub(crate) struct Provider {
    pub(crate) meta: ProviderMetadataWithLogout,
    fetched: Instant,
    /// Counts JWKS fetches: a refresh compares it to know whether another
    /// login already fetched a newer set.
    generation: u64,
}

/// The provider cache of one listener.
pub(crate) struct Idp {
    issuer: IssuerUrl,
    http: IdpHttp,
    cur: ArcSwapOption<Provider>,
    /// One fetch at a time: concurrent logins wait for it and share it.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl Idp {
    pub(crate) fn new(issuer: IssuerUrl, http: IdpHttp) -> Self {
        Idp {
            issuer,
            http,
            cur: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn http(&self) -> &IdpHttp {
        &self.http
    }

    /// The provider, discovered (or rediscovered after [`METADATA_TTL`]);
    /// a stale document is kept while the IdP cannot be reached.
    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, String> {
        if let Some(p) = self.cur.load_full() {
            if p.fetched.elapsed() < METADATA_TTL {
                return Ok(p);
            }
        }
        let mut last_fail = self.fetching.lock().await;
        if let Some(p) = self.cur.load_full() {
            if p.fetched.elapsed() < METADATA_TTL {
                return Ok(p);
            }
        }
        let stale = self.cur.load_full();
        if last_fail.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return stale
                .ok_or_else(|| "the identity provider could not be reached just now".into());
        }
        match ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http).await {
            Ok(meta) => {
                let generation = stale.as_ref().map_or(0, |p| p.generation) + 1;
                let p = Arc::new(Provider {
                    meta,
                    fetched: Instant::now(),
                    generation,
                });
                self.cur.store(Some(p.clone()));
                *last_fail = None;
                tracing::info!(issuer = %self.issuer.as_str(), "OIDC discovery document and JWKS fetched");
                Ok(p)
            }
            Err(e) => {
                *last_fail = Some(Instant::now());
                let words = format!(
                    "discovery of {} failed: {}",
                    self.issuer.as_str(),
                    chain(&e)
                );
                tracing::warn!("{words}");
                stale.ok_or(words)
            }
        }
    }

    /// Fetches the JWKS again unless another login did since `seen` was
    /// read; the provider with the newest keys.
    async fn refresh_keys(&self, seen: &Provider) -> Result<Arc<Provider>, String> {
        let _one = self.fetching.lock().await;
        if let Some(p) = self
            .cur
            .load_full()
            .filter(|p| p.generation != seen.generation)
        {
            return Ok(p);
        }
        let jwks = JsonWebKeySet::<CoreJsonWebKey>::fetch_async(seen.meta.jwks_uri(), &self.http)
            .await
            .map_err(|e| format!("fetching the JWKS again failed: {}", chain(&e)))?;
        tracing::info!(issuer = %self.issuer.as_str(), "OIDC JWKS fetched again (a token named a key it lacked)");
        let p = Arc::new(Provider {
            meta: seen.meta.clone().set_jwks(jwks),
            fetched: seen.fetched,
            generation: seen.generation + 1,
        });
        self.cur.store(Some(p.clone()));
        Ok(p)
    }

    /// Checks `token` against the provider's keys, fetching them again
    /// once if it names a key they lack; its claims as one JSON object.
    pub(crate) async fn verify(
        &self,
        cfg: &OidcConfig,
        provider: Arc<Provider>,
        token: &IdToken,
        nonce: &Nonce,
    ) -> Result<Value, (Denied, String)> {
        match check(cfg, &provider, token, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let p = self
                    .refresh_keys(&provider)
                    .await
                    .map_err(|w| (Denied::IdpUnavailable, w))?;
                check(cfg, &p, token, nonce).map_err(denial)
            }
            r => r.map_err(denial),
        }
    }
}

/// The error and its sources, in one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn check(
    cfg: &OidcConfig,
    p: &Provider,
    token: &IdToken,
    nonce: &Nonce,
) -> Result<Value, ClaimsVerificationError> {
    // A public-client verifier: without the client secret it cannot
    // check HS* MACs, so those fail even if listed.
    let verifier = IdTokenVerifier::new_public_client(
        openidconnect::ClientId::new(cfg.client_id.clone()),
        p.meta.issuer().clone(),
        p.meta.jwks().clone(),
    )
    .set_allowed_algs(cfg.id_token_algs.iter().cloned());
    let claims = token.claims(&verifier, nonce)?;
    serde_json::to_value(claims).map_err(|e| ClaimsVerificationError::Other(e.to_string()))
}

fn denial(e: ClaimsVerificationError) -> (Denied, String) {
    use ClaimsVerificationError as C;
    use SignatureVerificationError as S;
    let why = match &e {
        C::Expired(_) => Denied::Expired,
        C::InvalidAudience(_) => Denied::WrongAudience,
        C::InvalidIssuer(_) => Denied::WrongIssuer,
        C::InvalidNonce(_) => Denied::BadNonce,
        C::SignatureVerification(S::DisallowedAlg(_) | S::NoSignature | S::UnsupportedAlg(_)) => {
            Denied::AlgNotAllowed
        }
        C::SignatureVerification(_) => Denied::BadSignature,
        _ => Denied::InvalidToken,
    };
    (why, format!("ID token refused: {}", chain(&e)))
}

/// Bytes percent-encoded in identity header values: controls, `%` so the
/// encoding reads back, `,` (the list separator of `X-Forwarded-Groups`)
/// and every non-ASCII byte. A name cannot forge a header or a log field.
const HEADER_SAFE: &AsciiSet = &CONTROLS.add(b'%').add(b',');
/// At most this many groups are kept in the session cookie...
const MAX_GROUPS: usize = 64;
/// ... each at most this long, and a user name or email at most this.
const MAX_NAME: usize = 256;

fn safe(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, HEADER_SAFE).to_string()
}

/// A claim as text: a string as is, a number or boolean as JSON.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Who signed in, from verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub user: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
}

impl Identity {
    /// Reads the user (`user_claim`), email and groups (`groups_claim`).
    pub(crate) fn from_claims(cfg: &OidcConfig, claims: &Value) -> Result<Identity, String> {
        let user = claims
            .get(&cfg.user_claim)
            .and_then(text)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                format!(
                    "the ID token has no `{}` claim (user_claim)",
                    cfg.user_claim
                )
            })?;
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let email_verified = claims.get("email_verified") == Some(&Value::Bool(true));
        let groups = match claims.get(&cfg.groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
            Some(v) => text(v).into_iter().collect(),
            None => Vec::new(),
        };
        Ok(Identity {
            user,
            email,
            email_verified,
            groups,
        })
    }

    /// Whether `allow` admits this user, with `claims` for `allow_claims`.
    /// An email counts only when the IdP says it is verified: an
    /// unverified address is whatever the user typed at sign-up.
    pub(crate) fn admitted(&self, allow: &Allow, claims: &Value) -> Result<(), String> {
        if allow.any {
            return Ok(());
        }
        if allow.groups.iter().any(|g| self.groups.contains(g)) {
            return Ok(());
        }
        if let (Some(e), true) = (&self.email, self.email_verified) {
            let e = e.to_ascii_lowercase();
            if allow.emails.iter().any(|r| match r {
                EmailRule::Exact(x) => *x == e,
                EmailRule::Domain(d) => e.ends_with(d.as_str()),
            }) {
                return Ok(());
            }
        }
        for (name, values) in &allow.claims {
            let hit = match claims.get(name) {
                Some(Value::Array(a)) => a.iter().any(|v| values.contains(v)),
                Some(v) => values.contains(v),
                None => false,
            };
            if hit {
                return Ok(());
            }
        }
        let email = match (&self.email, self.email_verified) {
            (Some(e), true) => safe(e),
            (Some(e), false) => format!("{} (not verified)", safe(e)),
            (None, _) => "none".into(),
        };
        Err(format!(
            "user {} (email {email}, {} groups) is not admitted by allow_groups, allow_emails or allow_claims",
            safe(&self.user),
            self.groups.len()
        ))
    }

    /// The session this identity gets: header-safe strings, bounded.
    pub(crate) fn session(&self, now: u64) -> Result<super::cookie::Session, String> {
        let user = safe(&self.user);
        if user.len() > MAX_NAME {
            return Err(format!("the user name is longer than {MAX_NAME} bytes"));
        }
        let email = self
            .email
            .as_deref()
            .map(safe)
            .filter(|e| e.len() <= MAX_NAME);
        let groups = self
            .groups
            .iter()
            .map(|g| safe(g))
            .filter(|g| g.len() <= MAX_NAME)
            .take(MAX_GROUPS)
            .collect();
        Ok(super::cookie::Session {
            user,
            email,
            groups,
            issued: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(extra: &str) -> OidcConfig {
        toml::from_str(&format!(
            "issuer = \"https://idp.example\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\n{extra}\n"
        ))
        .unwrap()
    }

    #[test]
    fn allow_rules_admit_by_group_verified_email_or_claim() {
        let c = cfg("allow_groups = [\"staff\"]\nallow_emails = [\"@corp.example\"]\nallow_claims = { hd = [\"corp.example\"] }");
        let claims = |v: Value| v;
        let id = |c: &OidcConfig, v: &Value| Identity::from_claims(c, v).unwrap();
        let staff = claims(json!({"sub": "a", "groups": ["x", "staff"]}));
        assert!(id(&c, &staff).admitted(&c.allow, &staff).is_ok());
        let mail = claims(json!({"sub": "b", "email": "B@Corp.Example", "email_verified": true}));
        assert!(id(&c, &mail).admitted(&c.allow, &mail).is_ok());
        let unverified = claims(json!({"sub": "b", "email": "b@corp.example"}));
        let e = id(&c, &unverified)
            .admitted(&c.allow, &unverified)
            .unwrap_err();
        assert!(e.contains("not verified"), "{e}");
        let hd = claims(json!({"sub": "c", "hd": "corp.example"}));
        assert!(id(&c, &hd).admitted(&c.allow, &hd).is_ok());
        let other = claims(
            json!({"sub": "d", "email": "d@evil.example", "email_verified": true, "groups": "guests"}),
        );
        assert!(id(&c, &other).admitted(&c.allow, &other).is_err());
        let lookalike =
            claims(json!({"sub": "e", "email": "e@corp.example.evil", "email_verified": true}));
        assert!(id(&c, &lookalike).admitted(&c.allow, &lookalike).is_err());
    }

    #[test]
    fn names_become_safe_header_values() {
        let c = cfg("allow_any_user = true\nuser_claim = \"preferred_username\"");
        let v = json!({"sub": "s", "preferred_username": "al\r\nice,é", "groups": ["a,b"]});
        let s = Identity::from_claims(&c, &v).unwrap().session(7).unwrap();
        assert_eq!(s.user, "al%0D%0Aice%2C%C3%A9");
        assert_eq!(s.groups, ["a%2Cb"]);
        assert!(Identity::from_claims(&c, &json!({"sub": "s"})).is_err());
    }
}
