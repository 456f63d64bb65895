//! Modes and groups of new entries on a real mount (pjdfstest's open/02,
//! chmod/12 and the setgid-directory rules, issue 16): a new entry gets
//! exactly the mode the kernel passes (the caller's umask is the kernel's
//! job; the daemon's own umask must not apply again), a setgid directory
//! passes its group to new entries and its setgid bit to new directories,
//! and a write by another user clears setuid and setgid bits.
//!
//! Every test here runs with umask 0 in the test process (so the kernel
//! passes the requested mode unchanged) and mounts with a strict daemon
//! umask (077), which the old behaviour leaked into new files' modes.

mod common_fuse;

use common_fuse::*;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The daemon's umask in these tests: anything it leaks shows.
const DAEMON_UMASK: u32 = 0o077;

/// A mounted vault whose daemon runs with [`DAEMON_UMASK`], with this
/// process's umask at 0 (every test of this binary wants the same, so
/// setting it process-wide is no race).
fn mounted(extra: &[&str]) -> Fixture {
    // SAFETY: umask(2) cannot fail and touches no memory.
    unsafe { libc::umask(0) };
    let mut f = Fixture::new();
    f.mount_with_umask(extra, DAEMON_UMASK);
    f
}

/// mknod(2) through the mount.
fn mknod(path: &Path, mode: u32) -> std::io::Result<()> {
    let c = c(path);
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    cvt(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

/// Prints why a root-only test did nothing, loudly enough to be seen.
fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(&format!("{test}: needs root (other users, chown)"));
    true
}

/// Runs `script` with `sh -c` as user and group 65534 (no supplementary
/// groups).
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
        .expect("run setpriv")
}

