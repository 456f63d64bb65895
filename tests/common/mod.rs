//! Shared helpers for the CLI integration tests: running the real binary
//! with a clean environment, vault fixtures, whole-directory snapshots and
//! ciphertext lookups.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

/// The passphrase most fixtures use.
pub const PASS: &str = "correct horse battery staple";
/// Per-command timeout: a command that unexpectedly waits for a terminal
/// fails the test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(300);
/// Header bytes before the first content block.
pub const HEADER_LEN: u64 = 96;
/// Plaintext bytes per block.
pub const BLOCK: u64 = 4096;
/// Per-block overhead (nonce + tag) of AES-256-GCM.
pub const AES_OVERHEAD: u64 = 12 + 16;
/// Per-block overhead (nonce + tag) of XChaCha20-Poly1305.
pub const XCHACHA_OVERHEAD: u64 = 24 + 16;

/// The built `pivault` binary (located by assert_cmd's `cargo_bin`).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cmd = assert_cmd::Command::cargo_bin("pivault").expect("pivault binary is built");
        PathBuf::from(cmd.get_program())
    })
}

/// Every `PIVAULT_*` variable inherited from the test's environment.
fn inherited_pivault_vars() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.as_bytes().starts_with(b"PIVAULT_"))
        .collect()
}

/// A std command for the binary: no inherited `PIVAULT_*` variables, stdin
/// from /dev/null, and a new session without a controlling terminal (so a
/// passphrase prompt can never block on the terminal the tests run in).
pub fn std_cmd(program: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(program);
    for k in inherited_pivault_vars() {
        c.env_remove(k);
    }
    for k in [
        "PIVAULT_PASSPHRASE",
        "PIVAULT_PASSPHRASE_FILE",
        "PIVAULT_NEW_PASSPHRASE",
        "PIVAULT_NEW_PASSPHRASE_FILE",
        "PIVAULT_LOG",
    ] {
        c.env_remove(k);
    }
    c.stdin(Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe and touches no Rust state.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c
}

/// `pivault` with a clean environment and no terminal.
pub fn pv() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(std_cmd(bin()));
    c.timeout(TIMEOUT);
    c
}

/// What a finished command did.
pub struct Out {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// True for exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Secrets tests hand to pivault (passphrases written with [`pass_file`]
/// or named with [`secret`]): no command may print one.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Registers a secret a test gives pivault, so every later command's
/// output is checked for it. Short ones are left out: the weak-passphrase
/// tests use dictionary words ("password") that advice text may contain.
pub fn secret(s: &str) {
    if s.len() >= 12 {
        SECRETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s.to_string());
    }
}

/// What a secret looks like in a command's output, if one is there: a
/// registered passphrase anywhere, and on stderr (where logs and errors
/// go) a recovery key or a share file's contents. A new recovery key is
/// printed once, on stdout, on purpose.
fn leaked(out: &Out) -> Option<String> {
    let mut known = vec![PASS.to_string()];
    known.extend(
        SECRETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    for s in &known {
        if out.stdout.contains(s.as_str()) || out.stderr.contains(s.as_str()) {
            return Some(format!("the passphrase {s:?}"));
        }
    }
    const KEY_CHARS: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let err = out.stderr.as_bytes();
    for (i, _) in out.stderr.match_indices("PVRK-") {
        let g = &err[i + 5..];
        if g.len() >= 11
            && g[..5].iter().all(|c| KEY_CHARS.contains(c))
            && g[5] == b'-'
            && g[6..11].iter().all(|c| KEY_CHARS.contains(c))
        {
            return Some("a recovery key on stderr".into());
        }
    }
    if out.stderr.contains("pivault-share 1") {
        return Some("a share file's contents on stderr".into());
    }
    None
}

/// Runs a command to completion; fails the test if its output shows a
/// secret (issue 18: nothing in any process's stderr or log may).
pub fn run(cmd: &mut assert_cmd::Command) -> Out {
    let o = cmd.output().expect("command runs");
    let out = Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    if let Some(what) = leaked(&out) {
        panic!("{what} appears in the output of {cmd:?}:\n{out:?}");
    }
    out
}

/// Runs `pivault ARGS...` with a clean environment.
pub fn pv_run<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(pv().args(args))
}

