//! `[listener.oidc]`: the keys as written ([`RawOidc`]) and the checked,
//! typed value the gateway runs with ([`OidcConfig`]). Serde turns one into
//! the other while the file is parsed (`try_from`), so a listener that
//! has an `OidcConfig` has a valid one: nothing downstream re-checks it.
//!
//! Files (the client secret, the cookie keys, `ca_file`) are not read
//! here: [`super::Oidc::load`] reads them when the gateway starts and
//! `pivault proxy check` runs, as for certificates.

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::url;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default path the IdP sends the browser back to.
pub const DEFAULT_CALLBACK: &str = "/.pivault/oidc/callback";
/// The default path that ends a session.
pub const DEFAULT_LOGOUT: &str = "/.pivault/oidc/logout";
/// The default session cookie name: `__Host-` makes browsers refuse it
/// unless it is `Secure`, for the whole host (`Path=/`), without `Domain`.
pub const DEFAULT_COOKIE: &str = "__Host-pivault-session";
/// The longest `session_ttl` (30 days).
const MAX_TTL: Duration = Duration::from_secs(30 * 86_400);
/// The shortest `session_ttl` (a minute).
const MIN_TTL: Duration = Duration::from_secs(60);

/// `[listener.oidc]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret_file: String,
    cookie_key_file: String,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    allow_groups: Vec<String>,
    #[serde(default)]
    allow_emails: Vec<String>,
    #[serde(default)]
    allow_claims: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    allow_any_user: bool,
    session_ttl: Option<String>,
    callback_path: Option<String>,
    logout_path: Option<String>,
    public_url: Option<String>,
    post_logout_url: Option<String>,
    cookie_name: Option<String>,
    scopes: Option<Vec<String>>,
    user_claim: Option<String>,
    groups_claim: Option<String>,
    id_token_algs: Option<Vec<String>>,
}

/// Where a secret comes from: a file, or the vault's keystore
/// (`sealed:VAULT_DIR:NAME`, opened by `pivault proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A plain file.
    File(PathBuf),
    /// `sealed:VAULT_DIR:NAME` as written.
    Sealed(String),
}

/// One `allow_emails` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailRule {
    /// A whole address (lower case).
    Exact(String),
    /// `@domain`: every address of the domain (lower case, with the `@`).
    Domain(String),
}

/// Who may sign in, checked once at login against the verified ID token.
/// A user is admitted when any rule matches (or `any` is set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allow {
    /// `allow_any_user`: every user the IdP signs in.
    pub any: bool,
    /// Group names, matched against the `groups_claim` claim.
    pub groups: Vec<String>,
    /// Verified email addresses or domains.
    pub emails: Vec<EmailRule>,
    /// Claim name and the JSON values it may have (one of them, or an
    /// array holding one of them).
    pub claims: Vec<(String, Vec<serde_json::Value>)>,
}

/// The checked `[listener.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawOidc")]
pub struct OidcConfig {
    /// The issuer URL, exactly as the IdP's discovery document names it.
    pub issuer: String,
    /// The client registered at the IdP.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretSource,
    /// The cookie keys (first seals, all open).
    pub cookie_keys: SecretSource,
    /// PEM CA bundle for the IdP's TLS certificate (default: system roots).
    pub ca_file: Option<PathBuf>,
    /// Who may sign in.
    pub allow: Allow,
    /// How long a session lasts from login.
    pub session_ttl: Duration,
    /// The redirect URI's path.
    pub callback_path: String,
    /// The path that ends a session.
    pub logout_path: String,
    /// `https://host[:port]` the browser reaches the listener at; None:
    /// from each request's `Host`.
    pub public_url: Option<String>,
    /// Where the IdP sends the browser after logout (its end-session
    /// endpoint's `post_logout_redirect_uri`).
    pub post_logout_url: Option<String>,
    /// The session cookie's name.
    pub cookie_name: String,
    /// Scopes asked for (always with `openid`).
    pub scopes: Vec<String>,
    /// The claim passed as `X-Forwarded-User`.
    pub user_claim: String,
    /// The claim holding the user's groups.
    pub groups_claim: String,
    /// ID token signature algorithms accepted.
    pub id_token_algs: Vec<CoreJwsSigningAlgorithm>,
}

