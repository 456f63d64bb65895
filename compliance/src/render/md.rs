//! The Markdown form of a machine's report: readable as plain text,
//! renders as a document.

use crate::model::*;
use std::fmt::Write;

/// Escapes text so a path or user name cannot become HTML or a link when
/// the Markdown is rendered, nor break a table cell (backticks are left
/// alone: the report's own text quotes commands with them).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '[' | ']' | '<' | '>' | '|' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A status as the summary tables show it (the fleet report's too).
pub(crate) fn badge(s: Status) -> String {
    match s {
        Status::Met => "**met by pivault**".into(),
        Status::Partly => "**partly**".into(),
        Status::FirmsDuty => "firm's duty".into(),
        Status::Finding => "**FINDING**".into(),
    }
}

/// Renders the report as Markdown.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# pivault compliance report: 201 CMR 17.04\n");
    let _ = writeln!(o, "- Regulation: {}", esc(&r.regulation));
    let _ = writeln!(o, "- Machine: {}", esc(&r.host));
    let _ = writeln!(
        o,
        "- Generated: {} by pivault {}",
        r.generated, r.pivault_version
    );
    let _ = writeln!(
        o,
        "- Period for unseal counts: {} to {}",
        r.period.since, r.period.until
    );
    let vaults: Vec<String> = r.vaults.iter().map(|v| esc(&v.path)).collect();
    let _ = writeln!(
        o,
        "- Vaults: {}",
        if vaults.is_empty() {
            "none".into()
        } else {
            vaults.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "- Gateway configuration: {}\n",
        r.proxy
            .as_ref()
            .map_or_else(|| "not given".to_string(), |p| esc(&p.config))
    );
    let _ = writeln!(o, "Read from the vaults' keystores and audit logs and the gateway configuration, without any secret. Attach it to the firm's Written Information Security Program (WISP) with the list of duties at the end.\n");
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(o, "| Section | Requirement | Status |");
    let _ = writeln!(o, "|---|---|---|");
    for s in &r.sections {
        let _ = writeln!(o, "| {} | {} | {} |", s.id, esc(&s.title), badge(s.status));
    }
    o.push('\n');
    for s in &r.sections {
        let _ = writeln!(o, "## {} {}\n", s.id, esc(&s.title));
        let _ = writeln!(o, "*Requirement:* {}.\n", esc(&s.requirement));
        let _ = writeln!(o, "**Status: {}**\n", esc(&s.status_text));
        list(&mut o, "Findings", &s.findings);
        list(&mut o, "Gaps", &s.cautions);
        list(&mut o, "Evidence", &s.evidence);
        list(&mut o, "The firm's duty", &s.firm_duty);
        let how: Vec<String> = s
            .enforcement
            .iter()
            .map(|e| format!("{}: {}", e.by, e.control))
            .collect();
        list(&mut o, "How pivault's controls hold", &how);
    }
    for v in &r.vaults {
        vault(&mut o, v);
    }
    if let Some(p) = &r.proxy {
        proxy(&mut o, p);
    }
    let _ = writeln!(o, "## What remains the firm's duty\n");
    let _ = writeln!(
        o,
        "| Topic | Regulation | The firm must | pivault helps with |"
    );
    let _ = writeln!(o, "|---|---|---|---|");
    for d in &r.firm_duties {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            esc(&d.topic),
            esc(&d.regulation),
            esc(&d.what),
            d.pivault_help
                .as_deref()
                .map_or_else(|| "-".to_string(), esc)
        );
    }
    o
}

/// A titled bullet list; nothing for no items.
fn list(o: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(o, "{title}:\n");
    for i in items {
        let _ = writeln!(o, "- {}", esc(i));
    }
    o.push('\n');
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |x| esc(&x.to_string()))
}

