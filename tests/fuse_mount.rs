//! Real mounts of the real binary: `pivault init`, then `pivault mount` in
//! the foreground as a child process, exercised through the kernel with
//! ordinary system calls and programs. Every mount is undone by a Drop
//! guard, so a failing test never leaves a mount behind.

mod common_fuse;

use common_fuse::*;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
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
    // chown: as root (the daemon then runs as root too) to any owner;
    // otherwise only the user's own groups are possible
    if is_root() {
        std::os::unix::fs::chown(f.p("a.txt"), Some(1234), Some(4321)).unwrap();
        let m = fs::metadata(f.p("a.txt")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 4321));
        assert_eq!(fs::metadata(f.host_of("a.txt")).unwrap().uid(), 1234);
    } else {
        assert_eq!(
            errno(std::os::unix::fs::chown(f.p("a.txt"), Some(0), None)),
            libc::EPERM
        );
    }
    // fsync and fdatasync reach the host file
    let s = OpenOptions::new().write(true).open(f.p("a.txt")).unwrap();
    s.sync_all().unwrap();
    s.sync_data().unwrap();
    drop(s);
    // chmod, utimens
    fs::set_permissions(f.p("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(f.p("a.txt")).unwrap().mode() & 0o7777, 0o640);
    let ca = common_fuse::c(&f.p("a.txt"));
    // SAFETY: a valid C path.
    unsafe {
        cvt(libc::access(ca.as_ptr(), libc::R_OK | libc::W_OK)).unwrap();
        assert_eq!(
            errno(cvt(libc::access(ca.as_ptr(), libc::X_OK))),
            libc::EACCES
        );
    }
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
            // "d1" by equality: as a substring, a random base64 name
            // carries it about once in 150.
            !n.contains("a.txt") && n != "d1" && !n.contains("LLLL"),
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
    // `pivault unmount` returns once the mount process has ended...
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z ")
        }
    );
    // ...so the vault mounts again at once
    let out = f.mount_cmd(&["--daemon"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read(&f.p("kept")), b"data");
    let out = run(&["unmount", f.mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
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
    // Offline commands refuse to run beside the mount, and change nothing.
    let src = f.tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("new.txt"), b"new").unwrap();
    for args in [
        vec!["import", src.to_str().unwrap(), &v],
        vec!["fsck", &v],
        vec!["export", &v, f.tmp.path().join("out").to_str().unwrap()],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} ran beside the mount");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("in use"),
            "{args:?}: {out:?}"
        );
    }
    assert!(!f.p("new.txt").exists());
    assert!(!f.tmp.path().join("out").exists());
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

