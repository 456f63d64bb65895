//! The gateway's two cookies, sealed with AES-256-GCM (*ring*): the
//! session (who signed in, and when) and the short-lived login cookie
//! (state, nonce and PKCE verifier of one login under way). Nothing of a
//! login or a session is kept on the server, so several gateway copies
//! behind a load balancer need only share the cookie keys.
//!
//! A sealed cookie is `base64url(version ‖ key id ‖ nonce ‖ ciphertext ‖
//! tag)`. The additional data binds it to its purpose (session or login)
//! and to the listener's identity provider, client and admission rules
//! (`Context`): a login cookie cannot pass for a session, nor a session
//! of one listener for another's with other rules. The key id (4 bytes of
//! a hash of the key) picks the opening key without trying each.
//!
//! Keys: `cookie_key_file` holds one key per line (32 random bytes as
//! base64 or hex, `#` comments). The first seals; every one opens, so a
//! rotation (add the new key first, keep the old one below it for a
//! `session_ttl`, then remove it) logs no one out.
//!
//! Times are checked from the sealed issue time, not from the cookie's
//! `Max-Age`, which only the browser honours.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const KID_LEN: usize = 4;
const TAG_LEN: usize = 16;
const HEADER: usize = 1 + KID_LEN + NONCE_LEN;
/// The largest sealed cookie value accepted or made: browsers keep at most
/// 4096 bytes of name, value and attributes.
pub(crate) const MAX_COOKIE: usize = 3800;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a cookie key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// A line that is no 32-byte key.
    #[error(
        "line {0}: expected 32 random bytes as base64 (openssl rand -base64 32) or 64 hex digits"
    )]
    BadLine(usize),
    /// No key at all.
    #[error("no key: expected one key per line (openssl rand -base64 32)")]
    Empty,
    /// The same key twice.
    #[error("line {0}: the same key as an earlier line")]
    Duplicate(usize),
}

/// One cookie key.
struct Key {
    id: [u8; KID_LEN],
    aead: LessSafeKey,
}

/// The listener's cookie keys: the first seals, all open.
pub struct CookieKeys {
    keys: Vec<Key>,
    rng: SystemRandom,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieKeys({} keys)", self.keys.len())
    }
}

fn decode_key(line: &str) -> Option<Zeroizing<Vec<u8>>> {
    let hex = line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit());
    let bytes = if hex {
        let mut out = Zeroizing::new(vec![0u8; 32]);
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).ok()?;
        }
        out
    } else {
        let t = line.trim_end_matches('=');
        Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .or_else(|_| B64.decode(t))
                .ok()?,
        )
    };
    (bytes.len() == 32).then_some(bytes)
}

impl CookieKeys {
    /// Parses a key file's text (see the module doc).
    pub fn parse(text: &str) -> Result<CookieKeys, KeyFileError> {
        let mut keys: Vec<Key> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = decode_key(line).ok_or(KeyFileError::BadLine(i + 1))?;
            let digest = ring::digest::digest(
                &ring::digest::SHA256,
                &[b"pivault-oidc-cookie-key\0".as_slice(), &bytes].concat(),
            );
            let mut id = [0u8; KID_LEN];
            id.copy_from_slice(&digest.as_ref()[..KID_LEN]);
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyFileError::Duplicate(i + 1));
            }
            let unbound =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyFileError::BadLine(i + 1))?;
            keys.push(Key {
                id,
                aead: LessSafeKey::new(unbound),
            });
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(CookieKeys {
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// How many keys open cookies (at least one).
    pub fn count(&self) -> usize {
        self.keys.len()
    }

    /// Seals `plain` for `ctx`; None only if the system RNG fails.
    pub(crate) fn seal(&self, ctx: &[u8; 32], plain: &[u8]) -> Option<String> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEADER + plain.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let aad = aad(&out[..1 + KID_LEN], ctx);
        let mut body = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(B64.encode(out))
    }

    /// Opens a sealed value for `ctx`.
    pub(crate) fn open(&self, ctx: &[u8; 32], value: &str) -> Result<Zeroizing<Vec<u8>>, Opened> {
        if value.len() > MAX_COOKIE {
            return Err(Opened::Tampered);
        }
        let raw = B64.decode(value).map_err(|_| Opened::Tampered)?;
        if raw.len() < HEADER + TAG_LEN || raw[0] != VERSION {
            return Err(Opened::Tampered);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == raw[1..1 + KID_LEN])
            .ok_or(Opened::UnknownKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&raw[1 + KID_LEN..HEADER]);
        let aad = aad(&raw[..1 + KID_LEN], ctx);
        let mut body = Zeroizing::new(raw[HEADER..].to_vec());
        let n = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| Opened::Tampered)?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

fn aad(head: &[u8], ctx: &[u8; 32]) -> Vec<u8> {
    [head, ctx.as_slice()].concat()
}

/// Why a cookie did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Not one of ours as sealed: edited, cut, or for another purpose or
    /// listener.
    Tampered,
    /// Sealed with a key this gateway does not have (removed after a
    /// rotation, or another deployment's).
    UnknownKey,
}

