//! POSIX file types and ownership on a real mount (the classes of
//! pjdfstest failure issue 16 names): sockets always, character and block
//! devices and chown/lchown when the mount runs as root. Each must read
//! back through stat, survive an unmount and remount, keep its name
//! encrypted on the host, and pass fsck and export.

mod common_fuse;

use common_fuse::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// mknod(2) through the mount.
fn mknod(path: &Path, mode: u32, dev: u64) -> std::io::Result<()> {
    let c = c(path);
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    cvt(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) }).map(drop)
}

/// `mode` as the kernel leaves it after this process's umask (read from
/// /proc, which changes nothing).
fn masked(mode: u32) -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap_or(0o022);
    mode & !umask
}

/// Prints why a root-only test did nothing, loudly enough to be seen.
fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(&format!("{test}: needs root (device nodes, chown)"));
    true
}

/// The host entry of `rel` is a node of the same type, under a name that
/// is not the plaintext one.
fn assert_host_node(f: &Fixture, rel: &str, is_type: fn(&fs::FileType) -> bool, rdev: u64) {
    let host = f.host_of(rel);
    let name = host.file_name().unwrap().as_bytes();
    assert!(
        !name.windows(rel.len()).any(|w| w == rel.as_bytes()),
        "host name {} shows the plaintext name {rel}",
        host.display()
    );
    let m = fs::symlink_metadata(&host).unwrap();
    assert!(
        is_type(&m.file_type()),
        "{}: {:?}",
        host.display(),
        m.file_type()
    );
    assert_eq!(m.rdev(), rdev, "host rdev of {rel}");
}

#[test]
fn sockets_are_made_by_bind_and_survive_a_remount() {
    let mut f = Fixture::mounted();
    let sock = f.p("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind inside the mount");
    // And one made by mknod(2) directly.
    mknod(&f.p("made.sock"), libc::S_IFSOCK | 0o640, 0).expect("mknod S_IFSOCK");
    for rel in ["listener.sock", "made.sock"] {
        let m = fs::symlink_metadata(f.p(rel)).unwrap();
        assert!(m.file_type().is_socket(), "{rel}: {:?}", m.file_type());
        assert_host_node(&f, rel, FileTypeExt::is_socket, 0);
    }
    assert_eq!(
        fs::symlink_metadata(f.p("made.sock")).unwrap().mode() & 0o7777,
        masked(0o640)
    );
    drop(listener);
    f.remount();
    for rel in ["listener.sock", "made.sock"] {
        assert!(fs::symlink_metadata(f.p(rel))
            .unwrap()
            .file_type()
            .is_socket());
    }
    fs::remove_file(f.p("made.sock")).unwrap();
    assert!(!f.p("made.sock").exists());
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    // fsck knows sockets; export recreates them (and fifos).
    let v = f.vault.to_str().unwrap().to_string();
    let out = run(&["fsck", &v]);
    assert!(out.status.success(), "fsck: {out:?}");
    let dest = f.tmp.path().join("out");
    let out = run(&["export", &v, dest.to_str().unwrap()]);
    assert!(out.status.success(), "export: {out:?}");
    let m = fs::symlink_metadata(dest.join("listener.sock")).unwrap();
    assert!(m.file_type().is_socket(), "{:?}", m.file_type());
}

#[test]
fn device_nodes_keep_type_and_numbers_across_a_remount() {
    if skip_unless_root("device_nodes_keep_type_and_numbers_across_a_remount") {
        return;
    }
    let mut f = Fixture::mounted();
    let null = libc::makedev(1, 3);
    let loop7 = libc::makedev(7, 7);
    // A minor above 255 and a major above 255 take the split fields of
    // the FUSE device encoding.
    let wide = libc::makedev(300, 70_000);
    mknod(&f.p("null"), libc::S_IFCHR | 0o666, null).expect("mknod char device");
    mknod(&f.p("loop7"), libc::S_IFBLK | 0o600, loop7).expect("mknod block device");
    mknod(&f.p("wide"), libc::S_IFCHR | 0o600, wide).expect("mknod char device 300,70000");
    let check = |f: &Fixture| {
        let m = fs::symlink_metadata(f.p("null")).unwrap();
        assert!(m.file_type().is_char_device(), "{:?}", m.file_type());
        assert_eq!(m.rdev(), null);
        assert_eq!(m.mode() & 0o7777, masked(0o666));
        let m = fs::symlink_metadata(f.p("loop7")).unwrap();
        assert!(m.file_type().is_block_device(), "{:?}", m.file_type());
        assert_eq!(m.rdev(), loop7);
        assert_eq!(fs::symlink_metadata(f.p("wide")).unwrap().rdev(), wide);
    };
    check(&f);
    assert_host_node(&f, "null", FileTypeExt::is_char_device, null);
    assert_host_node(&f, "loop7", FileTypeExt::is_block_device, loop7);
    f.remount();
    check(&f);
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    let v = f.vault.to_str().unwrap().to_string();
    let out = run(&["fsck", &v]);
    assert!(out.status.success(), "fsck: {out:?}");
    let dest = f.tmp.path().join("out");
    let out = run(&["export", &v, dest.to_str().unwrap()]);
    assert!(out.status.success(), "export: {out:?}");
    // Device numbers are not authenticated: export leaves devices out,
    // and says so.
    assert!(!dest.join("null").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped") && err.contains("null") && err.contains("device"),
        "{err}"
    );
}

#[test]
fn chown_and_lchown_are_kept_across_a_remount() {
    if skip_unless_root("chown_and_lchown_are_kept_across_a_remount") {
        return;
    }
    let mut f = Fixture::mounted();
    fs::write(f.p("owned"), b"x").unwrap();
    std::os::unix::fs::symlink("owned", f.p("link")).unwrap();
    std::os::unix::fs::chown(f.p("owned"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::lchown(f.p("link"), Some(4321), Some(8765)).unwrap();
    let owner = |f: &Fixture, rel: &str| {
        let m = fs::symlink_metadata(f.p(rel)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&f, "owned"), (1234, 5678));
    assert_eq!(owner(&f, "link"), (4321, 8765));
    f.remount();
    assert_eq!(owner(&f, "owned"), (1234, 5678));
    assert_eq!(owner(&f, "link"), (4321, 8765), "lchown must not follow");
    assert_eq!(fs::read(f.p("owned")).unwrap(), b"x");
}
