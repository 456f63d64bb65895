//! A vault directory written by an attacker (a synced or shared copy)
//! must not steer pivault's own I/O outside it: entries planted where
//! pivault keeps its lock, audit log or keystore are refused with a
//! message naming them, and whatever they point at is left byte for byte;
//! a host entry swapped for a symlink while mounted does not carry a
//! chmod or utimes of its plaintext file to the symlink's target.

mod common;
mod common_fuse;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file outside the vault with contents an attack would damage: no
/// trailing newline, so an audit append's torn-line repair would cut it.
fn victim(f: &Fixture) -> (PathBuf, Vec<u8>) {
    let p = f.path("thesis.docx");
    let bytes = b"chapter one\nchapter two, half written".to_vec();
    fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

/// Replaces `name` in the vault by a symlink to `target`.
fn plant_symlink(vault: &Path, name: &str, target: &Path) {
    let at = vault.join(name);
    let _ = fs::remove_file(&at);
    std::os::unix::fs::symlink(target, &at).unwrap();
}

#[test]
fn planted_lock_symlink_does_not_truncate_outside_file() {
    let f = Fixture::with_vault("aes-gcm");
    let (outside, bytes) = victim(&f);
    plant_symlink(&f.vault, "pivault.lock", &outside);
    let out = failed(f.fsck());
    assert_contains(&out.stderr, "pivault.lock");
    assert_contains(&out.stderr, "symbolic link");
    assert_contains(&out.stderr, "remove it");
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "the outside file changed"
    );
    // Removing the planted entry, as the message says, is the way back.
    fs::remove_file(f.vault.join("pivault.lock")).unwrap();
    ok(f.fsck());
    assert_eq!(fs::read(&outside).unwrap(), bytes);
}

#[test]
fn planted_lock_fifo_does_not_hang_fsck() {
    let f = Fixture::with_vault("aes-gcm");
    let _ = fs::remove_file(f.vault.join("pivault.lock"));
    mkfifo(&f.vault.join("pivault.lock"), 0o600);
    let start = Instant::now();
    let out = failed(f.fsck());
    assert!(start.elapsed() < Duration::from_secs(60), "{out:?}");
    assert_contains(&out.stderr, "pivault.lock");
    assert_contains(&out.stderr, "named pipe");
}

#[test]
fn planted_audit_log_symlink_is_not_appended_to_or_cut_by_unseals() {
    let f = Fixture::with_vault("aes-gcm");
    let (outside, bytes) = victim(&f);
    plant_symlink(&f.vault, "audit.log", &outside);
    // A failed unseal writes an unsigned record; a successful one a
    // signed record: neither may reach the outside file.
    let wrong = pass_file(f.tmp.path(), "wrong.txt", "not the passphrase");
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&wrong)));
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "after a failed unseal: {out:?}"
    );
    let out = f.fsck();
    assert_contains(&out.stderr, "audit.log");
    assert_contains(&out.stderr, "symbolic link");
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "after an unseal: {out:?}"
    );
    let out = run(pv().args(["audit", "show"]).arg(&f.vault));
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "after audit show: {out:?}"
    );
    assert!(
        !out.stdout.contains("chapter"),
        "audit show printed the outside file: {out:?}"
    );
}

#[test]
fn planted_keystore_symlink_is_not_read() {
    let f = Fixture::with_vault("aes-gcm");
    // The real keystore moved out, a link to it planted: pivault must
    // not read its keystore from wherever a link points.
    let moved = f.path("elsewhere.keystore");
    fs::rename(f.keystore(), &moved).unwrap();
    std::os::unix::fs::symlink(&moved, f.keystore()).unwrap();
    let out = failed(f.fsck());
    assert_contains(&out.stderr, "pivault.keystore");
    assert_contains(&out.stderr, "symbolic link");
}

#[test]
fn swapped_in_host_symlink_does_not_carry_chmod_or_utimes_outside() {
    let f = common_fuse::Fixture::mounted();
    let plain = f.p("a.txt");
    fs::write(&plain, b"inside").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let host = f.host_of("a.txt");
    let outside = f.tmp.path().join("outside.txt");
    fs::write(&outside, b"outside").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
    common::set_mtime(&outside, 1_000_000, 0);
    // While mounted, the ciphertext entry is replaced by a symlink.
    fs::rename(&host, f.tmp.path().join("moved-away")).unwrap();
    std::os::unix::fs::symlink(&outside, &host).unwrap();
    let chmod = fs::set_permissions(&plain, fs::Permissions::from_mode(0o777));
    let touch = filetime_now(&plain);
    let m = fs::metadata(&outside).unwrap();
    assert_eq!(
        m.mode() & 0o7777,
        0o600,
        "chmod through the mount ({chmod:?}) changed the outside file"
    );
    assert_eq!(
        m.mtime(),
        1_000_000,
        "utimes through the mount ({touch:?}) changed the outside file"
    );
    assert!(chmod.is_err(), "chmod of a swapped entry should fail");
    assert_eq!(fs::read(&outside).unwrap(), b"outside");
}

