//! Access rules for client certificates. rustls has already verified the
//! chain against `client_ca`; this checks the leaf against the listener's
//! `allow` list by subject CN, DNS SAN, URI SAN (e.g. SPIFFE IDs) or the
//! SHA-256 of its SubjectPublicKeyInfo. The certificate is parsed with
//! x509-parser; no DER is read by hand here.
//!
//! A certificate's subject and SANs are attacker-chosen text as far as the
//! logs and the upstream are concerned (any CA can be careless): they are
//! kept here only in an escaped form (RFC 4514, then percent-encoding of
//! anything that is not visible ASCII), so a subject with commas, quotes,
//! newlines or NUL can neither forge a log line nor pass for another
//! subject in a header. A subject with several CNs is refused when `allow`
//! matches on CNs: which of them "is" the client would be a guess.
//!
//! Who a listener admits is an [`Access`]: every verified client, or only
//! those an [`AllowList`] names. An allow-list cannot be empty, so "no
//! rules" can never be read as "no restriction" (`allow = []` is refused
//! when the configuration loads, and a rule that does not parse is an
//! error there, never skipped).

use percent_encoding::{AsciiSet, CONTROLS};
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

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

impl std::fmt::Display for AllowRule {
    /// The rule as `allow` takes it (DNS names lower case, pins without
    /// the optional `sha256:`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowRule::Cn(v) => write!(f, "CN={v}"),
            AllowRule::Dns(v) => write!(f, "DNS:{v}"),
            AllowRule::Uri(v) => write!(f, "URI:{v}"),
            AllowRule::Spki(p) => {
                f.write_str("SPKI:")?;
                p.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// The rules of `allow`: at least one, so that an allow-list always
/// restricts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<AllowRule>);

impl AllowList {
    /// The list of `rules`; None when there are none (there is no empty
    /// allow-list: see [`Access`]).
    pub fn new(rules: Vec<AllowRule>) -> Option<AllowList> {
        (!rules.is_empty()).then_some(AllowList(rules))
    }

    /// The rules, in the order written (never empty).
    pub fn rules(&self) -> &[AllowRule] {
        &self.0
    }
}

/// Which clients with a verified certificate a listener admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every certificate that chains to `client_ca` (no `allow` key).
    AnyVerifiedClient,
    /// Only certificates an `allow` rule matches.
    Only(AllowList),
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
    /// The subject as an RFC 4514 string ("CN=alice,O=corp"), with bytes
    /// outside visible ASCII and `%` percent-encoded: safe in a log line
    /// and a header value.
    pub subject: String,
    /// Every subject alternative name as `TYPE:value`, comma-separated
    /// (`DNS:a.example,URI:spiffe://corp/hr,IP:192.0.2.1`), each value
    /// percent-encoded as [`PeerCert::subject`] plus `,` and space.
    pub sans: String,
    /// Subject common names, as in the certificate (raw: for matching).
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
        let subject = rfc4514(cert.subject());
        let cns = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        let mut sans = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                    GeneralName::URI(u) => uris.push((*u).to_string()),
                    _ => {}
                }
                if let Some(s) = san_string(n) {
                    sans.push(s);
                }
            }
        }
        let spki = cert.tbs_certificate.subject_pki.raw;
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        let mut spki_sha256 = [0u8; 32];
        spki_sha256.copy_from_slice(digest.as_ref());
        Some(PeerCert {
            subject,
            sans: sans.join(","),
            cns,
            dns,
            uris,
            spki_sha256,
        })
    }

    /// True when the certificate is admitted: see [`PeerCert::admit`].
    pub fn allowed(&self, list: &AllowList) -> bool {
        self.admit(list).is_ok()
    }

    /// The first rule that admits the certificate, or why none does. A
    /// subject with several CNs is refused outright when any rule matches
    /// CNs: "CN=alice" would admit `CN=alice+CN=admin`, which another
    /// reader (a PROXY header, the app) may take for admin.
    pub fn admit<'r>(&self, list: &'r AllowList) -> Result<&'r AllowRule, Refusal> {
        let rules = list.rules();
        if self.cns.len() > 1 && rules.iter().any(|r| matches!(r, AllowRule::Cn(_))) {
            return Err(Refusal::SeveralCns(self.cns.len()));
        }
        rules
            .iter()
            .find(|r| match r {
                AllowRule::Cn(c) => self.cns.iter().any(|x| x == c),
                AllowRule::Dns(d) => self.dns.iter().any(|x| x == d),
                AllowRule::Uri(u) => self.uris.iter().any(|x| x == u),
                AllowRule::Spki(p) => *p == self.spki_sha256,
            })
            .ok_or(Refusal::NotAllowed)
    }

    /// The CN to report to the upstream (PROXY v2): the only one, or none
    /// when the subject has none or several (the first of several says
    /// nothing about which one `allow` admitted).
    pub fn sole_cn(&self) -> Option<&str> {
        match self.cns.as_slice() {
            [cn] => Some(cn),
            _ => None,
        }
    }

    /// The SHA-256 of the SPKI as `sha256:<64 hex>` (what follows `SPKI:`
    /// in an `allow` rule).
    pub fn spki_sha256_hex(&self) -> String {
        let hex: String = self
            .spki_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
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

/// Why [`PeerCert::admit`] refused a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No rule matches.
    NotAllowed,
    /// The subject has this many CNs and `allow` has CN rules.
    SeveralCns(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed => f.write_str("is not in `allow`"),
            Refusal::SeveralCns(n) => write!(
                f,
                "has {n} common names in its subject; `allow` has CN rules, so it is refused"
            ),
        }
    }
}