/// What a cookie is bound to, hashed once per listener and purpose.
pub(crate) struct Context;

impl Context {
    /// The context digest of `purpose` for a listener whose provider,
    /// client and admission rules are described by `parts`.
    pub(crate) fn digest(purpose: &str, parts: &[&str]) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"pivault-oidc-v1\0");
        ctx.update(purpose.as_bytes());
        for p in parts {
            // Length-prefixed: no two lists of parts hash alike.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// A signed-in user, as the session cookie carries it. The strings are
/// already safe header values (see `validate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// `X-Forwarded-User`.
    #[serde(rename = "u")]
    pub user: String,
    /// `X-Forwarded-Email`, when the IdP gave one.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups (bounded in count and size).
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Login time, Unix seconds.
    #[serde(rename = "t")]
    pub issued: u64,
}

/// A login under way, as the login cookie carries it.
#[derive(Serialize, Deserialize)]
pub(crate) struct Login {
    /// The `state` sent to the IdP.
    #[serde(rename = "s")]
    pub state: String,
    /// The `nonce` sent to the IdP.
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE verifier.
    #[serde(rename = "v")]
    pub verifier: String,
    /// The local path to return to.
    #[serde(rename = "r")]
    pub back: String,
    /// Unix seconds when the login began.
    #[serde(rename = "t")]
    pub issued: u64,
}

impl Drop for Login {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.verifier.zeroize();
        self.nonce.zeroize();
        self.state.zeroize();
    }
}

/// Seals `v` as JSON.
pub(crate) fn seal_json<T: Serialize>(keys: &CookieKeys, ctx: &[u8; 32], v: &T) -> Option<String> {
    let plain = Zeroizing::new(serde_json::to_vec(v).ok()?);
    keys.seal(ctx, &plain)
}

/// Opens a sealed JSON value.
pub(crate) fn open_json<T: DeserializeOwned>(
    keys: &CookieKeys,
    ctx: &[u8; 32],
    value: &str,
) -> Result<T, Opened> {
    let plain = keys.open(ctx, value)?;
    serde_json::from_slice(&plain).map_err(|_| Opened::Tampered)
}

/// The value of cookie `name` in the request's `Cookie` headers (the first
/// one, as browsers send the most specific first).
pub(crate) fn find<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (n, v) = c.trim().split_once('=')?;
            // An empty value is a cookie being deleted: none.
            let v = v.trim_matches('"');
            (n == name && !v.is_empty()).then_some(v)
        })
}

