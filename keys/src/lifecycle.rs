//! Key lifecycle: rotation adds a data-key version and replaces the
//! keystore MAC key and the audit signing key; retirement removes the
//! versions no file uses any more. Both draw a new keyring wrapping key,
//! which reaches every format-3 slot through its public key, so slots
//! other than the one that unsealed need no secret of theirs to follow,
//! and a copy of an older keystore opens none of the new keys.

use crate::audit::Event;
use crate::keystore::Keystore;
use crate::unseal::Unsealed;
use crate::{Error, Result};

impl Keystore {
    /// Slots that seal the keyring itself (format 1) and so would keep
    /// handing out the old keyring after a key change; the slot that
    /// unsealed is not among them when its KEK is held (it is upgraded on
    /// the write).
    fn stale_after_key_change(&self, u: &Unsealed) -> Vec<u32> {
        self.body
            .slots
            .iter()
            .filter(|s| s.form(self.version) == crate::body::SlotForm::Keyring)
            .filter(|s| !(s.id == u.slot && u.upgrade_kek.is_some()))
            .map(|s| s.id)
            .collect()
    }

    fn change_keyring(
        &mut self,
        u: &mut Unsealed,
        hand_over: bool,
        change: impl FnOnce(&mut vault_core::Keyring) -> Result<()>,
    ) -> Result<()> {
        self.require_admin(u, "change the keyring (rotate or retire keys)")?;
        let stale = self.stale_after_key_change(u);
        if !stale.is_empty() {
            return Err(Error::LegacySlot {
                slots: stale,
                path: self.path.clone(),
            });
        }
        self.check_can_redraw(u, None)?;
        self.begin_write(u)?;
        self.redraw_kwk(u)?;
        let before = u.keyring.clone();
        change(&mut u.keyring)?;
        let vault = self
            .path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        let result = self.save_with(u, |u| match hand_over {
            true => crate::rewrap::hand_over_audit_key(&vault, u, &before),
            false => Ok(()),
        });
        u.audit_handover = None;
        if let Err(e) = result {
            u.keyring = before;
            return Err(e);
        }
        Ok(())
    }

    /// Adds a new random data-key version (it becomes the one new files
    /// use) and saves the keystore atomically. Returns the new version.
    pub fn rotate(&mut self, u: &mut Unsealed) -> Result<u32> {
        let mut new = 0;
        self.change_keyring(u, true, |k| {
            new = k.rotate()?;
            Ok(())
        })?;
        self.audited(
            u,
            Event::new("rotate").slot(u.slot).detail("new_version", new),
        );
        Ok(new)
    }

    /// Removes every data-key version below the current one and saves
    /// the keystore atomically. The caller must first have checked that no
    /// file uses them (`pivault reencrypt --retire` does): files still
    /// under a retired version no longer open. Returns the versions removed.
    pub fn retire_old_versions(&mut self, u: &mut Unsealed) -> Result<Vec<u32>> {
        let mut gone = Vec::new();
        self.change_keyring(u, false, |k| {
            gone = k.retire_below(k.current_version());
            Ok(())
        })?;
        if !gone.is_empty() {
            self.audited(
                u,
                Event::new("retire")
                    .slot(u.slot)
                    .detail("versions", gone.clone()),
            );
        }
        Ok(gone)
    }
}

impl Keystore {
    /// Starts (or resumes) moving the tree to a new tree key: the keyring
    /// gets a new random generation beside the old one and is saved.
    /// Returns (old, new) generation. Until [`Keystore::finish_tree_move`]
    /// only the move may open the vault (`vault_fuse::move_tree`).
    pub fn begin_tree_move(&mut self, u: &mut Unsealed) -> Result<(u32, u32)> {
        if u.keyring.tree_move_pending() {
            return u.keyring.begin_tree_move().map_err(Error::Core);
        }
        let mut gens = (0, 0);
        self.change_keyring(u, false, |k| {
            gens = k.begin_tree_move()?;
            Ok(())
        })?;
        self.audited(
            u,
            Event::new("names-move-started")
                .slot(u.slot)
                .detail("from_generation", gens.0)
                .detail("to_generation", gens.1),
        );
        Ok(gens)
    }

