//! The protocol cut at every crash point, without FUSE: whatever the
//! host holds at that moment reads back whole, under the old names or
//! the new ones, never damaged.

use super::*;
use std::collections::BTreeMap;
use vault_core::{Keyring, Suite, VaultCipher};

type View = BTreeMap<String, Vec<u8>>;

fn open(root: &Path, ring: &Keyring) -> Vault {
    Vault::open(
        root.to_path_buf(),
        VaultCipher::new(ring.clone(), Suite::Aes256Gcm),
    )
    .unwrap()
}

/// What a reader sees (see [`crate::test_support::exported`]).
fn view(root: &Path, ring: &Keyring) -> View {
    crate::test_support::exported(&open(root, ring))
}

fn copy(from: &Path, to: &Path) {
    crate::test_support::copy_dir(from, to)
}

/// A vault holding `file` (two names: `file` and `twin`), `dir/inside`,
/// a symlink `link`, and a file with a 200-byte name (a long name with
/// a side file).
fn build(root: &Path) -> Keyring {
    let ring = Keyring::generate().unwrap();
    let c = VaultCipher::new(ring.clone(), Suite::Aes256Gcm);
    Vault::init(root, &c).unwrap();
    let v = open(root, &ring);
    let r = v.root().clone();
    let mut f = v.create_file(&r, b"file", 0o600).unwrap();
    f.write_at(0, b"Jane Roe 078-05-1120").unwrap();
    drop(f);
    let ino = fs::metadata(v.lookup(&r, b"file").unwrap().unwrap().0)
        .unwrap()
        .ino();
    v.link(&r, b"file", ino, Kind::File, &r, b"twin", &NoOpenFiles)
        .unwrap();
    let d = v.mkdir(&r, b"dir", 0o700).unwrap();
    let mut f = v.create_file(&d, b"inside", 0o600).unwrap();
    f.write_at(0, b"John Doe 219-09-9999").unwrap();
    drop(f);
    v.symlink(&r, b"link", b"../somewhere/else").unwrap();
    let mut f = v.create_file(&r, &[b'L'; 200], 0o600).unwrap();
    f.write_at(0, b"long name").unwrap();
    ring
}

/// Runs `op` on a fresh copy of the vault stopped at each of its crash
/// points, and checks the view is `before` or `after` every time.
fn cut_everywhere(op: impl Fn(&Vault) -> Result<()>, before: &View, after: &View) -> u64 {
    let base = tempfile::tempdir().unwrap();
    let original = base.path().join("original");
    fs::create_dir(&original).unwrap();
    let ring = build(&original);
    let probe = base.path().join("probe");
    copy(&original, &probe);
    let (r, points) = crate::crash::count(|| op(&open(&probe, &ring)));
    r.unwrap();
    assert_eq!(&view(&probe, &ring), after, "the operation itself");
    assert!(points >= 2, "{points} crash points");
    for n in 0..points {
        let v = base.path().join(format!("crash-{n}"));
        copy(&original, &v);
        let vault = open(&v, &ring);
        let err = crate::crash::stop_at(n, || op(&vault)).expect_err("stops at the point");
        assert!(err.to_string().contains("test crash point"), "{err}");
        let seen = view(&v, &ring);
        assert!(
            &seen == before || &seen == after,
            "crash point {n} of {points}: {seen:#?}"
        );
    }
    points
}

fn moved(view: &View, renames: &[(&str, &str)]) -> View {
    view.iter()
        .map(|(k, v)| {
            let mut k = k.clone();
            for (from, to) in renames {
                if k == *from {
                    k = to.to_string();
                    break;
                } else if let Some(rest) = k.strip_prefix(&format!("{from}/")) {
                    k = format!("{to}/{rest}");
                    break;
                }
            }
            (k, v.clone())
        })
        .collect()
}

fn before() -> View {
    let d = tempfile::tempdir().unwrap();
    let ring = build(d.path());
    view(d.path(), &ring)
}

fn rename(v: &Vault, from: &[u8], to: &[u8], mode: RenameMode) -> Result<()> {
    let r = v.root().clone();
    v.rename(&r, from, &r, to, mode, &NoOpenFiles).map(|_| ())
}

#[test]
fn a_file_rename_cut_at_any_crash_point_reads_back_under_one_name() {
    let b = before();
    let a = moved(&b, &[("file", "renamed")]);
    cut_everywhere(
        |v| rename(v, b"file", b"renamed", RenameMode::Replace),
        &b,
        &a,
    );
}

