//! The systemd units in contrib/systemd/ and the service-manager protocol
//! behind them: `systemd-analyze verify` finds nothing to say about any
//! unit, the gateway unit's exposure rates "OK" or better, every page the
//! units name exists, and the gateway and the mount tell a manager
//! (`NOTIFY_SOCKET`) when they are ready, reloading and stopping. The
//! mount unit's command line is run as systemd would run it, then
//! stopped with SIGTERM as `systemctl --user stop` does.
//!
//! What is not run here: a real `systemctl --user start`, which needs a
//! user manager (systemd as PID 1 and a login session); CI machines and
//! containers have none. The unit's own ExecStart line is run instead.

mod common;
mod common_fuse;
mod proxy_common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const UNITS: [&str; 4] = [
    "pivault-proxy.service",
    "pivault-mount@.service",
    "pivault-scan.service",
    "pivault-scan.timer",
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd")
}

/// The units with `/usr/bin/pivault` pointing at the binary under test
/// (what the .deb installs there), in a fresh directory; the mount
/// template also as instance `pivault-mount@Private.service`.
fn staged_units() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for u in UNITS {
        let text = std::fs::read_to_string(units_dir().join(u)).unwrap();
        let text = text.replace("/usr/bin/pivault", common_fuse::bin());
        std::fs::write(d.path().join(u), &text).unwrap();
        if u == "pivault-mount@.service" {
            std::fs::write(d.path().join("pivault-mount@Private.service"), &text).unwrap();
        }
    }
    std::fs::create_dir(d.path().join("run")).unwrap();
    d
}

fn analyze(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        // A user unit is checked against a user manager's paths.
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn need_systemd_analyze() -> bool {
    if common_fuse::have("systemd-analyze") {
        return true;
    }
    common::skip("systemd-analyze is not installed (Debian: systemd)");
    false
}

#[test]
fn every_unit_passes_systemd_analyze_verify_without_a_word() {
    if !need_systemd_analyze() {
        return;
    }
    let d = staged_units();
    // Pages are checked in `every_page_the_units_name_is_written_by_pivault_man`
    // (they are installed by the package, not here).
    for (unit, user) in [
        ("pivault-proxy.service", false),
        ("pivault-scan.service", false),
        ("pivault-scan.timer", false),
        ("pivault-mount@Private.service", true),
    ] {
        let mut args = vec!["verify", "--man=no"];
        if user {
            args.push("--user");
        }
        args.push(unit);
        let (rc, out, err) = analyze(d.path(), &args);
        assert_eq!(rc, 0, "{unit}: {out}{err}");
        // Unknown keys and bad values are only warnings to systemd: any
        // line at all is a defect in the unit.
        assert!(
            out.trim().is_empty() && err.trim().is_empty(),
            "{unit}: {out}{err}"
        );
    }
}

#[test]
fn verify_catches_a_broken_unit() {
    if !need_systemd_analyze() {
        return;
    }
    // The check above must be able to fail: a typo in a key is reported.
    let d = staged_units();
    let p = d.path().join("pivault-scan.timer");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("OnCalendar=", "OnCalender=")).unwrap();
    let (_, out, err) = analyze(d.path(), &["verify", "--man=no", "pivault-scan.timer"]);
    assert!(format!("{out}{err}").contains("OnCalender"), "{out}{err}");
}

/// The exposure systemd rates the gateway unit (lower is better; "OK"
/// is below 5). Reported in docs/OPERATIONS.md.
#[test]
fn the_gateway_unit_is_rated_ok_or_better_by_systemd_analyze_security() {
    if !need_systemd_analyze() {
        return;
    }
    let d = staged_units();
    let (rc, out, err) = analyze(
        d.path(),
        &["security", "--offline=true", "pivault-proxy.service"],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level for pivault-proxy.service"))
        .unwrap_or_else(|| panic!("no rating in: {out}{err}"));
    let rest = line.rsplit(':').next().unwrap().trim();
    let mut words = rest.split_whitespace();
    let score: f64 = words.next().unwrap().parse().unwrap();
    let rating = words.next().unwrap();
    eprintln!("pivault-proxy.service exposure: {score} {rating}");
    assert!(
        ["OK", "SAFE", "PERFECT"].contains(&rating),
        "exposure {score} {rating}: {out}"
    );
}

#[test]
fn every_page_the_units_name_is_written_by_pivault_man() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(common_fuse::bin())
        .args(["man", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for u in UNITS {
        let text = std::fs::read_to_string(units_dir().join(u)).unwrap();
        for line in text.lines().filter(|l| l.starts_with("Documentation=")) {
            for doc in line["Documentation=".len()..].split_whitespace() {
                let page = doc
                    .strip_prefix("man:")
                    .and_then(|p| p.strip_suffix("(1)"))
                    .unwrap_or_else(|| panic!("{u}: {doc} is not a man page"));
                assert!(
                    d.path().join(format!("{page}.1")).is_file(),
                    "{u} names {doc}, which `pivault man` does not write"
                );
            }
        }
    }
}

/// A fake service manager: the datagram socket `NOTIFY_SOCKET` names.
struct Manager {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sock: UnixDatagram,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Manager {
            _dir: dir,
            path,
            sock,
        }
    }

    /// Waits up to `secs` for a message containing `line` (one of its
    /// `KEY=VALUE` lines); returns every message seen until then.
    fn wait_for(&self, line: &str, secs: u64) -> (bool, Vec<String>) {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == line);
                seen.push(msg);
                if hit {
                    return (true, seen);
                }
            }
        }
        (false, seen)
    }
}