/// Asserts the command succeeded and returns its output.
#[track_caller]
pub fn ok(out: Out) -> Out {
    assert!(out.ok(), "command failed: {out:?}");
    out
}

/// Asserts the command failed (non-zero exit, not a signal) and returns it.
#[track_caller]
pub fn failed(out: Out) -> Out {
    assert!(
        matches!(out.code, Some(c) if c != 0),
        "command should have failed: {out:?}"
    );
    out
}

/// Asserts `hay` contains `needle`.
#[track_caller]
pub fn assert_contains(hay: &str, needle: &str) {
    assert!(
        hay.contains(needle),
        "expected to find {needle:?} in:\n{hay}"
    );
}

/// Writes a passphrase file (no trailing newline).
pub fn pass_file(dir: &Path, name: &str, pass: &str) -> PathBuf {
    secret(pass);
    let p = dir.join(name);
    fs::write(&p, pass).unwrap();
    p
}

/// A temporary work area with a vault path and a passphrase file.
pub struct Fixture {
    /// Holds everything; removed on drop.
    pub tmp: tempfile::TempDir,
    /// The vault directory (not created until [`Fixture::init`]).
    pub vault: PathBuf,
    /// A file holding [`PASS`].
    pub pass: PathBuf,
}

impl Fixture {
    /// A work area; the vault is not created yet.
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let vault = tmp.path().join("vault");
        let pass = pass_file(tmp.path(), "pass.txt", PASS);
        Fixture { tmp, vault, pass }
    }

    /// A path inside the work area.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A work area with an initialised vault (`cipher` e.g. "aes-gcm").
    pub fn with_vault(cipher: &str) -> Fixture {
        let f = Fixture::new();
        f.init(cipher);
        f
    }

    /// `pivault init` with the fast test KDF.
    pub fn init(&self, cipher: &str) {
        ok(pv_run([
            OsStr::new("init"),
            self.vault.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
            OsStr::new("--cipher"),
            OsStr::new(cipher),
            OsStr::new("--passphrase-file"),
            self.pass.as_os_str(),
        ]));
    }

    /// `pivault SUBCOMMAND VAULT [extra...] --passphrase-file PASS`.
    pub fn unlocked(&self, sub: &str, extra: &[&OsStr]) -> Out {
        let mut c = pv();
        c.arg(sub).arg(&self.vault);
        c.args(extra);
        c.arg("--passphrase-file").arg(&self.pass);
        run(&mut c)
    }

    /// `pivault import SRC VAULT`.
    pub fn import(&self, src: &Path) -> Out {
        run(pv()
            .arg("import")
            .arg(src)
            .arg(&self.vault)
            .arg("--passphrase-file")
            .arg(&self.pass))
    }

    /// `pivault export VAULT DEST`.
    pub fn export(&self, dest: &Path) -> Out {
        self.unlocked("export", &[dest.as_os_str()])
    }

    /// `pivault fsck VAULT`.
    pub fn fsck(&self) -> Out {
        self.unlocked("fsck", &[])
    }

    /// `pivault fsck VAULT --json`, parsed.
    pub fn fsck_json(&self) -> (Out, serde_json::Value) {
        let out = self.unlocked("fsck", &[OsStr::new("--json")]);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("fsck --json is not JSON ({e}): {out:?}"));
        (out, v)
    }

    /// `pivault keys list VAULT --json`, parsed.
    pub fn keys_json(&self) -> serde_json::Value {
        let out = ok(pv_run([
            OsStr::new("keys"),
            OsStr::new("list"),
            self.vault.as_os_str(),
            OsStr::new("--json"),
        ]));
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("keys list --json is not JSON ({e}): {out:?}"))
    }

    /// The keystore file.
    pub fn keystore(&self) -> PathBuf {
        self.vault.join("pivault.keystore")
    }
}

