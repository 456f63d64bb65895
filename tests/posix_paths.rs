//! Paths near PATH_MAX on a real mount (pjdfstest's */03.t and rename/02,
//! issue 16): a plaintext tree as deep as the kernel allows has a
//! ciphertext path longer than PATH_MAX (every encrypted name is longer
//! than its plaintext, and the vault root comes first), and must still
//! work in every operation, before and after a remount and after one of
//! its directories is renamed.

mod common_fuse;

use common_fuse::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Plaintext components of 120 bytes (pjdfstest uses NAME_MAX / 2).
fn component(i: usize) -> String {
    format!("{i:03}-{}", "d".repeat(116))
}

/// A directory chain under `root` whose plaintext path from the mount is
/// about `len` bytes.
fn deep_dir(root: &Path, len: usize) -> PathBuf {
    let mut p = root.to_path_buf();
    let mut i = 0;
    while p.as_os_str().len() + 121 < root.as_os_str().len() + len {
        p.push(component(i));
        i += 1;
    }
    p
}

/// The longest host directory path in the vault (measured with find(1),
/// which walks by descriptors and so is not itself limited by PATH_MAX).
fn longest_host_dir(vault: &Path) -> usize {
    let out = Command::new("find")
        .arg(vault)
        .args(["-type", "d"])
        .output()
        .expect("run find");
    assert!(out.status.success(), "find: {out:?}");
    out.stdout
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

#[test]
fn a_tree_deeper_than_path_max_on_the_host_works_and_survives_a_remount() {
    let mut f = Fixture::mounted();
    // 3,600 bytes of plaintext path below the mount: under PATH_MAX for
    // this test's own calls, well over it as ciphertext.
    let deep = deep_dir(&f.mnt, 3600);
    fs::create_dir_all(&deep).expect("mkdir -p of the deep tree");
    let file = deep.join("file");
    fs::write(&file, b"deep content").expect("create and write at the bottom");
    assert_eq!(fs::read(&file).unwrap(), b"deep content");
    assert!(
        longest_host_dir(&f.vault) > libc::PATH_MAX as usize,
        "the test tree must be deeper than PATH_MAX on the host"
    );

    // Attributes.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o640);
    if is_root() {
        std::os::unix::fs::chown(&file, Some(1234), Some(4321)).unwrap();
        let m = fs::metadata(&file).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 4321));
    }
    // Symlinks, hard links, fifos, listings.
    std::os::unix::fs::symlink("file", deep.join("link")).unwrap();
    assert_eq!(fs::read_link(deep.join("link")).unwrap(), Path::new("file"));
    assert_eq!(fs::read(deep.join("link")).unwrap(), b"deep content");
    fs::hard_link(&file, deep.join("hard")).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().nlink(), 2);
    let fifo = c(&deep.join("fifo"));
    // SAFETY: `fifo` is a valid NUL-terminated path that outlives the call.
    cvt(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }).expect("mkfifo at the bottom");
    assert!(fs::symlink_metadata(deep.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let mut names: Vec<String> = fs::read_dir(&deep)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["fifo", "file", "hard", "link"]);
    // Renames between the top and the bottom.
    fs::rename(&file, f.p("up")).unwrap();
    assert_eq!(fs::read(f.p("up")).unwrap(), b"deep content");
    fs::rename(f.p("up"), &file).unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"deep content");
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|h| h.set_len(4))
        .unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"deep");

    // A remount finds everything again from the root.
    f.remount();
    assert_eq!(fs::read(&file).unwrap(), b"deep");
    assert_eq!(fs::read(deep.join("link")).unwrap(), b"deep");
    assert_eq!(fs::read(deep.join("hard")).unwrap(), b"deep");

    // The offline tools walk the same tree without the mount: fsck finds
    // nothing damaged, export writes the deep file back out.
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    let out = run(&["fsck", f.vault.to_str().unwrap()]);
    assert!(out.status.success(), "fsck of the deep tree: {out:?}");
    let dest = f.tmp.path().join("out");
    let out = run(&["export", f.vault.to_str().unwrap(), dest.to_str().unwrap()]);
    assert!(out.status.success(), "export of the deep tree: {out:?}");
    let exported = dest.join(deep.strip_prefix(&f.mnt).unwrap());
    assert_eq!(fs::read(exported.join("file")).unwrap(), b"deep");
    f.mount(&[]);

    // Renaming a directory near the top moves every path below it.
    let top = f.p(&component(0));
    let renamed = f.p("top");
    fs::rename(&top, &renamed).unwrap();
    let moved = renamed.join(deep.strip_prefix(&top).unwrap());
    assert_eq!(fs::read(moved.join("file")).unwrap(), b"deep");
    fs::write(moved.join("new"), b"made after the move").unwrap();
    f.remount();
    assert_eq!(fs::read(moved.join("new")).unwrap(), b"made after the move");

    // And the whole tree goes away.
    fs::remove_dir_all(&renamed).expect("rm -r of the deep tree");
    assert!(fs::read_dir(&f.mnt).unwrap().next().is_none());
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
}

#[test]
fn a_symlink_target_too_long_to_seal_is_refused_cleanly() {
    // A sealed target is longer than the plaintext (suite byte, nonce,
    // tag, base64): a target near PATH_MAX cannot be held by a host
    // symlink. That is refused with ENAMETOOLONG and leaves nothing behind;
    // a long target that fits works.
    let f = Fixture::mounted();
    let long = "t/".repeat(1500);
    std::os::unix::fs::symlink(&long, f.p("fits")).expect("a 3000-byte target");
    assert_eq!(fs::read_link(f.p("fits")).unwrap(), Path::new(&long));
    let too_long = "t/".repeat(2000);
    assert_eq!(
        errno(std::os::unix::fs::symlink(&too_long, f.p("too-long"))),
        libc::ENAMETOOLONG
    );
    assert_eq!(errno(fs::symlink_metadata(f.p("too-long"))), libc::ENOENT);
}

#[test]
fn more_deep_directories_than_the_soft_descriptor_limit_are_served() {
    // Each directory whose host path is too long to use holds a
    // descriptor while the kernel knows it: the mount raises its soft
    // limit on descriptors to the hard one, so a mount started with a low
    // soft limit still serves more of them than that. Each chain below
    // is deep enough (about 2,500 host bytes) to need one.
    const SOFT: u64 = 128;
    const CHAINS: usize = 300;
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `hard` is a live, writable rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) }).unwrap();
    if hard.rlim_max < 4 * CHAINS as u64 {
        skip(&format!(
            "more_deep_directories_than_the_soft_descriptor_limit_are_served: hard open-file limit {} is too low",
            hard.rlim_max
        ));
        return;
    }
    let mut f = Fixture::new();
    let mut cmd = f.mount_cmd(&[]);
    // SAFETY: getrlimit(2) and setrlimit(2) are async-signal-safe and
    // touch no Rust state.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
            l.rlim_cur = SOFT.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            Ok(())
        });
    }
    f.mount_with(cmd);
    let chain = |i: usize| deep_dir(&f.p(&format!("c{i}")), 1600);
    for i in 0..CHAINS {
        let d = chain(i);
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir -p chain {i}: {e}"));
        fs::write(d.join("f"), i.to_string()).unwrap_or_else(|e| panic!("write in chain {i}: {e}"));
    }
    for i in 0..CHAINS {
        let got = fs::read_to_string(chain(i).join("f")).unwrap();
        assert_eq!(got, i.to_string());
    }
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
}
