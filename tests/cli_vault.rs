//! `pivault init / import / export / fsck` through the real binary: vault
//! creation, full-fidelity round trips, confidentiality of names and
//! contents, and damage detection after tampering with the ciphertext.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// A string that must never appear in ciphertext (it is put in names,
/// contents and symlink targets).
const MARKER: &str = "QZXplaintextMARKER7731";

/// Sizes of the rich tree's regular files, by relative path.
struct RichTree {
    files: Vec<(PathBuf, usize)>,
    dirs: usize,
    symlinks: usize,
    long_name: String,
    big: Vec<u8>,
}

/// Builds a tree with every kind of entry the vault stores, odd sizes, odd
/// names, modes and fixed modification times.
fn build_rich_tree(root: &Path) -> RichTree {
    fs::create_dir(root).unwrap();
    let mut files = Vec::new();
    let mut add = |rel: &str, bytes: &[u8], mode: u32, mtime: i64| {
        let p = root.join(rel);
        fs::write(&p, bytes).unwrap();
        chmod(&p, mode);
        set_mtime(&p, mtime, 123_456_789);
        files.push((PathBuf::from(rel), bytes.len()));
    };
    fs::create_dir_all(root.join("nested/deeper/deepest")).unwrap();
    fs::create_dir(root.join("nested/emptydir")).unwrap();
    let long_dir = "D".repeat(255);
    fs::create_dir(root.join(&long_dir)).unwrap();

    add("empty", b"", 0o600, 1_500_000_001);
    add("one", b"x", 0o644, 1_500_000_002);
    add(
        "exact4096.bin",
        &random_bytes(1, 4096),
        0o444,
        1_500_000_003,
    );
    add("over4097.bin", &random_bytes(2, 4097), 0o755, 1_500_000_004);
    let big = random_bytes(3, (1 << 20) + 3);
    add("big.bin", &big, 0o600, 1_500_000_005);
    let secret: String = (0..600)
        .map(|i| format!("line {i}: the {MARKER} secret\n"))
        .collect();
    add(
        &format!("{MARKER}_secret.txt"),
        secret.as_bytes(),
        0o644,
        1_500_000_006,
    );
    let long_name = format!("{MARKER}{}", "n".repeat(255 - MARKER.len()));
    assert_eq!(long_name.len(), 255);
    add(
        &long_name,
        b"a file with a 255-byte name\n",
        0o640,
        1_500_000_007,
    );
    add(
        "héllo wörld ✓ spaced name.txt",
        "unicode ✓ contents\n".as_bytes(),
        0o600,
        1_500_000_008,
    );
    add("nested/deeper/leaf.txt", b"leaf\n", 0o444, 1_500_000_009);
    add(
        "nested/deeper/deepest/bottom.dat",
        &random_bytes(4, 12_345),
        0o600,
        1_500_000_010,
    );

    add(
        &format!("{long_dir}/{}", "f".repeat(255)),
        b"long name inside a long-named directory\n",
        0o600,
        1_500_000_011,
    );

    std::os::unix::fs::symlink("nested/deeper/leaf.txt", root.join("rel_link")).unwrap();
    set_mtime(&root.join("rel_link"), 1_400_000_001, 5);
    let abs_target = format!("/nonexistent/{MARKER}/absolute target");
    std::os::unix::fs::symlink(&abs_target, root.join("abs_link")).unwrap();
    set_mtime(&root.join("abs_link"), 1_400_000_002, 6);
    std::os::unix::fs::symlink("../../one", root.join("nested/deeper/up_link")).unwrap();
    set_mtime(&root.join("nested/deeper/up_link"), 1_400_000_003, 7);
    let long_link = root.join("S".repeat(255));
    std::os::unix::fs::symlink("one", &long_link).unwrap();
    set_mtime(&long_link, 1_400_000_004, 8);

    mkfifo(&root.join("pipe"), 0o640);
    chmod(&root.join("pipe"), 0o640);
    set_mtime(&root.join("pipe"), 1_300_000_001, 0);

    // Directories last, deepest first: creating entries changes their mtime.
    for (rel, mode, t) in [
        ("nested/deeper/deepest", 0o700, 1_200_000_004),
        ("nested/deeper", 0o750, 1_200_000_003),
        ("nested/emptydir", 0o755, 1_200_000_002),
        ("nested", 0o750, 1_200_000_001),
        (long_dir.as_str(), 0o711, 1_200_000_005),
    ] {
        chmod(&root.join(rel), mode);
        set_mtime(&root.join(rel), t, 42);
    }
    RichTree {
        files,
        dirs: 5,
        symlinks: 4,
        long_name,
        big,
    }
}

