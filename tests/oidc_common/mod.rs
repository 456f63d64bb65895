//! Helpers for the single sign-on tests: a stub OpenID provider on
//! 127.0.0.1 that mints whatever ID token a test asks for (expired, signed
//! with the wrong key, for another audience... what a real provider will
//! not issue), a curl "browser" with a cookie jar, and the gateway config.
//! Tokens are minted with `openidconnect` itself; the stub checks PKCE and
//! the client secret as a provider does.
#![allow(dead_code)]

use crate::proxy_common::{read_request, Setup};
use base64::Engine as _;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreGenderClaim, CoreHmacKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, Audience, EndUserEmail, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId,
    Nonce, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "pivault-gw";
pub const SECRET: &str = "s3cret-of-the-client";
/// Two cookie keys (32 bytes each, base64).
pub const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Groups {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

/// Which key signs the next token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signer {
    /// Key `i` of the stub (kid "k{i}").
    Key(usize),
    /// A key the provider never published, under kid "k0".
    Rogue,
    /// A key the provider never published, under a kid it never used.
    Unknown,
    /// HS256 with the client secret.
    Hs256,
    /// `alg: none`, no signature.
    Unsigned,
}

/// The next ID token, as the test wants it.
#[derive(Clone, Debug)]
pub struct Spec {
    pub sub: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub aud: String,
    /// None: the stub's own issuer.
    pub iss: Option<String>,
    /// Seconds from now the token expires at (negative: already expired).
    pub exp: i64,
    pub signer: Signer,
    /// None: the nonce the login asked for.
    pub nonce: Option<String>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            sub: "alice".into(),
            email: Some("alice@example.com".into()),
            groups: vec!["staff".into()],
            aud: CLIENT_ID.into(),
            iss: None,
            exp: 300,
            signer: Signer::Key(0),
            nonce: None,
        }
    }
}

struct State {
    spec: Spec,
    /// Key indexes in the JWKS.
    published: Vec<usize>,
    /// code -> (nonce, PKCE challenge, redirect_uri).
    codes: HashMap<String, (String, String, String)>,
    jwks_hits: usize,
    token_hits: usize,
    next: u64,
}

/// The stub provider.
pub struct Stub {
    pub addr: SocketAddr,
    pub issuer: String,
    state: Arc<Mutex<State>>,
    keys: Arc<Vec<CoreEdDsaPrivateSigningKey>>,
}

fn ed_key(kid: &str) -> CoreEdDsaPrivateSigningKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(
        &kp.serialize_pem(),
        Some(JsonWebKeyId::new(kid.into())),
    )
    .unwrap()
}

impl Stub {
    /// Starts the provider with keys k0 and k1, publishing k0.
    pub fn start() -> Stub {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let keys = Arc::new(vec![ed_key("k0"), ed_key("k1")]);
        let state = Arc::new(Mutex::new(State {
            spec: Spec::default(),
            published: vec![0],
            codes: HashMap::new(),
            jwks_hits: 0,
            token_hits: 0,
            next: 0,
        }));
        let (st, ks, iss) = (state.clone(), keys.clone(), issuer.clone());
        std::thread::spawn(move || {
            for s in l.incoming().take(10_000) {
                let Ok(s) = s else { continue };
                let (st, ks, iss) = (st.clone(), ks.clone(), iss.clone());
                std::thread::spawn(move || serve(s, &st, &ks, &iss));
            }
        });
        Stub {
            addr,
            issuer,
            state,
            keys,
        }
    }
    /// What the next token looks like.
    pub fn set(&self, spec: Spec) {
        self.state.lock().unwrap().spec = spec;
    }
    /// Which keys the JWKS lists.
    pub fn publish(&self, keys: &[usize]) {
        self.state.lock().unwrap().published = keys.to_vec();
    }
    pub fn jwks_hits(&self) -> usize {
        self.state.lock().unwrap().jwks_hits
    }
    pub fn token_hits(&self) -> usize {
        self.state.lock().unwrap().token_hits
    }
}

fn reply(s: &mut TcpStream, status: &str, ctype: &str, extra: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
}

