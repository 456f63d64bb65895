//! What `pivault proxy check` warns about without refusing the config:
//! files that load but should not be trusted as they are. A private key
//! that every local user can read, or reached through a symbolic link
//! (whoever can change the link chooses the key), and a server
//! certificate that is expired or not yet valid (clients will refuse it),
//! and a `client_crl` CRL past its nextUpdate (every client certificate
//! from its issuer is refused until a fresh one is in place), and an OIDC
//! client secret or cookie key file every local user can read.
//! Each warning names the file and what to do.

use crate::config::{Config, ListenerKind, ServerCert, TlsIn};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

/// Every warning for `cfg`'s listeners, one line each. Files that do not
/// load are `check_files`'s to report, not this.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for li in &cfg.listener {
        let Some(tls) = li.tls_in() else {
            continue;
        };
        let mut pairs: Vec<(&Path, &crate::config::KeySource)> = Vec::new();
        if let ServerCert::Files { chain, key } = &tls.cert {
            pairs.push((chain, key));
        }
        pairs.extend(tls.sni.iter().map(|s| (s.cert.as_path(), &s.key)));
        for (cert, key) in pairs {
            if let Some(k) = key.file() {
                key_warnings(k, &mut out);
            }
            cert_warnings(cert, &mut out);
        }
        out.extend(crl_warnings(tls));
        if let ListenerKind::Http { oidc: Some(o), .. } = &li.kind {
            use crate::oidc::config::SecretSource;
            for (what, src) in [
                ("OIDC client secret", &o.client_secret),
                ("OIDC cookie key file", &o.cookie_keys),
            ] {
                if let SecretSource::File(p) = src {
                    if let Ok(m) = std::fs::metadata(p) {
                        if m.permissions().mode() & 0o004 != 0 {
                            out.push(format!(
                                "{what} {} is readable by every user (mode {:o}): whoever reads it can forge sessions or act as the gateway at the IdP; run `chmod 600 {}`",
                                p.display(),
                                m.permissions().mode() & 0o7777,
                                p.display()
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The warnings for a listener's `client_crl` files; also logged when
/// the gateway (re)loads them, since a CRL expires while the gateway runs.
pub fn crl_warnings(tls: &TlsIn) -> Vec<String> {
    let mut out = Vec::new();
    let now = x509_parser::time::ASN1Time::now();
    for path in tls.crls() {
        let Ok(crls) = crate::tls::load_crls(path) else {
            continue;
        };
        let p = path.display();
        for der in crls {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der.as_ref()) else {
                continue;
            };
            // Without nextUpdate rustls refuses the file at load, so only
            // expiry is left to warn about.
            if let Some(next) = crl.next_update().filter(|n| *n < now) {
                out.push(format!(
                    "client_crl {p}: the CRL of {} expired on {next} (nextUpdate); every client certificate it covers is refused until a fresh CRL is in place: fetch the CA's current CRL into {p} (the gateway reloads it when the file changes)",
                    crl.issuer()
                ));
            }
        }
    }
    out
}

fn key_warnings(key: &Path, out: &mut Vec<String>) {
    let k = key.display();
    if let Ok(m) = std::fs::symlink_metadata(key) {
        if m.file_type().is_symlink() {
            let to = std::fs::read_link(key)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push(format!(
                "private key {k} is a symbolic link (to {to}): whoever can change the link or its directory chooses the key; point `key` at the file itself, or make sure only root can change the link"
            ));
        }
    }
    if let Ok(m) = std::fs::metadata(key) {
        if m.permissions().mode() & 0o004 != 0 {
            out.push(format!(
                "private key {k} is readable by every user (mode {:o}); run `chmod 600 {k}` (or 640 with a group only the gateway is in)",
                m.permissions().mode() & 0o7777
            ));
        }
    }
}

fn cert_warnings(cert: &Path, out: &mut Vec<String>) {
    let Ok(chain) = crate::tls::load_certs(cert) else {
        return;
    };
    let Some(leaf) = chain.first() else { return };
    let Ok((_, x)) = X509Certificate::from_der(leaf.as_ref()) else {
        return;
    };
    let c = cert.display();
    let v = x.validity();
    let now = x509_parser::time::ASN1Time::now();
    if v.not_after < now {
        out.push(format!(
            "certificate {c} expired on {}; clients will refuse it: renew it and reload (SIGHUP)",
            v.not_after
        ));
    } else if v.not_before > now {
        out.push(format!(
            "certificate {c} is not valid before {}; clients will refuse it until then: check the clock or the certificate",
            v.not_before
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pivault-fc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn world_readable_and_symlinked_keys_are_named() {
        let d = dir("key");
        let key = d.join("k.pem");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut w = Vec::new();
        key_warnings(&key, &mut w);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("chmod 600") && w[0].contains("k.pem"),
            "{w:?}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.join("link.pem");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let mut w = Vec::new();
        key_warnings(&key, &mut w);
        assert!(w.is_empty(), "{w:?}");
        key_warnings(&link, &mut w);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("symbolic link"), "{w:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_expired_certificate_is_named() {
        let d = dir("cert");
        let mut p = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = d.join("old.pem");
        std::fs::write(&c, p.self_signed(&key).unwrap().pem()).unwrap();
        let mut w = Vec::new();
        cert_warnings(&c, &mut w);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("old.pem") && w[0].contains("expired"),
            "{w:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