/// One entry of a directory snapshot.
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        mode: u32,
        mtime: (i64, i64),
        bytes: Vec<u8>,
    },
    /// A directory.
    Dir { mode: u32, mtime: (i64, i64) },
    /// A symlink.
    Symlink { target: PathBuf, mtime: (i64, i64) },
    /// A named pipe.
    Fifo { mode: u32, mtime: (i64, i64) },
    /// Anything else.
    Other { mode: u32 },
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::File { mode, mtime, bytes } => {
                let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
                let hex: String = digest.as_ref()[..8]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                write!(
                    f,
                    "file mode={mode:o} mtime={mtime:?} len={} sha256={hex}..",
                    bytes.len()
                )
            }
            Node::Dir { mode, mtime } => write!(f, "dir mode={mode:o} mtime={mtime:?}"),
            Node::Symlink { target, mtime } => {
                write!(f, "symlink -> {} mtime={mtime:?}", target.display())
            }
            Node::Fifo { mode, mtime } => write!(f, "fifo mode={mode:o} mtime={mtime:?}"),
            Node::Other { mode } => write!(f, "other mode={mode:o}"),
        }
    }
}

impl Node {
    /// The same node with modification times cut to whole seconds.
    pub fn to_seconds(&self) -> Node {
        let s = |m: &(i64, i64)| (m.0, 0);
        match self {
            Node::File { mode, mtime, bytes } => Node::File {
                mode: *mode,
                mtime: s(mtime),
                bytes: bytes.clone(),
            },
            Node::Dir { mode, mtime } => Node::Dir {
                mode: *mode,
                mtime: s(mtime),
            },
            Node::Symlink { target, mtime } => Node::Symlink {
                target: target.clone(),
                mtime: s(mtime),
            },
            Node::Fifo { mode, mtime } => Node::Fifo {
                mode: *mode,
                mtime: s(mtime),
            },
            Node::Other { mode } => Node::Other { mode: *mode },
        }
    }
}

/// Every path under `root` (relative; the root itself is ""), with its
/// kind, permission bits, modification time and contents / link target.
pub type Snapshot = BTreeMap<PathBuf, Node>;

/// Snapshots `root` recursively without following symlinks.
pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    snap_into(root, Path::new(""), &mut out);
    out
}

fn snap_into(abs: &Path, rel: &Path, out: &mut Snapshot) {
    let m = fs::symlink_metadata(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
    let mode = m.mode() & 0o7777;
    let mtime = (m.mtime(), m.mtime_nsec());
    let ft = m.file_type();
    let node = if ft.is_file() {
        Node::File {
            mode,
            mtime,
            bytes: fs::read(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display())),
        }
    } else if ft.is_dir() {
        Node::Dir { mode, mtime }
    } else if ft.is_symlink() {
        Node::Symlink {
            target: fs::read_link(abs).unwrap(),
            mtime,
        }
    } else if ft.is_fifo() {
        Node::Fifo { mode, mtime }
    } else {
        Node::Other { mode }
    };
    out.insert(rel.to_path_buf(), node);
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(abs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        // A vault's audit log grows with every command, refused ones
        // included (a failed unseal is an event): it is checked by the
        // audit tests, not by "nothing changed" snapshots.
        let is_vault_root = abs.join("pivault.keystore").exists();
        for n in names {
            if is_vault_root && n == "audit.log" {
                continue;
            }
            snap_into(&abs.join(&n), &rel.join(&n), out);
        }
    }
}

