//! Reads the evidence from the real state (keystores, audit logs, the
//! gateway configuration) without any secret, and computes each section's
//! status from it. Nothing here unseals or writes.

use super::model::*;
use anyhow::{bail, Result};
use keys::audit::{self, rfc3339, Record, UNSEAL_FAILED};
use keys::{KdfParams, Keystore, SlotKind, SlotPolicy};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Failed unseals listed per vault (all are counted).
const MAX_LISTED_FAILURES: usize = 50;

/// Everything the report needs, read from disk.
pub fn gather(
    vaults: &[std::path::PathBuf],
    proxy: Option<&Path>,
    since: u64,
    now: u64,
) -> Result<Report> {
    let mut ev = Vec::new();
    for v in vaults {
        ev.push(vault(v, since, now)?);
    }
    let proxy = proxy.map(proxy_config).transpose()?;
    let sections = sections(&ev, proxy.as_ref());
    Ok(Report {
        report: "pivault compliance report",
        schema: SCHEMA,
        regulation: "201 CMR 17.00 (Massachusetts): Standards for the Protection of Personal Information of Residents of the Commonwealth",
        generated: rfc3339(now),
        pivault_version: env!("CARGO_PKG_VERSION"),
        period: Period {
            since: rfc3339(since),
            until: rfc3339(now),
        },
        vaults: ev,
        proxy,
        sections,
        firm_duties: duties(),
    })
}

