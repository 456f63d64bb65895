//! ACME (`cert = "acme"`) against a real CA: Debian's `pebble` on
//! 127.0.0.1, validating HTTP-01 for real through the gateway's
//! `redirect` listener. The served certificate is checked by curl against
//! pebble's root. Pebble's API is reached through a relay the test can
//! cut, to take the CA down without losing its state. Bad `[acme]`
//! configs stop the gateway before anything is written.

mod common;
mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn have_pebble() -> bool {
    let found = Command::new("pebble")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        common::skip("pebble is not installed (apt-get install pebble): ACME tests not run");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pebble, its TLS trust (a test CA for its API), and a relay in front of
/// its API that can be switched off.
struct Pebble {
    child: Child,
    pub api_ca: PathBuf,
    pub mgmt: SocketAddr,
    pub relay: SocketAddr,
    pub up: Arc<AtomicBool>,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pebble {
    /// Starts pebble; it validates HTTP-01 on `http_port`, TLS-ALPN-01 on
    /// `tls_port`, and issues certificates valid for `validity_s`.
    fn start(dir: &Path, http_port: u16, tls_port: u16, validity_s: u64) -> Pebble {
        Pebble::start_with(dir, http_port, tls_port, validity_s, "")
    }

    /// As [`Pebble::start`], with more pebble config (`"key":value,...`).
    fn start_with(
        dir: &Path,
        http_port: u16,
        tls_port: u16,
        validity_s: u64,
        more: &str,
    ) -> Pebble {
        let pki = Pki::new(dir, "pebble-api");
        let (cert, key) = pki.leaf("pebble", "pebble", &["localhost", "127.0.0.1"], &[], false);
        let (api, mgmt) = (free_port(), free_port());
        let cfg = dir.join("pebble.json");
        std::fs::write(
            &cfg,
            format!(
                r#"{{"pebble":{{"listenAddress":"127.0.0.1:{api}","managementListenAddress":"127.0.0.1:{mgmt}","certificate":"{}","privateKey":"{}","httpPort":{http_port},"tlsPort":{tls_port},"ocspResponderURL":"",{more}"certificateValidityPeriod":{validity_s}}}}}"#,
                cert.display(),
                key.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&cfg)
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let api_addr: SocketAddr = format!("127.0.0.1:{api}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(api_addr).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let up = Arc::new(AtomicBool::new(true));
        let relay = relay(api_addr, up.clone());
        Pebble {
            child,
            api_ca: pki.ca_path("pebble-api"),
            mgmt: format!("127.0.0.1:{mgmt}").parse().unwrap(),
            relay,
            up,
        }
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.relay.port())
    }

    /// Pebble's issuing root (it makes a new one at each start).
    fn root(&self, dir: &Path) -> PathBuf {
        let p = dir.join("pebble-root.pem");
        let (rc, out, err) = curl(&[
            "--cacert",
            self.api_ca.to_str().unwrap(),
            &format!("https://127.0.0.1:{}/roots/0", self.mgmt.port()),
        ]);
        assert_eq!(rc, 0, "{err}");
        std::fs::write(&p, out).unwrap();
        p
    }
}

/// A TCP relay to `to` that refuses (closes at once) while `up` is false.
fn relay(to: SocketAddr, up: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(a) = s else { continue };
            if !up.load(Ordering::SeqCst) {
                drop(a);
                continue;
            }
            let Ok(b) = TcpStream::connect(to) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            pipe(a.try_clone().unwrap(), b.try_clone().unwrap());
            pipe(b, a);
        }
    });
    addr
}

/// A gateway config: an https listener with `cert = "acme"`, the
/// redirect listener on `http_port` (pebble's HTTP-01 port), metrics.
fn gw_config(dir: &Path, peb: &Pebble, http_port: u16, extra: &str) -> String {
    format!(
        r#"[metrics]
listen = "127.0.0.1:0"

[acme]
directory = "{}"
contact = ["mailto:ops@example.com"]
domains = ["localhost"]
storage = "{}"
ca_file = "{}"
{extra}

[[listener]]
mode = "http"
listen = "127.0.0.1:0"
upstream = "http://{}"
cert = "acme"

[[listener]]
mode = "redirect"
listen = "127.0.0.1:{http_port}"
to = "https://localhost"
"#,
        peb.directory(),
        dir.join("acme").display(),
        peb.api_ca.display(),
        http_backend()
    )
}

/// The DER of the certificate the gateway serves for localhost, trusted
/// through `root`.
fn served(addr: SocketAddr, root: &Path) -> Vec<u8> {
    let t = tls_connect(addr, client_config(root, None), "localhost").unwrap();
    t.conn.peer_certificates().unwrap()[0].to_vec()
}

/// curl https://localhost:PORT/ verifying against `root`; the body.
fn curl_verified(addr: SocketAddr, root: &Path) -> (i32, String, String) {
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        root.to_str().unwrap(),
        &format!("https://localhost:{}/", addr.port()),
    ])
}