/// Snapshot without the root entry, times cut to whole seconds.
fn tree_view(root: &Path) -> Snapshot {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .map(|(p, n)| (p, n.to_seconds()))
        .collect()
}

/// Like [`tree_view`], but directory mtimes are left out and the entries
/// under `missing` are dropped (for exports of a damaged vault, where a
/// tampered host directory's mtime legitimately changed).
fn tree_view_without(root: &Path, missing: &[&str]) -> Snapshot {
    tree_view(root)
        .into_iter()
        .filter(|(p, _)| !missing.iter().any(|m| p.starts_with(m)))
        .map(|(p, n)| match n {
            Node::Dir { mode, .. } => (
                p,
                Node::Dir {
                    mode,
                    mtime: (0, 0),
                },
            ),
            n => (p, n),
        })
        .collect()
}

#[test]
fn init_into_existing_empty_dir_creates_keystore_dirid_audit_log_and_lock_only() {
    let f = Fixture::new();
    fs::create_dir(&f.vault).unwrap();
    f.init("aes-gcm");
    let mut names: Vec<String> = fs::read_dir(&f.vault)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audit.log",
            "pivault.dirid",
            "pivault.keystore",
            "pivault.lock"
        ]
    );
    let ks = fs::read(f.keystore()).unwrap();
    assert!(
        ks.starts_with(b"pivault-keystore 3\n"),
        "keystore header: {:?}",
        String::from_utf8_lossy(&ks[..ks.len().min(40)])
    );
    let snap = snapshot(&f.vault);
    for (rel, node) in &snap {
        if let Node::File { mode, .. } = node {
            assert_eq!(*mode, 0o600, "{} is not private", rel.display());
        }
    }
    // The new vault checks clean and is empty.
    let out = ok(f.fsck());
    assert_contains(&out.stdout, "0 files");
    assert_contains(&out.stdout, "0 damaged");
}

#[test]
fn init_creates_a_missing_vault_directory() {
    let f = Fixture::new();
    assert!(!f.vault.exists());
    let out = ok(pv_run([
        OsStr::new("init"),
        f.vault.as_os_str(),
        OsStr::new("--insecure-test-kdf"),
        OsStr::new("--passphrase-file"),
        f.pass.as_os_str(),
    ]));
    assert_contains(&out.stderr, "Created vault");
    assert!(f.vault.is_dir());
    let snap = snapshot(&f.vault);
    let paths: Vec<_> = snap
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        paths,
        ["", "pivault.dirid", "pivault.keystore", "pivault.lock"]
    );
    ok(f.fsck());
}