fn vault(path: &Path, since: u64, now: u64) -> Result<VaultEvidence> {
    if !path.exists() {
        bail!("{}: no such vault directory", path.display());
    }
    if !path.is_dir() {
        bail!("{}: not a vault (not a directory)", path.display());
    }
    // Its errors name the vault or the keystore file.
    let ks = Keystore::load(path)?;
    let states = keys::slot_states(path)?;
    let records = audit::read(path)?;
    let ver = audit::verify(path)?;
    let mut slots = Vec::new();
    for s in ks.slots() {
        let p: Option<SlotPolicy> = ks.policy(s.id)?;
        let p = p.unwrap_or_default();
        let st = states.get(&s.id).cloned().unwrap_or_default();
        let locked = p.max_failures.is_some_and(|m| st.failures >= m);
        slots.push(SlotEvidence {
            id: s.id,
            kind: s.kind.name(),
            created: rfc3339(s.created),
            last_use: st.last_use.map(rfc3339),
            failures: st.failures,
            locked,
            kdf: kdf(s.kind, s.kdf),
            policy: PolicyEvidence {
                restricted: !p.is_empty(),
                users: p.users.clone(),
                expires: p.expires.map(rfc3339),
                expired: p.expires.is_some_and(|e| now >= e),
                max_failures: p.max_failures,
            },
            threshold: s.shares.map(|x| x.0),
            shares: s.shares.map(|x| x.1),
            recipient: s.escrow_recipient.clone(),
            legacy: s.legacy,
            weak_passphrase: s.weak_passphrase,
        });
    }
    let versions = ks.data_key_versions();
    let current = versions.iter().copied().max().unwrap_or(0);
    let data_keys = versions
        .iter()
        .map(|&v| DataKey {
            version: v,
            current: v == current,
        })
        .collect();
    let key_history: Vec<KeyEvent> = records.iter().filter_map(key_event).collect();
    let rotations = records
        .iter()
        .filter(|r| r.event == "rotate" && r.ok)
        .map(|r| Rotation {
            time: r.time.clone(),
            new_version: r.details.get("new_version").and_then(|v| v.as_u64()),
            user: r.user.clone(),
        })
        .collect();
    let in_period = |r: &&Record| r.ts >= since && r.ts <= now;
    let mut by_user: BTreeMap<String, u64> = BTreeMap::new();
    let mut unseals = 0;
    for r in records
        .iter()
        .filter(in_period)
        .filter(|r| r.event == "unseal" && r.ok)
    {
        unseals += 1;
        *by_user.entry(r.user.clone()).or_default() += 1;
    }
    let failed: Vec<&Record> = records
        .iter()
        .filter(in_period)
        .filter(|r| r.event == UNSEAL_FAILED)
        .collect();
    let failed_unseals = failed
        .iter()
        .skip(failed.len().saturating_sub(MAX_LISTED_FAILURES))
        .map(|r| FailedUnseal {
            seq: r.seq,
            time: r.time.clone(),
            user: r.user.clone(),
            host: r.host.clone(),
            tried: r
                .details
                .get("tried")
                .and_then(|t| t.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default(),
            reason: r.reason.clone(),
        })
        .collect();
    Ok(VaultEvidence {
        path: path.display().to_string(),
        vault_id: ks.vault_id().iter().map(|b| format!("{b:02x}")).collect(),
        keystore_format: ks.format_version(),
        suite: ks.suite().name().to_string(),
        created: rfc3339(ks.created()),
        slots,
        data_keys,
        key_history,
        rotations,
        audit: AuditEvidence {
            file: audit::path_in(path).display().to_string(),
            records: ver.records,
            signed: ver.signed,
            uncovered: ver.uncovered,
            key_fingerprint: ver.key_fingerprint.clone(),
            intact: ver.is_intact(),
            problem: ver.problem.as_ref().map(|p| AuditProblem {
                record: p.record,
                what: p.what.clone(),
            }),
            first_record: records.first().map(|r| r.time.clone()),
            last_record: records.last().map(|r| r.time.clone()),
        },
        unseals_in_period: unseals,
        unseals_by_user: by_user
            .into_iter()
            .map(|(user, count)| UserCount { user, count })
            .collect(),
        failed_unseals_in_period: failed.len() as u64,
        failed_unseals,
    })
}

fn kdf(kind: SlotKind, k: Option<KdfParams>) -> KdfEvidence {
    match k {
        Some(k) => KdfEvidence {
            algorithm: "argon2id",
            m_kib: Some(k.m_kib),
            t: Some(k.t),
            p: Some(k.p),
            test_only: k.test_only,
            below_minimum: k.m_kib < KdfParams::MIN.m_kib
                || k.t < KdfParams::MIN.t
                || k.p < KdfParams::MIN.p,
        },
        None => KdfEvidence {
            algorithm: if kind == SlotKind::Escrow {
                "age-x25519"
            } else {
                "hkdf-sha256"
            },
            m_kib: None,
            t: None,
            p: None,
            test_only: false,
            below_minimum: false,
        },
    }
}

fn key_event(r: &Record) -> Option<KeyEvent> {
    let d = &r.details;
    let get = |k: &str| {
        d.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let slot = r.slot.map(|s| format!("slot {s}")).unwrap_or_default();
    let summary = match r.event.as_str() {
        "init" => "vault created".to_string(),
        "rotate" => format!(
            "data key version {} added",
            get("new_version").unwrap_or_else(|| "?".into())
        ),
        "reencrypt" => format!(
            "{} files re-encrypted to data key version {}",
            get("files").unwrap_or_else(|| "?".into()),
            get("version").unwrap_or_else(|| "?".into())
        ),
        "retire" => format!(
            "data key versions {} retired",
            get("versions").unwrap_or_else(|| "?".into())
        ),
        "slot-add" => format!(
            "{} slot added ({slot})",
            get("kind").unwrap_or_else(|| "a".into())
        ),
        "slot-remove" => format!("{slot} removed"),
        "slot-change" => format!("passphrase of {slot} changed"),
        "policy" => format!("policy of {slot} set: {}", policy_summary(d.get("policy"))),
        "slot-unlock" => format!("{slot} unlocked"),
        "recovery" => format!("recovered with escrow; new passphrase on {slot}"),
        "audit-key-added" => "audit signing key added".to_string(),
        _ => return None,
    };
    Some(KeyEvent {
        seq: r.seq,
        time: r.time.clone(),
        event: r.event.clone(),
        slot: r.slot,
        user: r.user.clone(),
        summary: if r.ok {
            summary
        } else {
            format!("{summary} (FAILED)")
        },
    })
}

/// A policy record's `policy` detail in words.
fn policy_summary(p: Option<&serde_json::Value>) -> String {
    let Some(p) = p.and_then(|p| serde_json::from_value::<SlotPolicy>(p.clone()).ok()) else {
        return "?".into();
    };
    if p.is_empty() {
        return "unrestricted".into();
    }
    let mut parts = Vec::new();
    if !p.users.is_empty() {
        parts.push(format!("users {}", p.users.join(", ")));
    }
    if let Some(e) = p.expires {
        parts.push(format!("expires {}", rfc3339(e)));
    }
    if let Some(n) = p.max_failures {
        parts.push(format!("locks after {n} failures"));
    }
    parts.join("; ")
}

fn proxy_config(path: &Path) -> Result<ProxyEvidence> {
    let cfg = vault_proxy::Config::load(path).map_err(|e| match e {
        e @ vault_proxy::Error::Config { .. } => {
            anyhow::anyhow!("invalid proxy configuration: {e}")
        }
        e => anyhow::anyhow!("cannot read the proxy configuration: {e}"),
    })?;
    let provider = vault_proxy::tls::provider();
    let suites: Vec<String> = provider
        .cipher_suites
        .iter()
        .map(|s| {
            let name = format!("{:?}", s.suite());
            // TLS13_... are IANA's TLS_... names without the version.
            name.strip_prefix("TLS13_")
                .map(|n| format!("TLS_{n}"))
                .unwrap_or(name)
        })
        .collect();
    let mut versions = Vec::new();
    if provider.cipher_suites.iter().any(|s| s.tls13().is_some()) {
        versions.push("1.3");
    }
    if provider.cipher_suites.iter().any(|s| s.tls13().is_none()) {
        versions.push("1.2");
    }
    let listeners = cfg
        .listener
        .iter()
        .enumerate()
        .map(|(i, l)| {
            use vault_proxy::config::Mode;
            let tls_in = matches!(l.mode, Mode::Http | Mode::Tcp);
            let tls = tls_in || l.mode == Mode::Originate;
            let upstream_host = match l.mode {
                Mode::Http => l.http_upstream().map(|u| {
                    vault_proxy::config::split_host_port(&u.authority)
                        .map(|(h, _)| h)
                        .unwrap_or(u.authority)
                }),
                Mode::Tcp | Mode::Originate => l
                    .upstream
                    .as_deref()
                    .and_then(vault_proxy::config::split_host_port)
                    .map(|(h, _)| h),
                Mode::Redirect => None,
            };
            let mut sni_names: Vec<String> = l.sni.iter().flat_map(|s| s.names.clone()).collect();
            sni_names.sort();
            ListenerEvidence {
                index: i + 1,
                mode: l.mode.as_str(),
                listen: l.listen.clone(),
                tls_in,
                plaintext_in: !tls_in,
                redirect_only: l.mode == Mode::Redirect,
                tls_versions: if tls { versions.clone() } else { Vec::new() },
                cipher_suites: if tls { suites.clone() } else { Vec::new() },
                client_certificates: match (tls_in, &l.client_ca) {
                    (false, _) => "n/a",
                    (true, Some(_)) => "required",
                    (true, None) => "not requested",
                },
                client_ca: l.client_ca.as_ref().map(|p| p.display().to_string()),
                allow: l.allow.clone(),
                client_crl: l
                    .client_crl
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                hsts: (l.mode == Mode::Http).then_some(l.hsts),
                redirect_to: l.to.clone(),
                upstream: l.upstream.clone(),
                upstream_loopback: upstream_host.as_deref().map(is_loopback),
                upstream_tls: l.mode == Mode::Originate,
                upstream_ca: (l.mode == Mode::Originate).then(|| {
                    l.ca.as_ref()
                        .map_or_else(|| "system roots".to_string(), |p| p.display().to_string())
                }),
                upstream_client_certificate: l.client_cert.is_some(),
                key_sealed: l.key.as_deref().is_some_and(|k| k.starts_with("sealed:")),
                sni_names,
            }
        })
        .collect();
    Ok(ProxyEvidence {
        config: path.display().to_string(),
        access_log: cfg.access_log.clone(),
        metrics_listen: cfg.metrics.as_ref().map(|m| m.listen.clone()),
        listeners,
    })
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn listen_is_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
}

/// Builds a section; the status is the worst of what was found.
#[allow(clippy::too_many_arguments)]
fn section(
    id: &'static str,
    key: &'static str,
    title: &'static str,
    requirement: &'static str,
    base: Status,
    evidence: Vec<String>,
    findings: Vec<String>,
    cautions: Vec<String>,
    firm_duty: Vec<String>,
) -> Section {
    let status = if !findings.is_empty() {
        Status::Finding
    } else if !cautions.is_empty() && base == Status::Met {
        Status::Partly
    } else {
        base
    };
    let first = findings.first().or(cautions.first());
    let more = (findings.len() + cautions.len()).saturating_sub(1);
    let status_text = match (status, first) {
        (Status::Finding | Status::Partly, Some(f)) if more > 0 => {
            format!("{}: {f} (+{more} more)", status.label())
        }
        (Status::Finding | Status::Partly, Some(f)) => format!("{}: {f}", status.label()),
        _ => status.label().to_string(),
    };
    Section {
        id,
        key,
        title,
        requirement,
        status,
        status_text,
        evidence,
        findings,
        cautions,
        firm_duty,
        enforcement: enforcement_of(key),
    }
}

/// What enforces each of pivault's controls for the section `key`
/// (docs/THREAT-MODEL.md §6, §11, §12 say why).
fn enforcement_of(key: &str) -> Vec<Enforcement> {
    let c = |control, by| Enforcement { control, by };
    match key {
        "authentication" => vec![
            c("a guess at a passphrase costs Argon2id at the slot's parameters; recovery keys and escrow identities are 256-bit secrets", CRYPTOGRAPHIC),
            c("slot policies (OS users, expiry), the failed-unseal lockout, admin and restricted roles, the passphrase strength rule", BY_PIVAULT),
        ],
        "access_control" => vec![
            c("only a slot's secret opens the keyring, and only the keyring decrypts the vault", CRYPTOGRAPHIC),
            c("which slot may do what (roles), who may unseal with it and until when (policies)", BY_PIVAULT),
            c("the gateway's client-certificate verification (TLS)", CRYPTOGRAPHIC),
            c("the gateway's `allow` rules on verified certificates", BY_PIVAULT),
        ],
        "encryption_in_transit" => vec![c("TLS 1.2/1.3 with forward-secret AEAD suites", CRYPTOGRAPHIC)],
        "monitoring" => vec![
            c("audit records are hash-chained and Ed25519-signed: an edit, deletion or insertion is detected by `pivault audit verify`", CRYPTOGRAPHIC),
            c("failed-unseal counts are read from the log; a writer of the vault folder can cut the records since the keystore's last write", BY_PIVAULT),
        ],
        "encryption_at_rest" => vec![c("file contents, names, symlink targets and extended attributes under AES-256-GCM or XChaCha20-Poly1305 and AES-SIV", CRYPTOGRAPHIC)],
        _ => Vec::new(),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kdf_text(k: &KdfEvidence) -> String {
    match (k.m_kib, k.t, k.p) {
        (Some(m), Some(t), Some(p)) => format!(
            "argon2id m={m} KiB t={t} p={p}{}",
            if k.test_only { " (TEST-ONLY)" } else { "" }
        ),
        _ => k.algorithm.to_string(),
    }
}

fn sections(vaults: &[VaultEvidence], proxy: Option<&ProxyEvidence>) -> Vec<Section> {
    let mut out = Vec::new();
    let weak_kdf: Vec<String> = vaults
        .iter()
        .flat_map(|v| {
            v.slots.iter().filter(|s| s.kdf.test_only || s.kdf.below_minimum).map(move |s| {
                format!(
                    "slot {} of {} uses {} parameters ({}): a passphrase guess costs almost nothing; replace it with `pivault keys change-passphrase` without --insecure-test-kdf",
                    s.id,
                    v.path,
                    if s.kdf.test_only { "test-only KDF" } else { "KDF below RFC 9106's minimum" },
                    kdf_text(&s.kdf)
                )
            })
        })
        .collect();

    // 17.04(1)(b): passphrases accepted below the strength rule.
    let mut auth_findings = weak_kdf.clone();
    for v in vaults {
        for sl in v.slots.iter().filter(|s| s.weak_passphrase) {
            auth_findings.push(format!(
                "slot {} of {} has a weak passphrase, accepted below the strength rule with --allow-weak-passphrase (17.04(1)(b)): replace it with `pivault keys change-passphrase {} --slot {}`",
                sl.id, v.path, v.path, sl.id
            ));
        }
    }

    // 17.04(1) authentication
    let mut ev = Vec::new();
    let mut cautions = Vec::new();
    for v in vaults {
        for sl in &v.slots {
            let secret = match (sl.threshold, sl.shares, &sl.recipient) {
                (Some(k), Some(n), _) => format!("any {k} of {n} shares, {}", kdf_text(&sl.kdf)),
                (_, _, Some(r)) => format!("age identity of {r}"),
                _ => kdf_text(&sl.kdf),
            };
            let mut line = format!(
                "{}: slot {} ({}), {secret}, last used {}",
                v.path,
                sl.id,
                sl.kind,
                sl.last_use.as_deref().unwrap_or("never")
            );
            if let Some(m) = sl.policy.max_failures {
                line.push_str(&format!(", locks after {m} failed unseals in a row"));
            }
            if sl.locked {
                line.push_str(&format!(", LOCKED after {} failures", sl.failures));
            } else if sl.failures > 0 {
                line.push_str(&format!(
                    ", {} failed unseal{} in a row",
                    sl.failures,
                    if sl.failures == 1 { "" } else { "s" }
                ));
            }
            if sl.weak_passphrase {
                line.push_str(", WEAK PASSPHRASE (accepted with --allow-weak-passphrase)");
            }
            ev.push(line);
            if sl.policy.max_failures.is_none() && sl.kind != "escrow" {
                cautions.push(format!(
                    "slot {} of {} has no lockout after failed unseals (17.04(1)(e)): `pivault keys policy {} --slot {} --max-failures N`",
                    sl.id, v.path, v.path, sl.id
                ));
            }
        }
    }
    if !vaults.is_empty() {
        ev.push("passphrases are never stored: each slot keeps only a salt and the keyring wrapped under the stretched key (17.04(1)(c))".into());
    }
    out.push(section(
        "17.04(1)",
        "authentication",
        "Secure user authentication protocols",
        "control of user IDs; secure selection of passwords or token devices; passwords kept in a form that does not compromise the data; access for active users only; blocking after multiple unsuccessful attempts",
        if vaults.is_empty() { Status::FirmsDuty } else { Status::Met },
        ev,
        auth_findings,
        cautions,
        s(&["control of user IDs and accounts on laptops and servers (17.04(1)(a)), a password policy for OS and application accounts, and removing the slots of people who leave (`pivault keys remove`)"]),
    ));

    // 17.04(2) access control
    let mut ev = Vec::new();
    let mut cautions = Vec::new();
    for v in vaults {
        for sl in &v.slots {
            let who = if sl.policy.users.is_empty() {
                "any OS user holding the secret".to_string()
            } else {
                format!("OS users {}", sl.policy.users.join(", "))
            };
            let exp = match (&sl.policy.expires, sl.policy.expired) {
                (Some(e), true) => format!(", EXPIRED at {e}"),
                (Some(e), false) => format!(", until {e}"),
                (None, _) => String::new(),
            };
            ev.push(format!(
                "{}: slot {} ({}) unseals for {who}{exp}",
                v.path, sl.id, sl.kind
            ));
            if sl.policy.users.is_empty() && sl.kind != "escrow" && !sl.policy.expired {
                cautions.push(format!(
                    "slot {} of {} is not restricted to named OS users: `pivault keys policy {} --slot {} --users NAME`",
                    sl.id, v.path, v.path, sl.id
                ));
            }
        }
        if v.unseals_by_user.is_empty() {
            ev.push(format!("{}: no unseals in the period", v.path));
        } else {
            let users: Vec<String> = v
                .unseals_by_user
                .iter()
                .map(|u| format!("{} ({})", u.user, u.count))
                .collect();
            ev.push(format!(
                "{}: unsealed in the period by {}",
                v.path,
                users.join(", ")
            ));
        }
    }
    if let Some(p) = proxy {
        for l in p.listeners.iter().filter(|l| l.tls_in) {
            ev.push(format!(
                "gateway listener {} ({} {}): client certificates {}{}",
                l.index,
                l.mode,
                l.listen,
                l.client_certificates,
                if l.allow.is_empty() {
                    String::new()
                } else {
                    format!(", allowed: {}", l.allow.join(", "))
                }
            ));
        }
    }
    out.push(section(
        "17.04(2)",
        "access_control",
        "Secure access control measures",
        "restrict access to records with PI to those who need it for their job; unique IDs plus passwords that are not vendor defaults",
        if vaults.is_empty() { Status::FirmsDuty } else { Status::Met },
        ev,
        Vec::new(),
        cautions,
        s(&["deciding who needs access to which records, unique OS and application accounts for each person, no vendor default passwords"]),
    ));

    // 17.04(3) encryption in transit
    let mut ev = Vec::new();
    let mut findings = Vec::new();
    let mut cautions = Vec::new();
    let base = match proxy {
        None => {
            ev.push("no gateway configuration given (--proxy-config): nothing read about encryption in transit".into());
            Status::FirmsDuty
        }
        Some(p) => {
            for l in &p.listeners {
                let mut line = format!("listener {} ({}) on {}", l.index, l.mode, l.listen);
                if l.tls_in {
                    line.push_str(&format!(
                        ": TLS {} in, {} suites (ECDHE, AEAD only), client certificates {}",
                        l.tls_versions.join(" and "),
                        l.cipher_suites.len(),
                        l.client_certificates
                    ));
                    if let Some(h) = l.hsts {
                        line.push_str(if h { ", HSTS on" } else { ", HSTS off" });
                    }
                    if let Some(u) = &l.upstream {
                        line.push_str(&format!(", plaintext to {u}"));
                    }
                } else if l.redirect_only {
                    line.push_str(&format!(
                        ": plaintext, redirect only to {}",
                        l.redirect_to.as_deref().unwrap_or("?")
                    ));
                } else {
                    line.push_str(&format!(
                        ": plaintext in from local clients, TLS {} out to {}",
                        l.tls_versions.join(" and "),
                        l.upstream.as_deref().unwrap_or("?")
                    ));
                }
                ev.push(line);
                if l.mode == "originate" && !listen_is_loopback(&l.listen) {
                    findings.push(format!(
                        "listener {} (originate) accepts plaintext on {}, not a loopback address: PI may cross the network unencrypted before it is encrypted",
                        l.index, l.listen
                    ));
                }
                if l.tls_in && l.upstream_loopback == Some(false) {
                    cautions.push(format!(
                        "listener {} sends plaintext to {}, not on this host: that link must be trusted (not a public or wireless network)",
                        l.index,
                        l.upstream.as_deref().unwrap_or("?")
                    ));
                }
                if l.hsts == Some(false) {
                    cautions.push(format!(
                        "listener {} (http) does not send HSTS: set `hsts = true` so browsers never fall back to plaintext",
                        l.index
                    ));
                }
            }
            if let Some(m) = &p.metrics_listen {
                if !listen_is_loopback(m) {
                    cautions.push(format!("the metrics listener {m} is plaintext and not on loopback (it carries no PI, but keep it private)"));
                }
            }
            Status::Met
        }
    };
    out.push(section(
        "17.04(3)",
        "encryption_in_transit",
        "Encryption of transmitted records",
        "encryption of all records and files with PI that travel across public networks, and of all data with PI transmitted wirelessly",
        base,
        ev,
        findings,
        cautions,
        s(&["every other channel PI travels over: e-mail, file transfer, vendor portals, Wi-Fi (WPA2/WPA3), VPN for remote staff"]),
    ));

    // 17.04(4) monitoring
    let mut ev = Vec::new();
    let mut findings = Vec::new();
    let mut cautions = Vec::new();
    for v in vaults {
        let a = &v.audit;
        match &a.problem {
            Some(p) => findings.push(format!(
                "the audit log of {} fails verification at record {}: {}",
                v.path, p.record, p.what
            )),
            None => ev.push(format!(
                "{}: audit log verified intact: {} records, {} signed{}",
                v.path,
                a.records,
                a.signed,
                a.key_fingerprint
                    .as_deref()
                    .map(|f| format!(", verifying key sha256:{f}"))
                    .unwrap_or_default()
            )),
        }
        if a.key_fingerprint.is_none() {
            cautions.push(format!(
                "{} has no audit signing key yet: records are chained but not signed (the next unseal adds one)",
                v.path
            ));
        }
        ev.push(format!(
            "{}: {} unseals and {} failed unseals in the period",
            v.path, v.unseals_in_period, v.failed_unseals_in_period
        ));
        for sl in v.slots.iter().filter(|s| s.locked) {
            ev.push(format!(
                "{}: slot {} is locked after {} failed unseals",
                v.path, sl.id, sl.failures
            ));
        }
    }
    if let Some(p) = proxy {
        match &p.access_log {
            Some(l) => ev.push(format!("gateway access log (JSON lines: client, certificate subject, request, status, TLS version and suite): {l}")),
            None => cautions.push(format!("the gateway configuration {} sets no access_log: connections through it are not logged", p.config)),
        }
        if let Some(m) = &p.metrics_listen {
            ev.push(format!(
                "gateway metrics (handshake failures, requests by status): {m}"
            ));
        }
    }
    out.push(section(
        "17.04(4)",
        "monitoring",
        "Reasonable monitoring of systems",
        "reasonable monitoring of systems for unauthorized use of or access to personal information",
        if vaults.is_empty() && proxy.is_none() { Status::FirmsDuty } else { Status::Met },
        ev,
        findings,
        cautions,
        s(&["someone reviews the audit logs and failed unseals regularly (17.03(2)(h)); forward them to syslog/SIEM with `--syslog`; keep the audit verifying-key fingerprint off the laptop to compare with"]),
    ));

    // 17.04(5) encryption at rest
    let mut ev = Vec::new();
    for v in vaults {
        let current = v
            .data_keys
            .iter()
            .find(|d| d.current)
            .map_or(0, |d| d.version);
        ev.push(format!(
            "{}: contents, names and symlink targets encrypted with {} (keystore format {}); data key versions {} (current {current})",
            v.path,
            v.suite,
            v.keystore_format,
            v.data_keys.iter().map(|d| d.version.to_string()).collect::<Vec<_>>().join(", ")
        ));
        if v.rotations.is_empty() {
            ev.push(format!(
                "{}: no key rotation recorded since {}",
                v.path, v.created
            ));
        } else {
            let r: Vec<String> = v
                .rotations
                .iter()
                .map(|r| {
                    format!(
                        "{} (version {})",
                        r.time,
                        r.new_version
                            .map_or_else(|| "?".to_string(), |n| n.to_string())
                    )
                })
                .collect();
            ev.push(format!("{}: rotations: {}", v.path, r.join(", ")));
        }
    }
    out.push(section(
        "17.04(5)",
        "encryption_at_rest",
        "Encryption of PI on laptops and portable devices",
        "encryption of all personal information stored on laptops or other portable devices",
        if vaults.is_empty() { Status::FirmsDuty } else { Status::Met },
        ev,
        weak_kdf,
        Vec::new(),
        s(&["keep PI only inside vaults (find it elsewhere with `pivault scan PATH... --move-into MOUNTPOINT`), full-disk encryption for the rest of the device, encrypted USB drives and backups, and an inventory of portable devices"]),
    ));

    // 17.04(6), (7), (8)
    out.push(section(
        "17.04(6)",
        "firewall_and_patches",
        "Up-to-date firewall protection and security patches",
        "reasonably up-to-date firewall protection and operating system security patches for systems with PI connected to the Internet",
        Status::FirmsDuty,
        vec![format!(
            "this report was made by pivault {}; the gateway accepts only TLS 1.2/1.3 with forward-secret AEAD suites",
            env!("CARGO_PKG_VERSION")
        )],
        Vec::new(),
        Vec::new(),
        s(&["host and network firewalls, OS security updates on every device, and updating pivault itself when a new release fixes a security issue"]),
    ));
    out.push(section(
        "17.04(7)",
        "security_agent_software",
        "Current system security agent software",
        "reasonably up-to-date security agent software with malware protection, patches and virus definitions, set to update regularly",
        Status::FirmsDuty,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        s(&["anti-malware / endpoint protection on every device, set to receive updates automatically"]),
    ));
    out.push(section(
        "17.04(8)",
        "training",
        "Education and training",
        "education and training of employees on the proper use of the computer security system and the importance of PI security",
        Status::FirmsDuty,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        s(&["training staff (how to use vaults, passphrases and recovery keys, never to copy PI out of a vault, how to report a lost laptop), with records of who was trained when"]),
    ));
    out
}

fn duties() -> Vec<Duty> {
    vec![
        Duty {
            key: "wisp_ownership",
            topic: "WISP ownership",
            regulation: "17.03(1), 17.03(2)(a)",
            what: "a written information security program, and one or more employees designated to maintain it",
            pivault_help: Some("this report, attached to the WISP as evidence of the technical controls"),
        },
        Duty {
            key: "risk_assessment",
            topic: "Risk assessment",
            regulation: "17.03(2)(b)",
            what: "identify and assess reasonably foreseeable internal and external risks to PI, including ongoing employee training and means for detecting failures",
            pivault_help: Some("`pivault scan` finds unprotected PI on a device"),
        },
        Duty {
            key: "policies_and_discipline",
            topic: "Employee policies and discipline",
            regulation: "17.03(2)(c), (d)",
            what: "policies on keeping, accessing and transporting records with PI off premises; disciplinary measures for violations",
            pivault_help: None,
        },
        Duty {
            key: "terminated_employees",
            topic: "Terminated employees",
            regulation: "17.03(2)(e)",
            what: "prevent terminated employees from accessing records with PI",
            pivault_help: Some("remove their slots (`pivault keys remove`), rotate the data key (`pivault keys rotate`, `pivault reencrypt --retire`), slot expiry (`pivault keys policy --expires`)"),
        },
        Duty {
            key: "vendor_contracts",
            topic: "Service providers",
            regulation: "17.03(2)(f)",
            what: "select service providers able to protect PI and require it of them by contract",
            pivault_help: None,
        },
        Duty {
            key: "physical_security",
            topic: "Physical security",
            regulation: "17.03(2)(g)",
            what: "reasonable restrictions on physical access to records with PI, and storage in locked facilities, areas or containers (paper records included)",
            pivault_help: None,
        },
        Duty {
            key: "monitoring_and_review",
            topic: "Monitoring and annual review",
            regulation: "17.03(2)(h), (i)",
            what: "regular monitoring that the program works, and a review of its scope at least annually or on a material change in business practices",
            pivault_help: Some("run this report on a schedule and compare; `pivault audit verify`"),
        },
        Duty {
            key: "incident_response",
            topic: "Incident response",
            regulation: "17.03(2)(j)",
            what: "document responsive actions taken after any incident involving a breach of security, with a post-incident review",
            pivault_help: Some("the signed audit log shows unseals, failed unseals and key changes for the incident record"),
        },
        Duty {
            key: "patching",
            topic: "Patching and security software",
            regulation: "17.04(6), (7)",
            what: "firewalls, OS security patches and anti-malware kept up to date on every system holding PI",
            pivault_help: None,
        },
        Duty {
            key: "training",
            topic: "Training",
            regulation: "17.04(8)",
            what: "educate and train employees on the security system and the importance of PI security",
            pivault_help: None,
        },
    ]
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.5"));
        assert!(!is_loopback("db.example"));
        assert!(listen_is_loopback("127.0.0.1:5433"));
        assert!(!listen_is_loopback("0.0.0.0:5433"));
    }

    #[test]
    fn status_is_the_worst_found() {
        let sec = |f: Vec<String>, c: Vec<String>| {
            section("x", "x", "x", "x", Status::Met, vec![], f, c, vec![])
        };
        assert_eq!(sec(vec![], vec![]).status, Status::Met);
        assert_eq!(sec(vec![], vec!["c".into()]).status, Status::Partly);
        let f = sec(vec!["f".into()], vec!["c".into()]);
        assert_eq!(f.status, Status::Finding);
        assert_eq!(f.status_text, "finding: f (+1 more)");
    }
}
