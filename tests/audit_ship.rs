//! Audit shipping against a real rsyslog (Debian `rsyslog` with
//! `rsyslog-gnutls`) that the test starts on 127.0.0.1 with its own CA:
//! records arrive as RFC 5424 messages over TLS; rsyslog stopped and
//! started again in the middle of the work loses none (they wait in the
//! vault's log and `pivault audit ship` sends them, in order); a server
//! whose certificate the CA does not vouch for is refused and named, and
//! nothing is marked delivered.

mod common;
mod proxy_common;

use common::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One rsyslogd taking syslog over TLS on a port and writing each
/// message it gets, raw, as one line of `received`.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    /// Configured with the certificate `cert`/`key`; not started.
    fn new(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Rsyslog {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.join("rsyslog");
        std::fs::create_dir_all(d.join("work")).unwrap();
        let conf = format!(
            r#"global(workDirectory="{work}"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="{ca}"
  DefaultNetstreamDriverCertFile="{cert}"
  DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="{out}" template="raw")
"#,
            work = d.join("work").display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
            out = d.join("received").display(),
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        Rsyslog {
            dir: d,
            port,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("tls://localhost:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("pid"))
            .spawn()
            .expect("rsyslogd runs");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < end, "rsyslogd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Killed outright (no flush beyond what it already wrote).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("pid"));
    }

    /// The `seq` of every pivault message received (repeats kept), with
    /// the message, once rsyslog has written at least `want` of them.
    fn received(&self, want: usize) -> Vec<(u64, String)> {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(self.dir.join("received")).unwrap_or_default();
            let got: Vec<(u64, String)> = text
                .lines()
                .filter_map(|l| {
                    let at = l.find("seq=\"")? + 5;
                    let n = l[at..].split('"').next()?.parse().ok()?;
                    Some((n, l.to_string()))
                })
                .collect();
            if got.len() >= want || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

fn need_rsyslog() -> bool {
    let gtls = [
        "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so",
        "/usr/lib/rsyslog/lmnsd_gtls.so",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if Path::new("/usr/sbin/rsyslogd").exists() && gtls {
        return true;
    }
    skip("rsyslogd with TLS is not installed (Debian: rsyslog rsyslog-gnutls)");
    false
}

/// `pivault ARGS` shipping to `url`, trusting `ca`.
fn shipping(url: &str, ca: &Path, f: &Fixture, args: &[&OsStr]) -> Out {
    let mut c = pv();
    c.env("PIVAULT_AUDIT_REMOTE", url)
        .env("PIVAULT_AUDIT_CA", ca);
    c.args(args);
    c.arg("--passphrase-file").arg(&f.pass);
    run(&mut c)
}

fn log_seqs(f: &Fixture) -> Vec<u64> {
    std::fs::read_to_string(f.vault.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn records_reach_rsyslog_and_a_restart_in_the_middle_loses_none() {
    if !need_rsyslog() {
        return;
    }
    let f = Fixture::new();
    let pki = proxy_common::Pki::new(&f.path("pki"), "logs");
    let (cert, key) = pki.leaf("syslog", "syslog.test", &["localhost"], &[], false);
    let ca = pki.ca_path("logs");
    let mut srv = Rsyslog::new(f.tmp.path(), &cert, &key, &ca);
    srv.start();
    let url = srv.url();

    // Records written while the server runs arrive at once.
    ok(shipping(
        &url,
        &ca,
        &f,
        &[
            OsStr::new("init"),
            f.vault.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    ok(shipping(
        &url,
        &ca,
        &f,
        &[OsStr::new("fsck"), f.vault.as_os_str()],
    ));
    let n = log_seqs(&f).len();
    assert!(n >= 2, "{n} records");
    let got = srv.received(n);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, log_seqs(&f), "received in order, each once");
    // RFC 5424 with pivault's structured data, and the signed record.
    let (_, first) = &got[1];
    assert!(first.contains("[pivault@32473 seq=\"1\""), "{first}");
    assert!(
        first.contains("\"sig\":\""),
        "the signed record travels: {first}"
    );

    // The server goes away: the work goes on, the records wait.
    srv.kill();
    for _ in 0..3 {
        let out = ok(shipping(
            &url,
            &ca,
            &f,
            &[OsStr::new("fsck"), f.vault.as_os_str()],
        ));
        assert_contains(&out.stderr, "audit shipping");
        assert_contains(&out.stderr, "pivault audit ship");
    }
    let all = log_seqs(&f);
    assert_eq!(all.len(), n + 3);
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.vault.join("audit.shipped")).unwrap()).unwrap();
    assert_eq!(marker["seq"].as_u64(), Some(*seqs.last().unwrap()));

    // Back again: `audit ship` sends the backlog, in order.
    srv.start();
    let mut c = pv();
    c.env("PIVAULT_AUDIT_REMOTE", &url)
        .env("PIVAULT_AUDIT_CA", &ca)
        .args(["audit", "ship"])
        .arg(&f.vault);
    let out = ok(run(&mut c));
    assert_contains(&out.stdout, "Shipped 3 record(s)");
    let got: Vec<u64> = srv.received(all.len()).iter().map(|(s, _)| *s).collect();
    // Every record arrived; none twice here (each shipment was confirmed
    // before the marker moved).
    let mut count = BTreeMap::new();
    for s in &got {
        *count.entry(*s).or_insert(0) += 1;
    }
    assert_eq!(count.keys().copied().collect::<Vec<_>>(), all, "{got:?}");
    assert!(count.values().all(|&c| c == 1), "{got:?}");
    // Nothing left: a second shipment sends nothing.
    let out = ok(run(pv()
        .env("PIVAULT_AUDIT_REMOTE", &url)
        .env("PIVAULT_AUDIT_CA", &ca)
        .args(["audit", "ship"])
        .arg(&f.vault)));
    assert_contains(&out.stdout, "Nothing to ship");
}

#[test]
fn a_server_the_ca_does_not_vouch_for_is_refused_named_and_nothing_is_marked() {
    if !need_rsyslog() {
        return;
    }
    let f = Fixture::with_vault("aes-gcm");
    // The server shows a certificate from another CA (an impostor, or a
    // misconfiguration): its name matches, its issuer does not.
    let ours = proxy_common::Pki::new(&f.path("pki-ours"), "ours");
    let other = proxy_common::Pki::new(&f.path("pki-other"), "other");
    let (cert, key) = other.leaf("syslog", "syslog.test", &["localhost"], &[], false);
    let mut srv = Rsyslog::new(f.tmp.path(), &cert, &key, &other.ca_path("other"));
    srv.start();
    let before = snapshot(&f.vault);
    let out = run(pv()
        .env("PIVAULT_AUDIT_REMOTE", srv.url())
        .env("PIVAULT_AUDIT_CA", ours.ca_path("ours"))
        .args(["audit", "ship"])
        .arg(&f.vault));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_contains(&out.stderr, &srv.url());
    assert_contains(&out.stderr, "certificate");
    assert_contains(&out.stderr, "nothing was lost");
    assert_eq!(
        snapshot(&f.vault),
        before,
        "a refused shipment changed the vault"
    );
    assert!(
        srv.received(0).is_empty(),
        "records reached an unverified server"
    );
}

/// `pivault init` of the fixture's vault with `var` set to `value`.
fn init_with(f: &Fixture, var: &str, value: &OsStr) -> Out {
    run(pv()
        .env(var, value)
        .arg("init")
        .arg(&f.vault)
        .arg("--insecure-test-kdf")
        .arg("--passphrase-file")
        .arg(&f.pass))
}

#[test]
fn a_bad_audit_server_setting_fails_before_anything_is_done() {
    let f = Fixture::new();
    for (url, why) in [
        ("udp://localhost:514", "tls://"),
        ("tls://localhost", "no port"),
    ] {
        let out = init_with(&f, "PIVAULT_AUDIT_REMOTE", OsStr::new(url));
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_contains(&out.stderr, why);
        assert_contains(&out.stderr, "--audit-remote");
        assert!(!f.vault.exists(), "init went ahead with a bad audit server");
    }
    // A configuration file that cannot be read names itself.
    let conf = f.path("audit.toml");
    std::fs::write(&conf, "remote = 6514\n").unwrap();
    let out = init_with(&f, "PIVAULT_AUDIT_CONFIG", conf.as_os_str());
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_contains(&out.stderr, conf.to_str().unwrap());
    assert!(!f.vault.exists());
}