#[test]
fn a_rename_to_a_long_name_cut_at_any_crash_point_reads_back() {
    let b = before();
    let long = "M".repeat(230);
    let a = moved(&b, &[("dir", &long)]);
    cut_everywhere(
        |v| rename(v, b"dir", long.as_bytes(), RenameMode::Replace),
        &b,
        &a,
    );
}

#[test]
fn a_directory_rename_into_a_subdirectory_cut_at_any_crash_point_reads_back() {
    let b = before();
    let a = moved(&b, &[("file", "dir/moved-in")]);
    cut_everywhere(
        |v| {
            let r = v.root().clone();
            let d = v.subdir(&r, b"dir")?;
            v.rename(
                &r,
                b"file",
                &d,
                b"moved-in",
                RenameMode::Replace,
                &NoOpenFiles,
            )
            .map(|_| ())
        },
        &b,
        &a,
    );
}

#[test]
fn an_exchange_of_a_file_and_a_directory_cut_at_any_crash_point_reads_back() {
    let b = before();
    let a = moved(&b, &[("file", "dir"), ("dir", "file")]);
    let points = cut_everywhere(|v| rename(v, b"file", b"dir", RenameMode::Exchange), &b, &a);
    assert!(points >= 3, "{points}");
}

#[test]
fn a_rename_over_a_file_with_two_names_drops_only_that_binding() {
    let d = tempfile::tempdir().unwrap();
    let ring = build(d.path());
    let v = open(d.path(), &ring);
    let r = v.root().clone();
    let mut f = v.create_file(&r, b"new", 0o600).unwrap();
    f.write_at(0, b"replacement").unwrap();
    drop(f);
    // `twin` and `file` are one content; `new` replaces `twin`.
    rename(&v, b"new", b"twin", RenameMode::Replace).unwrap();
    let seen = view(d.path(), &ring);
    assert_eq!(seen["twin"], b"replacement");
    assert_eq!(seen["file"], b"Jane Roe 078-05-1120");
    let c = v.open_file(&r, b"file", false).unwrap();
    assert_eq!(c.header().binding_count(), 1, "the old twin binding stays");
}

#[test]
fn no_replace_and_kind_mismatches_are_refused_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let ring = build(d.path());
    let v = open(d.path(), &ring);
    let b = view(d.path(), &ring);
    assert!(matches!(
        rename(&v, b"file", b"dir", RenameMode::NoReplace),
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        rename(&v, b"file", b"dir", RenameMode::Replace),
        Err(Error::IsADirectory(_))
    ));
    assert!(matches!(
        rename(&v, b"dir", b"file", RenameMode::Replace),
        Err(Error::NotADirectory(_))
    ));
    assert!(matches!(
        rename(&v, b"missing", b"x", RenameMode::Replace),
        Err(Error::NotFound(_))
    ));
    // Two names of one file: nothing to do.
    let r = v.root().clone();
    assert_eq!(
        v.rename(&r, b"file", &r, b"twin", RenameMode::Replace, &NoOpenFiles)
            .unwrap(),
        Renamed::Unchanged
    );
    assert_eq!(view(d.path(), &ring), b);
}

#[test]
fn a_fifth_name_is_refused_and_a_symlink_cannot_be_linked() {
    let d = tempfile::tempdir().unwrap();
    let ring = build(d.path());
    let v = open(d.path(), &ring);
    let r = v.root().clone();
    let ino = fs::metadata(v.lookup(&r, b"file").unwrap().unwrap().0)
        .unwrap()
        .ino();
    for n in [&b"three"[..], b"four"] {
        v.link(&r, b"file", ino, Kind::File, &r, n, &NoOpenFiles)
            .unwrap();
    }
    let b = view(d.path(), &ring);
    assert!(matches!(
        v.link(&r, b"file", ino, Kind::File, &r, b"five", &NoOpenFiles),
        Err(Error::TooManyLinks(_))
    ));
    assert!(matches!(
        v.link(&r, b"link", 0, Kind::Symlink, &r, b"l2", &NoOpenFiles),
        Err(Error::NotLinkable(_))
    ));
    assert_eq!(view(d.path(), &ring), b, "a refused link changed the vault");
    // Unlinking one name drops its binding; the others still open.
    v.unlink(&r, b"three", &NoOpenFiles).unwrap();
    assert_eq!(
        v.open_file(&r, b"four", false)
            .unwrap()
            .header()
            .binding_count(),
        3
    );
}