fn secret(key: &str, v: &str) -> Result<SecretSource, String> {
    if let Some(rest) = v.strip_prefix("sealed:") {
        return match rest.rsplit_once(':') {
            Some((vault, name)) if !vault.is_empty() && !name.is_empty() => {
                Ok(SecretSource::Sealed(v.to_string()))
            }
            _ => Err(format!(
                "{key} `{v}`: expected a file or sealed:VAULT_DIR:NAME"
            )),
        };
    }
    if v.is_empty() {
        return Err(format!("{key}: empty path"));
    }
    Ok(SecretSource::File(PathBuf::from(v)))
}

/// True for a host that is this machine: plain `http://` is allowed only
/// to such an issuer (a test provider), never across a network.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks an URL the gateway fetches (the issuer) or sends browsers to:
/// `https://`, or `http://` to a loopback host.
pub(crate) fn check_url(key: &str, v: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(v).map_err(|e| format!("{key} `{v}`: not a URL ({e})"))?;
    let host = u
        .host_str()
        .ok_or_else(|| format!("{key} `{v}`: no host"))?;
    match u.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(format!(
                "{key} `{v}`: plain http:// is accepted only for a loopback address (a local test provider); use https://"
            ))
        }
        s => return Err(format!("{key} `{v}`: expected https://, not {s}://")),
    }
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{key} `{v}`: no user, password or fragment allowed"
        ));
    }
    Ok(u)
}

/// A local path the gateway answers itself: absolute, plain characters,
/// no dot segments, not `/`.
fn check_path(key: &str, v: &str) -> Result<String, String> {
    let ok = v.starts_with('/')
        && v.len() > 1
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && !v.split('/').any(|s| s == "." || s == "..")
        && !v.contains("//");
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{key} `{v}`: expected an absolute path of letters, digits and - . _ ~ (such as \"{DEFAULT_CALLBACK}\")"
        ))
    }
}

/// A cookie name: an RFC 6265 token.
fn check_cookie_name(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "cookie_name `{v}`: expected a cookie name of letters, digits and - _ . (at most 64)"
        ))
    }
}

fn algs(v: Option<Vec<String>>) -> Result<Vec<CoreJwsSigningAlgorithm>, String> {
    use CoreJwsSigningAlgorithm as A;
    let Some(names) = v else {
        return Ok(vec![
            A::RsaSsaPkcs1V15Sha256,
            A::RsaSsaPkcs1V15Sha384,
            A::RsaSsaPkcs1V15Sha512,
            A::RsaSsaPssSha256,
            A::EcdsaP256Sha256,
            A::EcdsaP384Sha384,
            A::EdDsa,
        ]);
    };
    if names.is_empty() {
        return Err("id_token_algs: empty: expected algorithms such as [\"RS256\"]".into());
    }
    names
        .iter()
        .map(|n| {
            // Shared-secret MACs would let anyone holding the client
            // secret mint tokens; `none` is no signature at all.
            if n.starts_with("HS") || n.eq_ignore_ascii_case("none") {
                return Err(format!(
                    "id_token_algs `{n}`: not accepted (only public-key signatures: RS256, PS256, ES256, EdDSA...)"
                ));
            }
            serde_json::from_value::<A>(serde_json::Value::String(n.clone()))
                .ok()
                .filter(|a| !matches!(a, A::None | A::HmacSha256 | A::HmacSha384 | A::HmacSha512))
                .ok_or_else(|| format!("id_token_algs `{n}`: not a JWS algorithm name such as RS256"))
        })
        .collect()
}

