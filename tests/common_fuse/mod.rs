//! Helpers for the FUSE mount tests: a vault made with the real binary,
//! mounted by `pivault mount` in the foreground as a child process, and
//! always unmounted by a Drop guard so a failing test never leaves a mount
//! behind.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The passphrase of every test vault.
pub const PASS: &str = "fuse test passphrase";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pivault")
}

/// `pivault` with the test passphrase, no terminal input and no inherited
/// pivault settings.
pub fn pv() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.as_bytes().starts_with(b"PIVAULT_") {
            c.env_remove(k);
        }
    }
    c.env("PIVAULT_PASSPHRASE", PASS).stdin(Stdio::null());
    c
}

/// Runs `pivault ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    pv().args(args).output().expect("run pivault")
}

/// True when `path` is a mountpoint.
pub fn is_mountpoint(path: &Path) -> bool {
    Command::new("mountpoint")
        .arg("-q")
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits until `cond` holds, up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// True when `program` can be run.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A test vault and its mountpoint in a fresh temporary directory.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub vault: PathBuf,
    pub mnt: PathBuf,
    pub child: Option<Child>,
}

impl Fixture {
    /// A new vault (weak test KDF) and an empty mountpoint; not mounted.
    pub fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("pivault-fuse-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let vault = tmp.path().join("vault");
        let mnt = tmp.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let out = run(&["init", "--insecure-test-kdf", vault.to_str().unwrap()]);
        assert!(out.status.success(), "init failed: {out:?}");
        Fixture {
            tmp,
            vault,
            mnt,
            child: None,
        }
    }

    /// A new vault, mounted.
    pub fn mounted() -> Fixture {
        let mut f = Fixture::new();
        f.mount(&[]);
        f
    }

    /// The `pivault mount VAULT MNT EXTRA...` command.
    pub fn mount_cmd(&self, extra: &[&str]) -> Command {
        let mut c = pv();
        c.arg("mount").arg(&self.vault).arg(&self.mnt).args(extra);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    /// Mounts in the foreground (a child process) and waits for the mount.
    pub fn mount(&mut self, extra: &[&str]) {
        let cmd = self.mount_cmd(extra);
        self.mount_with(cmd);
    }

    /// Mounts with the mount process's umask set to `umask` (whatever the
    /// test's own): what the daemon's umask must not change shows.
    pub fn mount_with_umask(&mut self, extra: &[&str], umask: u32) {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.mount_cmd(extra);
        // SAFETY: umask(2) is async-signal-safe and touches no Rust state.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(umask as libc::mode_t);
                Ok(())
            });
        }
        self.mount_with(cmd);
    }

    /// Runs `cmd` (a `pivault mount` command) and waits for the mount.
    pub fn mount_with(&mut self, mut cmd: Command) {
        assert!(self.child.is_none(), "already mounted");
        let mut child = cmd.spawn().expect("spawn pivault mount");
        let mnt = self.mnt.clone();
        let ok = wait_for(30, || {
            is_mountpoint(&mnt) || child.try_wait().map(|s| s.is_some()).unwrap_or(true)
        });
        if !is_mountpoint(&mnt) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mount did not appear (waited: {ok}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.child = Some(child);
    }

    /// Path of `rel` inside the mount.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// Unmounts with `fusermount3 -u` and returns the mount process's exit
    /// status and stderr once it has ended by itself.
    pub fn unmount(&mut self) -> (ExitStatus, String) {
        // The kernel releases the last handles of a test's files
        // asynchronously, so an unmount right after them can meet EBUSY:
        // retry for a bounded time.
        let mut last = String::new();
        let unmounted = wait_for(10, || {
            let out = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .output()
                .expect("run fusermount3");
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status.success()
        });
        assert!(unmounted, "fusermount3 -u failed: {last}");
        self.wait_exit()
    }

    /// Waits (up to 30 s) for the mount process to end by itself.
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("mounted");
        let done = wait_for(30, || child.try_wait().map(|s| s.is_some()).unwrap_or(true));
        if !done {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        assert!(done, "the mount process did not exit after the unmount");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Clears the mount of a mount process that died (the kernel still
    /// shows it, ENOTCONN), as `fusermount3 -u -z` does.
    #[allow(dead_code)]
    pub fn clear_dead_mount(&self) {
        let st = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .status()
            .unwrap();
        assert!(st.success(), "fusermount3 -u -z {}", self.mnt.display());
    }

    /// Unmounts (asserting a clean exit 0) and mounts again.
    pub fn remount(&mut self) {
        let (st, err) = self.unmount();
        assert!(st.success(), "mount process exited with {st}: {err}");
        self.mount(&[]);
    }

    /// The ciphertext file whose host inode number is `ino` (the mount's
    /// inode numbers are the ciphertext's).
    pub fn host_of_ino(&self, ino: u64) -> PathBuf {
        fn find(dir: &Path, ino: u64) -> Option<PathBuf> {
            for e in fs::read_dir(dir).ok()?.flatten() {
                let m = e.metadata().ok()?;
                if m.ino() == ino {
                    return Some(e.path());
                }
                if m.is_dir() {
                    if let Some(p) = find(&e.path(), ino) {
                        return Some(p);
                    }
                }
            }
            None
        }
        find(&self.vault, ino).expect("ciphertext of the inode")
    }

    /// The ciphertext file of the plaintext file at `rel` in the mount.
    pub fn host_of(&self, rel: &str) -> PathBuf {
        let ino = fs::symlink_metadata(self.p(rel)).unwrap().ino();
        self.host_of_ino(ino)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if is_mountpoint(&self.mnt) {
                let _ = Command::new("fusermount3")
                    .arg("-u")
                    .arg("-z")
                    .arg(&self.mnt)
                    .status();
            }
            if !wait_for(10, || child.try_wait().map(|s| s.is_some()).unwrap_or(true)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if is_mountpoint(&self.mnt) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.mnt)
                .status();
        }
    }
}

/// True when the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The errno of a failed call.
pub fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the call should fail")
        .raw_os_error()
        .expect("an OS error")
}

/// A C path.
pub fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Result of a libc call returning -1 on failure.
pub fn cvt(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// renameat2(2).
pub fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    let (a, b) = (c(from), c(to));
    // SAFETY: valid C strings that outlive the call.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Says loudly that a test could not run here (not root, a tool missing),
/// or, when `PIVAULT_TESTS_STRICT` is set (CI sets it, and installs what
/// the tests need), fails instead: a check CI skips is a check nobody runs.
#[allow(dead_code)]
pub fn skip(why: &str) {
    if std::env::var_os("PIVAULT_TESTS_STRICT").is_some() {
        panic!("{why} (PIVAULT_TESTS_STRICT is set: this machine must provide it)");
    }
    eprintln!("!!!!!!!! SKIP {why} !!!!!!!!");
}
