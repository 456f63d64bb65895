//! The fleet merge on reports built in memory (rows, totals, staleness,
//! renderings) and on files (what `read_reports` refuses).

use super::*;
use crate::clauses::fixtures::*;
use std::path::PathBuf;

/// 2026-03-01T00:00:00Z.
const NOW: u64 = 1_772_323_200;

fn input(r: Report, generated: u64) -> Input {
    Input {
        file: PathBuf::from(format!("/reports/{}.json", r.host)),
        generated,
        report: r,
    }
}

fn weak_vault() -> VaultEvidence {
    let mut s = slot(0);
    s.kdf.test_only = true;
    vault("weak", vec![s])
}

fn stale_vault() -> VaultEvidence {
    let mut v = vault("old", vec![slot(0)]);
    v.data_key_age_days = 500;
    v.rotation_stale = true;
    v
}

fn broken_vault() -> VaultEvidence {
    let mut v = vault("tampered", vec![slot(0)]);
    v.audit.intact = false;
    v.audit.problem = Some(AuditProblem {
        record: 4,
        what: "signature does not verify".into(),
    });
    v
}

fn unsigned_vault() -> VaultEvidence {
    let mut v = vault("new", vec![slot(0)]);
    v.audit.key_fingerprint = None;
    v
}

fn open_gateway() -> ProxyEvidence {
    gateway(vec![
        https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true),
        plaintext(2, ListenerMode::Originate, "0.0.0.0:5433"),
    ])
}

#[test]
fn each_row_counts_what_its_report_flagged() {
    use ListenerMode::{Originate, Redirect};
    let safe_gateway = gateway(vec![
        https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true),
        plaintext(2, Redirect, "0.0.0.0:80"),
        plaintext(3, Originate, "127.0.0.1:5433"),
    ]);
    // (case, vaults, gateway, overall, [weak, stale, broken, unsigned, plaintext])
    type Case = (
        &'static str,
        Vec<VaultEvidence>,
        Option<ProxyEvidence>,
        Status,
        [usize; 5],
    );
    let cases: Vec<Case> = vec![
        (
            "nothing read",
            vec![],
            None,
            Status::FirmsDuty,
            [0, 0, 0, 0, 0],
        ),
        (
            "good",
            vec![good_vault()],
            None,
            Status::Met,
            [0, 0, 0, 0, 0],
        ),
        (
            "weak KDF",
            vec![weak_vault()],
            None,
            Status::Finding,
            [1, 0, 0, 0, 0],
        ),
        (
            "stale key",
            vec![stale_vault()],
            None,
            Status::Partly,
            [0, 1, 0, 0, 0],
        ),
        (
            "broken log",
            vec![broken_vault()],
            None,
            Status::Finding,
            [0, 0, 1, 0, 0],
        ),
        (
            "unsigned log",
            vec![unsigned_vault()],
            None,
            Status::Partly,
            [0, 0, 0, 1, 0],
        ),
        (
            "plaintext gateway",
            vec![good_vault()],
            Some(open_gateway()),
            Status::Finding,
            [0, 0, 0, 0, 1],
        ),
        (
            "redirect and local originate",
            vec![good_vault()],
            Some(safe_gateway),
            Status::Met,
            [0, 0, 0, 0, 0],
        ),
        (
            "all of it",
            vec![
                weak_vault(),
                stale_vault(),
                broken_vault(),
                unsigned_vault(),
            ],
            Some(open_gateway()),
            Status::Finding,
            [1, 1, 1, 1, 1],
        ),
    ];
    for (name, vaults, gw, overall, counts) in cases {
        let n = vaults.len();
        let row = machine_row(&input(report("m", NOW, vaults, gw), NOW), NOW, 7);
        assert_eq!(row.overall, overall, "{name}: {row:#?}");
        let got = [
            row.weak_kdf.len(),
            row.stale_rotations.len(),
            row.audit_broken.len(),
            row.audit_unsigned.len(),
            row.plaintext_listeners.len(),
        ];
        assert_eq!(got, counts, "{name}: {row:#?}");
        assert_eq!(row.vaults, n, "{name}");
        assert_eq!(row.sections.len(), 8, "{name}");
        assert!(!row.stale_report, "{name}");
    }
    let row = machine_row(
        &input(
            report(
                "m",
                NOW,
                vec![weak_vault(), broken_vault(), stale_vault()],
                Some(open_gateway()),
            ),
            NOW,
        ),
        NOW,
        7,
    );
    assert_eq!(row.weak_kdf, ["/v/weak slot 0"]);
    assert_eq!(row.stale_rotations, ["/v/old (500 days)"]);
    assert_eq!(
        row.audit_broken,
        ["/v/tampered: record 4: signature does not verify"]
    );
    assert_eq!(
        row.plaintext_listeners,
        ["listener 2 (originate) on 0.0.0.0:5433"]
    );
    assert_eq!(row.rotation_max_age_days, 365);
}

