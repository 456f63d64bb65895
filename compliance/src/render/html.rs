//! The HTML form of a machine's report: one self-contained file (inline CSS, no scripts, no
//! external resources), a summary table with status badges first, then
//! the sections and the details. Every text from the state is escaped.

use crate::model::*;
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The style sheet, shared with the fleet report so both read alike.
pub(crate) const STYLE: &str = r#"
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;max-width:1100px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:2px solid #e3e7ec;padding-bottom:.2em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta{color:#56606b;margin:0 0 1em}.meta td{padding:1px 12px 1px 0;vertical-align:top}
table{border-collapse:collapse;width:100%;margin:.5em 0 1em}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e7ec;vertical-align:top}
th{background:#f4f6f8;font-weight:600}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:.85em;font-weight:600;white-space:nowrap}
.met{background:#d9f2e1;color:#11652f}.partly{background:#fff1c7;color:#7a5600}
.firms_duty{background:#e4e9f2;color:#34445c}.finding{background:#fbd9d9;color:#9a1c1c}
.section{border:1px solid #e3e7ec;border-radius:6px;padding:.2em 1em .6em;margin:1em 0}
.section.finding{border-left:5px solid #c62828}.section.partly{border-left:5px solid #e0a800}
.section.met{border-left:5px solid #2e7d32}.section.firms_duty{border-left:5px solid #7a8aa3}
.req{color:#56606b;font-style:italic}ul{margin:.3em 0 .6em;padding-left:1.4em}
li.finding{color:#9a1c1c}li.caution{color:#6b4b00}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
.bad{color:#9a1c1c;font-weight:600}.ok{color:#11652f;font-weight:600}
footer{color:#56606b;font-size:.85em;margin-top:3em}
@media print{body{margin:0}.section{break-inside:avoid}}
"#;

/// A status as a coloured badge (the fleet report's too).
pub(crate) fn badge(s: Status) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        s.key(),
        esc(s.label())
    )
}

fn class(s: Status) -> &'static str {
    s.key()
}

/// An optional value, escaped, or a dash.
fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "&ndash;".to_string(), |x| esc(&x.to_string()))
}

/// Renders the report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        o,
        "<title>pivault compliance report {}</title>",
        esc(&r.generated)
    );
    let _ = writeln!(o, "<style>{STYLE}</style>\n</head>\n<body>");
    o.push_str("<h1>pivault compliance report: 201 CMR 17.04</h1>\n<table class=\"meta\">\n");
    let vaults: Vec<String> = r
        .vaults
        .iter()
        .map(|v| format!("<span class=\"mono\">{}</span>", esc(&v.path)))
        .collect();
    for (k, v) in [
        ("Regulation", esc(&r.regulation)),
        ("Machine", esc(&r.host)),
        (
            "Generated",
            format!(
                "{} by pivault {}",
                esc(&r.generated),
                esc(&r.pivault_version)
            ),
        ),
        (
            "Period for unseal counts",
            format!("{} to {}", esc(&r.period.since), esc(&r.period.until)),
        ),
        (
            "Vaults",
            if vaults.is_empty() {
                "none".into()
            } else {
                vaults.join("<br>")
            },
        ),
        (
            "Gateway configuration",
            r.proxy.as_ref().map_or_else(
                || "not given".to_string(),
                |p| format!("<span class=\"mono\">{}</span>", esc(&p.config)),
            ),
        ),
    ] {
        let _ = writeln!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table>\n<p>Read from the vaults' keystores and audit logs and the gateway configuration, without any secret. Attach it to the firm's Written Information Security Program (WISP) together with the list of duties at the end.</p>\n");

    o.push_str("<h2>Summary</h2>\n<table>\n<tr><th>Section</th><th>Requirement</th><th>Status</th><th>Detail</th></tr>\n");
    for s in &r.sections {
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.key,
            esc(&s.id),
            esc(&s.title),
            badge(s.status),
            esc(&s.status_text)
        );
    }
    o.push_str("</table>\n");

    for s in &r.sections {
        let _ = writeln!(
            o,
            "<div class=\"section {}\" id=\"{}\">",
            class(s.status),
            s.key
        );
        let _ = writeln!(
            o,
            "<h2>{} {} {}</h2>",
            esc(&s.id),
            esc(&s.title),
            badge(s.status)
        );
        let _ = writeln!(
            o,
            "<p class=\"req\">Requirement: {}.</p>",
            esc(&s.requirement)
        );
        list(&mut o, "Findings", "finding", &s.findings);
        list(&mut o, "Gaps", "caution", &s.cautions);
        list(&mut o, "Evidence", "", &s.evidence);
        list(&mut o, "The firm's duty", "", &s.firm_duty);
        let how: Vec<String> = s
            .enforcement
            .iter()
            .map(|e| format!("{}: {}", e.by, e.control))
            .collect();
        list(&mut o, "How pivault's controls hold", "", &how);
        o.push_str("</div>\n");
    }
    for v in &r.vaults {
        vault(&mut o, v);
    }
    if let Some(p) = &r.proxy {
        proxy(&mut o, p);
    }
    o.push_str("<h2 id=\"duties\">What remains the firm's duty</h2>\n<table>\n<tr><th>Topic</th><th>Regulation</th><th>The firm must</th><th>pivault helps with</th></tr>\n");
    for d in &r.firm_duties {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.topic),
            esc(&d.regulation),
            esc(&d.what),
            d.pivault_help
                .as_deref()
                .map_or_else(|| "&ndash;".to_string(), esc)
        );
    }
    o.push_str("</table>\n");
    let _ = writeln!(
        o,
        "<footer>pivault {} &middot; report schema {} &middot; the same data as JSON: <code>pivault compliance report --format json</code></footer>\n</body>\n</html>",
        esc(&r.pivault_version),
        r.schema
    );
    o
}

fn list(o: &mut String, title: &str, class: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h3>{title}</h3>\n<ul>");
    for i in items {
        if class.is_empty() {
            let _ = writeln!(o, "<li>{}</li>", esc(i));
        } else {
            let _ = writeln!(o, "<li class=\"{class}\">{}</li>", esc(i));
        }
    }
    o.push_str("</ul>\n");
}

fn vault(o: &mut String, v: &VaultEvidence) {
    let _ = writeln!(
        o,
        "<h2>Vault <span class=\"mono\">{}</span></h2>",
        esc(&v.path)
    );
    o.push_str("<table class=\"meta\">\n");
    let keys = DataKey::list(&v.data_keys);
    let audit = match &v.audit.problem {
        None => format!(
            "<span class=\"ok\">verified intact</span>: {} records, {} signed",
            v.audit.records, v.audit.signed
        ),
        Some(p) => format!(
            "<span class=\"bad\">FAILS VERIFICATION at record {}</span>: {}",
            p.record,
            esc(&p.what)
        ),
    };
    for (k, val) in [
        ("Cipher suite", esc(&v.suite)),
        (
            "Vault ID",
            format!("<span class=\"mono\">{}</span>", esc(&v.vault_id)),
        ),
        ("Keystore format", v.keystore_format.to_string()),
        ("Created", esc(&v.created)),
        ("Data key versions", esc(&keys)),
        (
            "Current data key since",
            format!(
                "{} ({} days){}",
                esc(&v.data_key_since),
                v.data_key_age_days,
                if v.rotation_stale {
                    " <span class=\"bad\">stale: rotate it</span>"
                } else {
                    ""
                }
            ),
        ),
        ("Audit log", audit),
        (
            "Audit verifying key",
            v.audit.key_fingerprint.as_ref().map_or_else(
                || "none yet".to_string(),
                |f| format!("<span class=\"mono\">sha256:{}</span>", esc(f)),
            ),
        ),
        (
            "In the period",
            format!(
                "{} unseals, {} failed unseals",
                v.unseals_in_period, v.failed_unseals_in_period
            ),
        ),
    ] {
        let _ = writeln!(o, "<tr><td>{k}</td><td>{val}</td></tr>");
    }
    o.push_str("</table>\n<h3>Key slots</h3>\n<table>\n<tr><th>Slot</th><th>Kind</th><th>KDF</th><th>Users</th><th>Expires</th><th>Max failures</th><th>Locked</th><th>Last use</th></tr>\n");
    for s in &v.slots {
        let kdf = match (s.kdf.m_kib, s.kdf.t, s.kdf.p) {
            (Some(m), Some(t), Some(p)) => format!(
                "argon2id m={m} KiB t={t} p={p}{}",
                if s.kdf.test_only {
                    " <span class=\"badge finding\">TEST-ONLY</span>"
                } else {
                    ""
                }
            ),
            _ => esc(s.kdf.algorithm.as_str()),
        };
        let kdf = if s.weak_passphrase {
            format!("{kdf} <span class=\"badge finding\">WEAK PASSPHRASE</span>")
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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.id,
            esc(s.kind.as_str()),
            kdf,
            users,
            opt(&s.policy.expires),
            if s.policy.expired { " <span class=\"bad\">(expired)</span>" } else { "" },
            opt(&s.policy.max_failures),
            if s.locked { format!("<span class=\"bad\">yes ({} failures)</span>", s.failures) } else { "no".to_string() },
            opt(&s.last_use)
        );
    }
    o.push_str("</table>\n");
    if !v.key_history.is_empty() {
        o.push_str("<h3>Key history (audit log)</h3>\n<table>\n<tr><th>Record</th><th>Time</th><th>Event</th><th>User</th><th>What</th></tr>\n");
        for e in &v.key_history {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.seq,
                esc(&e.time),
                esc(&e.event),
                esc(&e.user),
                esc(&e.summary)
            );
        }
        o.push_str("</table>\n");
    }
    if !v.failed_unseals.is_empty() {
        o.push_str("<h3>Failed unseals in the period</h3>\n<table>\n<tr><th>Record</th><th>Time</th><th>User</th><th>Host</th><th>Slots tried</th><th>Reason</th></tr>\n");
        for f in &v.failed_unseals {
            let tried: Vec<String> = f.tried.iter().map(u64::to_string).collect();
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.seq,
                esc(&f.time),
                esc(&f.user),
                esc(&f.host),
                tried.join(", "),
                opt(&f.reason)
            );
        }
        o.push_str("</table>\n");
    }
}

