//! Evidence built in memory for the clause tests: a vault with one
//! well-configured passphrase slot and an intact, signed audit log, which
//! each test case then bends one way.

use crate::model::*;

/// A passphrase slot at the default Argon2id cost, restricted to alice,
/// locking after 5 failures.
pub fn slot(id: u32) -> SlotEvidence {
    SlotEvidence {
        id,
        kind: SlotKind::Passphrase,
        created: "2026-01-01T00:00:00Z".into(),
        last_use: Some("2026-02-01T00:00:00Z".into()),
        failures: 0,
        locked: false,
        kdf: KdfEvidence {
            algorithm: KdfAlgorithm::Argon2id,
            m_kib: Some(262_144),
            t: Some(3),
            p: Some(4),
            test_only: false,
            below_minimum: false,
        },
        policy: PolicyEvidence {
            restricted: true,
            users: vec!["alice".into()],
            expires: None,
            expired: false,
            max_failures: Some(5),
        },
        threshold: None,
        shares: None,
        recipient: None,
        legacy: false,
        weak_passphrase: false,
    }
}

/// A recovery slot (HKDF, no policy).
pub fn recovery(id: u32) -> SlotEvidence {
    let mut s = slot(id);
    s.kind = SlotKind::Recovery;
    s.kdf = KdfEvidence {
        algorithm: KdfAlgorithm::HkdfSha256,
        m_kib: None,
        t: None,
        p: None,
        test_only: false,
        below_minimum: false,
    };
    s
}

/// An escrow slot (age, no policy: it is IT's, not a person's).
pub fn escrow(id: u32) -> SlotEvidence {
    let mut s = recovery(id);
    s.kind = SlotKind::Escrow;
    s.kdf.algorithm = KdfAlgorithm::AgeX25519;
    s.policy = PolicyEvidence {
        restricted: false,
        users: Vec::new(),
        expires: None,
        expired: false,
        max_failures: None,
    };
    s.recipient = Some("age1example".into());
    s
}

/// The vault `/v/NAME` with `slots`, a verified signed audit log, and a
/// data key made 10 days before the report.
pub fn vault(name: &str, slots: Vec<SlotEvidence>) -> VaultEvidence {
    VaultEvidence {
        path: format!("/v/{name}"),
        vault_id: "00".repeat(16),
        keystore_format: 3,
        suite: "aes-256-gcm".into(),
        created: "2026-01-01T00:00:00Z".into(),
        slots,
        data_keys: vec![DataKey {
            version: 1,
            current: true,
        }],
        key_history: Vec::new(),
        rotations: Vec::new(),
        data_key_since: "2026-01-01T00:00:00Z".into(),
        data_key_age_days: 10,
        rotation_stale: false,
        audit: AuditEvidence {
            file: format!("/v/{name}/audit.log"),
            records: 3,
            signed: 3,
            uncovered: 0,
            key_fingerprint: Some("ab".repeat(32)),
            intact: true,
            problem: None,
            first_record: Some("2026-01-01T00:00:00Z".into()),
            last_record: Some("2026-02-01T00:00:00Z".into()),
        },
        unseals_in_period: 1,
        unseals_by_user: vec![UserCount {
            user: "alice".into(),
            count: 1,
        }],
        failed_unseals_in_period: 0,
        failed_unseals: Vec::new(),
    }
}

/// A vault with one good passphrase slot.
pub fn good_vault() -> VaultEvidence {
    vault("good", vec![slot(0)])
}

/// An `http` listener on `listen` to `upstream`, with client certificates
/// and HSTS.
pub fn https(index: usize, listen: &str, upstream: &str, loopback: bool) -> ListenerEvidence {
    ListenerEvidence {
        index,
        mode: ListenerMode::Http,
        listen: listen.into(),
        tls_in: true,
        plaintext_in: false,
        redirect_only: false,
        tls_versions: vec!["1.3".into(), "1.2".into()],
        cipher_suites: vec!["TLS_AES_256_GCM_SHA384".into()],
        client_certificates: ClientCertificates::Required,
        client_ca: Some("/etc/ca.pem".into()),
        allow: Vec::new(),
        client_crl: Vec::new(),
        hsts: Some(true),
        redirect_to: None,
        upstream: Some(upstream.into()),
        upstream_loopback: Some(loopback),
        upstream_tls: false,
        upstream_ca: None,
        upstream_client_certificate: false,
        key_sealed: true,
        sni_names: Vec::new(),
    }
}

/// A plaintext listener: `originate` (TLS out) or `redirect`.
pub fn plaintext(index: usize, mode: ListenerMode, listen: &str) -> ListenerEvidence {
    let mut l = https(index, listen, "db.example:5432", false);
    l.mode = mode;
    l.tls_in = false;
    l.plaintext_in = true;
    l.client_certificates = ClientCertificates::NotApplicable;
    l.client_ca = None;
    l.hsts = None;
    if mode == ListenerMode::Redirect {
        l.redirect_only = true;
        l.redirect_to = Some("https://app.example".into());
        l.upstream = None;
        l.upstream_loopback = None;
        l.tls_versions.clear();
        l.cipher_suites.clear();
    } else {
        l.upstream_tls = true;
        l.upstream_ca = Some("system roots".into());
    }
    l
}

/// A gateway configuration with an access log and `listeners`.
pub fn gateway(listeners: Vec<ListenerEvidence>) -> ProxyEvidence {
    ProxyEvidence {
        config: "/etc/pivault/gw.toml".into(),
        access_log: Some("/var/log/pivault/access.log".into()),
        metrics_listen: Some("127.0.0.1:9100".into()),
        listeners,
    }
}

/// A machine's report on `host` made at `now` (Unix seconds), each section
/// evaluated on `vaults` and `proxy` as `gather` would.
pub fn report(
    host: &str,
    now: u64,
    vaults: Vec<VaultEvidence>,
    proxy: Option<ProxyEvidence>,
) -> Report {
    let sections = super::sections(&vaults, proxy.as_ref());
    Report {
        report: REPORT_KIND.into(),
        schema: SCHEMA,
        regulation: REGULATION.into(),
        host: host.into(),
        generated: keys::audit::rfc3339(now),
        pivault_version: crate::VERSION.into(),
        period: Period {
            since: keys::audit::rfc3339(now.saturating_sub(90 * 86_400)),
            until: keys::audit::rfc3339(now),
        },
        rotation_max_age_days: ROTATION_MAX_AGE_DAYS,
        vaults,
        proxy,
        sections,
        firm_duties: super::firm_duties(),
    }
}