fn vault(o: &mut String, v: &VaultEvidence) {
    let _ = writeln!(o, "## Vault {}\n", esc(&v.path));
    let _ = writeln!(o, "- Cipher suite: {}", esc(&v.suite));
    let _ = writeln!(
        o,
        "- Vault ID: {}; keystore format {}; created {}",
        v.vault_id, v.keystore_format, v.created
    );
    let keys = DataKey::list(&v.data_keys);
    let _ = writeln!(o, "- Data key versions: {}", keys);
    let _ = writeln!(
        o,
        "- Current data key since: {} ({} days){}",
        v.data_key_since,
        v.data_key_age_days,
        if v.rotation_stale {
            " **STALE: rotate it**"
        } else {
            ""
        }
    );
    let a = &v.audit;
    match &a.problem {
        None => {
            let _ = writeln!(
                o,
                "- Audit log: verified intact ({} records, {} signed)",
                a.records, a.signed
            );
        }
        Some(p) => {
            let _ = writeln!(
                o,
                "- Audit log: **FAILS VERIFICATION at record {}**: {}",
                p.record,
                esc(&p.what)
            );
        }
    }
    if let Some(f) = &a.key_fingerprint {
        let _ = writeln!(o, "- Audit verifying key: sha256:{f}");
    }
    let _ = writeln!(
        o,
        "- In the period: {} unseals, {} failed unseals\n",
        v.unseals_in_period, v.failed_unseals_in_period
    );
    let _ = writeln!(
        o,
        "| Slot | Kind | KDF | Users | Expires | Max failures | Locked | Last use |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &v.slots {
        let kdf = match (s.kdf.m_kib, s.kdf.t, s.kdf.p) {
            (Some(m), Some(t), Some(p)) => format!(
                "argon2id m={m} KiB t={t} p={p}{}",
                if s.kdf.test_only {
                    " **TEST-ONLY**"
                } else {
                    ""
                }
            ),
            _ => s.kdf.algorithm.to_string(),
        };
        let kdf = if s.weak_passphrase {
            format!("{kdf} **WEAK PASSPHRASE**")
        } else {
            kdf
        };
        let users = if s.policy.users.is_empty() {
            "any".to_string()
        } else {
            esc(&s.policy.users.join(", "))
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} |",
            s.id,
            s.kind,
            kdf,
            users,
            opt(&s.policy.expires),
            if s.policy.expired { " (expired)" } else { "" },
            opt(&s.policy.max_failures),
            if s.locked {
                format!("yes ({} failures)", s.failures)
            } else {
                "no".to_string()
            },
            opt(&s.last_use)
        );
    }
    o.push('\n');
    if !v.key_history.is_empty() {
        let _ = writeln!(o, "Key history (audit log):\n");
        let _ = writeln!(o, "| Record | Time | Event | User | What |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for e in &v.key_history {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                e.seq,
                e.time,
                esc(&e.event),
                esc(&e.user),
                esc(&e.summary)
            );
        }
        o.push('\n');
    }
    if !v.failed_unseals.is_empty() {
        let _ = writeln!(o, "Failed unseals in the period:\n");
        let _ = writeln!(o, "| Record | Time | User | Host | Slots tried | Reason |");
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for f in &v.failed_unseals {
            let tried: Vec<String> = f.tried.iter().map(u64::to_string).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                f.seq,
                f.time,
                esc(&f.user),
                esc(&f.host),
                tried.join(", "),
                opt(&f.reason)
            );
        }
        o.push('\n');
    }
}

fn proxy(o: &mut String, p: &ProxyEvidence) {
    let _ = writeln!(o, "## Gateway {}\n", esc(&p.config));
    let _ = writeln!(o, "- Access log: {}", opt(&p.access_log));
    let _ = writeln!(o, "- Metrics: {}\n", opt(&p.metrics_listen));
    let _ = writeln!(
        o,
        "| # | Mode | Listen | TLS | Client certificates | HSTS | Upstream / target |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for l in &p.listeners {
        let tls = if l.tls_in {
            format!("{} in", l.tls_versions.join(", "))
        } else if l.redirect_only {
            "plaintext, redirect only".to_string()
        } else {
            format!("plaintext in, {} out", l.tls_versions.join(", "))
        };
        let mut cc = l.client_certificates.to_string();
        if let Some(ca) = &l.client_ca {
            cc.push_str(&format!(" (CA {})", esc(ca)));
        }
        if !l.allow.is_empty() {
            cc.push_str(&format!("; allow {}", esc(&l.allow.join(", "))));
        }
        if !l.client_crl.is_empty() {
            cc.push_str(&format!(
                "; revocation checked (CRL {})",
                esc(&l.client_crl.join(", "))
            ));
        }
        let target = l.redirect_to.as_ref().or(l.upstream.as_ref());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.index,
            l.mode,
            esc(&l.listen),
            tls,
            cc,
            l.hsts.map_or("-", |h| if h { "on" } else { "off" }),
            opt(&target)
        );
    }
    if let Some(l) = p.listeners.iter().find(|l| !l.cipher_suites.is_empty()) {
        let _ = writeln!(o, "\nTLS cipher suites: {}", l.cipher_suites.join(", "));
    }
    o.push('\n');
}
