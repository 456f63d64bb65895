//! Secrets under faults (issue 18 point 4): each long-running process
//! that holds keys (a mount daemon with the vault's keys; the gateway with
//! a TLS key sealed in a vault) is made to crash (SIGSEGV) with core dumps
//! allowed by its parent (`ulimit -c unlimited`), writes no core file, and
//! nothing the test can read afterwards holds the passphrase or the key.
//! pivault makes itself non-dumpable and sets its own core limit to zero
//! before it reads a secret (src/sys.rs).

mod common_fuse;
mod proxy_common;

use common_fuse::*;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::time::Duration;

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return hits;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => hits.extend(files_containing(&p, needle)),
            Ok(t)
                if t.is_file()
                    && fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) =>
            {
                hits.push(p.display().to_string());
            }
            _ => {}
        }
    }
    hits
}

/// Allows core dumps of any size in the child, as `ulimit -c unlimited`
/// in its shell would.
fn allow_cores(cmd: &mut std::process::Command) {
    // SAFETY: setrlimit(2) is async-signal-safe and touches no Rust state.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
}

/// Sends SIGSEGV until `child` ends (Rust's runtime handles the first one
/// of a signal that is not a guard-page fault by restoring the default
/// action); returns how it ended.
fn crash(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    for _ in 0..5 {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSEGV) }, 0);
        for _ in 0..20 {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the process did not end after SIGSEGV");
}

#[test]
fn a_crashing_gateway_with_a_sealed_key_writes_no_core_and_leaves_no_secret_behind() {
    use std::io::BufRead;
    const GW_PASS: &str = "gateway passphrase for the crash test";
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let pki = proxy_common::Pki::new(dir, "srv");
    let (cert, key) = pki.leaf("gw", "gw", &["localhost"], &[], false);
    // A line from the middle of the key's PEM: the key's own bytes.
    let key_pem = fs::read_to_string(&key).unwrap();
    let key_line = key_pem
        .lines()
        .find(|l| l.len() >= 40 && !l.starts_with("-----"))
        .unwrap()
        .to_string();
    let vault = dir.join("vault");
    let pv = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .env("PIVAULT_PASSPHRASE", GW_PASS)
            .env_remove("PIVAULT_PASSPHRASE_FILE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    pv(&[
        "init".as_ref(),
        vault.as_os_str(),
        "--insecure-test-kdf".as_ref(),
    ]);
    pv(&[
        "cert".as_ref(),
        "import".as_ref(),
        vault.as_os_str(),
        "gw".as_ref(),
        key.as_os_str(),
    ]);
    fs::remove_file(&key).unwrap();
    let backend = proxy_common::http_backend();
    let config = dir.join("gw.toml");
    fs::write(
        &config,
        format!(
            "[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{backend}\"\ncert = \"{}\"\nkey = \"sealed:{}:gw\"\n",
            cert.display(),
            vault.display()
        ),
    )
    .unwrap();
    let cwd = dir.join("cwd");
    fs::create_dir(&cwd).unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["proxy", "--config"])
        .arg(&config)
        .current_dir(&cwd)
        .env("PIVAULT_PASSPHRASE", GW_PASS)
        .env("PIVAULT_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    allow_cores(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let mut log = Vec::new();
    for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
        let serving = line.starts_with("pivault proxy:") && line.contains(" listener ");
        log.push(line);
        if serving {
            break;
        }
    }
    assert!(
        log.iter().any(|l| l.contains(" listener ")),
        "the gateway did not start: {log:#?}"
    );
    let status = crash(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(!status.core_dumped(), "the kernel reports a core dump");
    let cores: Vec<_> = fs::read_dir(&cwd).unwrap().flatten().collect();
    assert!(cores.is_empty(), "core files: {cores:?}");
    for needle in [GW_PASS, key_line.as_str()] {
        let hits = files_containing(dir, needle.as_bytes());
        assert!(hits.is_empty(), "{needle:?} is in {hits:?}");
        assert!(
            !log.iter().any(|l| l.contains(needle)),
            "{needle:?} is in the gateway's log"
        );
    }
}

#[test]
fn a_crashing_mount_writes_no_core_and_leaves_no_passphrase_behind() {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let mut f = Fixture::new();
    let cwd = f.tmp.path().join("cwd");
    fs::create_dir(&cwd).unwrap();
    let mut cmd = f.mount_cmd(&[]);
    cmd.current_dir(&cwd);
    allow_cores(&mut cmd);
    f.mount_with(cmd);
    fs::write(f.p("note.txt"), b"written while mounted").unwrap();
    let child = f.child.as_mut().expect("a mount process");
    let status = crash(child);

    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(!status.core_dumped(), "the kernel reports a core dump");
    let _ = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(&f.mnt)
        .status();
    f.child = None;
    let cores: Vec<_> = fs::read_dir(&cwd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(cores.is_empty(), "core files: {cores:?}");
    if pattern.starts_with('|') {
        eprintln!(
            "NOTE (loudly): core_pattern pipes cores to {:?}; the kernel's own report (not dumped) is what this test checked there",
            pattern.trim()
        );
    }
    let hits = files_containing(f.tmp.path(), PASS.as_bytes());
    assert!(hits.is_empty(), "the passphrase is in {hits:?}");
}