/// utimensat(p, NULL): both times to now, by path (what `touch` does).
fn filetime_now(p: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path; NULL times means now.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn planted_lock_symlink_does_not_truncate_outside_file_on_mount() {
    let f = common_fuse::Fixture::new();
    let outside = f.tmp.path().join("thesis.docx");
    let bytes = b"chapter one\nchapter two".to_vec();
    fs::write(&outside, &bytes).unwrap();
    plant_symlink(&f.vault, "pivault.lock", &outside);
    let mut child = f.mount_cmd(&[]).spawn().unwrap();
    let ended = common_fuse::wait_for(30, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(ended, "the mount went ahead over a planted lock: {err}");
    assert!(!out.status.success());
    assert!(
        err.contains("pivault.lock") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(!common_fuse::is_mountpoint(&f.mnt));
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "the outside file changed"
    );
}

/// The single content file of a vault holding one imported file.
fn only_content_file(vault: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            p.is_file() && !n.starts_with("pivault.") && n != "audit.log"
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Write access to the vault folder: the host mode of a ciphertext made
/// setuid (modes are not authenticated). An export, by root above all,
/// must not hand out a setuid file; with `--keep-special-bits` the caller
/// vouches for the folder and gets the bits.
#[test]
fn setuid_bit_planted_on_a_ciphertext_is_not_exported() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
    ok(f.import(&src));
    let host = only_content_file(&f.vault);
    fs::set_permissions(&host, fs::Permissions::from_mode(0o4755)).unwrap();

    let out = ok(f.export(&f.path("out")));
    assert_contains(&out.stderr, "setuid, setgid or sticky");
    assert_contains(&out.stderr, "--keep-special-bits");
    let mode = fs::metadata(f.path("out/tool")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755, "exported mode {mode:o}");

    ok(f.unlocked(
        "export",
        &[
            f.path("out2").as_os_str(),
            std::ffi::OsStr::new("--keep-special-bits"),
        ],
    ));
    let mode = fs::metadata(f.path("out2/tool")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o4755, "exported mode {mode:o}");
}

/// The one ciphertext directory directly in `vault`.
fn only_host_dir(vault: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = fs::read_dir(vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| fs::symlink_metadata(p).unwrap().is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Copies the ciphertext directory `host` to `to` (so that it decrypts
/// wherever it is reached from) and puts a symlink to the copy in its
/// place; the real directory stays inside the vault under another name.
fn swap_dir_for_symlink_to_copy(vault: &Path, host: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(host)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
    fs::rename(host, vault.join("moved-aside")).unwrap();
    std::os::unix::fs::symlink(to, host).unwrap();
}

/// Write access to the vault folder while it is mounted: a ciphertext
/// directory is swapped for a symlink to a copy of itself outside the
/// vault (so every name in it still decrypts). Writes through the mount
/// into that directory, and after a remount any use of it, must never
/// reach the copy: every host call goes through a descriptor pinned on
/// the directory (opened without following a symlink), not through a path.
#[test]
fn swapped_in_directory_symlink_does_not_steer_mounted_writes_outside() {
    let mut f = common_fuse::Fixture::mounted();
    fs::create_dir(f.p("docs")).unwrap();
    fs::write(f.p("docs/existing.txt"), b"Jane Roe 078-05-1120").unwrap();
    let host = f.host_of("docs");
    let outside = f.tmp.path().join("outside-copy");
    swap_dir_for_symlink_to_copy(&f.vault, &host, &outside);
    let before = common::snapshot(&outside);

    // The mount keeps using the directory it pinned.
    fs::write(f.p("docs/new.txt"), b"written after the swap").unwrap();
    let mut a = fs::OpenOptions::new()
        .append(true)
        .open(f.p("docs/existing.txt"))
        .unwrap();
    std::io::Write::write_all(&mut a, b", appended").unwrap();
    drop(a);
    fs::create_dir(f.p("docs/sub")).unwrap();
    assert_eq!(
        common::snapshot(&outside),
        before,
        "a write through the mount reached the symlink's target"
    );
    assert_eq!(
        fs::read(f.p("docs/new.txt")).unwrap(),
        b"written after the swap"
    );
    assert!(
        fs::read_dir(f.vault.join("moved-aside")).unwrap().count() >= 4,
        "the writes should have gone to the pinned directory in the vault"
    );

    // A fresh mount meets the symlink first: it refuses to go through it.
    f.remount();
    let read = fs::read(f.p("docs/existing.txt"));
    assert!(read.is_err(), "read through a planted symlink: {read:?}");
    let write = fs::write(f.p("docs/after-remount.txt"), b"x");
    assert!(write.is_err(), "write through a planted symlink succeeded");
    assert_eq!(
        common::snapshot(&outside),
        before,
        "a use after remount reached the symlink's target"
    );
}

/// The same swap in a vault at rest: import into the directory and fsck
/// (which both walk the tree) never write to or through the symlink, and
/// the walk names the directory as damaged.
#[test]
fn swapped_in_directory_symlink_does_not_steer_offline_tools() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/a.txt"), b"Jane Roe 078-05-1120").unwrap();
    ok(f.import(&src));
    let host = only_host_dir(&f.vault);
    let outside = f.path("outside-copy");
    swap_dir_for_symlink_to_copy(&f.vault, &host, &outside);
    let before = common::snapshot(&outside);

    let src2 = f.path("src2");
    fs::create_dir_all(src2.join("docs")).unwrap();
    fs::write(src2.join("docs/b.txt"), b"more PI").unwrap();
    let imp = f.import(&src2);
    let fsck = f.fsck();
    assert_eq!(
        common::snapshot(&outside),
        before,
        "import ({}) or fsck ({}) went through the symlink",
        imp.stderr,
        fsck.stderr
    );
    assert_ne!(
        fsck.code,
        Some(0),
        "fsck passed a planted symlink: {}",
        fsck.stdout
    );
}