#[test]
fn cipher_choice_is_recorded_and_used_for_contents() {
    for (cipher, suite, overhead) in [
        ("aes-gcm", "aes-256-gcm", AES_OVERHEAD),
        ("xchacha", "xchacha20-poly1305", XCHACHA_OVERHEAD),
    ] {
        let f = Fixture::with_vault(cipher);
        let keys = f.keys_json();
        assert_eq!(keys["suite"], suite, "{cipher}: {keys}");
        let text = ok(pv_run([
            OsStr::new("keys"),
            OsStr::new("list"),
            f.vault.as_os_str(),
        ]));
        assert_contains(&text.stdout, &format!("cipher: {suite}"));

        let src = f.path("src");
        fs::create_dir(&src).unwrap();
        let data = random_bytes(9, 5000);
        fs::write(src.join("f.bin"), &data).unwrap();
        ok(f.import(&src));
        // The ciphertext length shows the suite's nonce size really is used.
        let files = content_files(&f.vault);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(
            fs::metadata(&files[0]).unwrap().len(),
            ct_len(5000, overhead),
            "{cipher}: ciphertext length"
        );
        let dest = f.path("out");
        ok(f.export(&dest));
        assert_eq!(fs::read(dest.join("f.bin")).unwrap(), data, "{cipher}");
    }
}

#[test]
fn import_then_export_reproduces_the_whole_tree() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    let rich = build_rich_tree(&src);
    let src_before = snapshot(&src);

    let out = ok(f.import(&src));
    assert_contains(
        &out.stderr,
        &format!(
            "Imported {} files ({} bytes), {} directories, {} symlinks",
            rich.files.len(),
            rich.files.iter().map(|(_, n)| n).sum::<usize>(),
            rich.dirs,
            rich.symlinks
        ),
    );
    assert_unchanged(&src, &src_before);

    let dest = f.path("restored");
    let out = ok(f.export(&dest));
    assert_contains(&out.stderr, &format!("Exported {} files", rich.files.len()));
    assert_same(
        &tree_view(&src),
        &tree_view(&dest),
        "exported tree differs from the imported one",
    );
    // Spot checks, so a broken snapshot could not hide a difference.
    assert_eq!(fs::read(dest.join("big.bin")).unwrap(), rich.big);
    assert_eq!(
        fs::read(dest.join(&rich.long_name)).unwrap(),
        b"a file with a 255-byte name\n"
    );
    assert_eq!(
        fs::read_link(dest.join("abs_link")).unwrap(),
        PathBuf::from(format!("/nonexistent/{MARKER}/absolute target"))
    );
    assert_eq!(
        fs::read_link(dest.join("rel_link")).unwrap(),
        PathBuf::from("nested/deeper/leaf.txt")
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(dest.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    for (rel, size) in &rich.files {
        assert_eq!(
            fs::metadata(dest.join(rel)).unwrap().len(),
            *size as u64,
            "{}",
            rel.display()
        );
    }
}

#[test]
fn export_into_an_existing_empty_directory() {
    let f = Fixture::with_vault("xchacha");
    let src = f.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("b.bin"), random_bytes(5, 9000)).unwrap();
    ok(f.import(&src));
    let dest = f.path("empty-dest");
    fs::create_dir(&dest).unwrap();
    ok(f.export(&dest));
    assert_same(&tree_view(&src), &tree_view(&dest), "export into empty dir");
}