/// Removes the cookies named in `names` from the request's `Cookie`
/// headers (the app gets the others, never the gateway's).
pub(crate) fn strip(headers: &mut hyper::HeaderMap, names: &[&str]) {
    let all = headers.get_all(hyper::header::COOKIE);
    let mine = |c: &str| {
        c.trim()
            .split_once('=')
            .is_some_and(|(n, _)| names.contains(&n))
    };
    let any = all
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(mine));
    if !any {
        return;
    }
    let kept: Vec<&str> = all
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !mine(c))
        .collect();
    let joined = kept.join("; ");
    headers.remove(hyper::header::COOKIE);
    if !joined.is_empty() {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&joined) {
            headers.insert(hyper::header::COOKIE, v);
        }
    }
}

/// A `Set-Cookie` value for `name` that lives `max_age` seconds (0:
/// removes it). Always `Secure; HttpOnly; SameSite=Lax; Path=/`: Lax,
/// not Strict, so that the browser sends it on the IdP's redirect back.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn ctx(p: &str) -> [u8; 32] {
        Context::digest(p, &["https://idp.example", "gw"])
    }

    #[test]
    fn key_files_are_checked() {
        assert_eq!(
            CookieKeys::parse(&format!("# keys\n\n{K1}\n{K2}\n"))
                .unwrap()
                .count(),
            2
        );
        assert!(matches!(
            CookieKeys::parse("# none\n"),
            Err(KeyFileError::Empty)
        ));
        assert!(matches!(
            CookieKeys::parse("c2hvcnQ=\n"),
            Err(KeyFileError::BadLine(1))
        ));
        assert!(matches!(
            CookieKeys::parse(&format!("{K1}\n{K1}\n")),
            Err(KeyFileError::Duplicate(2))
        ));
    }

    #[test]
    fn seal_open_and_every_tamper_is_refused() {
        let keys = CookieKeys::parse(K1).unwrap();
        let c = ctx("session");
        let v = keys.seal(&c, b"alice").unwrap();
        assert_eq!(&keys.open(&c, &v).unwrap()[..], b"alice");
        // Any flipped byte, a cut, another purpose: refused.
        let raw = B64.decode(&v).unwrap();
        for i in [0, 1, 6, HEADER, raw.len() - 1] {
            let mut r = raw.clone();
            r[i] ^= 1;
            let e = keys.open(&c, &B64.encode(&r)).unwrap_err();
            assert!(
                matches!(e, Opened::Tampered | Opened::UnknownKey),
                "byte {i}"
            );
        }
        assert_eq!(
            keys.open(&c, &v[..v.len() - 2]).unwrap_err(),
            Opened::Tampered
        );
        assert_eq!(keys.open(&ctx("login"), &v).unwrap_err(), Opened::Tampered);
        assert_eq!(keys.open(&c, "not base64!").unwrap_err(), Opened::Tampered);
    }

    #[test]
    fn rotation_opens_old_cookies_and_a_foreign_key_is_named() {
        let old = CookieKeys::parse(K1).unwrap();
        let c = ctx("session");
        let v = old.seal(&c, b"alice").unwrap();
        let rotated = CookieKeys::parse(&format!("{K2}\n{K1}\n")).unwrap();
        assert_eq!(&rotated.open(&c, &v).unwrap()[..], b"alice");
        let newer = rotated.seal(&c, b"bob").unwrap();
        assert_eq!(old.open(&c, &newer).unwrap_err(), Opened::UnknownKey);
        let only_new = CookieKeys::parse(K2).unwrap();
        assert_eq!(only_new.open(&c, &v).unwrap_err(), Opened::UnknownKey);
    }

    #[test]
    fn cookies_are_found_and_stripped() {
        let mut h = hyper::HeaderMap::new();
        h.append("cookie", "a=1; __Host-s=xyz".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(find(&h, "__Host-s"), Some("xyz"));
        assert_eq!(find(&h, "c"), None);
        strip(&mut h, &["__Host-s"]);
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h.get("cookie").unwrap(), "a=1; b=2");
        let mut h = hyper::HeaderMap::new();
        h.append("cookie", "__Host-s=xyz".parse().unwrap());
        strip(&mut h, &["__Host-s"]);
        assert!(h.get("cookie").is_none());
    }
}
