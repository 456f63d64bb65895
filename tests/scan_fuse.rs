//! `pivault scan --move-into` against a real mount: the flagged file ends up
//! inside the vault (plaintext through the mount, ciphertext on disk), and
//! the original is gone.

mod common_fuse;

use common_fuse::*;
use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn flagged_files_move_into_a_mounted_vault_and_are_encrypted_at_rest() {
    let mut f = Fixture::mounted();
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("hr/2024")).unwrap();
    let body = "name,ssn,card\nAna Silva,536-22-1234,4539 1488 0343 6467\n";
    fs::write(src.path().join("hr/2024/list.csv"), body).unwrap();
    fs::write(src.path().join("hr/readme.txt"), "nothing to see\n").unwrap();

    let out = pv()
        .args(["scan", "--json", "--move-into"])
        .arg(&f.mnt)
        .arg(src.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "PI found and moved: {stderr}");
    assert!(
        !src.path().join("hr/2024/list.csv").exists(),
        "original removed"
    );
    assert!(
        src.path().join("hr/readme.txt").exists(),
        "clean file stays"
    );
    assert_eq!(fs::read_to_string(f.p("hr/2024/list.csv")).unwrap(), body);

    let (st, err) = f.unmount();
    assert!(st.success(), "unmount: {err}");
    for c in files(&f.vault) {
        let bytes = fs::read(&c).unwrap();
        for needle in [&b"536-22-1234"[..], b"Ana Silva", b"4539 1488"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext in {}",
                c.display()
            );
        }
    }
    let out = pv()
        .args(["scan", "--json"])
        .arg(&f.vault)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the ciphertext holds no findable PI"
    );

    f.mount(&[]);
    assert_eq!(
        fs::read_to_string(f.p("hr/2024/list.csv")).unwrap(),
        body,
        "survives a remount"
    );
    let out = pv().args(["scan", "--json"]).arg(&f.mnt).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the plaintext view is scannable"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn move_into_verifies_refuses_to_overwrite_and_moves_a_file_once() {
    let f = Fixture::mounted();
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("hr")).unwrap();
    let flagged = src.path().join("hr/a.txt");
    fs::write(&flagged, "SSN 536-22-1234\n").unwrap();
    let sub = src.path().join("hr");
    // Overlapping PATHs: the file moves once, without an error.
    let out = pv()
        .args(["scan", "--move-into"])
        .arg(&f.mnt)
        .arg(src.path())
        .arg(&sub)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        fs::read_to_string(f.p("hr/a.txt")).unwrap(),
        "SSN 536-22-1234\n"
    );
    assert!(!flagged.exists());
    // The same name again: the destination is never overwritten.
    fs::write(&flagged, "SSN 536-22-9999\n").unwrap();
    let out = pv()
        .args(["scan", "--move-into"])
        .arg(&f.mnt)
        .arg(src.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already exists; refusing to overwrite"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&flagged).unwrap(), "SSN 536-22-9999\n");
    assert_eq!(
        fs::read_to_string(f.p("hr/a.txt")).unwrap(),
        "SSN 536-22-1234\n"
    );
    // Scanning the vault itself into itself moves nothing.
    let out = pv()
        .args(["scan", "--move-into"])
        .arg(&f.mnt)
        .arg(&f.mnt)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is inside the vault"), "{stderr}");
}

#[test]
fn move_into_an_unmounted_mountpoint_writes_no_plaintext_there() {
    let mut f = Fixture::mounted();
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
    // After an idle seal or an unmount the mountpoint is a bare directory.
    let src = tempfile::tempdir().unwrap();
    let flagged = src.path().join("list.txt");
    fs::write(&flagged, "SSN 536-22-1234\n").unwrap();
    let out = pv()
        .args(["scan", "--move-into"])
        .arg(&f.mnt)
        .arg(src.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not inside a mounted pivault vault"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_dir(&f.mnt).unwrap().count(),
        0,
        "plaintext written to the bare mountpoint"
    );
    assert_eq!(fs::read_to_string(&flagged).unwrap(), "SSN 536-22-1234\n");
}