#[test]
fn ciphertext_contains_no_plaintext_names_contents_or_targets() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    let rich = build_rich_tree(&src);
    ok(f.import(&src));

    // Sanity: the marker is really in the plaintext, in all three places.
    let plain = snapshot(&src);
    assert!(plain.keys().any(|p| p.to_string_lossy().contains(MARKER)));
    assert!(plain.values().any(|n| matches!(n,
        Node::File { bytes, .. } if contains(bytes, MARKER.as_bytes()))));
    assert!(plain.values().any(|n| matches!(n,
        Node::Symlink { target, .. } if target.to_string_lossy().contains(MARKER))));

    let window = &rich.big[500_000..500_032];
    let needles: [&[u8]; 5] = [
        MARKER.as_bytes(),
        b"spaced name",
        "héllo".as_bytes(),
        b"nested",
        window,
    ];
    let vault = snapshot(&f.vault);
    assert!(vault.len() > 15, "vault holds the tree: {}", vault.len());
    for (rel, node) in &vault {
        let name = rel.to_string_lossy();
        for n in needles {
            let n_str = String::from_utf8_lossy(n);
            assert!(!name.contains(&*n_str), "plaintext in host path {name}");
            match node {
                Node::File { bytes, .. } => {
                    assert!(!contains(bytes, n), "plaintext {n_str:?} in {name}")
                }
                Node::Symlink { target, .. } => assert!(
                    !contains(target.as_os_str().as_encoded_bytes(), n),
                    "plaintext {n_str:?} in the target of {name}"
                ),
                _ => {}
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn fsck_of_a_clean_vault_passes_in_text_and_json() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    let rich = build_rich_tree(&src);
    ok(f.import(&src));
    let before = snapshot(&f.vault);

    let total: usize = rich.files.iter().map(|(_, n)| n).sum();
    let out = ok(f.fsck());
    assert_contains(
        &out.stdout,
        &format!(
            "{} files ({total} bytes), {} directories, {} symlinks checked; 0 damaged",
            rich.files.len(),
            rich.dirs,
            rich.symlinks
        ),
    );
    assert!(!out.stderr.contains("DAMAGED"), "{out:?}");

    let (out, v) = f.fsck_json();
    assert!(out.ok(), "{out:?}");
    assert_eq!(v["files"], rich.files.len() as u64, "{v}");
    assert_eq!(v["dirs"], rich.dirs as u64, "{v}");
    assert_eq!(v["symlinks"], rich.symlinks as u64, "{v}");
    assert_eq!(v["bytes"], total as u64, "{v}");
    assert_eq!(v["damaged"], serde_json::json!([]), "{v}");
    // fsck never writes.
    assert_unchanged(&f.vault, &before);
}

// ---------------------------------------------------------------------------
// Tampering

const REPORT: usize = 10_000; // docs/report.txt: 3 blocks
const NOTES: usize = 5_000; // docs/notes.txt: 2 blocks
const TOP: usize = 300; // top.bin
const DEEP: usize = 70; // sub/inner/deep.txt

/// An AES-GCM vault holding a small tree whose files all have different
/// ciphertext lengths (so each host file can be found by its length).
fn tamper_fixture() -> (Fixture, PathBuf) {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::create_dir_all(src.join("sub/inner")).unwrap();
    fs::write(src.join("docs/report.txt"), random_bytes(11, REPORT)).unwrap();
    fs::write(src.join("docs/notes.txt"), random_bytes(12, NOTES)).unwrap();
    fs::write(src.join("top.bin"), random_bytes(13, TOP)).unwrap();
    fs::write(src.join("sub/inner/deep.txt"), random_bytes(14, DEEP)).unwrap();
    std::os::unix::fs::symlink("top.bin", src.join("link")).unwrap();
    ok(f.import(&src));
    ok(f.fsck());
    (f, src)
}

fn host_of(f: &Fixture, size: usize) -> PathBuf {
    content_file_of_len(&f.vault, ct_len(size as u64, AES_OVERHEAD))
}

/// The DAMAGED lines of a command's stderr.
fn damaged_lines(out: &Out) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("DAMAGED"))
        .collect()
}

/// Runs fsck on a tampered vault and checks exactly `expect` damaged
/// entries are listed, each line naming the given text.
#[track_caller]
fn fsck_reports(f: &Fixture, expect: &[&str]) -> Out {
    let before = snapshot(&f.vault);
    let out = failed(f.fsck());
    assert_eq!(out.code, Some(3), "{out:?}");
    let lines = damaged_lines(&out);
    assert_eq!(lines.len(), expect.len(), "{out:?}");
    for e in expect {
        assert!(
            lines.iter().any(|l| l.contains(e)),
            "no DAMAGED line names {e:?}: {out:?}"
        );
    }
    assert_contains(&out.stdout, &format!("; {} damaged", expect.len()));
    assert_unchanged(&f.vault, &before);
    out
}

