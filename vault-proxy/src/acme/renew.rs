//! When to renew, and the renewal task.
//!
//! A certificate is renewed when two thirds of its lifetime have passed
//! (a 90-day certificate at 60 days, leaving a month for failures), or
//! `renew_after` after it was obtained when that is set (tests, drills),
//! or earlier when the CA's renewal information (ARI, RFC 9773) puts the
//! start of its suggested window earlier (a CA that revokes early says so
//! there). A failed attempt keeps the old certificate in service and is
//! retried after 5 s, 10 s, 20 s, ... capped at 6 h, each wait cut by a
//! random 0 to 50% so that many gateways behind one CA do not retry in
//! step.

use super::{Acme, Served};
use crate::listener::Shared;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first retry's wait.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(6 * 3600);
/// The longest sleep before the schedule is looked at again (a clock
/// change or new renewal information is seen within this).
const RECHECK: Duration = Duration::from_secs(3600);

/// The wait before attempt `failures + 1`, with jitter.
pub(super) fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let full = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_CAP);
    let mut b = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    // 50% to 100% of the full wait.
    full.mul_f64(0.5 + f64::from(b[0]) / 510.0)
}

/// When `s` is due by the lifetime rule (or `renew_after`).
pub(super) fn due_by_lifetime(s: &Served, renew_after: Option<Duration>) -> SystemTime {
    match renew_after {
        Some(d) => s.obtained + d,
        None => {
            let life = s.not_after.duration_since(s.not_before).unwrap_or_default();
            s.not_before + life.mul_f64(2.0 / 3.0)
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Acme {
    /// When the served certificate should be renewed; now when there is
    /// none (the first issue).
    async fn due(&self) -> SystemTime {
        let served = self
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(s) = served else {
            return SystemTime::now();
        };
        let due = due_by_lifetime(&s, self.cfg.renew_after);
        match self.ari_start(&s).await {
            Some(start) if start < due => start,
            _ => due,
        }
    }

    /// A time in the CA's suggested renewal window, when it offers one.
    /// Errors are not failures: the lifetime rule still holds.
    async fn ari_start(&self, s: &Served) -> Option<SystemTime> {
        if !self.ari.load(Relaxed) {
            return None;
        }
        let id = instant_acme::CertificateIdentifier::try_from(&s.leaf).ok()?;
        let account = self.account().await.ok()?;
        match account.renewal_info(&id).await {
            Ok((info, _)) => {
                let w = info.suggested_window;
                let at = |t: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
                let (start, end) = (at(w.start.unix_timestamp()), at(w.end.unix_timestamp()));
                let span = end.duration_since(start).unwrap_or_default();
                let mut b = [0u8; 1];
                let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
                // A random point of the window, as RFC 9773 §4.2 asks.
                Some(start + span.mul_f64(f64::from(b[0]) / 255.0))
            }
            Err(instant_acme::Error::Unsupported(_)) => {
                tracing::info!("acme: the CA offers no renewal information (ARI); renewing by the lifetime rule");
                self.ari.store(false, Relaxed);
                None
            }
            Err(e) => {
                tracing::debug!("acme: renewal information not available: {e}");
                None
            }
        }
    }

    fn count(&self, sh: &Shared, ok: bool, not_after: Option<SystemTime>) {
        for m in sh.metrics.listeners.iter().filter(|m| m.acme) {
            if ok {
                m.acme_ok.fetch_add(1, Relaxed);
            } else {
                m.acme_failed.fetch_add(1, Relaxed);
            }
            if let Some(t) = not_after {
                m.acme_not_after.store(unix(t), Relaxed);
            }
        }
    }

    /// Obtains the first certificate if there is none, then renews it
    /// when due, until the gateway stops.
    pub async fn run(self: Arc<Self>, sh: Arc<Shared>) {
        let mut stop = sh.shutdown.clone();
        let served = self
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(s) = &served {
            for m in sh.metrics.listeners.iter().filter(|m| m.acme) {
                m.acme_not_after.store(unix(s.not_after), Relaxed);
            }
        }
        let mut failures = 0u32;
        loop {
            let wait = if failures > 0 {
                backoff(failures)
            } else {
                let due = self.due().await;
                match due.duration_since(SystemTime::now()) {
                    Ok(left) if !left.is_zero() => {
                        tracing::debug!(
                            "acme: next renewal at {}",
                            humantime::format_rfc3339_seconds(due)
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(left.min(RECHECK)) => {}
                            _ = crate::listener::stopped(&mut stop) => return,
                        }
                        // Look again: new renewal information, or a
                        // wait longer than RECHECK.
                        continue;
                    }
                    _ => Duration::ZERO,
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = crate::listener::stopped(&mut stop) => return,
                }
            }
            let first = self
                .served
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none();
            let what = if first { "issue" } else { "renewal" };
            let domains = self.cfg.domains.join(", ");
            let attempt = tokio::select! {
                r = self.obtain() => r,
                _ = crate::listener::stopped(&mut stop) => return,
            };
            match attempt {
                Ok(s) => {
                    failures = 0;
                    self.count(&sh, true, Some(s.not_after));
                    tracing::info!(
                        "acme: certificate {} for {domains}, valid until {}, now served",
                        if first { "obtained" } else { "renewed" },
                        humantime::format_rfc3339_seconds(s.not_after)
                    );
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.count(&sh, false, None);
                    let keep = if first {
                        "still serving the temporary self-signed certificate"
                    } else {
                        "keeping the current certificate"
                    };
                    tracing::error!(
                        "acme: certificate {what} for {domains} failed (attempt {failures}), {keep}; retrying with back-off: {e}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA that publishes renewal information (ARI): its directory and
    /// a window for any certificate, `start_in` from now, a day long.
    async fn ari_ca(start_in: Duration) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let rfc3339 = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        let start = SystemTime::now() + start_in;
        let window = format!(
            r#"{{"suggestedWindow":{{"start":"{}","end":"{}"}}}}"#,
            rfc3339(start),
            rfc3339(start + Duration::from_secs(86_400))
        );
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let window = window.clone();
                let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let base = format!("http://{addr}");
                    let (body, retry) = if req.uri().path() == "/dir" {
                        (
                            format!(
                                r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/acct","newOrder":"{base}/order","renewalInfo":"{base}/ari"}}"#
                            ),
                            false,
                        )
                    } else {
                        (window.clone(), true)
                    };
                    let mut r =
                        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
                    if retry {
                        r.headers_mut().insert(
                            "retry-after",
                            hyper::header::HeaderValue::from_static("3600"),
                        );
                    }
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_renewal_window_from_the_ca_brings_renewal_forward() {
        let ca_addr = ari_ca(Duration::from_secs(3600)).await;
        let d = tempfile::tempdir().unwrap();
        let storage = d.path().join("acme");
        // A 90-day certificate one day old, with the AKI ARI needs.
        let mut cap = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        cap.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(cap, rcgen::KeyPair::generate().unwrap()).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        p.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        p.not_before = (now - Duration::from_secs(86_400)).into();
        p.not_after = (now + Duration::from_secs(89 * 86_400)).into();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        let store = super::super::store::Store::open(&storage).unwrap();
        store
            .write(super::super::store::CERT, cert.pem().as_bytes())
            .unwrap();
        store
            .write(super::super::store::KEY, key.serialize_pem().as_bytes())
            .unwrap();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        use base64::Engine;
        let directory = format!("http://{ca_addr}/dir");
        let account = format!(
            r#"{{"directory":"{directory}","credentials":{{"id":"http://{ca_addr}/acct/1","key_pkcs8":"{}","directory":"{directory}"}}}}"#,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pkcs8.as_ref())
        );
        store
            .write(super::super::store::ACCOUNT, account.as_bytes())
            .unwrap();
        let ca_file = d.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let cfg = super::super::AcmeConfig {
            directory,
            contact: Vec::new(),
            domains: vec!["a.example".into()],
            storage,
            ca_file: Some(ca_file),
            eab: None,
            challenge: super::super::Challenge::Http01,
            renew_after: None,
        };
        let acme = Acme::open(&cfg).unwrap();
        let served = acme.served.lock().unwrap().clone().unwrap();
        let by_lifetime = due_by_lifetime(&served, None);
        assert!(by_lifetime > now + Duration::from_secs(58 * 86_400));
        let due = acme.due().await;
        assert!(
            due >= now + Duration::from_secs(3000)
                && due <= now + Duration::from_secs(3600 + 86_400 + 60),
            "the CA's window wins: {due:?}"
        );
        assert!(acme.ari.load(Relaxed));
    }

    #[test]
    fn renewal_is_due_at_two_thirds_and_back_off_grows_to_a_cap() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Served {
            leaf: Vec::new().into(),
            not_before: t0,
            not_after: t0 + Duration::from_secs(90 * 86_400),
            obtained: t0 + Duration::from_secs(10),
        };
        assert_eq!(
            due_by_lifetime(&s, None),
            t0 + Duration::from_secs(60 * 86_400)
        );
        assert_eq!(
            due_by_lifetime(&s, Some(Duration::from_secs(5))),
            t0 + Duration::from_secs(15)
        );
        let b1 = backoff(1);
        assert!(
            b1 >= Duration::from_millis(2500) && b1 <= BACKOFF_BASE,
            "{b1:?}"
        );
        let b3 = backoff(3);
        assert!(
            b3 >= Duration::from_secs(10) && b3 <= Duration::from_secs(20),
            "{b3:?}"
        );
        assert!(backoff(40) <= BACKOFF_CAP);
        assert!(backoff(40) >= BACKOFF_CAP / 2);
    }
}