fn query(q: &str) -> HashMap<String, String> {
    openidconnect::url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn serve(mut s: TcpStream, st: &Mutex<State>, keys: &[CoreEdDsaPrivateSigningKey], iss: &str) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let Some((head, body)) = read_request(&mut r) else {
        return;
    };
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    match path {
        "/.well-known/openid-configuration" => {
            let doc = serde_json::json!({
                "issuer": iss,
                "authorization_endpoint": format!("{iss}/authorize"),
                "token_endpoint": format!("{iss}/token"),
                "jwks_uri": format!("{iss}/jwks"),
                "end_session_endpoint": format!("{iss}/logout"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["EdDSA"],
            });
            reply(&mut s, "200 OK", "application/json", "", &doc.to_string());
        }
        "/jwks" => {
            let mut g = st.lock().unwrap();
            g.jwks_hits += 1;
            let set = CoreJsonWebKeySet::new(
                g.published
                    .iter()
                    .map(|i| keys[*i].as_verification_key())
                    .collect(),
            );
            reply(
                &mut s,
                "200 OK",
                "application/json",
                "",
                &serde_json::to_string(&set).unwrap(),
            );
        }
        "/authorize" => {
            // Signs the user in at once: the test is the browser.
            let q = query(q);
            let mut g = st.lock().unwrap();
            g.next += 1;
            let code = format!("code-{}", g.next);
            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
            g.codes.insert(
                code.clone(),
                (
                    q.get("nonce").cloned().unwrap_or_default(),
                    q.get("code_challenge").cloned().unwrap_or_default(),
                    redirect.clone(),
                ),
            );
            let state = q.get("state").cloned().unwrap_or_default();
            let loc = format!("{redirect}?code={code}&state={state}");
            reply(
                &mut s,
                "302 Found",
                "text/plain",
                &format!("location: {loc}\r\n"),
                "",
            );
        }
        "/token" => {
            let f = query(&String::from_utf8_lossy(&body));
            let basic = format!(
                "authorization: basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{SECRET}"))
            );
            let mut g = st.lock().unwrap();
            g.token_hits += 1;
            if !head
                .to_ascii_lowercase()
                .contains(&basic.to_ascii_lowercase())
            {
                return reply(
                    &mut s,
                    "401 Unauthorized",
                    "application/json",
                    "",
                    r#"{"error":"invalid_client"}"#,
                );
            }
            // Unlike a real provider, a code may be used twice: the
            // gateway's own replay check is what is tested.
            let Some((nonce, challenge, redirect)) = g
                .codes
                .get(f.get("code").map_or("", |c| c.as_str()))
                .cloned()
            else {
                return reply(
                    &mut s,
                    "400 Bad Request",
                    "application/json",
                    "",
                    r#"{"error":"invalid_grant"}"#,
                );
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
            let pkce_ok =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge;
            if !pkce_ok || f.get("redirect_uri") != Some(&redirect) {
                return reply(
                    &mut s,
                    "400 Bad Request",
                    "application/json",
                    "",
                    r#"{"error":"invalid_grant","error_description":"PKCE or redirect_uri"}"#,
                );
            }
            let token = mint(&g.spec, keys, iss, &nonce);
            let doc = serde_json::json!({
                "access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": token,
            });
            reply(
                &mut s,
                "200 OK",
                "application/json",
                "cache-control: no-store\r\n",
                &doc.to_string(),
            );
        }
        _ => reply(&mut s, "404 Not Found", "text/plain", "", "no\n"),
    }
}

fn mint(spec: &Spec, keys: &[CoreEdDsaPrivateSigningKey], iss: &str, nonce: &str) -> String {
    let now = chrono::Utc::now();
    let mut std = StandardClaims::<CoreGenderClaim>::new(SubjectIdentifier::new(spec.sub.clone()));
    if let Some(e) = &spec.email {
        std = std
            .set_email(Some(EndUserEmail::new(e.clone())))
            .set_email_verified(Some(true));
    }
    let claims = IdTokenClaims::new(
        IssuerUrl::new(spec.iss.clone().unwrap_or_else(|| iss.to_string())).unwrap(),
        vec![Audience::new(spec.aud.clone())],
        now + chrono::Duration::seconds(spec.exp),
        now - chrono::Duration::seconds(5),
        std,
        Groups {
            groups: spec.groups.clone(),
        },
    )
    .set_nonce(Some(Nonce::new(
        spec.nonce.clone().unwrap_or_else(|| nonce.to_string()),
    )));
    type Tok = IdToken<
        Groups,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >;
    let signed = |k: &CoreEdDsaPrivateSigningKey| {
        Tok::new(
            claims.clone(),
            k,
            CoreJwsSigningAlgorithm::EdDsa,
            None,
            None,
        )
        .unwrap()
    };
    let t = match spec.signer {
        Signer::Key(i) => signed(&keys[i]),
        Signer::Rogue => signed(&ed_key("k0")),
        Signer::Unknown => signed(&ed_key("k9")),
        Signer::Hs256 => Tok::new(
            claims.clone(),
            &CoreHmacKey::new(SECRET.as_bytes()),
            CoreJwsSigningAlgorithm::HmacSha256,
            None,
            None,
        )
        .unwrap(),
        Signer::Unsigned => {
            // What an attacker would send: a header saying `none` and no
            // signature (no library mints it).
            let b = |v: &serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            };
            let payload = serde_json::to_value(&claims).unwrap();
            return format!(
                "{}.{}.",
                b(&serde_json::json!({"alg": "none"})),
                b(&payload)
            );
        }
    };
    serde_json::to_value(&t)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// A browser: curl with a cookie jar, trusting the test CA.
