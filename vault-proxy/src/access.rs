//! Access rules for client certificates. rustls has already verified the
//! chain against `client_ca`; this checks the leaf against the listener's
//! `allow` list by subject CN, DNS SAN, URI SAN (e.g. SPIFFE IDs) or the
//! SHA-256 of its SubjectPublicKeyInfo. The certificate is parsed with
//! x509-parser; no DER is read by hand here.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One entry of `allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// Subject common name.
    Cn(String),
    /// A DNS subject alternative name.
    Dns(String),
    /// A URI subject alternative name (e.g. SPIFFE ID).
    Uri(String),
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    Spki([u8; 32]),
}

impl AllowRule {
    /// Parses "CN=x", "DNS:x", "URI:x" or "SPKI:<64 hex digits>".
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Some(v) = s.strip_prefix("CN=") {
            return nonempty(v).map(AllowRule::Cn);
        }
        if let Some(v) = s.strip_prefix("DNS:") {
            return nonempty(v).map(|v| AllowRule::Dns(v.to_ascii_lowercase()));
        }
        if let Some(v) = s.strip_prefix("URI:") {
            return nonempty(v).map(AllowRule::Uri);
        }
        if let Some(v) = s.strip_prefix("SPKI:") {
            let v = v.strip_prefix("sha256:").unwrap_or(v);
            let mut out = [0u8; 32];
            if v.len() != 64 {
                return Err(format!(
                    "`{s}`: an SPKI pin is 64 hex digits (SHA-256), got {}",
                    v.len()
                ));
            }
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&v[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("`{s}`: an SPKI pin is 64 hex digits"))?;
            }
            return Ok(AllowRule::Spki(out));
        }
        Err(format!(
            "`{s}`: expected \"CN=name\", \"DNS:host\", \"URI:spiffe://...\" or \"SPKI:<sha256 hex>\""
        ))
    }
}

fn nonempty(v: &str) -> std::result::Result<String, String> {
    if v.is_empty() {
        Err("empty value in allow rule".into())
    } else {
        Ok(v.to_string())
    }
}

/// What the access rules and the logs know about a client certificate.
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    /// The subject as a string ("CN=alice, O=corp").
    pub subject: String,
    /// Subject common names.
    pub cns: Vec<String>,
    /// DNS subject alternative names (lowercase).
    pub dns: Vec<String>,
    /// URI subject alternative names.
    pub uris: Vec<String>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl PeerCert {
    /// Parses a DER leaf certificate; None if it does not parse.
    pub fn parse(der: &[u8]) -> Option<PeerCert> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject().to_string();
        let cns = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                    GeneralName::URI(u) => uris.push((*u).to_string()),
                    _ => {}
                }
            }
        }
        let spki = cert.tbs_certificate.subject_pki.raw;
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        let mut spki_sha256 = [0u8; 32];
        spki_sha256.copy_from_slice(digest.as_ref());
        Some(PeerCert {
            subject,
            cns,
            dns,
            uris,
            spki_sha256,
        })
    }

    /// True when any rule matches (an empty list allows every verified client).
    pub fn allowed(&self, rules: &[AllowRule]) -> bool {
        rules.is_empty()
            || rules.iter().any(|r| match r {
                AllowRule::Cn(c) => self.cns.iter().any(|x| x == c),
                AllowRule::Dns(d) => self.dns.iter().any(|x| x == d),
                AllowRule::Uri(u) => self.uris.iter().any(|x| x == u),
                AllowRule::Spki(p) => *p == self.spki_sha256,
            })
    }

    /// The SPKI pin as it is written in `allow` (`SPKI:<hex>`).
    pub fn spki_pin(&self) -> String {
        let hex: String = self
            .spki_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("SPKI:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_cn_dns_uri_and_pin() {
        let mut p = rcgen::CertificateParams::new(vec!["app.example".into()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        p.subject_alt_names
            .push(rcgen::SanType::URI("spiffe://corp/hr".try_into().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let pc = PeerCert::parse(cert.der()).unwrap();
        let r = |s: &str| AllowRule::parse(s).unwrap();
        assert!(pc.allowed(&[r("CN=alice")]));
        assert!(!pc.allowed(&[r("CN=bob")]));
        assert!(pc.allowed(&[r("DNS:APP.example")]));
        assert!(pc.allowed(&[r("URI:spiffe://corp/hr")]));
        assert!(!pc.allowed(&[r("URI:spiffe://corp/finance")]));
        assert!(pc.allowed(&[r(&pc.spki_pin())]));
        assert!(!pc.allowed(&[r(&format!("SPKI:{}", "00".repeat(32)))]));
        assert!(pc.subject.contains("alice"));
    }
}
