//! A real mount killed at the exact moment torture finding 1 named
//! (docs/RELIABILITY.md): after the `ftruncate(2)` that grows a file and
//! before the `pwrite(2)` of its blocks. `strace` attached to the running
//! mount kills it (SIGKILL, injected at the entry of its first `pwrite`)
//! and its trace shows the truncate came just before. Before the fix, the
//! bytes the test had fsync'd read as EIO after the remount.

mod common_fuse;

use common_fuse::*;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the mount of `f` with SIGKILL at the entry of its first `call`
/// (`pwrite64` or `ftruncate`) after `act` starts, through strace attached
/// to all its threads; asserts that the two traced calls before the kill
/// were `before` then `call`, and clears the dead mount.
fn kill_mount_at(f: &mut Fixture, before: &str, call: &str, act: impl FnOnce()) {
    let pid = f.child.as_ref().unwrap().id();
    let mut tracer = Command::new("strace")
        .args(["-f", "-p", &pid.to_string()])
        .args(["-e", "trace=ftruncate,pwrite64"])
        .args(["-e", &format!("inject={call}:signal=SIGKILL")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strace");
    // strace says "attached" for each thread before it traces anything.
    let mut lines = BufReader::new(tracer.stderr.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(first.contains("attached"), "strace did not attach: {first}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = tx.send(rest);
    });
    // Let it attach to the remaining threads.
    std::thread::sleep(Duration::from_millis(500));
    act();
    let mut child = f.child.take().unwrap();
    assert!(
        wait_for(20, || child.try_wait().map(|s| s.is_some()).unwrap_or(true)),
        "the mount was not killed"
    );
    let _ = child.wait();
    let _ = tracer.wait();
    let trace = rx.recv().unwrap();
    let calls: Vec<&String> = trace
        .iter()
        .filter(|l| l.contains("ftruncate(") || l.contains("pwrite64("))
        .collect();
    // The killed call may show on more than one thread (a request the
    // kernel sent again): what counts is the call before them.
    let killed = format!("{call}(");
    let last_other = calls.iter().rev().find(|l| !l.contains(&killed));
    assert!(
        calls.last().is_some_and(|l| l.contains(&killed))
            && last_other.is_some_and(|l| l.contains(&format!("{before}("))),
        "the kill did not land between {before} and {call}: {trace:#?}"
    );
    assert!(
        trace.iter().any(|l| l.contains("killed by SIGKILL")),
        "{trace:#?}"
    );
    f.clear_dead_mount();
}

#[test]
fn kill_between_the_growing_truncate_and_the_block_write_loses_nothing_synced() {
    if !is_root() || !have("strace") {
        skip("fuse_kill: needs root and strace (to attach to the mount and kill it at a system call)");
        return;
    }
    let mut f = Fixture::mounted();
    let synced: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(f.p("app.log"))
        .unwrap();
    log.write_all(&synced).unwrap();
    log.sync_all().unwrap();

    // The append reaches the mount at the fsync (writeback cache): it sets
    // the new length, then would write the blocks.
    kill_mount_at(&mut f, "ftruncate", "pwrite64", || {
        let _ = log.write_all(&[b'Z'; 5000]);
        let _ = log.sync_all();
    });
    drop(log);

    // fsck, offline: the file is listed as interrupted, not damaged.
    let vault = f.vault.to_str().unwrap().to_owned();
    let out = run(&["fsck", "--json", &vault]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    let interrupted = report["interrupted"].as_array().unwrap();
    assert_eq!(interrupted.len(), 1, "{report}");
    assert_eq!(interrupted[0]["path"], "app.log");
    assert_eq!(interrupted[0]["size"], 100);
    assert!(
        f.vault.join("pivault.mounted").exists(),
        "the killed mount's mark"
    );

    // The next mount undoes the write: the synced bytes read back.
    f.mount(&[]);
    assert_eq!(fs::read(f.p("app.log")).unwrap(), synced);
    // ... and the file takes appends again.
    let mut log = OpenOptions::new()
        .append(true)
        .open(f.p("app.log"))
        .unwrap();
    log.write_all(b"after").unwrap();
    drop(log);
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    assert!(
        err.contains("app.log: undid a write the last mount did not finish"),
        "{err}"
    );
    assert!(
        !f.vault.join("pivault.mounted").exists(),
        "a clean unmount clears the mark"
    );
    let out = run(&["fsck", "--json", &vault]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["interrupted"], serde_json::json!([]), "{report}");
    let out = run(&["audit", "show", &vault]);
    let audit = String::from_utf8_lossy(&out.stdout);
    assert!(audit.contains("interrupted-writes-undone"), "{audit}");
    f.mount(&[]);
    let mut want = synced.clone();
    want.extend_from_slice(b"after");
    assert_eq!(fs::read(f.p("app.log")).unwrap(), want);
}

/// `pivault fsck --repair` undoes the same state offline (for a vault whose
/// mark is gone, or that will not be mounted read-write): the state made
/// as the dead mount's last call left it, by growing the ciphertext file.
#[test]
fn fsck_repair_undoes_an_interrupted_grow() {
    let mut f = Fixture::mounted();
    fs::write(f.p("notes"), b"synced notes").unwrap();
    let host = f.host_of("notes");
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    let len = fs::metadata(&host).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&host)
        .unwrap()
        .set_len(len + 4000)
        .unwrap();
    let vault = f.vault.to_str().unwrap().to_owned();
    let out = run(&["fsck", &vault]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("INTERRUPTED notes"), "{text}");
    assert!(text.contains("pivault fsck --repair"), "{text}");
    let out = run(&["fsck", "--repair", &vault]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("UNDONE notes"), "{text}");
    assert_eq!(fs::metadata(&host).unwrap().len(), len);
    f.mount(&[]);
    assert_eq!(fs::read(f.p("notes")).unwrap(), b"synced notes");
}

/// The same for a truncation into the middle of a block: the mount writes
/// the new last block (with zeros after it in its slot), then truncates;
/// killed at the truncate, the next mount completes it, and the bytes
/// kept read back.
#[test]
fn kill_between_the_new_last_block_and_the_truncate_keeps_the_bytes_kept() {
    if !is_root() || !have("strace") {
        skip("fuse_kill: needs root and strace (to attach to the mount and kill it at a system call)");
        return;
    }
    let mut f = Fixture::mounted();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(f.p("table.db"))
        .unwrap();
    (&file).write_all(&data).unwrap();
    file.sync_all().unwrap();
    kill_mount_at(&mut f, "pwrite64", "ftruncate", || {
        let _ = file.set_len(5000);
    });
    drop(file);
    let vault = f.vault.to_str().unwrap().to_owned();
    let out = run(&["fsck", "--json", &vault]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["interrupted"][0]["size"], 5000, "{report}");
    f.mount(&[]);
    assert_eq!(fs::read(f.p("table.db")).unwrap(), &data[..5000]);
}
