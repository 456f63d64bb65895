//! The tree's own tests: directory renames cut at every point.

use super::*;
use vault_core::{Keyring, Suite};

/// A directory rename, stopped at each point a crash can leave it
/// (FORMAT.md §8): the directory and what is inside open under the
/// name it has on the host at that moment, old or new.
#[test]
fn a_directory_rename_cut_at_any_point_leaves_the_subtree_readable() {
    for stop in 0..4 {
        let d = tempfile::tempdir().unwrap();
        let ring = Keyring::generate().unwrap();
        let c = VaultCipher::new(ring.clone(), Suite::Aes256Gcm);
        Vault::init(d.path(), &c).unwrap();
        let v = Vault::open(d.path().to_path_buf(), c).unwrap();
        let a = v.mkdir(v.root(), b"a", 0o700).unwrap();
        let mut f = v.create_file(&a, b"inside", 0o600).unwrap();
        f.write_at(0, b"Jane Roe 078-05-1120").unwrap();
        drop(f);
        let (_, old_host) = v.encode(v.root(), b"a").unwrap();
        let (_, new_host) = v.encode(v.root(), b"b").unwrap();
        // The protocol: next binding, host rename, rebind.
        if stop >= 1 {
            v.prepare_dir_move(&old_host, &a.id, &v.root().id, b"b")
                .unwrap();
        }
        if stop >= 2 {
            fs::rename(&old_host, &new_host).unwrap();
        }
        if stop >= 3 {
            v.rebind_dir(&new_host, &a.id, &v.root().id, b"b").unwrap();
            assert!(!new_host.join(crate::layout::DIRID_NEXT).exists());
        }
        let name: &[u8] = if stop >= 2 { b"b" } else { b"a" };
        let v = Vault::open(
            d.path().to_path_buf(),
            VaultCipher::new(ring.clone(), Suite::Aes256Gcm),
        )
        .unwrap();
        let dir = v
            .subdir(v.root(), name)
            .unwrap_or_else(|e| panic!("stop {stop}: {e}"));
        assert_eq!(dir.id, a.id);
        let f = v.open_file(&dir, b"inside", false).unwrap();
        let mut buf = vec![0u8; 20];
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"Jane Roe 078-05-1120", "stop {stop}");
        // Listings never show the next binding.
        let listed = v.list(v.root()).unwrap();
        assert_eq!(listed.len(), 1, "stop {stop}");
        let inner = v.list(&dir).unwrap();
        assert_eq!(inner.len(), 1, "stop {stop}");
    }
}
