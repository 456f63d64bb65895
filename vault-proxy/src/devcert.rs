//! Development certificates (`pivault cert dev`): a self-signed ECDSA P-256
//! certificate made with rcgen. For development and tests only: no client
//! can trust it without being told to.

use crate::error::{Error, Result};

/// A PEM certificate and its PEM (PKCS#8) private key.
pub struct DevCert {
    /// The self-signed certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// A self-signed certificate for `names` plus localhost, 127.0.0.1 and ::1,
/// valid for 90 days.
pub fn dev_cert(names: &[String]) -> Result<DevCert> {
    let mut all: Vec<String> = names.to_vec();
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !all.iter().any(|x| x == n) {
            all.push(n.into());
        }
    }
    let e = |e: rcgen::Error| Error::DevCert(e.to_string());
    let mut p = rcgen::CertificateParams::new(all).map_err(e)?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "pivault development certificate");
    p.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "pivault (development only)",
    );
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(3600)).into();
    p.not_after = (now + std::time::Duration::from_secs(90 * 86_400)).into();
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let cert = p.self_signed(&key).map_err(e)?;
    Ok(DevCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