/// Exports a tampered vault and checks it fails, names the damage, leaves
/// the damaged entries out and exports everything else intact.
#[track_caller]
fn export_skips(f: &Fixture, src: &Path, missing: &[&str], named: &[&str]) {
    let dest = f.path("export");
    let out = failed(f.export(&dest));
    assert_eq!(out.code, Some(3), "{out:?}");
    for n in named {
        assert!(
            damaged_lines(&out).iter().any(|l| l.contains(n)),
            "export does not name {n:?}: {out:?}"
        );
    }
    assert_contains(&out.stderr, "were not exported");
    for m in missing {
        assert!(
            fs::symlink_metadata(dest.join(m)).is_err(),
            "damaged {m} was exported"
        );
    }
    assert_same(
        &tree_view_without(src, missing),
        &tree_view_without(&dest, &[]),
        "intact entries of a damaged vault",
    );
}

#[test]
fn flipped_ciphertext_byte_is_named_by_fsck_and_skipped_by_export() {
    let (f, src) = tamper_fixture();
    let host = host_of(&f, REPORT);
    // A byte inside the second block's ciphertext.
    flip_byte(&host, HEADER_LEN + BLOCK + AES_OVERHEAD + 100);

    let out = fsck_reports(&f, &["DAMAGED docs/report.txt "]);
    assert_contains(&out.stderr, &host.display().to_string());
    assert_contains(&out.stderr, "1 of 3 blocks failed authentication (block 1)");

    let (out, v) = f.fsck_json();
    assert_eq!(out.code, Some(3), "{out:?}");
    let damaged = v["damaged"].as_array().expect("damaged array");
    assert_eq!(damaged.len(), 1, "{v}");
    assert_eq!(damaged[0]["path"], "docs/report.txt", "{v}");
    assert_eq!(damaged[0]["ciphertext"], host.to_string_lossy().as_ref());

    export_skips(&f, &src, &["docs/report.txt"], &["docs/report.txt"]);
}

#[test]
fn flipped_header_byte_is_reported() {
    let (f, src) = tamper_fixture();
    let host = host_of(&f, TOP);
    flip_byte(&host, 15); // inside the file ID
    fsck_reports(&f, &["DAMAGED top.bin "]);
    export_skips(&f, &src, &["top.bin"], &["top.bin"]);
}

#[test]
fn swapped_ciphertext_names_are_both_reported() {
    let (f, src) = tamper_fixture();
    let a = host_of(&f, REPORT);
    let b = host_of(&f, NOTES);
    assert_eq!(a.parent(), b.parent(), "both live in docs/");
    let tmp = a.with_file_name("swap-tmp");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();

    fsck_reports(&f, &["DAMAGED docs/notes.txt ", "DAMAGED docs/report.txt "]);
    export_skips(
        &f,
        &src,
        &["docs/notes.txt", "docs/report.txt"],
        &["docs/notes.txt", "docs/report.txt"],
    );
}

#[test]
fn missing_directory_id_is_reported() {
    let (f, src) = tamper_fixture();
    let inner = host_of(&f, DEEP).parent().unwrap().to_path_buf();
    let dirid = inner.join("pivault.dirid");
    assert!(dirid.is_file());
    fs::remove_file(&dirid).unwrap();

    let out = fsck_reports(&f, &["DAMAGED sub/inner "]);
    assert_contains(&out.stderr, "pivault.dirid");
    export_skips(&f, &src, &["sub/inner"], &["sub/inner"]);
    assert!(f.path("export/sub").is_dir());
}

#[test]
fn foreign_file_in_the_vault_is_reported() {
    let (f, src) = tamper_fixture();
    let junk = f.vault.join("junk.txt");
    fs::write(&junk, b"not ciphertext\n").unwrap();
    let out = fsck_reports(&f, &["junk.txt"]);
    assert_contains(&out.stderr, &junk.display().to_string());
    export_skips(&f, &src, &[], &["junk.txt"]);
}

