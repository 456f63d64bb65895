//! Real mounts of the real binary: `pivault init`, then `pivault mount` in
//! the foreground as a child process, exercised through the kernel with
//! ordinary system calls and programs. Every mount is undone by a Drop
//! guard, so a failing test never leaves a mount behind.

mod common_fuse;

use common_fuse::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn files_dirs_symlinks_fifos_and_attributes_survive_a_remount() {
    let mut f = Fixture::mounted();
    // create, write, read, append, O_TRUNC
    fs::write(f.p("a.txt"), b"hello").unwrap();
    assert_eq!(read(&f.p("a.txt")), b"hello");
    let mut a = OpenOptions::new().append(true).open(f.p("a.txt")).unwrap();
    a.write_all(b" world").unwrap();
    drop(a);
    assert_eq!(read(&f.p("a.txt")), b"hello world");
    let mut w = OpenOptions::new().write(true).open(f.p("a.txt")).unwrap();
    w.write_all(b"J").unwrap();
    drop(w);
    assert_eq!(read(&f.p("a.txt")), b"Jello world");
    fs::write(f.p("t.txt"), b"long old contents").unwrap();
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(f.p("t.txt"))
        .unwrap()
        .write_all(b"new")
        .unwrap();
    assert_eq!(read(&f.p("t.txt")), b"new");
    // holes: write past the end, then read zeros back
    let h = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(f.p("holes"))
        .unwrap();
    h.write_all_at(b"end", 100_000).unwrap();
    assert_eq!(h.metadata().unwrap().len(), 100_003);
    let mut buf = vec![1u8; 100_003];
    h.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf[..100_000].iter().all(|&b| b == 0));
    assert_eq!(&buf[100_000..], b"end");
    // truncate down and up
    h.set_len(5000).unwrap();
    h.set_len(9000).unwrap();
    let mut buf = vec![1u8; 9000];
    h.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    drop(h);
    // chmod, utimens
    fs::set_permissions(f.p("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(f.p("a.txt")).unwrap().mode() & 0o7777, 0o640);
    let t = filetime_secs(1_000_000_000);
    set_mtime(&f.p("a.txt"), t);
    assert_eq!(fs::metadata(f.p("a.txt")).unwrap().mtime(), t);
    // directories
    fs::create_dir_all(f.p("d1/d2/d3")).unwrap();
    fs::write(f.p("d1/d2/d3/deep"), b"deep").unwrap();
    assert_eq!(errno(fs::remove_dir(f.p("d1/d2"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::create_dir(f.p("d1"))), libc::EEXIST);
    fs::create_dir(f.p("gone")).unwrap();
    fs::remove_dir(f.p("gone")).unwrap();
    assert!(!f.p("gone").exists());
    // a 255-byte name (long-name scheme)
    let long = "L".repeat(255);
    fs::write(f.p(&long), b"long name").unwrap();
    assert_eq!(
        errno(fs::write(f.p(&"L".repeat(256)), b"x")),
        libc::ENAMETOOLONG
    );
    // symlinks and fifos
    std::os::unix::fs::symlink("d1/d2/d3/deep", f.p("link")).unwrap();
    assert_eq!(
        fs::read_link(f.p("link")).unwrap().as_os_str().as_bytes(),
        b"d1/d2/d3/deep"
    );
    assert_eq!(read(&f.p("link")), b"deep");
    assert_eq!(fs::symlink_metadata(f.p("link")).unwrap().len(), 13);
    let fifo = common_fuse::c(&f.p("fifo"));
    // SAFETY: a valid C path.
    cvt(unsafe { libc::mknod(fifo.as_ptr(), libc::S_IFIFO | 0o600, 0) }).unwrap();
    assert!(fs::symlink_metadata(f.p("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // unlink
    fs::write(f.p("rm-me"), b"x").unwrap();
    fs::remove_file(f.p("rm-me")).unwrap();
    assert_eq!(errno(fs::metadata(f.p("rm-me"))), libc::ENOENT);
    // readdir
    let mut names: Vec<_> = fs::read_dir(f.mnt.clone())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want = vec!["a.txt", "d1", "fifo", "holes", "link", "t.txt", &long];
    want.sort();
    assert_eq!(names, want);
    // statfs comes from the host
    let out = Command::new("df").arg(&f.mnt).output().unwrap();
    assert!(out.status.success());
    // nothing in plaintext on the host
    for e in walk(&f.vault) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !n.contains("a.txt") && !n.contains("d1") && !n.contains("LLLL"),
            "{n}"
        );
        if e.is_file() {
            let bytes = read(&e);
            assert!(!contains(&bytes, b"hello") && !contains(&bytes, b"deep"));
        }
    }
    f.remount();
    assert_eq!(read(&f.p("a.txt")), b"Jello world");
    assert_eq!(fs::metadata(f.p("a.txt")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(fs::metadata(f.p("a.txt")).unwrap().mtime(), t);
    assert_eq!(read(&f.p("d1/d2/d3/deep")), b"deep");
    assert_eq!(read(&f.p(&long)), b"long name");
    assert_eq!(read(&f.p("link")), b"deep");
    assert_eq!(fs::metadata(f.p("holes")).unwrap().len(), 9000);
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(out.status.success(), "fsck: {out:?}");
}

fn filetime_secs(s: i64) -> i64 {
    s
}

fn set_mtime(p: &Path, secs: i64) {
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    let cp = common_fuse::c(p);
    // SAFETY: a valid C path and a live array of two timespecs.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, cp.as_ptr(), times.as_ptr(), 0) }).unwrap();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sigterm_unmounts_and_exits_zero() {
    let mut f = Fixture::mounted();
    fs::write(f.p("x"), b"x").unwrap();
    let pid = f.child.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let (st, err) = f.wait_exit();
    assert!(st.success(), "exit {st}: {err}");
    assert!(!is_mountpoint(&f.mnt));
    f.mount(&[]);
    assert_eq!(read(&f.p("x")), b"x");
}

#[test]
fn daemon_returns_once_mounted_and_read_only_refuses_writes() {
    let mut f = Fixture::mounted();
    fs::write(f.p("kept"), b"data").unwrap();
    let (st, _) = f.unmount();
    assert!(st.success());
    let out = f.mount_cmd(&["--daemon", "--read-only"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(is_mountpoint(&f.mnt), "mounted when --daemon returns");
    assert_eq!(read(&f.p("kept")), b"data");
    assert_eq!(errno(fs::write(f.p("new"), b"x")), libc::EROFS);
    assert_eq!(errno(fs::write(f.p("kept"), b"x")), libc::EROFS);
    assert_eq!(errno(fs::create_dir(f.p("dir"))), libc::EROFS);
    // pivault unmount ends the daemon
    let lock = fs::read_to_string(f.vault.join("pivault.lock")).unwrap();
    let pid: i32 = lock.lines().next().unwrap().parse().unwrap();
    let out = run(&["unmount", f.mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(!is_mountpoint(&f.mnt));
    // SAFETY: kill(pid, 0) only checks whether the process exists.
    assert!(wait_for(20, || unsafe { libc::kill(pid, 0) } != 0));
    let out = run(&["unmount", f.mnt.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a mounted vault"));
}

#[test]
fn refuses_bad_mountpoints_and_a_second_mount() {
    let mut f = Fixture::new();
    let v = f.vault.to_str().unwrap().to_string();
    let missing = f.tmp.path().join("missing");
    let out = run(&["mount", &v, missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let full = f.tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("f"), b"").unwrap();
    let out = run(&["mount", &v, full.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let inside = f.vault.join("sub");
    fs::create_dir(&inside).unwrap();
    let out = run(&["mount", &v, inside.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the vault"));
    fs::remove_dir(&inside).unwrap();
    f.mount(&[]);
    let other = f.tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    let out = run(&["mount", &v, other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already mounted"),
        "{out:?}"
    );
    assert!(!is_mountpoint(&other));
    let (st, _) = f.unmount();
    assert!(st.success());
}

#[test]
fn idle_seal_unmounts_by_itself() {
    let mut f = Fixture::new();
    f.mount(&["--idle-seal", "0.05"]);
    fs::write(f.p("x"), b"x").unwrap();
    let (st, err) = f.wait_exit();
    assert!(st.success(), "{err}");
    assert!(err.contains("idle-seal"), "{err}");
    assert!(!is_mountpoint(&f.mnt));
}