/// Bytes percent-encoded in subjects: controls (CR, LF, NUL...), `%` so
/// that the encoding reads back unambiguously, and (by the crate) every
/// non-ASCII byte. Space and the RFC 4514 escapes stay as they are.
const NOT_VISIBLE: &AsciiSet = &CONTROLS.add(b'%');
/// In a SAN value, also the list separator and space.
const SAN_VALUE: &AsciiSet = &NOT_VISIBLE.add(b',').add(b' ');

/// An RFC 4514 string of `name`, percent-encoded as `NOT_VISIBLE` says.
/// RFC 4514 writes the last RDN first; a value that is no string type is
/// `#` and the hex of its bytes (section 2.4).
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let reg = oid_registry();
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().collect::<Vec<_>>().iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match oid2abbrev(atv.attr_type(), reg) {
                Ok(a) => out.push_str(a),
                Err(_) => out.push_str(&atv.attr_type().to_id_string()),
            }
            out.push('=');
            match atv.as_str() {
                Ok(v) => escape_value(v, &mut out),
                Err(_) => {
                    out.push('#');
                    for b in atv.as_slice() {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
        }
    }
    out
}

/// RFC 4514 section 2.4 escaping of one attribute value, then
/// percent-encoding of what is not visible ASCII.
fn escape_value(v: &str, out: &mut String) {
    let mut esc = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            esc.push_str("\\00");
            continue;
        }
        if special {
            esc.push('\\');
        }
        esc.push(c);
    }
    out.extend(percent_encoding::utf8_percent_encode(&esc, NOT_VISIBLE));
}