#[test]
fn the_gateway_tells_the_manager_ready_reloading_watchdog_and_stopping() {
    let s = proxy_common::setup();
    let m = Manager::new();
    let upstream = proxy_common::http_backend();
    let mut gw = proxy_common::Gw::start_env(
        &s.dir,
        &s.http(upstream, ""),
        &[
            ("NOTIFY_SOCKET", m.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let (ready, seen) = m.wait_for("READY=1", 10);
    assert!(ready, "no READY=1: {seen:?}\n{}", gw.log());
    // Ready means serving: the listener answers at once.
    let (rc, out) = s.h2_get(gw.addrs[0], "/");
    assert_eq!((rc, out.as_str()), (0, "2 200"), "{}", gw.log());
    // The watchdog heartbeat comes at half the interval.
    let (beat, seen) = m.wait_for("WATCHDOG=1", 3);
    assert!(beat, "no WATCHDOG=1: {seen:?}");

    gw.signal("HUP");
    let (reloading, seen) = m.wait_for("RELOADING=1", 5);
    assert!(reloading, "no RELOADING=1: {seen:?}");
    let msg = seen.last().unwrap();
    assert!(
        msg.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 without MONOTONIC_USEC (systemd 253+ fails the reload): {msg}"
    );
    let (again, seen) = m.wait_for("READY=1", 5);
    assert!(again, "no READY=1 after the reload: {seen:?}");

    gw.signal("TERM");
    let (stopping, seen) = m.wait_for("STOPPING=1", 5);
    assert!(stopping, "no STOPPING=1: {seen:?}");
    assert_eq!(gw.wait_exit(40), Some(0), "{}", gw.log());
}

/// The `ExecStart=` of pivault-mount@.service with the specifiers systemd
/// fills in: `%h` home, `%i` instance, `%d` credentials directory.
/// Runs the mount unit's command under the fake manager `m` and waits
/// for READY=1; returns the process and the messages seen until then.
fn start_unit_command(argv: &[String], m: &Manager) -> (std::process::Child, Vec<String>) {
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("NOTIFY_SOCKET", &m.path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (ready, seen) = m.wait_for("READY=1", 20);
    assert!(ready, "no READY=1: {seen:?}");
    (child, seen)
}

fn mount_unit_command(home: &Path, instance: &str, creds: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(units_dir().join("pivault-mount@.service")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in pivault-mount@.service");
    line.split_whitespace()
        .map(|w| {
            w.replace("%h", home.to_str().unwrap())
                .replace("%i", instance)
                .replace("%d", creds.to_str().unwrap())
                .replace("/usr/bin/pivault", common_fuse::bin())
        })
        .collect()
}

#[test]
fn the_mount_units_command_mounts_tells_the_manager_and_stop_unmounts() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let creds = h.join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(
        creds.join("passphrase"),
        "a passphrase for this test only\n",
    )
    .unwrap();
    let vault = h.join(".local/share/pivault/Private");
    std::fs::create_dir_all(vault.parent().unwrap()).unwrap();
    let init = Command::new(common_fuse::bin())
        .args(["init", "--insecure-test-kdf", "--passphrase-file"])
        .arg(creds.join("passphrase"))
        .arg(&vault)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mnt = h.join("Private");
    std::fs::create_dir_all(&mnt).unwrap(); // the unit's ExecStartPre

    let m = Manager::new();
    let argv = mount_unit_command(h, "Private", &creds);
    let (mut child, _) = start_unit_command(&argv, &m);
    // Ready means mounted: programs started after the unit see the folder.
    assert!(common_fuse::is_mountpoint(&mnt), "READY=1 before the mount");
    std::fs::write(mnt.join("a.txt"), b"Jane Roe 078-05-1120").unwrap();

    // `systemctl --user stop` sends SIGTERM.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let (stopping, seen) = m.wait_for("STOPPING=1", 10);
    assert!(stopping, "no STOPPING=1: {seen:?}");
    assert!(
        common_fuse::wait_for(20, || child.try_wait().unwrap().is_some()),
        "the mount did not end on SIGTERM"
    );
    assert!(
        !common_fuse::is_mountpoint(&mnt),
        "still mounted after stop"
    );
    assert!(
        !mnt.join("a.txt").exists(),
        "plaintext left in the mountpoint"
    );

    // After a mount that did not end cleanly (its mark left behind), the
    // next one asks the manager for more time before its recovery sweep.
    std::fs::write(vault.join("pivault.mounted"), "1\nmounted since 0\n").unwrap();
    let m = Manager::new();
    let (mut child, seen) = start_unit_command(&argv, &m);
    let extend = seen
        .iter()
        .position(|l| l.contains("EXTEND_TIMEOUT_USEC=1800000000"));
    let ready_at = seen.iter().position(|l| l.contains("READY=1"));
    assert!(
        extend.is_some() && extend < ready_at,
        "no EXTEND_TIMEOUT_USEC before READY=1: {seen:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(common_fuse::wait_for(20, || child
        .try_wait()
        .unwrap()
        .is_some()));
    assert!(
        !vault.join("pivault.mounted").exists(),
        "a clean stop removes the mark"
    );
}