#[test]
fn a_report_is_stale_past_the_maximum_age() {
    let day = 86_400;
    // (report made at, max days, stale, age in days)
    for (made, max, stale, age) in [
        (NOW, 7, false, 0),
        (NOW - 7 * day, 7, false, 7),
        (NOW - 7 * day - 1, 7, true, 7),
        (NOW - 30 * day, 7, true, 30),
        (NOW - 30 * day, 30, false, 30),
        (NOW - 1, 0, true, 0),
        // A clock ahead on the machine: age 0, not stale.
        (NOW + day, 7, false, 0),
    ] {
        let row = machine_row(&input(report("m", made, vec![], None), made), NOW, max);
        assert_eq!(row.stale_report, stale, "made {made}, max {max}");
        assert_eq!(row.report_age_days, age, "made {made}");
    }
}

#[test]
fn totals_count_machines_once_each() {
    let inputs = vec![
        input(
            report("c-weak", NOW, vec![weak_vault(), weak_vault()], None),
            NOW,
        ),
        input(report("a-good", NOW, vec![good_vault()], None), NOW),
        input(
            report(
                "b-mixed",
                NOW - 10 * 86_400,
                vec![stale_vault(), unsigned_vault()],
                Some(open_gateway()),
            ),
            NOW - 10 * 86_400,
        ),
        input(
            report(
                "d-broken",
                NOW,
                vec![broken_vault(), unsigned_vault()],
                None,
            ),
            NOW,
        ),
    ];
    let f = merge(&inputs, NOW, 7).unwrap_or_else(|e| panic!("{e}"));
    let hosts: Vec<&str> = f.machines.iter().map(|m| m.host.as_str()).collect();
    assert_eq!(hosts, ["a-good", "b-mixed", "c-weak", "d-broken"]);
    let t = &f.totals;
    let want = FleetTotals {
        machines: 4,
        with_findings: 3,
        partly: 0,
        weak_kdf: 1,
        stale_rotations: 1,
        audit_unverified: 2,
        audit_broken: 1,
        audit_unsigned: 2,
        plaintext_gateways: 1,
        stale_reports: 1,
        sections: t.sections.clone(),
    };
    assert_eq!(*t, want);
    let auth = &t.sections[0];
    assert_eq!(
        (
            auth.id.as_str(),
            auth.finding,
            auth.partly,
            auth.met,
            auth.firms_duty
        ),
        ("17.04(1)", 1, 0, 3, 0)
    );
    let transit = &t.sections[2];
    assert_eq!((transit.finding, transit.firms_duty), (1, 3));
    assert_eq!(t.sections.len(), 8);
    assert_eq!(f.report, FLEET_REPORT_KIND);
    assert_eq!(f.generated, "2026-03-01T00:00:00Z");

    let md = md::render(&f);
    for want in [
        "# pivault fleet compliance report",
        "| with findings | 3 of 4 |",
        "| weak KDFs | 1 of 4 |",
        "| stale rotations | 1 of 4 | a vault whose current data key is older than 365 days",
        "| audit logs not verified | 2 of 4 | a vault audit log that fails verification (1) or has no signing key yet (2) |",
        "| gateways allowing plaintext | 1 of 4 |",
        "| stale reports | 1 of 4 | the machine's report is older than 7 days",
        "| a-good | 2026-03-01T00:00:00Z | **met by pivault** | 1 | - | - | verified | - | - |",
        "| b-mixed | 2026-02-19T00:00:00Z **STALE** | **FINDING** | 2 | - | **1** | **1 unsigned** | **1** |",
        "| d-broken | 2026-03-01T00:00:00Z | **FINDING** | 2 | - | - | **1 FAIL** | - |",
        "| 17.04(1) | Secure user authentication protocols | 1 | 0 | 3 | 0 |",
        "## c-weak",
        "- weak KDF: /v/weak slot 0, /v/weak slot 0",
    ] {
        assert!(md.contains(want), "{want} not in\n{md}");
    }
    let html = html::render(&f);
    for want in [
        "<!DOCTYPE html>",
        "<tr><td>with findings</td><td><span class=\"bad\">3</span> of 4</td>",
        "<td><a href=\"#machine-1\">a-good</a></td><td>2026-03-01T00:00:00Z</td><td><span class=\"badge met\">met by pivault</span></td>",
        "<td><a href=\"#machine-2\">b-mixed</a></td><td>2026-02-19T00:00:00Z <span class=\"badge finding\">stale</span></td>",
        "<span class=\"bad\">1 FAIL</span>",
        "<div class=\"section finding\" id=\"machine-4\">",
    ] {
        assert!(html.contains(want), "{want} not in\n{html}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&crate::render::json(&f).unwrap_or_default()).unwrap_or_default();
    assert_eq!(json["totals"]["weak_kdf"], 1);
    assert_eq!(json["machines"][0]["overall"], "met");
    assert_eq!(json["machines"][3]["sections"][3]["status"], "finding");
}

#[test]
fn html_escapes_what_the_reports_say() {
    let f = merge(
        &[input(
            report("<script>x</script>", NOW, vec![weak_vault()], None),
            NOW,
        )],
        NOW,
        7,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let html = html::render(&f);
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
    let md = md::render(&f);
    assert!(md.contains("\\<script\\>x\\</script\\>"), "{md}");
}

#[test]
fn nothing_to_merge_is_an_error() {
    assert!(matches!(merge(&[], NOW, 7), Err(Error::NoReports)));
}

/// Writes `text` as NAME in `dir`.
fn file(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    p
}

fn json_of(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

#[test]
fn read_refuses_what_cannot_be_merged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let good = json_of(&report("alpha", NOW, vec![good_vault()], None));
    let a = file(d, "a.json", &good.to_string());
    let b = file(
        d,
        "b.json",
        &json_of(&report("beta", NOW, vec![], None)).to_string(),
    );
    let mut newer = good.clone();
    newer["schema"] = 2.into();
    let mut no_host = good.clone();
    no_host.as_object_mut().map(|o| o.remove("host"));
    let mut wrong_kind = good.clone();
    wrong_kind["report"] = "something else".into();
    let mut bad_status = good.clone();
    bad_status["sections"][0]["status"] = "fine".into();
    let mut bad_time = good.clone();
    bad_time["host"] = "gamma".into();
    bad_time["generated"] = "yesterday".into();
    let fleet = crate::render::json(
        &merge(
            &read_reports(std::slice::from_ref(&a)).unwrap_or_default(),
            NOW,
            7,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_default();
    let mut upper = good.clone();
    upper["host"] = "ALPHA".into();

    // (case, files, what the message says)
    let cases: Vec<(&str, Vec<PathBuf>, &str)> = vec![
        ("garbage", vec![a.clone(), file(d, "garbage.json", "PK\u{3}\u{4} not json")], "garbage.json: not a pivault compliance report (not JSON"),
        ("a JSON array", vec![file(d, "array.json", "[1, 2]")], "not a JSON object"),
        ("another document", vec![file(d, "other.json", "{\"name\": \"x\"}")], "it has no `report` field"),
        ("wrong kind", vec![file(d, "kind.json", &wrong_kind.to_string())], "its `report` is \"something else\""),
        ("a fleet report", vec![file(d, "fleet.json", &fleet)], "it is a fleet report: merge the machines' own reports"),
        ("newer schema", vec![file(d, "newer.json", &newer.to_string())], "newer.json: report schema 2 is newer than this pivault reads (schema 1); merge with pivault"),
        ("no host", vec![file(d, "old.json", &no_host.to_string())], "old.json: the report does not name its machine"),
        ("bad status", vec![file(d, "status.json", &bad_status.to_string())], "status.json: not a pivault compliance report (a field is wrong: unknown variant `fine`"),
        ("bad time", vec![file(d, "time.json", &bad_time.to_string())], "`generated` \"yesterday\" is not a time"),
        ("missing", vec![a.clone(), d.join("missing.json")], "missing.json: cannot read the report"),
        ("duplicate", vec![a.clone(), b.clone(), a.clone()], "a.json: machine \"alpha\" is already in"),
        ("duplicate in another case", vec![a.clone(), file(d, "upper.json", &upper.to_string())], "upper.json: machine \"ALPHA\" is already in"),
    ];
    for (name, files, want) in cases {
        match read_reports(&files) {
            Ok(_) => panic!("{name}: read"),
            Err(e) => assert!(e.to_string().contains(want), "{name}: {e}"),
        }
    }
    let ok = read_reports(&[a, b]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].generated, NOW);
    assert_eq!(ok[1].report.host, "beta");
}
