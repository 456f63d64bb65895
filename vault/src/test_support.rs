//! Helpers the crate's tests share: what a reader of a vault sees, and a
//! copy of a vault directory to cut a protocol short in.

use crate::tree::Vault;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Every plaintext path with its content ("dir" for a directory, the
/// target for a symlink), read by an export that must find no damage.
pub(crate) fn exported(v: &Vault) -> BTreeMap<String, Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("x");
    let r = crate::export(v, &dest, Default::default(), &crate::NoProgress).unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    let mut map = BTreeMap::new();
    fn walk(base: &Path, p: &Path, map: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                map.insert(rel, b"dir".to_vec());
                walk(base, &e.path(), map);
            } else if t.is_symlink() {
                let l = fs::read_link(e.path()).unwrap();
                map.insert(rel, l.as_os_str().as_encoded_bytes().to_vec());
            } else {
                map.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    walk(&dest, &dest, &mut map);
    map
}

/// `cp -a from to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}