#[test]
fn new_entries_get_exactly_the_mode_the_kernel_passes() {
    let mut f = mounted(&[]);
    let created = [
        ("file-666", 0o666),
        ("file-646", 0o646),
        ("file-777", 0o777),
        ("file-4755", 0o4755),
    ];
    for (name, m) in created {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(m)
            .open(f.p(name))
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    mknod(&f.p("mknod-reg-664"), libc::S_IFREG | 0o664).expect("mknod S_IFREG");
    mknod(&f.p("fifo-666"), libc::S_IFIFO | 0o666).expect("mknod S_IFIFO");
    fs::DirBuilder::new()
        .mode(0o777)
        .create(f.p("dir-777"))
        .unwrap();
    let expect = [
        ("file-666", 0o666),
        ("file-646", 0o646),
        ("file-777", 0o777),
        ("file-4755", 0o4755),
        ("mknod-reg-664", 0o664),
        ("fifo-666", 0o666),
        ("dir-777", 0o777),
    ];
    let check = |f: &Fixture, when: &str| {
        for (name, m) in expect {
            assert_eq!(
                mode(&f.p(name)),
                m,
                "{name} {when}: the daemon's umask {DAEMON_UMASK:03o} must not apply"
            );
        }
    };
    check(&f, "as created");
    // The host entry holds it: it survives a remount.
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    f.mount_with_umask(&[], DAEMON_UMASK);
    check(&f, "after a remount");
    // And a new file is writable by its owner right away.
    fs::write(f.p("file-646"), b"x").unwrap();
    assert_eq!(fs::read(f.p("file-646")).unwrap(), b"x");
}

#[test]
fn a_setgid_directory_passes_on_its_group_and_its_setgid_bit() {
    if skip_unless_root("a_setgid_directory_passes_on_its_group_and_its_setgid_bit") {
        return;
    }
    let mut f = Fixture::new();
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: umask(2) cannot fail and touches no memory.
    unsafe { libc::umask(0) };
    // Another user creates entries too: the kernel checks the modes.
    f.mount_with_umask(&["--allow-other"], DAEMON_UMASK);
    fs::DirBuilder::new()
        .mode(0o777)
        .create(f.p("shared"))
        .unwrap();
    std::os::unix::fs::chown(f.p("shared"), None, Some(4242)).unwrap();
    fs::set_permissions(f.p("shared"), fs::Permissions::from_mode(0o2777)).unwrap();
    fs::create_dir(f.p("plain")).unwrap();
    // Made by root (group 0).
    fs::write(f.p("shared/file"), b"x").unwrap();
    fs::DirBuilder::new()
        .mode(0o755)
        .create(f.p("shared/sub"))
        .unwrap();
    mknod(&f.p("shared/fifo"), libc::S_IFIFO | 0o644).unwrap();
    std::os::unix::fs::symlink("file", f.p("shared/link")).unwrap();
    fs::write(f.p("plain/file"), b"x").unwrap();
    // Made by user and group 65534.
    let out = as_nobody(&format!(
        "touch {0}/shared/theirs && mkdir {0}/shared/their-dir",
        f.mnt.display()
    ));
    assert!(out.status.success(), "{out:?}");
    let check = |f: &Fixture, when: &str| {
        for rel in ["shared/file", "shared/sub", "shared/fifo", "shared/link"] {
            assert_eq!(owner(&f.p(rel)), (0, 4242), "{rel} {when}");
        }
        assert_eq!(
            owner(&f.p("shared/theirs")),
            (65534, 4242),
            "another user's file {when}"
        );
        assert_eq!(owner(&f.p("shared/their-dir")), (65534, 4242), "{when}");
        assert_eq!(
            mode(&f.p("shared/sub")),
            0o2755,
            "a new directory inherits the setgid bit {when}"
        );
        assert_eq!(mode(&f.p("shared/their-dir")) & 0o2000, 0o2000, "{when}");
        assert_eq!(mode(&f.p("shared/file")) & 0o2000, 0, "{when}");
        // Outside a setgid directory the caller's group applies.
        assert_eq!(owner(&f.p("plain/file")), (0, 0), "{when}");
        assert_eq!(mode(&f.p("plain")) & 0o2000, 0, "{when}");
    };
    check(&f, "as created");
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    f.mount_with_umask(&["--allow-other"], DAEMON_UMASK);
    check(&f, "after a remount");
}

#[test]
fn a_write_by_another_user_clears_setuid_and_setgid() {
    if skip_unless_root("a_write_by_another_user_clears_setuid_and_setgid") {
        return;
    }
    let mut f = Fixture::new();
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: umask(2) cannot fail and touches no memory.
    unsafe { libc::umask(0) };
    f.mount_with_umask(&["--allow-other"], DAEMON_UMASK);
    for (name, special) in [("suid", 0o4777), ("sgid", 0o2777), ("both", 0o6777)] {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(special)
            .open(f.p(name))
            .unwrap();
        assert_eq!(mode(&f.p(name)), special, "{name} as created");
        let out = as_nobody(&format!("printf x >> {}", f.p(name).display()));
        assert!(
            out.status.success(),
            "{name}: mode {special:o} lets anyone write: {out:?}"
        );
        assert_eq!(
            mode(&f.p(name)),
            0o777,
            "{name}: another user's write clears setuid and setgid"
        );
        assert_eq!(fs::read(f.p(name)).unwrap(), b"x");
    }
}

#[test]
fn another_users_new_entries_keep_their_setuid_and_setgid_bits() {
    if skip_unless_root("another_users_new_entries_keep_their_setuid_and_setgid_bits") {
        return;
    }
    if !have("perl") {
        skip("another_users_new_entries_keep_their_setuid_and_setgid_bits: no perl to create with an exact mode");
        return;
    }
    // A root daemon gives each new entry to its caller with chown, which
    // clears setuid and setgid bits on the host: they must be set again.
    let mut f = Fixture::new();
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    f.mount_with_umask(&["--allow-other"], DAEMON_UMASK);
    fs::DirBuilder::new()
        .mode(0o777)
        .create(f.p("theirs"))
        .unwrap();
    fs::set_permissions(f.p("theirs"), fs::Permissions::from_mode(0o777)).unwrap();
    let script = format!(
        "perl -MFcntl -MPOSIX -e 'umask 0; \
         sysopen(my $f, \"{0}/file\", O_CREAT|O_EXCL|O_WRONLY, 06755) or die \"file: $!\"; \
         POSIX::mkfifo(\"{0}/fifo\", 04644) or die \"fifo: $!\"'",
        f.p("theirs").display()
    );
    let out = as_nobody(&script);
    assert!(out.status.success(), "{out:?}");
    let check = |f: &Fixture, when: &str| {
        assert_eq!(owner(&f.p("theirs/file")), (65534, 65534), "{when}");
        assert_eq!(mode(&f.p("theirs/file")), 0o6755, "file {when}");
        assert_eq!(owner(&f.p("theirs/fifo")), (65534, 65534), "{when}");
        assert_eq!(mode(&f.p("theirs/fifo")), 0o4644, "fifo {when}");
    };
    check(&f, "as created");
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    f.mount_with_umask(&["--allow-other"], DAEMON_UMASK);
    check(&f, "after a remount");
}
