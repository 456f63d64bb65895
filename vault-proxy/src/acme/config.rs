//! `[acme]`: the keys as written ([`RawAcme`]) and the checked, typed value
//! the gateway runs with ([`AcmeConfig`]). Serde turns one into the other
//! while the file is parsed (`try_from`), so a config that has an
//! `AcmeConfig` has a valid one: nothing downstream re-checks it.
//!
//! Files (`eab_hmac_file`, `ca_file`, the storage directory) are not read
//! here: [`super::Acme::open`] reads them when the gateway starts.

use crate::config::{Listener, Mode};
use crate::oidc::config::check_url;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[acme]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    directory: String,
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    storage: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    eab_kid: Option<String>,
    eab_hmac_file: Option<PathBuf>,
    challenge: Option<String>,
    renew_after: Option<String>,
}

/// How the CA checks that the gateway controls the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP-01: the CA fetches `/.well-known/acme-challenge/TOKEN` on
    /// port 80, answered by the `redirect` listener.
    Http01,
    /// TLS-ALPN-01 (RFC 8737): the CA opens TLS with ALPN `acme-tls/1`
    /// on port 443, answered by the `cert = "acme"` listeners themselves.
    TlsAlpn01,
}

/// External account binding (RFC 8555 §7.3.4): what an internal CA such
/// as step-ca or Vault PKI may demand before it opens an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eab {
    /// The key identifier the CA gave out.
    pub kid: String,
    /// The file holding the HMAC key (base64url, as CAs hand it out).
    pub hmac_file: PathBuf,
}

/// `[acme]`, checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAcme")]
pub struct AcmeConfig {
    /// The CA's directory URL (https://, or http:// to a loopback address).
    pub directory: String,
    /// Contact URIs for the account (`mailto:...`).
    pub contact: Vec<String>,
    /// The names the certificate is for (at least one; lower case).
    pub domains: Vec<String>,
    /// The directory (mode 0700) holding the account key and the
    /// certificates.
    pub storage: PathBuf,
    /// PEM CA bundle to verify the ACME server with (default: system roots).
    pub ca_file: Option<PathBuf>,
    /// External account binding, when the CA demands one.
    pub eab: Option<Eab>,
    /// The challenge type.
    pub challenge: Challenge,
    /// Renew this long after a certificate's notBefore instead of at two
    /// thirds of its lifetime (for tests and renewal drills).
    pub renew_after: Option<Duration>,
}

/// A DNS name a public or internal CA could issue for: letters, digits,
/// `-` and dots, labels of 1 to 63, an optional leading `*.`.
fn check_domain(d: &str) -> Result<String, String> {
    let name = d.strip_prefix("*.").unwrap_or(d);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        return Err(format!(
            "domains: `{d}` is not a DNS name (such as \"app.example.com\")"
        ));
    }
    Ok(d.to_ascii_lowercase())
}

impl TryFrom<RawAcme> for AcmeConfig {
    type Error = String;