#[test]
fn truncation_at_a_block_boundary_is_reported() {
    let (f, src) = tamper_fixture();
    let host = host_of(&f, REPORT);
    let cut = HEADER_LEN + 2 * (BLOCK + AES_OVERHEAD);
    assert!(fs::metadata(&host).unwrap().len() > cut);
    fs::OpenOptions::new()
        .write(true)
        .open(&host)
        .unwrap()
        .set_len(cut)
        .unwrap();
    fsck_reports(&f, &["DAMAGED docs/report.txt "]);
    export_skips(&f, &src, &["docs/report.txt"], &["docs/report.txt"]);
}

#[test]
fn truncation_to_the_header_is_reported() {
    let (f, src) = tamper_fixture();
    let host = host_of(&f, NOTES);
    fs::OpenOptions::new()
        .write(true)
        .open(&host)
        .unwrap()
        .set_len(HEADER_LEN)
        .unwrap();
    fsck_reports(&f, &["DAMAGED docs/notes.txt "]);
    export_skips(&f, &src, &["docs/notes.txt"], &["docs/notes.txt"]);
}

#[test]
fn swapped_directory_names_are_both_reported() {
    let (f, src) = tamper_fixture();
    let docs = host_of(&f, REPORT).parent().unwrap().to_path_buf();
    let sub = host_of(&f, DEEP)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    assert_eq!(docs.parent(), Some(f.vault.as_path()));
    assert_eq!(sub.parent(), Some(f.vault.as_path()));
    let tmp = f.vault.join("swap-tmp");
    fs::rename(&docs, &tmp).unwrap();
    fs::rename(&sub, &docs).unwrap();
    fs::rename(&tmp, &sub).unwrap();

    fsck_reports(&f, &["DAMAGED docs ", "DAMAGED sub "]);
    export_skips(&f, &src, &["docs", "sub"], &["docs", "sub"]);
}

#[test]
fn tampered_symlink_target_is_reported() {
    let (f, src) = tamper_fixture();
    let links: Vec<PathBuf> = snapshot(&f.vault)
        .into_iter()
        .filter(|(_, n)| matches!(n, Node::Symlink { .. }))
        .map(|(p, _)| f.vault.join(p))
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    let sealed = fs::read_link(&links[0]).unwrap();
    let mut t = sealed.to_string_lossy().into_owned();
    let mid = t.len() / 2;
    let c = if &t[mid..=mid] == "A" { "B" } else { "A" };
    t.replace_range(mid..=mid, c);
    fs::remove_file(&links[0]).unwrap();
    std::os::unix::fs::symlink(&t, &links[0]).unwrap();

    fsck_reports(&f, &["DAMAGED link "]);
    export_skips(&f, &src, &["link"], &["link"]);
}

#[test]
fn import_skips_sockets_and_says_so() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("kept.txt"), b"kept\n").unwrap();
    let sock = src.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = ok(f.import(&src));
    assert_contains(&out.stderr, &format!("skipped {}", sock.display()));
    assert_contains(&out.stderr, "Imported 1 files");
    let dest = f.path("out");
    ok(f.export(&dest));
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [OsStr::new("kept.txt")]);
}

/// PRODUCT BUG (vault-fuse/src/transfer.rs, fifo branch of `import_dir`):
/// a fifo whose encrypted name needs the long-name scheme is created as
/// `pivault.long.*` without its `.name` side file (`prepare_name` is never
/// called for fifos), so fsck and export report it as damaged.
#[test]

fn long_named_fifo_round_trips() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir(&src).unwrap();
    mkfifo(&src.join("p".repeat(255)), 0o600);
    ok(f.import(&src));
    let out = ok(f.fsck());
    assert_contains(&out.stdout, "0 damaged");
    let dest = f.path("out");
    ok(f.export(&dest));
    assert_same(&tree_view(&src), &tree_view(&dest), "long-named fifo");
}