fn allow(raw: &RawOidc) -> Result<Allow, String> {
    let mut a = Allow {
        any: raw.allow_any_user,
        ..Default::default()
    };
    for g in &raw.allow_groups {
        if g.is_empty() {
            return Err("allow_groups: an empty group name".into());
        }
        a.groups.push(g.clone());
    }
    for e in &raw.allow_emails {
        let l = e.to_ascii_lowercase();
        let rule = match l.strip_prefix('@') {
            Some(d) if !d.is_empty() && !d.contains('@') => EmailRule::Domain(l.clone()),
            None if l.split('@').count() == 2 && !l.starts_with('@') && !l.ends_with('@') => {
                EmailRule::Exact(l.clone())
            }
            _ => {
                return Err(format!(
                    "allow_emails `{e}`: expected an address (\"alice@example.com\") or a domain (\"@example.com\")"
                ))
            }
        };
        a.emails.push(rule);
    }
    for (name, values) in &raw.allow_claims {
        if values.is_empty() {
            return Err(format!("allow_claims.{name}: expected at least one value"));
        }
        let vals = values
            .iter()
            .map(|v| serde_json::to_value(v).map_err(|e| format!("allow_claims.{name}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        a.claims.push((name.clone(), vals));
    }
    let rules = !a.groups.is_empty() || !a.emails.is_empty() || !a.claims.is_empty();
    if a.any && rules {
        return Err("allow_any_user = true admits everyone: remove it or the allow_* rules".into());
    }
    if !a.any && !rules {
        return Err(
            "no allow_groups, allow_emails or allow_claims: every account of the IdP could sign in; name who may, or set allow_any_user = true"
                .into(),
        );
    }
    Ok(a)
}

impl TryFrom<RawOidc> for OidcConfig {
    type Error = String;

    fn try_from(raw: RawOidc) -> Result<Self, String> {
        // The errors name the key: serde's span points at the table.
        let pre = |e: String| format!("[listener.oidc] {e}");
        let issuer_url = check_url("issuer", &raw.issuer).map_err(pre)?;
        if issuer_url.query().is_some() {
            return Err(pre(format!("issuer `{}`: no query allowed", raw.issuer)));
        }
        if raw.client_id.is_empty() {
            return Err(pre("client_id: empty".into()));
        }
        let session_ttl = match &raw.session_ttl {
            None => Duration::from_secs(8 * 3600),
            Some(s) => humantime::parse_duration(s)
                .map_err(|e| pre(format!("session_ttl `{s}`: {e} (such as \"8h\")")))?,
        };
        if !(MIN_TTL..=MAX_TTL).contains(&session_ttl) {
            return Err(pre("session_ttl: expected 1m to 30days".into()));
        }
        let callback_path = check_path(
            "callback_path",
            raw.callback_path.as_deref().unwrap_or(DEFAULT_CALLBACK),
        )
        .map_err(pre)?;
        let logout_path = check_path(
            "logout_path",
            raw.logout_path.as_deref().unwrap_or(DEFAULT_LOGOUT),
        )
        .map_err(pre)?;
        if callback_path == logout_path {
            return Err(pre("callback_path and logout_path are the same".into()));
        }
        let public_url = match &raw.public_url {
            None => None,
            Some(u) => {
                let p = url::Url::parse(u)
                    .ok()
                    .filter(|p| {
                        p.scheme() == "https"
                            && p.host_str().is_some()
                            && p.path() == "/"
                            && p.query().is_none()
                            && p.fragment().is_none()
                            && p.username().is_empty()
                    })
                    .ok_or_else(|| {
                        pre(format!(
                            "public_url `{u}`: expected https://host[:port] (the address browsers use)"
                        ))
                    })?;
                Some(p.as_str().trim_end_matches('/').to_string())
            }
        };
        let post_logout_url = match &raw.post_logout_url {
            None => None,
            Some(u) => Some(check_url("post_logout_url", u).map_err(pre)?.to_string()),
        };
        let scopes = raw
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        if scopes.iter().any(|s| {
            s.is_empty()
                || s.bytes()
                    .any(|b| !(0x21..0x7f).contains(&b) || b == b'"' || b == b'\\')
        }) {
            return Err(pre("scopes: expected names such as \"email\"".into()));
        }
        let claim = |key: &str, v: &Option<String>, default: &str| -> Result<String, String> {
            match v.as_deref() {
                None => Ok(default.to_string()),
                Some("") => Err(pre(format!("{key}: empty"))),
                Some(c) => Ok(c.to_string()),
            }
        };
        Ok(OidcConfig {
            client_secret: secret("client_secret_file", &raw.client_secret_file).map_err(pre)?,
            cookie_keys: secret("cookie_key_file", &raw.cookie_key_file).map_err(pre)?,
            allow: allow(&raw).map_err(pre)?,
            cookie_name: check_cookie_name(raw.cookie_name.as_deref().unwrap_or(DEFAULT_COOKIE))
                .map_err(pre)?,
            id_token_algs: algs(raw.id_token_algs.clone()).map_err(pre)?,
            user_claim: claim("user_claim", &raw.user_claim, "sub")?,
            groups_claim: claim("groups_claim", &raw.groups_claim, "groups")?,
            issuer: raw.issuer,
            client_id: raw.client_id,
            ca_file: raw.ca_file,
            session_ttl,
            callback_path,
            logout_path,
            public_url,
            post_logout_url,
            scopes,
        })
    }
}

impl OidcConfig {
    /// The `sealed:` references this listener uses, for `pivault proxy`
    /// to open at start.
    pub fn sealed_specs(&self) -> impl Iterator<Item = &str> {
        [&self.client_secret, &self.cookie_keys]
            .into_iter()
            .filter_map(|s| match s {
                SecretSource::Sealed(spec) => Some(spec.as_str()),
                SecretSource::File(_) => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<OidcConfig, String> {
        let src = format!(
            "issuer = \"https://idp.example\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\n{extra}\n"
        );
        toml::from_str::<OidcConfig>(&src).map_err(|e| e.message().to_string())
    }

    #[test]
    fn defaults_and_rules() {
        let c = parse("allow_groups = [\"staff\"]").unwrap();
        assert_eq!(c.callback_path, DEFAULT_CALLBACK);
        assert_eq!(c.logout_path, DEFAULT_LOGOUT);
        assert_eq!(c.cookie_name, DEFAULT_COOKIE);
        assert_eq!(c.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(c.allow.groups, ["staff"]);
        assert!(c
            .id_token_algs
            .contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256));
        let c = parse(
            "allow_emails = [\"Alice@Example.com\", \"@corp.example\"]\nsession_ttl = \"30m\"",
        )
        .unwrap();
        assert_eq!(
            c.allow.emails,
            [
                EmailRule::Exact("alice@example.com".into()),
                EmailRule::Domain("@corp.example".into())
            ]
        );
        assert_eq!(c.session_ttl, Duration::from_secs(1800));
        let c = parse("allow_claims = { hd = [\"corp.example\"], admin = [true] }").unwrap();
        assert_eq!(c.allow.claims.len(), 2);
    }

    #[test]
    fn no_rule_or_everyone_must_be_said() {
        let e = parse("").unwrap_err();
        assert!(e.contains("allow_any_user"), "{e}");
        assert!(parse("allow_any_user = true").unwrap().allow.any);
        let e = parse("allow_any_user = true\nallow_groups = [\"a\"]").unwrap_err();
        assert!(e.contains("admits everyone"), "{e}");
    }

    #[test]
    fn http_issuers_only_on_loopback() {
        let ok = |i: &str| {
            toml::from_str::<OidcConfig>(&format!(
                "issuer = \"{i}\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\nallow_any_user = true\n"
            ))
            .map_err(|e| e.message().to_string())
        };
        assert!(ok("http://127.0.0.1:9400").is_ok());
        assert!(ok("http://[::1]:9400/realms/x").is_ok());
        assert!(ok("http://localhost:9400").is_ok());
        let e = ok("http://idp.example").unwrap_err();
        assert!(e.contains("only for a loopback"), "{e}");
        assert!(ok("http://10.0.0.1").is_err());
        assert!(ok("ftp://idp.example").is_err());
    }

    #[test]
    fn bad_values_are_named() {
        for (extra, needle) in [
            (
                "allow_any_user = true\nid_token_algs = [\"HS256\"]",
                "HS256",
            ),
            ("allow_any_user = true\nid_token_algs = [\"none\"]", "none"),
            ("allow_any_user = true\nid_token_algs = [\"XX1\"]", "XX1"),
            (
                "allow_any_user = true\ncallback_path = \"/a/../b\"",
                "callback_path",
            ),
            ("allow_any_user = true\nlogout_path = \"x\"", "logout_path"),
            (
                "allow_any_user = true\nsession_ttl = \"10s\"",
                "session_ttl",
            ),
            (
                "allow_any_user = true\npublic_url = \"http://app.example\"",
                "public_url",
            ),
            (
                "allow_any_user = true\ncookie_name = \"a b\"",
                "cookie_name",
            ),
            ("allow_emails = [\"nobody\"]", "allow_emails"),
            ("allow_any_user = true\ncolour = 1", "colour"),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(e.contains(needle), "{extra}: {e}");
        }
    }

    #[test]
    fn sealed_sources_are_listed() {
        let src = "issuer = \"https://idp.example\"\nclient_id = \"gw\"\nclient_secret_file = \"sealed:/v:oidc-secret\"\ncookie_key_file = \"sealed:/v:cookie\"\nallow_any_user = true\n";
        let c: OidcConfig = toml::from_str(src).unwrap();
        assert_eq!(
            c.sealed_specs().collect::<Vec<_>>(),
            ["sealed:/v:oidc-secret", "sealed:/v:cookie"]
        );
    }
}