/// One SAN as `TYPE:value`, the types named as OpenSSL prints them; None
/// for the kinds no one matches on (X.400, EDI party, other names).
fn san_string(n: &GeneralName<'_>) -> Option<String> {
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, SAN_VALUE).to_string();
    Some(match n {
        GeneralName::DNSName(d) => format!("DNS:{}", enc(d)),
        GeneralName::URI(u) => format!("URI:{}", enc(u)),
        GeneralName::RFC822Name(e) => format!("email:{}", enc(e)),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?)
            ),
            16 => format!(
                "IP:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?)
            ),
            _ => return None,
        },
        GeneralName::DirectoryName(d) => format!("DirName:{}", enc(&rfc4514(d))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> AllowList {
        AllowList::new(rules.iter().map(|s| AllowRule::parse(s).unwrap()).collect()).unwrap()
    }

    fn cert(f: impl FnOnce(&mut rcgen::CertificateParams)) -> PeerCert {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        // rcgen starts with a CN of its own.
        p.distinguished_name = rcgen::DistinguishedName::new();
        f(&mut p);
        let key = rcgen::KeyPair::generate().unwrap();
        PeerCert::parse(p.self_signed(&key).unwrap().der()).unwrap()
    }

    #[test]
    fn subject_is_rfc4514_with_specials_escaped_and_controls_encoded() {
        let pc = cert(|p| {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, "corp");
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "alice, O=admin\n\"x\0");
        });
        // Last RDN first; the comma and quote escaped, LF and NUL encoded.
        assert_eq!(pc.subject, "CN=alice\\, O=admin%0A\\\"x\\00,O=corp");
        assert!(!pc.subject.bytes().any(|b| b.is_ascii_control()));
        assert_eq!(pc.cns, ["alice, O=admin\n\"x\0"]);
    }

    #[test]
    fn leading_hash_and_edge_spaces_and_non_ascii_are_escaped() {
        let mut out = String::new();
        escape_value("#a b ", &mut out);
        assert_eq!(out, "\\#a b\\ ");
        let mut out = String::new();
        escape_value(" é%", &mut out);
        assert_eq!(out, "\\ %C3%A9%25");
    }

    #[test]
    fn sans_are_listed_with_their_types_and_cannot_add_entries() {
        let pc = cert(|p| {
            p.subject_alt_names = vec![
                rcgen::SanType::DnsName("a.example".try_into().unwrap()),
                rcgen::SanType::URI("spiffe://corp/hr,DNS:evil".try_into().unwrap()),
                rcgen::SanType::IpAddress("192.0.2.1".parse().unwrap()),
                rcgen::SanType::Rfc822Name("a@corp".try_into().unwrap()),
            ];
        });
        assert_eq!(
            pc.sans,
            "DNS:a.example,URI:spiffe://corp/hr%2CDNS:evil,IP:192.0.2.1,email:a@corp"
        );
    }

    #[test]
    fn several_cns_are_refused_only_when_allow_matches_cns() {
        let pc = cert(|p| {
            // rcgen keeps one value per type: the second CN goes in by OID.
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "admin");
            p.distinguished_name
                .push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]), "alice");
        });
        assert_eq!(pc.cns.len(), 2);
        let r = |s: &str| list(&[s]);
        assert_eq!(pc.admit(&r("CN=alice")), Err(Refusal::SeveralCns(2)));
        assert_eq!(pc.admit(&r("CN=admin")), Err(Refusal::SeveralCns(2)));
        let pin = r(&pc.spki_pin());
        assert_eq!(pc.admit(&pin), Ok(&pin.rules()[0]));
        assert_eq!(pc.sole_cn(), None, "neither CN may be reported");
    }

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
        let r = |s: &str| list(&[s]);
        assert!(pc.allowed(&r("CN=alice")));
        assert!(!pc.allowed(&r("CN=bob")));
        assert!(pc.allowed(&r("DNS:APP.example")));
        assert!(pc.allowed(&r("URI:spiffe://corp/hr")));
        assert!(!pc.allowed(&r("URI:spiffe://corp/finance")));
        assert!(pc.allowed(&r(&pc.spki_pin())));
        assert!(!pc.allowed(&r(&format!("SPKI:{}", "00".repeat(32)))));
        assert!(pc.allowed(&list(&["CN=bob", "DNS:app.example"])));
        assert!(pc.subject.contains("alice"));
    }

    #[test]
    fn there_is_no_empty_allow_list() {
        assert_eq!(AllowList::new(Vec::new()), None);
        assert_eq!(list(&["CN=a"]).rules().len(), 1);
    }

    #[test]
    fn rules_print_as_allow_takes_them() {
        let pin = format!("SPKI:{}", "ab".repeat(32));
        for (written, shown) in [
            ("CN=alice".to_string(), "CN=alice".to_string()),
            ("DNS:App.Example".into(), "DNS:app.example".into()),
            ("URI:spiffe://corp/hr".into(), "URI:spiffe://corp/hr".into()),
            (format!("SPKI:sha256:{}", "AB".repeat(32)), pin),
        ] {
            let r = AllowRule::parse(&written).unwrap();
            assert_eq!(r.to_string(), shown);
            assert_eq!(AllowRule::parse(&shown).unwrap(), r);
        }
    }
}