    fn try_from(raw: RawAcme) -> Result<Self, String> {
        // The errors name the key: serde's span points at the table.
        let pre = |e: String| format!("[acme] {e}");
        check_url("directory", &raw.directory).map_err(pre)?;
        if raw.domains.is_empty() {
            return Err(pre(
                "domains: empty; expected the names the certificate is for, such as [\"app.example.com\"]"
                    .into(),
            ));
        }
        let mut domains = Vec::new();
        for d in &raw.domains {
            let d = check_domain(d).map_err(pre)?;
            if d.starts_with("*.") {
                return Err(pre(format!(
                    "domains: `{d}`: a wildcard needs the DNS-01 challenge, which the gateway does not answer; list the names"
                )));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        for c in &raw.contact {
            if !c.contains(':') || c.len() > 256 {
                return Err(pre(format!(
                    "contact: `{c}` is not a URI; expected such as \"mailto:ops@example.com\""
                )));
            }
        }
        let storage = raw.storage.ok_or_else(|| {
            pre("storage: missing; expected a directory of mode 0700 for the account key and certificates, such as \"/var/lib/pivault/acme\"".into())
        })?;
        if storage.as_os_str().is_empty() || !storage.is_absolute() {
            return Err(pre(format!(
                "storage: `{}`: expected an absolute directory path",
                storage.display()
            )));
        }
        let eab = match (raw.eab_kid, raw.eab_hmac_file) {
            (None, None) => None,
            (Some(kid), Some(hmac_file)) if !kid.is_empty() => Some(Eab { kid, hmac_file }),
            (Some(_), Some(_)) => return Err(pre("eab_kid: empty".into())),
            (Some(_), None) => {
                return Err(pre(
                    "eab_kid: needs `eab_hmac_file` (the file holding the HMAC key)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(pre(
                    "eab_hmac_file: needs `eab_kid` (the key identifier)".into()
                ))
            }
        };
        let challenge = match raw.challenge.as_deref() {
            None | Some("http-01") => Challenge::Http01,
            Some("tls-alpn-01") => Challenge::TlsAlpn01,
            Some(c) => {
                return Err(pre(format!(
                    "challenge: `{c}`: expected \"http-01\" (answered by the `redirect` listener on port 80) or \"tls-alpn-01\" (answered by the `cert = \"acme\"` listener on port 443)"
                )))
            }
        };
        let renew_after = match &raw.renew_after {
            None => None,
            Some(s) => Some(
                humantime::parse_duration(s)
                    .map_err(|e| pre(format!("renew_after `{s}`: {e} (such as \"30d\")")))?,
            ),
        };
        if renew_after.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(pre("renew_after: expected at least 1s".into()));
        }
        Ok(AcmeConfig {
            directory: raw.directory,
            contact: raw.contact,
            domains,
            storage,
            ca_file: raw.ca_file,
            eab,
            challenge,
            renew_after,
        })
    }
}

/// Where a listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "PathBuf")]
pub enum CertSource {
    /// A PEM chain file, with `key`.
    File(PathBuf),
    /// `"acme"`: obtained and renewed from the CA of `[acme]`.
    Acme,
}

impl From<PathBuf> for CertSource {
    fn from(p: PathBuf) -> Self {
        // A file really named "acme" can still be given as "./acme".
        if p.as_os_str() == "acme" {
            CertSource::Acme
        } else {
            CertSource::File(p)
        }
    }
}

/// Why `key` is refused beside `cert = "acme"`.
pub const NO_KEY: &str =
    "not used with `cert = \"acme\"` (the key is generated and kept in [acme] storage); remove it";

impl AcmeConfig {
    /// What `[acme]` needs of the listeners: one with `cert = "acme"`,
    /// and for HTTP-01 a `redirect` listener to answer on (without one
    /// the CA could never validate).
    pub(crate) fn check_listeners(&self, listeners: &[Listener]) -> Result<(), String> {
        if !listeners.iter().any(|l| l.uses_acme()) {
            return Err(
                "no listener has `cert = \"acme\"`; add it to a listener or remove [acme]".into(),
            );
        }
        if self.challenge == Challenge::Http01
            && !listeners.iter().any(|l| l.mode() == Mode::Redirect)
        {
            return Err("the http-01 challenge is answered by a `redirect` listener (on port 80); add one, or set challenge = \"tls-alpn-01\"".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const LISTENERS: &str = "[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\ncert = \"acme\"\n\n[[listener]]\nmode = \"redirect\"\nlisten = \"127.0.0.1:0\"\nto = \"https://a.example\"\n";

    fn parse(acme: &str) -> Result<Config, String> {
        let src = format!(
            "[acme]\ndirectory = \"https://ca.example/dir\"\nstorage = \"/var/lib/pivault/acme\"\n{acme}\n\n{LISTENERS}"
        );
        Config::parse(&src, Path::new("gw.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn acme_keys_are_checked_while_parsing_and_name_the_key() {
        let c = parse("domains = [\"A.example\", \"a.example\"]").unwrap();
        let a = c.acme.as_ref().unwrap();
        assert_eq!(a.domains, ["a.example"]);
        assert_eq!(a.challenge, super::Challenge::Http01);
        assert!(c.listener[0].uses_acme());
        for (bad, key) in [
            ("domains = []", "domains"),
            ("domains = [\"*.a.example\"]", "domains"),
            ("domains = [\"a b\"]", "domains"),
            ("domains = [\"a.example\"]\neab_kid = \"k\"", "eab_kid"),
            (
                "domains = [\"a.example\"]\neab_hmac_file = \"/k\"",
                "eab_hmac_file",
            ),
            (
                "domains = [\"a.example\"]\nchallenge = \"dns-01\"",
                "challenge",
            ),
            (
                "domains = [\"a.example\"]\nrenew_after = \"soon\"",
                "renew_after",
            ),
            ("domains = [\"a.example\"]\ncontact = [\"ops\"]", "contact"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
        let e = Config::parse(
            "[acme]\ndirectory = \"http://ca.example/dir\"\ndomains = [\"a.example\"]\nstorage = \"/s\"\n",
            Path::new("gw.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("directory"), "{e}");
    }

    #[test]
    fn http_01_needs_a_redirect_listener_and_tls_alpn_01_does_not() {
        let only_https = LISTENERS.split("\n\n").next().unwrap();
        let src = |ch: &str| {
            format!("[acme]\ndirectory = \"https://ca.example/dir\"\nstorage = \"/s\"\ndomains = [\"a.example\"]\n{ch}\n\n{only_https}\n")
        };
        let e = Config::parse(&src(""), Path::new("gw.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("redirect"), "{e}");
        Config::parse(&src("challenge = \"tls-alpn-01\""), Path::new("gw.toml")).unwrap();
    }
}