    /// Ends a move of the tree: the old tree key leaves the keyring, so
    /// no key a former holder kept names anything in the vault. Saves the
    /// keystore; returns the generations removed.
    pub fn finish_tree_move(&mut self, u: &mut Unsealed) -> Result<Vec<u32>> {
        // The gateway's sealed TLS keys hang off the tree secret too.
        let gens = u.keyring.tree_generations();
        if let (Some(old), Some(new)) = (
            gens.first().and_then(|g| u.keyring.tree_view(*g)),
            gens.last().and_then(|g| u.keyring.tree_view(*g)),
        ) {
            let vault = self.path.parent().unwrap_or(std::path::Path::new("."));
            crate::sealed_keys::reseal_all(vault, &old, &new)?;
        }
        let mut gone = Vec::new();
        self.change_keyring(u, false, |k| {
            gone = k.finish_tree_move();
            Ok(())
        })?;
        self.audited(
            u,
            Event::new("names-moved")
                .slot(u.slot)
                .detail("generation", u.keyring.tree_generations())
                .detail("removed", gone.clone()),
        );
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use crate::{KdfParams, Keystore, Passphrase};
    use vault_core::Suite;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.as_bytes().to_vec())
    }

    #[test]
    fn rotation_reaches_every_slot_without_their_passphrases() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        Keystore::create(d.path(), Suite::Aes256Gcm, &pass("one"), kdf).unwrap();
        let mut ks = Keystore::load(d.path()).unwrap();
        let mut u = ks.unseal_passphrase(&pass("one"), None).unwrap();
        ks.add_passphrase(&mut u, &pass("two"), kdf, crate::Role::Admin)
            .unwrap();
        assert_eq!(ks.rotate(&mut u).unwrap(), 2);
        let ks = Keystore::load(d.path()).unwrap();
        assert_eq!(ks.data_key_versions(), &[1, 2]);
        let u2 = ks.unseal_passphrase(&pass("two"), None).unwrap();
        assert_eq!(u2.slot, 1);
        assert_eq!(u2.keyring.versions(), vec![1, 2]);
        assert_eq!(u2.keyring.master(), u.keyring.master());
        let mut ks = ks;
        let mut u2 = u2;
        assert_eq!(ks.retire_old_versions(&mut u2).unwrap(), vec![1]);
        let ks = Keystore::load(d.path()).unwrap();
        let u1 = ks.unseal_passphrase(&pass("one"), None).unwrap();
        assert_eq!(u1.keyring.versions(), vec![2]);
        // A running process holding the KWK sees the change without a passphrase.
        assert_eq!(ks.reload_keyring(&u).unwrap().versions(), vec![2]);
    }

    #[test]
    fn a_tree_move_reseals_the_gateway_keys_out_of_reach_of_the_old_keyring() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        Keystore::create(d.path(), Suite::Aes256Gcm, &pass("one"), kdf).unwrap();
        let mut ks = Keystore::load(d.path()).unwrap();
        let mut u = ks.unseal_passphrase(&pass("one"), None).unwrap();
        let before = u.keyring.clone();
        let pem = b"-----BEGIN PRIVATE KEY-----\nnot a real key\n";
        crate::sealed_keys::seal(d.path(), &u.keyring, "gateway", pem).unwrap();
        let (old, new) = ks.begin_tree_move(&mut u).unwrap();
        assert_eq!((old, new), (0, 1));
        assert!(Keystore::load(d.path())
            .unwrap()
            .unseal_passphrase(&pass("one"), None)
            .unwrap()
            .keyring
            .tree_move_pending());
        assert_eq!(ks.finish_tree_move(&mut u).unwrap(), vec![0]);
        let now = Keystore::load(d.path())
            .unwrap()
            .unseal_passphrase(&pass("one"), None)
            .unwrap();
        assert_eq!(now.keyring.tree_generations(), vec![1]);
        assert_eq!(
            &crate::sealed_keys::open(d.path(), &now.keyring, "gateway").unwrap()[..],
            pem
        );
        assert!(crate::sealed_keys::open(d.path(), &before, "gateway").is_err());
    }
}