/// Asserts two snapshots are identical, listing every difference.
#[track_caller]
pub fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    let mut diffs = Vec::new();
    for (p, a) in before {
        match after.get(p) {
            None => diffs.push(format!("removed: {} ({a:?})", p.display())),
            Some(b) if a != b => diffs.push(format!(
                "changed: {}\n    before: {a:?}\n    after:  {b:?}",
                p.display()
            )),
            Some(_) => {}
        }
    }
    for (p, b) in after {
        if !before.contains_key(p) {
            diffs.push(format!("added: {} ({b:?})", p.display()));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Asserts nothing under `root` changed since `before` was taken.
#[track_caller]
pub fn assert_unchanged(root: &Path, before: &Snapshot) {
    let after = snapshot(root);
    assert_same(
        before,
        &after,
        &format!("{} changed on disk", root.display()),
    );
}

/// Sets the modification (and access) time of `path` without following a
/// symlink or opening the file (works on fifos and symlinks).
pub fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec as _,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec as _,
        },
    ];
    // SAFETY: `c` is NUL-terminated and `ts` is a live two-element array.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        r,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Sets permission bits.
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates a fifo.
pub fn mkfifo(path: &Path, mode: u32) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// True when the tests run as root (permission checks are bypassed).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Ciphertext length of a plaintext of `size` bytes with per-block `overhead`.
pub fn ct_len(size: u64, overhead: u64) -> u64 {
    let blocks = size.div_ceil(BLOCK).max(1);
    HEADER_LEN + size + blocks * overhead
}

/// Every regular ciphertext content file in the vault (pivault's own files
/// and long-name side files left out).
pub fn content_files(vault: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (rel, node) in snapshot(vault) {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if matches!(node, Node::File { .. })
            && !name.starts_with("pivault.")
            && name != "audit.log"
            && !name.ends_with(".name")
        {
            out.push(vault.join(rel));
        }
    }
    out
}

/// The one ciphertext content file of length `len`.
#[track_caller]
pub fn content_file_of_len(vault: &Path, len: u64) -> PathBuf {
    let hits: Vec<_> = content_files(vault)
        .into_iter()
        .filter(|p| fs::metadata(p).unwrap().len() == len)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one ciphertext of {len} bytes, found {hits:?}"
    );
    hits.into_iter().next().unwrap()
}

/// Rewrites a file's bytes in place (write permission added and restored).
pub fn edit_bytes(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mode = fs::metadata(path).unwrap().permissions().mode();
    chmod(path, mode | 0o200);
    let mut b = fs::read(path).unwrap();
    f(&mut b);
    fs::write(path, b).unwrap();
    chmod(path, mode);
}

/// Flips one byte of a file in place.
pub fn flip_byte(path: &Path, offset: u64) {
    edit_bytes(path, |b| b[offset as usize] ^= 0x5a);
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

/// What one `pivault scan` printed and how it exited.
pub struct ScanRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ScanRun {
    /// The JSON lines of `--json` output of type `ty` (`finding`, `status`).
    pub fn lines(&self, ty: &str) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .filter(|v: &serde_json::Value| v["type"] == ty)
            .collect()
    }
}

/// The full SSN the scan fixtures plant: a scan prints it masked only.
pub const PLANTED_SSN: &str = "536-22-1234";

/// Runs `pivault scan ARGS PATH` without inherited log settings (with
/// `PATH` set to `path_env` when given), and asserts that the planted SSN
/// never reaches the output in full.
pub fn scan(args: &[&str], path: &Path, path_env: Option<&Path>) -> ScanRun {
    let mut cmd = assert_cmd::Command::cargo_bin("pivault").unwrap();
    cmd.env_remove("PIVAULT_LOG")
        .env_remove("RUST_LOG")
        .arg("scan")
        .args(args)
        .arg(path)
        .timeout(Duration::from_secs(180));
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    let run = ScanRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains(PLANTED_SSN),
        "full value in the output: {all}"
    );
    run
}
