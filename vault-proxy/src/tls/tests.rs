//! `client_crl`: the files it takes, the errors that name them, and the
//! revocation policy of [`client_verifier`] (whole chain; unknown status
//! and expired CRLs refused), checked on the verifier itself. The real
//! gateway's behaviour is tests/proxy_crl.rs's.

use super::*;
use rustls::CertificateError as C;
use rustls_pki_types::UnixTime;
use std::path::PathBuf;

/// A CA that can sign certificates and CRLs.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        Ca::under(name, None)
    }
    /// A CA signed by `parent` (an intermediate), or self-signed.
    fn under(name: &str, parent: Option<&Ca>) -> Ca {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        p.serial_number = Some(rcgen::SerialNumber::from(7u64));
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = match parent {
            Some(pa) => rcgen::CertifiedIssuer::signed_by(p, key, &pa.issuer).unwrap(),
            None => rcgen::CertifiedIssuer::self_signed(p, key).unwrap(),
        };
        Ca { issuer }
    }
    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }
    fn client(&self, serial: u64) -> CertificateDer<'static> {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("client {serial}"));
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        let key = rcgen::KeyPair::generate().unwrap();
        p.signed_by(&key, &self.issuer).unwrap().der().clone()
    }
    /// A CRL revoking `serials`, valid until `until` (year).
    fn crl(&self, serials: &[u64], until: i32) -> rcgen::CertificateRevocationList {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(until, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap()
    }
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pivault-crl-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tcp listener's TLS settings with `client_ca` = `ca_pem` and
/// `client_crl` = `crls`.
fn listener(d: &Dir, ca_pem: &str, crls: Vec<PathBuf>) -> TlsIn {
    let toml = format!(
        "[[listener]]\nmode = \"tcp\"\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:9\"\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"{}\"\n",
        d.write("ca.pem", ca_pem).display()
    );
    let cfg = crate::config::Config::parse(&toml, Path::new("gw.toml")).unwrap();
    let mut tls = cfg.listener[0].tls_in().unwrap().clone();
    tls.clients.as_mut().unwrap().crl = crls;
    tls
}

/// The verifier of `tls`'s client certificate settings.
fn verifier(tls: &TlsIn) -> Result<Arc<dyn ClientCertVerifier>> {
    client_verifier(tls.clients.as_ref().unwrap())
}

fn verify(
    v: &Arc<dyn ClientCertVerifier>,
    leaf: &CertificateDer<'_>,
    chain: &[CertificateDer<'_>],
) -> std::result::Result<(), rustls::Error> {
    v.verify_client_cert(leaf, chain, UnixTime::now())
        .map(|_| ())
}

fn cert_err(r: std::result::Result<(), rustls::Error>) -> C {
    match r {
        Err(rustls::Error::InvalidCertificate(c)) => c,
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn crl_files_load_as_pem_or_der_and_bad_ones_are_named() {
    let d = Dir::new("load");
    let ca = Ca::new("load");
    let crl = ca.crl(&[5], 2099);
    let der = d.write("a.der", crl.der().as_ref());
    let pem = d.write("a.crl", crl.pem().unwrap());
    assert_eq!(load_crls(&der).unwrap().len(), 1);
    assert_eq!(load_crls(&pem).unwrap()[0].as_ref(), crl.der().as_ref());

    let junk = d.write("junk.crl", "not a CRL at all\n");
    let e = load_crls(&junk).unwrap_err().to_string();
    assert!(
        e.contains("junk.crl") && e.contains("no X509 CRL block") && e.contains("client_crl"),
        "{e}"
    );
    let e = load_crls(&d.0.join("missing.crl")).unwrap_err().to_string();
    assert!(e.contains("missing.crl"), "{e}");

    // Parses as DER, but is no CRL: the verifier names the file.
    let bad = d.write("bad.der", [0x30, 0x03, 0x02, 0x01, 0x01]);
    let li = listener(&d, &pem_of(&ca), vec![der.clone(), bad]);
    let e = verifier(&li).err().unwrap().to_string();
    assert!(
        e.contains("bad.der") && e.contains("not a usable CRL") && !e.contains("a.der"),
        "{e}"
    );
}

fn pem_of(ca: &Ca) -> String {
    ca.issuer.pem()
}

#[test]
fn a_revoked_client_is_refused_and_its_neighbour_admitted() {
    let d = Dir::new("revoked");
    let ca = Ca::new("rev");
    let crl = d.write("ca.crl", ca.crl(&[1001], 2099).pem().unwrap());
    let v = verifier(&listener(&d, &pem_of(&ca), vec![crl])).unwrap();
    assert_eq!(cert_err(verify(&v, &ca.client(1001), &[])), C::Revoked);
    verify(&v, &ca.client(1002), &[]).unwrap();

    // Without client_crl nothing is checked: the same certificate passes.
    let v = verifier(&listener(&d, &pem_of(&ca), vec![])).unwrap();
    verify(&v, &ca.client(1001), &[]).unwrap();
}

#[test]
fn unknown_status_and_expired_crls_are_refused() {
    let d = Dir::new("unknown");
    let (a, b) = (Ca::new("a"), Ca::new("b"));
    let both = format!("{}{}", pem_of(&a), pem_of(&b));
    // Only a's CRL: b's clients have no revocation status.
    let crl_a = d.write("a.crl", a.crl(&[], 2099).pem().unwrap());
    let v = verifier(&listener(&d, &both, vec![crl_a.clone()])).unwrap();
    verify(&v, &a.client(1), &[]).unwrap();
    assert_eq!(
        cert_err(verify(&v, &b.client(1), &[])),
        C::UnknownRevocationStatus
    );

    // An expired CRL (nextUpdate in 2021) refuses even clients it does
    // not list, and the warning names the file.
    let old = d.write("old.crl", a.crl(&[], 2021).pem().unwrap());
    let li = listener(&d, &pem_of(&a), vec![old]);
    let v = verifier(&li).unwrap();
    assert!(matches!(
        cert_err(verify(&v, &a.client(1), &[])),
        C::ExpiredRevocationListContext { .. }
    ));
    let w = crate::filecheck::crl_warnings(&li);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("old.crl") && w[0].contains("expired"),
        "{w:?}"
    );
    assert!(crate::filecheck::crl_warnings(&listener(&d, &pem_of(&a), vec![crl_a])).is_empty());
}

#[test]
fn the_whole_chain_is_checked() {
    let d = Dir::new("chain");
    let root = Ca::new("root");
    let mid = Ca::under("mid", Some(&root));
    let leaf = mid.client(42);
    // The root revoked the intermediate (serial 7): its clients are out,
    // though the intermediate's own CRL lists nothing.
    let root_crl = d.write("root.crl", root.crl(&[7], 2099).pem().unwrap());
    let mid_crl = d.write("mid.crl", mid.crl(&[], 2099).pem().unwrap());
    let li = listener(&d, &pem_of(&root), vec![root_crl, mid_crl.clone()]);
    let v = verifier(&li).unwrap();
    assert_eq!(cert_err(verify(&v, &leaf, &[mid.der()])), C::Revoked);
    // A fresh root CRL: admitted.
    let root_ok = d.write("root-ok.crl", root.crl(&[], 2099).pem().unwrap());
    let li = listener(&d, &pem_of(&root), vec![root_ok, mid_crl.clone()]);
    let v = verifier(&li).unwrap();
    verify(&v, &leaf, &[mid.der()]).unwrap();
    // Only the intermediate's CRL: the intermediate's own status is
    // unknown, so the client is refused.
    let li = listener(&d, &pem_of(&root), vec![mid_crl]);
    let v = verifier(&li).unwrap();
    assert_eq!(
        cert_err(verify(&v, &leaf, &[mid.der()])),
        C::UnknownRevocationStatus
    );
}

/// A CRL that claims the client CA's name but is signed by another key
/// (a forged or mixed-up file) admits no one, and the refusal says why.
#[test]
fn a_crl_signed_by_another_key_admits_no_one() {
    let d = Dir::new("forged");
    let real = Ca::new("same");
    let forger = Ca::new("same");
    let crl = d.write("forged.crl", forger.crl(&[], 2099).pem().unwrap());
    let v = verifier(&listener(&d, &pem_of(&real), vec![crl])).unwrap();
    let e = verify(&v, &real.client(1), &[]).unwrap_err();
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    assert_eq!(
        crate::metrics::HandshakeFailure::classify(&io),
        crate::metrics::HandshakeFailure::RevocationUnknown,
        "{io:?}"
    );
    let words = crate::refusal::words(&io);
    assert!(
        words.contains("CRL in client_crl does not verify"),
        "{words}"
    );
}