fn metric(gw: &Gw, result: &str) -> u64 {
    let m = metrics(gw.metrics.unwrap());
    let key =
        format!("pivault_acme_renewals_total{{listener=\"127.0.0.1:0\",result=\"{result}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_metric(gw: &Gw, result: &str, at_least: u64, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if metric(gw, result) >= at_least {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn first_issue_then_renewal_at_two_thirds_of_the_lifetime_without_restart() {
    if !have_pebble() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let http_port = free_port();
    // 30 s certificates: renewed at 20 s.
    let peb = Pebble::start(dir, http_port, free_port(), 30);
    let gw = Gw::start(dir, &gw_config(dir, &peb, http_port, ""));
    let addr = gw.addrs[0];
    assert!(
        gw.wait_log("acme: certificate obtained", 60),
        "first issue: {}\npebble: {}",
        gw.log(),
        std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
    );
    let root = peb.root(dir);
    let (rc, body, err) = curl_verified(addr, &root);
    assert_eq!(
        rc,
        0,
        "curl verifies the ACME certificate: {err}\n{}",
        gw.log()
    );
    assert!(body.contains("hello from the legacy app"), "{body}");
    let first = served(addr, &root);
    assert_eq!(metric(&gw, "ok"), 1);

    // Stored privately.
    use std::os::unix::fs::PermissionsExt;
    let store = dir.join("acme");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    for f in ["account.json", "cert.pem", "key.pem"] {
        assert_eq!(mode(&store.join(f)), 0o600, "{f}");
    }
    let log = gw.log();
    assert!(!log.contains("PRIVATE KEY"), "{log}");

    // Renewal at two thirds of 30 s, served by the same process.
    assert!(
        gw.wait_log("acme: certificate renewed", 40),
        "renewal: {}",
        gw.log()
    );
    let (rc, _, err) = curl_verified(addr, &root);
    assert_eq!(rc, 0, "{err}");
    let second = served(addr, &root);
    assert_ne!(first, second, "a new certificate is served after renewal");
    assert!(metric(&gw, "ok") >= 2);
    assert_eq!(metric(&gw, "failed"), 0);
}

#[test]
fn the_ca_down_keeps_the_old_certificate_and_counts_the_failure() {
    if !have_pebble() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let http_port = free_port();
    let peb = Pebble::start(dir, http_port, free_port(), 3600);
    // Hour-long certificates; `renew_after` makes the renewal come soon.
    let gw = Gw::start(
        dir,
        &gw_config(dir, &peb, http_port, "renew_after = \"4s\""),
    );
    let addr = gw.addrs[0];
    assert!(
        gw.wait_log("acme: certificate obtained", 60),
        "{}",
        gw.log()
    );
    let root = peb.root(dir);
    let first = served(addr, &root);
    peb.up.store(false, Ordering::SeqCst);

    assert!(
        wait_metric(&gw, "failed", 1, 30),
        "the failed renewal is counted: {}",
        gw.log()
    );
    assert!(
        gw.log().contains("renewal for localhost failed")
            && gw.log().contains("keeping the current certificate"),
        "{}",
        gw.log()
    );
    let (rc, _, err) = curl_verified(addr, &root);
    assert_eq!(rc, 0, "the old certificate still serves: {err}");
    assert_eq!(served(addr, &root), first);

    // The CA back: the next attempt (back-off) renews.
    peb.up.store(true, Ordering::SeqCst);
    assert!(
        wait_metric(&gw, "ok", 2, 45),
        "renewed once the CA is back: {}",
        gw.log()
    );
    let (rc, _, err) = curl_verified(addr, &root);
    assert_eq!(rc, 0, "{err}");
    let renewed = served(addr, &root);
    assert_ne!(renewed, first);

    // A restart while the CA is down serves the stored certificate at once.
    drop(gw);
    peb.up.store(false, Ordering::SeqCst);
    let gw = Gw::start(
        dir,
        &gw_config(dir, &peb, http_port, "renew_after = \"1h\""),
    );
    assert!(
        gw.log().contains("acme: serving the stored certificate"),
        "{}",
        gw.log()
    );
    let (rc, _, err) = curl_verified(gw.addrs[0], &root);
    assert_eq!(rc, 0, "the stored certificate serves without the CA: {err}");
    assert_eq!(served(gw.addrs[0], &root), renewed);
}

#[test]
fn tls_alpn_01_is_answered_by_the_https_listener_itself() {
    if !have_pebble() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let tls_port = free_port();
    // HTTP-01 would go to a port nobody listens on: only TLS-ALPN-01 can
    // pass, and no redirect listener is needed.
    let peb = Pebble::start(dir, free_port(), tls_port, 3600);
    let toml = format!(
        r#"[acme]
directory = "{}"
domains = ["localhost"]
storage = "{}"
ca_file = "{}"
challenge = "tls-alpn-01"

[[listener]]
mode = "http"
listen = "127.0.0.1:{tls_port}"
upstream = "http://{}"
cert = "acme"
"#,
        peb.directory(),
        dir.join("acme").display(),
        peb.api_ca.display(),
        http_backend()
    );
    let gw = Gw::start(dir, &toml);
    assert!(
        gw.wait_log("acme: certificate obtained", 60),
        "{}\npebble: {}",
        gw.log(),
        std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
    );
    let root = peb.root(dir);
    let (rc, body, err) = curl_verified(gw.addrs[0], &root);
    assert_eq!(rc, 0, "{err}");
    assert!(body.contains("hello from the legacy app"), "{body}");
    // HTTP/2 still negotiated for ordinary clients.
    let resolve = format!("localhost:{tls_port}:127.0.0.1");
    let (rc, out, err) = curl(&[
        "--http2",
        "--resolve",
        &resolve,
        "--cacert",
        root.to_str().unwrap(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("https://localhost:{tls_port}/"),
    ]);
    assert_eq!((rc, out.as_str()), (0, "2"), "{err}");
}

/// An EAB key pebble knows (from its example config).
const EAB_KID: &str = "kid-1";
const EAB_HMAC: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

#[test]
fn a_ca_that_requires_external_account_binding_gets_it() {
    if !have_pebble() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let http_port = free_port();
    let peb = Pebble::start_with(
        dir,
        http_port,
        free_port(),
        3600,
        &format!(
            r#""externalAccountBindingRequired":true,"externalAccountMACKeys":{{"{EAB_KID}":"{EAB_HMAC}"}},"#
        ),
    );
    let hmac = dir.join("eab.key");
    // A wrong key first: the account is refused, the start fails, and
    // neither key is logged.
    std::fs::write(
        &hmac,
        "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH\n",
    )
    .unwrap();
    let eab = format!(
        "eab_kid = \"{EAB_KID}\"\neab_hmac_file = \"{}\"",
        hmac.display()
    );
    let (rc, err) = refused(dir, &gw_config(dir, &peb, http_port, &eab));
    assert_eq!(rc, Some(1), "{err}");
    assert!(
        err.contains("directory") && err.contains("account"),
        "{err}"
    );
    assert!(
        !err.contains("b10lLJs8") && !err.contains("zWNDZM6e"),
        "{err}"
    );
    assert!(!dir.join("acme").exists());

    std::fs::write(&hmac, format!("{EAB_HMAC}\n")).unwrap();
    let gw = Gw::start(dir, &gw_config(dir, &peb, http_port, &eab));
    assert!(
        gw.wait_log("acme: certificate obtained", 60),
        "{}",
        gw.log()
    );
    let (rc, _, err) = curl_verified(gw.addrs[0], &peb.root(dir));
    assert_eq!(rc, 0, "{err}");
    assert!(!gw.log().contains("zWNDZM6e"), "{}", gw.log());
}

/// `pivault proxy --config` that must fail: (exit code, stderr).
fn refused(dir: &Path, toml: &str) -> (Option<i32>, String) {
    let p = dir.join("gw.toml");
    std::fs::write(&p, toml).unwrap();
    let out = Command::new(bin())
        .args(["proxy", "--config"])
        .arg(&p)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bad_config(storage: &Path, directory: &str, domains: &str) -> String {
    format!(
        "[acme]\ndirectory = \"{directory}\"\ndomains = {domains}\nstorage = \"{}\"\n\n[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\ncert = \"acme\"\n\n[[listener]]\nmode = \"redirect\"\nlisten = \"127.0.0.1:0\"\nto = \"https://localhost\"\n",
        storage.display()
    )
}

#[test]
fn bad_acme_configs_stop_the_gateway_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let storage = dir.join("acme");
    let dead = format!("https://{}/dir", dead_addr());

    let (rc, err) = refused(dir, &bad_config(&storage, &dead, "[]"));
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("domains"), "{err}");

    let (rc, err) = refused(dir, &bad_config(&storage, &dead, "[\"localhost\"]"));
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("directory"), "{err}");
    assert!(!storage.exists(), "nothing written for an unreachable CA");

    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(&storage).unwrap();
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (rc, err) = refused(dir, &bad_config(&storage, &dead, "[\"localhost\"]"));
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("storage") && err.contains("0755"), "{err}");
    assert_eq!(std::fs::read_dir(&storage).unwrap().count(), 0);
    // `proxy check` says the same without contacting the CA.
    let out = Command::new(bin())
        .args(["proxy", "check", "--config"])
        .arg(dir.join("gw.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("storage") && err.contains("0755"), "{err}");

    // `cert = "acme"` without [acme], and a key beside it.
    let toml = "[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\ncert = \"acme\"\n";
    let (rc, err) = refused(dir, toml);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("cert") && err.contains("[acme]"), "{err}");
    let toml = bad_config(&storage, &dead, "[\"localhost\"]")
        .replace("cert = \"acme\"\n", "cert = \"acme\"\nkey = \"k.pem\"\n");
    let (rc, err) = refused(dir, &toml);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("key `key`"), "{err}");
}