fn proxy(o: &mut String, p: &ProxyEvidence) {
    let _ = writeln!(
        o,
        "<h2>Gateway <span class=\"mono\">{}</span></h2>",
        esc(&p.config)
    );
    let _ = writeln!(
        o,
        "<table class=\"meta\"><tr><td>Access log</td><td>{}</td></tr><tr><td>Metrics</td><td>{}</td></tr></table>",
        opt(&p.access_log),
        opt(&p.metrics_listen)
    );
    o.push_str("<table>\n<tr><th>#</th><th>Mode</th><th>Listen</th><th>TLS</th><th>Client certificates</th><th>HSTS</th><th>Upstream / target</th></tr>\n");
    for l in &p.listeners {
        let tls = if l.tls_in {
            format!("TLS {} in", l.tls_versions.join(", "))
        } else if l.redirect_only {
            "plaintext, redirect only".to_string()
        } else {
            format!("plaintext in, TLS {} out", l.tls_versions.join(", "))
        };
        let mut cc = esc(l.client_certificates.as_str());
        if let Some(ca) = &l.client_ca {
            cc.push_str(&format!(" (CA <span class=\"mono\">{}</span>)", esc(ca)));
        }
        if !l.allow.is_empty() {
            cc.push_str(&format!("; allow {}", esc(&l.allow.join(", "))));
        }
        if !l.client_crl.is_empty() {
            cc.push_str(&format!(
                "; revocation checked (CRL <span class=\"mono\">{}</span>)",
                esc(&l.client_crl.join(", "))
            ));
        }
        let target = l.redirect_to.as_ref().or(l.upstream.as_ref());
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            l.index,
            esc(l.mode.as_str()),
            esc(&l.listen),
            esc(&tls),
            cc,
            l.hsts.map_or("&ndash;", |h| if h { "on" } else { "off" }),
            opt(&target)
        );
    }
    o.push_str("</table>\n");
    if let Some(l) = p.listeners.iter().find(|l| !l.cipher_suites.is_empty()) {
        let _ = writeln!(
            o,
            "<p>TLS cipher suites (every TLS listener): <span class=\"mono\">{}</span></p>",
            esc(&l.cipher_suites.join(", "))
        );
    }
}