pub struct Browser<'a> {
    pub jar: PathBuf,
    setup: &'a Setup,
}

/// One response: status, headers (lower-case names), body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no location: {} {:?}", self.status, self.headers))
            .to_string()
    }
}

impl<'a> Browser<'a> {
    pub fn new(setup: &'a Setup, name: &str) -> Self {
        Browser {
            jar: setup.dir.join(format!("{name}.jar")),
            setup,
        }
    }
    /// GET (or with `extra` curl arguments) `url`, following no redirect.
    pub fn fetch(&self, url: &str, extra: &[&str]) -> Resp {
        let u = url::Url::parse(url).unwrap();
        let port = u.port_or_known_default().unwrap();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let ca = self.setup.ca();
        let jar = self.jar.to_str().unwrap();
        let out = Command::new("curl")
            .args([
                "-sS",
                "-m",
                "20",
                "-D",
                "-",
                "-c",
                jar,
                "-b",
                jar,
                "--resolve",
                &resolve,
            ])
            .args(["--cacert", ca.to_str().unwrap()])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl is installed");
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse(&String::from_utf8_lossy(&out.stdout))
    }
    pub fn get(&self, url: &str) -> Resp {
        self.fetch(url, &[])
    }
    /// The cookie jar's value of `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let t = std::fs::read_to_string(&self.jar).ok()?;
        t.lines().find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 7 && f[5] == name).then(|| f[6].to_string())
        })
    }
    /// Sets cookie `name` for localhost in the jar as a browser keeps it
    /// (`__Host-`: secure, path /); an empty value removes it.
    pub fn set_cookie(&self, name: &str, value: &str) {
        let t = std::fs::read_to_string(&self.jar).unwrap_or_default();
        let mut out: Vec<String> = t
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                !(f.len() == 7 && f[5] == name)
            })
            .map(str::to_string)
            .collect();
        if !value.is_empty() {
            out.push(format!(
                "#HttpOnly_localhost\tFALSE\t/\tTRUE\t0\t{name}\t{value}"
            ));
        }
        std::fs::write(&self.jar, out.join("\n") + "\n").unwrap();
    }
}

fn parse(out: &str) -> Resp {
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((out, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Writes the client secret and a cookie key file holding `keys`; the
/// `[listener.oidc]` table for `issuer` with `extra` keys.
pub fn oidc_table(dir: &Path, issuer: &str, keys: &[&str], extra: &str) -> String {
    let secret = dir.join("client.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let kf = dir.join(format!(
        "cookie-{}.keys",
        keys.len() * 10 + keys.first().map_or(0, |k| k.len() % 7)
    ));
    std::fs::write(&kf, format!("# cookie keys\n{}\n", keys.join("\n"))).unwrap();
    format!(
        "[listener.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\ncookie_key_file = \"{}\"\n{extra}\n",
        secret.display(),
        kf.display()
    )
}

/// Plays the whole login in `b` against the stub: the gateway's redirect,
/// the provider's, then the callback; returns the callback's response.
pub fn login(b: &Browser, gw: SocketAddr, path: &str) -> Resp {
    let first = b.get(&format!("https://localhost:{}{path}", gw.port()));
    assert_eq!(first.status, 302, "{:?} {}", first.headers, first.body);
    let idp = curl_head(&[&first.location()]);
    assert_eq!(idp.status, 302, "provider: {:?}", idp.headers);
    b.get(&idp.location())
}

/// The response head curl gets for `args` (no cookie jar, no redirects
/// followed, body discarded).
pub fn curl_head(args: &[&str]) -> Resp {
    let out = Command::new("curl")
        .args(["-sS", "-m", "20", "-D", "-", "-o", "/dev/null"])
        .args(args)
        .output()
        .unwrap();
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// The gateway URL of `path`.
pub fn url(gw: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", gw.port())
}
