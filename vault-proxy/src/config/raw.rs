//! The configuration file as written: serde's view of the TOML, strict
//! (unknown keys are errors) but not yet checked against itself. Every
//! key a mode might take is here, optional; [`super::listener`] turns a
//! [`RawListener`] into the typed listener of its mode, so nothing past
//! loading ever sees this shape.
//!
//! Values that are parsed after serde (addresses, URLs, allow rules, key
//! references) keep their byte span ([`Spanned`]): an error in the third
//! allow rule points at that rule, not at the start of the listener.

use super::limits::Limits;
use super::Metrics;
use crate::acme::config::CertSource;
use crate::acme::AcmeConfig;
use crate::oidc::OidcConfig;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub access_log: Option<String>,
    #[serde(default, deserialize_with = "workers")]
    pub workers: Option<i64>,
    #[serde(default)]
    pub limits: Limits,
    pub metrics: Option<Metrics>,
    #[serde(default)]
    pub listener: Vec<RawListener>,
    pub acme: Option<AcmeConfig>,
}

/// `workers`: a count, or `"auto"` (nginx's spelling) for one per CPU.
/// The count's range is checked after serde, with the bounds in the
/// message.
fn workers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Count;
    impl serde::de::Visitor<'_> for Count {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of worker threads or \"auto\"")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "auto" => Ok(None),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(Count)
}

/// What a listener does: the `mode` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// TLS in, HTTP reverse proxy to a plaintext upstream.
    Http,
    /// TLS in, raw bytes to a plaintext upstream.
    Tcp,
    /// Plaintext in, TLS out to the upstream.
    Originate,
    /// Plaintext HTTP in, redirect to `to`.
    Redirect,
}

impl Mode {
    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
            Mode::Originate => "originate",
            Mode::Redirect => "redirect",
        }
    }
}

/// One `[[listener]]` as written (docs/PROXY.md gives each key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub mode: Mode,
    pub listen: Spanned<String>,
    pub upstream: Option<Spanned<String>>,
    pub cert: Option<CertSource>,
    pub key: Option<Spanned<String>>,
    #[serde(default)]
    pub sni: Vec<RawSni>,
    pub client_ca: Option<PathBuf>,
    /// Absent and `[]` differ: absent admits every verified client,
    /// `[]` is refused (it reads as "no one" and used to mean everyone).
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub client_crl: Vec<Spanned<PathBuf>>,
    #[serde(default)]
    pub hsts: bool,
    pub client_identity_header: Option<Spanned<String>>,
    pub oidc: Option<OidcConfig>,
    #[serde(default)]
    pub proxy_protocol: bool,
    pub to: Option<Spanned<String>>,
    pub ca: Option<PathBuf>,
    pub server_name: Option<Spanned<String>>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl RawListener {
    /// Each mode-specific key and whether it was written, in the order
    /// of the struct (the first one a mode does not take is reported).
    pub fn written(&self) -> [(&'static str, bool); 16] {
        [
            ("upstream", self.upstream.is_some()),
            ("cert", self.cert.is_some()),
            ("key", self.key.is_some()),
            ("sni", !self.sni.is_empty()),
            ("client_ca", self.client_ca.is_some()),
            ("allow", self.allow.is_some()),
            ("client_crl", !self.client_crl.is_empty()),
            ("hsts", self.hsts),
            (
                "client_identity_header",
                self.client_identity_header.is_some(),
            ),
            ("oidc", self.oidc.is_some()),
            ("proxy_protocol", self.proxy_protocol),
            ("to", self.to.is_some()),
            ("ca", self.ca.is_some()),
            ("server_name", self.server_name.is_some()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
        ]
    }
}

/// One `[[listener.sni]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSni {
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: Spanned<String>,
}