#[test]
fn renames_within_and_across_directories_with_noreplace_and_exchange() {
    let mut f = Fixture::mounted();
    fs::create_dir_all(f.p("src/sub")).unwrap();
    fs::create_dir(f.p("dst")).unwrap();
    fs::write(f.p("src/a"), b"A").unwrap();
    fs::write(f.p("src/b"), b"B").unwrap();
    fs::write(f.p("src/sub/inner"), b"inner").unwrap();
    std::os::unix::fs::symlink("../target-text", f.p("src/sym")).unwrap();
    let long = "n".repeat(240);
    fs::write(f.p(&format!("src/{long}")), b"long").unwrap();
    // within a directory, and across
    fs::rename(f.p("src/a"), f.p("src/a2")).unwrap();
    fs::rename(f.p("src/a2"), f.p("dst/a")).unwrap();
    assert_eq!(read(&f.p("dst/a")), b"A");
    assert_eq!(errno(fs::metadata(f.p("src/a2"))), libc::ENOENT);
    // long names move with their side files
    fs::rename(f.p(&format!("src/{long}")), f.p(&format!("dst/{long}x"))).unwrap();
    fs::rename(f.p(&format!("dst/{long}x")), f.p("dst/short")).unwrap();
    assert_eq!(read(&f.p("dst/short")), b"long");
    // symlinks keep their target
    fs::rename(f.p("src/sym"), f.p("dst/sym")).unwrap();
    assert_eq!(
        fs::read_link(f.p("dst/sym"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"../target-text"
    );
    // overwrite
    fs::rename(f.p("src/b"), f.p("dst/a")).unwrap();
    assert_eq!(read(&f.p("dst/a")), b"B");
    // RENAME_NOREPLACE
    fs::write(f.p("src/c"), b"C").unwrap();
    assert_eq!(
        errno(renameat2(
            &f.p("src/c"),
            &f.p("dst/a"),
            libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    renameat2(&f.p("src/c"), &f.p("dst/c"), libc::RENAME_NOREPLACE).unwrap();
    // RENAME_EXCHANGE of two files in different directories, and of a file
    // and a directory
    fs::write(f.p("src/x"), b"X").unwrap();
    renameat2(&f.p("src/x"), &f.p("dst/c"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(read(&f.p("src/x")), b"C");
    assert_eq!(read(&f.p("dst/c")), b"X");
    renameat2(&f.p("src/sub"), &f.p("dst/c"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(read(&f.p("dst/c/inner")), b"inner");
    assert_eq!(read(&f.p("src/sub")), b"X");
    // directories: move a tree, replace an empty directory, refuse a full one
    fs::rename(f.p("dst/c"), f.p("moved")).unwrap();
    assert_eq!(read(&f.p("moved/inner")), b"inner");
    fs::create_dir(f.p("empty")).unwrap();
    fs::rename(f.p("moved"), f.p("empty")).unwrap();
    assert_eq!(read(&f.p("empty/inner")), b"inner");
    fs::create_dir(f.p("full")).unwrap();
    fs::write(f.p("full/f"), b"").unwrap();
    assert_eq!(
        errno(fs::rename(f.p("empty"), f.p("full"))),
        libc::ENOTEMPTY
    );
    assert_eq!(errno(fs::rename(f.p("empty"), f.p("dst/a"))), libc::ENOTDIR);
    assert_eq!(errno(fs::rename(f.p("dst/a"), f.p("full"))), libc::EISDIR);
    // a renamed directory's contents can still be changed
    fs::write(f.p("empty/new"), b"new").unwrap();
    f.remount();
    assert_eq!(read(&f.p("empty/inner")), b"inner");
    assert_eq!(read(&f.p("empty/new")), b"new");
    assert_eq!(read(&f.p("dst/a")), b"B");
    assert_eq!(read(&f.p("dst/short")), b"long");
    assert_eq!(read(&f.p("src/x")), b"C");
    assert_eq!(read(&f.p("src/sub")), b"X");
    assert_eq!(
        fs::read_link(f.p("dst/sym"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"../target-text"
    );
    let (st, _) = f.unmount();
    assert!(st.success());
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(out.status.success(), "fsck after renames: {out:?}");
}

#[test]
fn hard_links_share_content_up_to_four_names() {
    let mut f = Fixture::mounted();
    fs::create_dir(f.p("d")).unwrap();
    fs::write(f.p("one"), b"shared").unwrap();
    fs::hard_link(f.p("one"), f.p("d/two")).unwrap();
    fs::hard_link(f.p("one"), f.p("three")).unwrap();
    assert_eq!(fs::metadata(f.p("one")).unwrap().nlink(), 3);
    assert_eq!(
        fs::metadata(f.p("one")).unwrap().ino(),
        fs::metadata(f.p("d/two")).unwrap().ino()
    );
    fs::write(f.p("d/two"), b"changed via two").unwrap();
    assert_eq!(read(&f.p("one")), b"changed via two");
    fs::hard_link(f.p("one"), f.p("four")).unwrap();
    assert_eq!(errno(fs::hard_link(f.p("one"), f.p("five"))), libc::EMLINK);
    fs::remove_file(f.p("one")).unwrap();
    assert_eq!(read(&f.p("three")), b"changed via two");
    fs::rename(f.p("three"), f.p("d/three")).unwrap();
    fs::hard_link(f.p("four"), f.p("five")).unwrap();
    f.remount();
    for n in ["d/two", "d/three", "four", "five"] {
        assert_eq!(read(&f.p(n)), b"changed via two", "{n}");
    }
    assert_eq!(fs::metadata(f.p("four")).unwrap().nlink(), 4);
    let (st, _) = f.unmount();
    assert!(st.success());
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(out.status.success(), "fsck after links: {out:?}");
}

fn xattr_set(p: &Path, name: &str, value: &[u8], flags: i32) -> std::io::Result<()> {
    let (cp, cn) = (common_fuse::c(p), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid C strings and a live value slice.
    cvt(unsafe {
        libc::setxattr(
            cp.as_ptr(),
            cn.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

fn xattr_get(p: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let (cp, cn) = (common_fuse::c(p), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid C strings and a writable buffer of its true length.
    let n = unsafe { libc::getxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn xattr_list(p: &Path) -> Vec<String> {
    let cp = common_fuse::c(p);
    let mut buf = vec![0u8; 65536];
    // SAFETY: a valid C string and a writable buffer of its true length.
    let n = unsafe { libc::listxattr(cp.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "listxattr: {}", std::io::Error::last_os_error());
    buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

/// Write access to the vault folder: the ciphertext of one file, with its
/// host attributes, copied over another's entry. Its contents do not open
/// under the other name, and neither do its attributes (EIO, not the
/// first file's values).
#[test]
fn ciphertext_copied_onto_another_name_serves_no_attributes() {
    let mut f = Fixture::mounted();
    fs::write(f.p("payroll"), b"Jane Roe 078-05-1120").unwrap();
    fs::write(f.p("notes"), b"nothing").unwrap();
    xattr_set(&f.p("payroll"), "user.owner", b"hr-department", 0).unwrap();
    let (from, to) = (f.host_of("payroll"), f.host_of("notes"));
    let (st, _) = f.unmount();
    assert!(st.success());
    let cp = std::process::Command::new("cp")
        .arg("--preserve=xattr")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(cp.success());
    f.mount(&[]);
    assert_eq!(errno(fs::read(f.p("notes"))), libc::EIO);
    assert_eq!(errno(xattr_get(&f.p("notes"), "user.owner")), libc::EIO);
    // The original still serves its own.
    assert_eq!(
        xattr_get(&f.p("payroll"), "user.owner").unwrap(),
        b"hr-department"
    );
}

#[test]
fn extended_attributes_are_encrypted_and_follow_the_file() {
    let mut f = Fixture::mounted();
    fs::write(f.p("doc"), b"d").unwrap();
    fs::create_dir(f.p("dir")).unwrap();
    xattr_set(&f.p("doc"), "user.classification", b"confidential-PI", 0).unwrap();
    xattr_set(&f.p("dir"), "user.owner", b"hr-department", 0).unwrap();
    assert_eq!(
        xattr_get(&f.p("doc"), "user.classification").unwrap(),
        b"confidential-PI"
    );
    assert_eq!(
        errno(xattr_set(
            &f.p("doc"),
            "user.classification",
            b"x",
            libc::XATTR_CREATE
        )),
        libc::EEXIST
    );
    assert_eq!(
        errno(xattr_set(
            &f.p("doc"),
            "user.none",
            b"x",
            libc::XATTR_REPLACE
        )),
        libc::ENODATA
    );
    assert_eq!(errno(xattr_get(&f.p("doc"), "user.none")), libc::ENODATA);
    assert_eq!(
        errno(xattr_set(&f.p("doc"), "trusted.x", b"x", 0)),
        libc::EOPNOTSUPP
    );
    xattr_set(&f.p("doc"), "user.second", b"", 0).unwrap();
    let mut names = xattr_list(&f.p("doc"));
    names.sort();
    assert_eq!(names, ["user.classification", "user.second"]);
    // the host holds neither names nor values in the clear
    let host = f.host_of("doc");
    let out = Command::new("getfattr")
        .args(["-d", "-m", "-", "--absolute-names"])
        .arg(&host)
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("classification") && !text.contains("confidential"));
    }
    // follows a rename; survives a remount
    fs::rename(f.p("doc"), f.p("dir/doc2")).unwrap();
    f.remount();
    assert_eq!(
        xattr_get(&f.p("dir/doc2"), "user.classification").unwrap(),
        b"confidential-PI"
    );
    assert_eq!(
        xattr_get(&f.p("dir"), "user.owner").unwrap(),
        b"hr-department"
    );
    let cp = common_fuse::c(&f.p("dir/doc2"));
    let cn = std::ffi::CString::new("user.second").unwrap();
    // SAFETY: valid C strings.
    cvt(unsafe { libc::removexattr(cp.as_ptr(), cn.as_ptr()) }).unwrap();
    assert_eq!(xattr_list(&f.p("dir/doc2")), ["user.classification"]);
}

#[test]
fn fallocate_locks_and_mmap() {
    let f = Fixture::mounted();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(f.p("alloc"))
        .unwrap();
    // SAFETY: a valid descriptor.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, 50_000) }).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 50_000);
    // SAFETY: a valid descriptor.
    let r = cvt(unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 90_000) });
    assert_eq!(errno(r), libc::EOPNOTSUPP);
    // flock: a second open file description conflicts
    let other = fs::File::open(f.p("alloc")).unwrap();
    // SAFETY: valid descriptors.
    unsafe {
        cvt(libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)).unwrap();
        assert_eq!(
            errno(cvt(libc::flock(
                other.as_raw_fd(),
                libc::LOCK_EX | libc::LOCK_NB
            ))),
            libc::EWOULDBLOCK
        );
        cvt(libc::flock(file.as_raw_fd(), libc::LOCK_UN)).unwrap();
        cvt(libc::flock(
            other.as_raw_fd(),
            libc::LOCK_EX | libc::LOCK_NB,
        ))
        .unwrap();
    }
    // POSIX (open file description) record locks
    let mut lk: libc::flock = unsafe { std::mem::zeroed() };
    lk.l_type = libc::F_WRLCK as i16;
    lk.l_whence = libc::SEEK_SET as i16;
    lk.l_len = 100;
    // SAFETY: valid descriptors and a live flock struct.
    unsafe {
        cvt(libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lk)).unwrap();
        let mut rd = lk;
        rd.l_type = libc::F_RDLCK as i16;
        assert_eq!(
            errno(cvt(libc::fcntl(other.as_raw_fd(), libc::F_OFD_SETLK, &rd))),
            libc::EAGAIN
        );
    }
    // mmap: write through a shared mapping, read back with read(2)
    let len = 3 * 4096 + 100;
    file.set_len(len as u64).unwrap();
    // SAFETY: mapping a file of `len` bytes we opened read-write.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` bytes long and writable.
    let bytes = unsafe { std::slice::from_raw_parts_mut(map.cast::<u8>(), len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    // SAFETY: the mapping made above.
    unsafe {
        assert_eq!(libc::msync(map, len, libc::MS_SYNC), 0);
        libc::munmap(map, len);
    }
    drop(file);
    drop(other);
    let back = read(&f.p("alloc"));
    assert_eq!(back.len(), len);
    assert!(back.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn concurrent_readers_never_see_torn_blocks() {
    let f = Fixture::mounted();
    const BLOCKS: usize = 16;
    const BS: usize = 4096;
    fs::write(f.p("shared"), vec![0u8; BLOCKS * BS]).unwrap();
    let path = f.p("shared");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // O_DIRECT sends every read and write straight to the filesystem, so
    // the test sees what the daemon serves, not the page cache.
    let open = |write: bool| {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap()
    };
    let writer = {
        let file = open(true);
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = AlignedBuf::new(BLOCKS * BS);
            let mut v = 1u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                buf.as_mut().fill(v);
                file.write_all_at(buf.as_mut(), 0).unwrap();
                v = v.wrapping_add(1).max(1);
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let file = open(false);
            std::thread::spawn(move || {
                let mut buf = AlignedBuf::new(BLOCKS * BS);
                for _ in 0..300 {
                    file.read_exact_at(buf.as_mut(), 0).unwrap();
                    for blk in buf.as_mut().chunks(BS) {
                        assert!(blk.iter().all(|&b| b == blk[0]), "torn block");
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

/// A page-aligned buffer for O_DIRECT.
struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is owned by one thread at a time.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: a non-zero size with a valid alignment.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        AlignedBuf { ptr, len }
    }
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `len` initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, 4096).unwrap();
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

#[test]
fn randomized_differential_against_a_plain_file() {
    let mut f = Fixture::mounted();
    let seed = std::env::var("PIVAULT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    eprintln!("differential seed {seed} (set PIVAULT_FUZZ_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let plain_path = f.tmp.path().join("plain");
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .unwrap()
    };
    let mut vf = open(&f.p("diff"));
    let mut pf = open(&plain_path);
    const MAX: u64 = 160 * 1024;
    for step in 0..3000 {
        match rng.below(10) {
            0..=4 => {
                let off = rng.below(MAX);
                let cap = if rng.below(4) == 0 { 70_000 } else { 9000 };
                let len = 1 + rng.below(cap) as usize;
                let data = rng.bytes(len);
                vf.write_all_at(&data, off).unwrap();
                pf.write_all_at(&data, off).unwrap();
            }
            5 => {
                let size = rng.below(MAX);
                vf.set_len(size).unwrap();
                pf.set_len(size).unwrap();
            }
            6 => {
                // reopen (the kernel cache is kept or dropped at open)
                drop(vf);
                vf = open(&f.p("diff"));
            }
            7 => {
                let n = 1 + rng.below(5000) as usize;
                let data = rng.bytes(n);
                let mut a = OpenOptions::new().append(true).open(f.p("diff")).unwrap();
                a.write_all(&data).unwrap();
                let mut b = OpenOptions::new().append(true).open(&plain_path).unwrap();
                b.write_all(&data).unwrap();
            }
            _ => {
                let off = rng.below(MAX + 4096);
                let len = rng.below(20_000) as usize;
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                let na = read_at_most(&vf, &mut a, off);
                let nb = read_at_most(&pf, &mut b, off);
                assert_eq!(na, nb, "step {step}: read length at {off}");
                assert!(a[..na] == b[..nb], "step {step}: bytes at {off}");
            }
        }
        let (sa, sb) = (vf.metadata().unwrap().len(), pf.metadata().unwrap().len());
        assert_eq!(sa, sb, "step {step}: size");
        if step % 25 == 0 {
            let mut a = Vec::new();
            let mut b = Vec::new();
            vf.seek(SeekFrom::Start(0)).unwrap();
            pf.seek(SeekFrom::Start(0)).unwrap();
            vf.read_to_end(&mut a).unwrap();
            pf.read_to_end(&mut b).unwrap();
            assert!(a == b, "step {step}: whole file differs");
        }
    }
    drop(vf);
    f.remount();
    assert!(read(&f.p("diff")) == read(&plain_path), "after remount");
}

fn read_at_most(f: &fs::File, buf: &mut [u8], off: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn sh(dir: &Path, script: &str) -> std::process::Output {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn skip_unless(program: &str) -> bool {
    if have(program) {
        return false;
    }
    eprintln!("NOTICE: {program} is not installed; skipping its part of the test");
    true
}

#[test]
fn real_programs_git_sqlite_tar_rsync() {
    let mut f = Fixture::mounted();
    let work = f.tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    // a source tree outside the mount
    let src = work.join("tree");
    for i in 0..30 {
        let d = src.join(format!("d{}", i % 5)).join(format!("e{}", i % 3));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(i * 50 + 1),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("d0/e0/f0.txt", src.join("link")).unwrap();
    if !skip_unless("git") {
        let repo = f.p("repo");
        fs::create_dir(&repo).unwrap();
        sh(
            &repo,
            "git init -q . && git config user.email t@example.com && git config user.name T \
             && cp -r ../../work/tree/. . 2>/dev/null || true",
        );
        sh(&repo, &format!("cp -a {}/. .", src.display()));
        sh(
            &repo,
            "git add -A && git commit -q -m one && echo more >> d1/e1/f1.txt && git commit -qam two \
             && git gc -q && git fsck --full --strict && test \"$(git log --oneline | wc -l)\" = 2",
        );
    }
    if !skip_unless("sqlite3") {
        let db = f.p("db");
        fs::create_dir(&db).unwrap();
        sh(
            &db,
            "sqlite3 t.db 'create table t(a integer primary key, b text); \
             with recursive c(x) as (select 1 union all select x+1 from c where x < 3000) \
             insert into t select x, hex(randomblob(100)) from c; \
             update t set b = upper(b) where a % 7 = 0; delete from t where a % 11 = 0;' \
             && test \"$(sqlite3 t.db 'pragma integrity_check')\" = ok \
             && test \"$(sqlite3 t.db 'select count(*) from t')\" = 2728",
        );
    }
    if !skip_unless("tar") {
        sh(&work, "tar -cf tree.tar tree");
        let x = f.p("untar");
        fs::create_dir(&x).unwrap();
        sh(
            &x,
            &format!(
                "tar -xf {}/tree.tar && diff -r {}/tree tree",
                work.display(),
                work.display()
            ),
        );
    }
    if !skip_unless("rsync") {
        sh(
            &work,
            &format!(
                "rsync -a tree/ {}/rsynced/ && diff -r tree {}/rsynced",
                f.mnt.display(),
                f.mnt.display()
            ),
        );
    }
    f.remount();
    if have("git") {
        sh(
            &f.p("repo"),
            "git fsck --full --strict && git status --porcelain | wc -l | grep -qx 0",
        );
    }
    if have("sqlite3") {
        sh(
            &f.p("db"),
            "test \"$(sqlite3 t.db 'pragma integrity_check')\" = ok",
        );
    }
    if have("rsync") {
        sh(&work, &format!("diff -r tree {}/rsynced", f.mnt.display()));
    }
}

#[test]
fn tampered_ciphertext_reads_fail_with_eio_and_fsck_names_it() {
    let mut f = Fixture::mounted();
    fs::write(f.p("flipped"), vec![7u8; 20_000]).unwrap();
    fs::write(f.p("cut"), vec![8u8; 3 * 4096]).unwrap();
    fs::write(f.p("swapped-a"), b"aaaa").unwrap();
    fs::write(f.p("swapped-b"), b"bbbb").unwrap();
    fs::write(f.p("intact"), b"still fine").unwrap();
    let flipped = f.host_of("flipped");
    let cut = f.host_of("cut");
    let sa = f.host_of("swapped-a");
    let sb = f.host_of("swapped-b");
    let intact = f.host_of("intact");
    // a fresh mount: nothing is in the kernel's cache
    let (st, _) = f.unmount();
    assert!(st.success());
    f.mount(&[]);
    // flip one ciphertext byte of block 2
    let mut bytes = read(&flipped);
    bytes[96 + 2 * (4096 + 28) + 100] ^= 1;
    fs::write(&flipped, &bytes).unwrap();
    // cut the file at a block boundary
    let len = 96 + 2 * (4096 + 28);
    OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len)
        .unwrap();
    // swap two files' ciphertexts
    let tmp = f.tmp.path().join("swap");
    fs::rename(&sa, &tmp).unwrap();
    fs::rename(&sb, &sa).unwrap();
    fs::rename(&tmp, &sb).unwrap();
    let mut buf = vec![0u8; 4096];
    let v = fs::File::open(f.p("flipped")).unwrap();
    v.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(
        buf,
        vec![7u8; 4096],
        "intact blocks of a damaged file still read"
    );
    assert_eq!(errno(v.read_exact_at(&mut buf, 2 * 4096)), libc::EIO);
    drop(v);
    assert_eq!(errno(fs::read(f.p("flipped"))), libc::EIO);
    assert_eq!(errno(fs::read(f.p("cut"))), libc::EIO);
    assert_eq!(errno(fs::read(f.p("swapped-a"))), libc::EIO);
    assert_eq!(errno(fs::read(f.p("swapped-b"))), libc::EIO);
    assert_eq!(read(&f.p("intact")), b"still fine");
    assert!(is_mountpoint(&f.mnt), "the mount stays up");
    fs::write(f.p("after"), b"writes still work").unwrap();
    let (st, log) = f.unmount();
    assert!(st.success());
    assert!(
        log.contains(flipped.to_str().unwrap()),
        "log names the ciphertext: {log}"
    );
    assert_eq!(
        log.matches(flipped.to_str().unwrap()).count(),
        1,
        "logged once: {log}"
    );
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    for host in [&flipped, &cut, &sa, &sb] {
        assert!(
            text.contains(host.to_str().unwrap()),
            "fsck names {}: {text}",
            host.display()
        );
    }
    assert!(!text.contains(intact.to_str().unwrap()), "{text}");
}

#[test]
fn kill_9_during_heavy_writes_then_remount() {
    let mut f = Fixture::mounted();
    fs::write(f.p("before"), b"written before the crash").unwrap();
    let mnt = f.mnt.clone();
    let writer = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
        for n in 0..1000 {
            let p = mnt.join(format!("heavy{}", n % 4));
            let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&p) else {
                return;
            };
            for _ in 0..8 {
                if file.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    let mut child = f.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    writer.join().unwrap();
    f.clear_dead_mount();
    // the lock died with the process: the vault mounts again
    f.mount(&[]);
    assert_eq!(read(&f.p("before")), b"written before the crash");
    let mut damaged = Vec::new();
    for n in 0..4 {
        let p = f.p(&format!("heavy{n}"));
        let Ok(_) = fs::metadata(&p) else { continue };
        match fs::read(&p) {
            Ok(bytes) => {
                // every block is the data written (appends of one pattern)
                for (i, b) in bytes.iter().enumerate() {
                    assert_eq!(*b, ((i % 65536) % 251) as u8, "heavy{n} byte {i}");
                }
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO));
                damaged.push(f.host_of(&format!("heavy{n}")));
            }
        }
    }
    let (st, _) = f.unmount();
    assert!(st.success());
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    for d in &damaged {
        assert!(
            text.contains(d.to_str().unwrap()),
            "fsck names {}: {text}",
            d.display()
        );
    }
    assert_eq!(out.status.success(), damaged.is_empty(), "{text}");
}

/// Runs `sh -c script` as the unprivileged user 65534.
fn as_nobody(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

#[test]
fn only_the_mounting_user_enters_unless_allow_other() {
    if !is_root() {
        eprintln!("NOTICE: not root: cannot run a command as another user; skipping");
        return;
    }
    if skip_unless("setpriv") {
        return;
    }
    let mut f = Fixture::new();
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    f.mount(&[]);
    fs::write(f.p("open"), b"readable").unwrap();
    fs::set_permissions(f.p("open"), fs::Permissions::from_mode(0o644)).unwrap();
    let cat = format!("cat {}", f.p("open").display());
    let out = as_nobody(&cat);
    assert!(!out.status.success(), "another user got in: {out:?}");
    let (st, _) = f.unmount();
    assert!(st.success());
    f.mount(&["--allow-other"]);
    let out = as_nobody(&cat);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"readable");
    // file modes still apply to the other user
    fs::write(f.p("private"), b"secret").unwrap();
    fs::set_permissions(f.p("private"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(&format!("cat {}", f.p("private").display()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = as_nobody(&format!("touch {}", f.p("new-by-nobody").display()));
    assert!(
        !out.status.success(),
        "the root directory is not writable by others"
    );
}

#[test]
fn moved_and_reordered_ciphertext_is_detected() {
    let mut f = Fixture::mounted();
    fs::create_dir(f.p("a")).unwrap();
    fs::create_dir(f.p("b")).unwrap();
    fs::write(f.p("a/moved"), b"moved file").unwrap();
    let blocks: Vec<u8> = (0..3 * 4096).map(|i| (i / 4096) as u8 + 1).collect();
    fs::write(f.p("reordered"), &blocks).unwrap();
    let moved = f.host_of("a/moved");
    let reordered = f.host_of("reordered");
    let bdir = f.host_of("b");
    let (st, _) = f.unmount();
    assert!(st.success());
    // move a ciphertext entry into another directory
    let target = bdir.join(moved.file_name().unwrap());
    fs::rename(&moved, &target).unwrap();
    // swap blocks 0 and 1 of a file
    let mut ct = read(&reordered);
    let cb = 4096 + 28;
    let (b0, b1) = (96..96 + cb, 96 + cb..96 + 2 * cb);
    let first = ct[b0.clone()].to_vec();
    let second = ct[b1.clone()].to_vec();
    ct[b0].copy_from_slice(&second);
    ct[b1].copy_from_slice(&first);
    fs::write(&reordered, &ct).unwrap();
    f.mount(&[]);
    assert_eq!(errno(fs::read(f.p("reordered"))), libc::EIO);
    let names: Vec<_> = fs::read_dir(f.p("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "a moved name is not shown: {names:?}");
    assert_eq!(errno(fs::metadata(f.p("a/moved"))), libc::ENOENT);
    let (st, log) = f.unmount();
    assert!(st.success());
    assert!(log.contains(target.to_str().unwrap()), "{log}");
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(target.to_str().unwrap()), "{text}");
    assert!(text.contains(reordered.to_str().unwrap()), "{text}");
}

/// Names read from an open directory stream until its end.
fn names_of(d: *mut libc::DIR) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        // SAFETY: `d` is an open directory stream.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) };
        out.push(name.to_string_lossy().into_owned());
    }
    out.sort();
    out
}

#[test]
fn rewinddir_sees_changes_made_after_opendir() {
    let f = Fixture::mounted();
    fs::write(f.p("first"), b"").unwrap();
    let cp = common_fuse::c(&f.mnt);
    // SAFETY: a valid C path; the stream is closed below.
    let d = unsafe { libc::opendir(cp.as_ptr()) };
    assert!(!d.is_null());
    assert_eq!(names_of(d), [".", "..", "first"]);
    fs::write(f.p("second"), b"").unwrap();
    fs::remove_file(f.p("first")).unwrap();
    // SAFETY: the stream opened above.
    unsafe { libc::rewinddir(d) };
    assert_eq!(names_of(d), [".", "..", "second"]);
    // SAFETY: the stream opened above, closed once.
    unsafe { libc::closedir(d) };
}

#[test]
fn mount_unmount_and_idle_seal_are_in_the_signed_audit_log() {
    let mut f = Fixture::new();
    f.mount(&[]);
    fs::write(f.p("x"), b"x").unwrap();
    let (st, _) = f.unmount();
    assert!(st.success());
    f.mount(&["--idle-seal", "0.05"]);
    let (st, _) = f.wait_exit();
    assert!(st.success());
    let v = f.vault.to_str().unwrap();
    let out = run(&["audit", "show", v, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["event"].as_str().map(str::to_string))
        .collect();
    let pos = |k: &str| kinds.iter().position(|e| e == k);
    let (m, u, i) = (pos("mount"), pos("unmount"), pos("idle-seal"));
    assert!(m.is_some() && u.is_some() && i.is_some(), "{kinds:?}");
    assert!(m < u && u < i, "{kinds:?}");
    let out = run(&["audit", "verify", v]);
    assert!(out.status.success(), "{out:?}");
}

/// The data-key version in a content file's header (FORMAT.md §6.1).
fn key_version(host: &std::path::Path) -> u32 {
    let b = fs::read(host).unwrap();
    u32::from_be_bytes(b[8..12].try_into().unwrap())
}

#[test]
fn a_rotation_while_mounted_is_used_for_new_files() {
    let mut f = Fixture::new();
    f.mount(&[]);
    fs::write(f.p("before"), b"old key").unwrap();
    let before = f.host_of("before");
    let v = f.vault.to_str().unwrap().to_string();
    let out = run(&["keys", "rotate", &v]);
    assert!(out.status.success(), "{out:?}");
    // The mount looks at the keystore four times a second.
    let mut n = 0;
    let taken_in = wait_for(10, || {
        n += 1;
        let name = format!("after-{n}");
        fs::write(f.p(&name), b"new key").unwrap();
        key_version(&f.host_of(&name)) == 2
    });
    assert!(taken_in, "new files still use data-key version 1");
    assert_eq!(key_version(&before), 1, "old files keep their version");
    assert_eq!(read(&f.p("before")), b"old key");
    let (st, _) = f.unmount();
    assert!(st.success());
    let out = run(&["fsck", &v]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn older_keystore_put_back_while_mounted_is_refused_and_the_newer_keyring_kept() {
    // The attacker can write the vault folder and kept a copy of the
    // keystore from before a rotation; while the vault is mounted they put
    // it back. The copy is genuine (its MAC checks), so only its age gives
    // it away: its keyring lacks data-key version 2, which the mount holds.
    let mut f = Fixture::new();
    let ks = f.vault.join("pivault.keystore");
    let before_rotation = fs::read(&ks).unwrap();
    f.mount(&[]);
    let v = f.vault.to_str().unwrap().to_string();
    let out = run(&["keys", "rotate", &v]);
    assert!(out.status.success(), "{out:?}");
    let mut n = 0;
    assert!(
        wait_for(10, || {
            n += 1;
            let name = format!("probe-{n}");
            fs::write(f.p(&name), b"x").unwrap();
            key_version(&f.host_of(&name)) == 2
        }),
        "the rotation was not taken in"
    );
    fs::write(f.p("under-v2"), b"written under version 2").unwrap();
    assert_eq!(key_version(&f.host_of("under-v2")), 2);
    let rotated = fs::read(&ks).unwrap();

    // Put back atomically, as a careful attacker would.
    let tmp = f.vault.join(".old-keystore");
    fs::write(&tmp, &before_rotation).unwrap();
    fs::rename(&tmp, &ks).unwrap();
    let log = f.vault.join("audit.log");
    let refused = |l: &str| l.contains("\"event\":\"keystore-rollback-refused\"");
    assert!(
        wait_for(10, || fs::read_to_string(&log)
            .unwrap()
            .lines()
            .any(refused)),
        "no audit record of the refusal"
    );
    // The mount kept version 2: the file under it still opens, and new
    // files still use it.
    assert_eq!(read(&f.p("under-v2")), b"written under version 2");
    fs::write(f.p("after"), b"after the rollback").unwrap();
    assert_eq!(
        key_version(&f.host_of("after")),
        2,
        "the mount went back to version 1"
    );
    assert_eq!(read(&f.p("after")), b"after the rollback");
    let (st, stderr) = f.unmount();
    assert!(st.success(), "{stderr}");
    assert!(
        stderr.contains("ERROR") && stderr.contains("older than the one in use"),
        "no error-level log: {stderr}"
    );
    assert!(stderr.contains("lacks data-key version(s) 2"), "{stderr}");
    // The record is signed, failed, names the versions, and the log verifies.
    let text = fs::read_to_string(&log).unwrap();
    let rec: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| refused(l)).unwrap()).unwrap();
    assert_eq!(rec["ok"], false);
    assert!(rec["sig"].is_string(), "{rec}");
    assert!(
        rec["reason"].as_str().unwrap().contains("version(s) 2"),
        "{rec}"
    );
    // The rotation handed the log to a new signing key; the keystore put
    // back does not know it, so the log's later records do not verify
    // under it, and verify says why.
    let out = run(&["audit", "verify", &v]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the keystore is older than the log"),
        "{out:?}"
    );
    // Put the newer keystore back: the log verifies, and everything opens
    // with the vault alone.
    fs::write(&ks, &rotated).unwrap();
    let out = run(&["audit", "verify", &v]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["fsck", &v]);
    assert!(out.status.success(), "{out:?}");
}

/// The host file system reuses a freed inode number for the next new file
/// while the kernel may still hold the deleted file's inode (its size and
/// cached pages). A new file must never show what another file held: one
/// thread keeps replacing a file by rename (freeing an inode each time),
/// another keeps creating, writing, checking and deleting a fresh file.
/// (Found by the kill -9 torture, docs/RELIABILITY.md: a new file began
/// with another's bytes.)
#[test]
fn a_new_file_never_shows_a_deleted_files_size_or_bytes() {
    let f = Fixture::mounted();
    let mnt = f.mnt.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (m2, s2) = (mnt.clone(), stop.clone());
    let churn = std::thread::spawn(move || {
        let mut i = 0u64;
        // The replaced file stays open a while (a reader of the old
        // version), so the kernel keeps its inode after the host freed
        // its number.
        let mut held = Vec::new();
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let tmp = m2.join("doc.tmp");
            let mut t = fs::File::create(&tmp).unwrap();
            t.write_all(&vec![b'x'; 3000 + (i % 5000) as usize])
                .unwrap();
            t.sync_all().unwrap();
            drop(t);
            if let Ok(old) = fs::File::open(m2.join("doc.txt")) {
                held.push(old);
            }
            fs::rename(&tmp, m2.join("doc.txt")).unwrap();
            if held.len() > 3 {
                held.remove(0);
            }
            i += 1;
        }
    });
    let mut bad = None;
    for n in 0..3000 {
        let p = mnt.join(format!("new{n}"));
        let mut fh = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&p)
            .unwrap();
        let size = fh.metadata().unwrap().len();
        fh.write_all(b"fresh").unwrap();
        let mut got = vec![0u8; 100];
        let k = fh.read_at(&mut got, 0).unwrap();
        got.truncate(k);
        drop(fh);
        fs::remove_file(&p).unwrap();
        if size != 0 || got != b"fresh" {
            bad = Some((n, size, got.iter().take(16).copied().collect::<Vec<_>>()));
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        bad.is_none(),
        "a new file showed another file's size or bytes: (iteration, size at create, first bytes) = {bad:?}"
    );
}
