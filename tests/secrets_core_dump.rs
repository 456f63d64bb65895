//! Secrets under faults (issue 18 point 4): a mount daemon that holds the
//! vault's keys and is made to crash (SIGSEGV) with core dumps allowed by
//! its parent (`ulimit -c unlimited`) writes no core file, and nothing the
//! test can read afterwards holds the passphrase. pivault makes itself
//! non-dumpable and sets its own core limit to zero before it reads a
//! secret (src/sys.rs).

mod common_fuse;

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

#[test]
fn a_crashing_mount_writes_no_core_and_leaves_no_passphrase_behind() {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let mut f = Fixture::new();
    let cwd = f.tmp.path().join("cwd");
    fs::create_dir(&cwd).unwrap();
    let mut cmd = f.mount_cmd(&[]);
    cmd.current_dir(&cwd);
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
    f.mount_with(cmd);
    fs::write(f.p("note.txt"), b"written while mounted").unwrap();
    let child = f.child.as_mut().expect("a mount process");
    let pid = child.id() as i32;
    // Rust's runtime catches SIGSEGV (to report stack overflows); for a
    // signal that is not a guard-page fault it restores the default action
    // and returns, so a second SIGSEGV meets the default action: a crash
    // with a core dump, unless the process forbade one.
    let mut status = None;
    'outer: for _ in 0..5 {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSEGV) }, 0);
        for _ in 0..20 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break 'outer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let status = status.expect("the mount process ended after SIGSEGV");
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
