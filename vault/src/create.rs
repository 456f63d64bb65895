//! Creating a vault: a new or empty directory becomes a vault with a
//! keystore (one passphrase slot), the root directory ID file and the
//! first audit record, or is left exactly as it was found.
//!
//! The directory is taken first (`pivault.lock`, created exclusively and
//! held), so two creations on one empty directory cannot both proceed, and
//! the one that loses has written nothing; a failure after that removes
//! only the files this run made, never another run's.

use crate::lock::VaultLock;
use crate::tree::Vault;
use crate::{Error, Result};
use keys::{KdfParams, Keystore, Passphrase};
use std::path::Path;
use vault_core::{Keyring, Suite, VaultCipher};

impl Vault {
    /// Checks, without writing, that `dir` can become a vault: missing,
    /// or an empty directory (callers ask for a passphrase only then).
    pub fn check_creatable(dir: &Path) -> Result<()> {
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if Keystore::exists(dir) {
                    return Err(Error::AlreadyVault(dir.to_path_buf()));
                }
                if entries.next().is_some() {
                    return Err(Error::NotEmpty(dir.to_path_buf()));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                Err(Error::NotADirectory(dir.to_path_buf()))
            }
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Creates a vault in `dir` (made if missing; else it must be an
    /// empty directory) with one passphrase slot. Records `init` in the
    /// new vault's audit log. Returns the keystore and the keyring.
    pub fn create(
        dir: &Path,
        suite: Suite,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<(Keystore, Keyring)> {
        Self::check_creatable(dir)?;
        let created_dir = match std::fs::create_dir(dir) {
            Ok(()) => true,
            // Made by another creation at the same moment: the lock decides.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::io(dir, e)),
        };
        let lock = match VaultLock::create_new(dir) {
            Ok(lock) => lock,
            Err(e) => {
                if created_dir {
                    // Only if still empty: the other run may be filling it.
                    let _ = std::fs::remove_dir(dir);
                }
                return Err(e);
            }
        };
        // What this run writes, and so what a failure removes: only names
        // that did not exist when it took the directory.
        let own: Vec<&str> = [
            keys::KEYSTORE_FILE,
            vault_core::DIRID_FILE,
            keys::audit::AUDIT_FILE,
            keys::KEYSTORE_LOCK_FILE,
        ]
        .into_iter()
        .filter(|n| std::fs::symlink_metadata(dir.join(n)).is_err())
        .collect();
        let made = Keystore::create(dir, suite, pass, kdf)
            .map_err(Error::Keys)
            .and_then(|(ks, keyring)| {
                Vault::init(dir, &VaultCipher::new(keyring.clone(), suite))?;
                keys::audit::append(dir, Some(&keyring), keys::audit::Event::new("init"))
                    .map_err(Error::Keys)?;
                Ok((ks, keyring))
            });
        match made {
            Ok(made) => {
                drop(lock);
                Ok(made)
            }
            Err(e) => {
                for name in own {
                    let _ = std::fs::remove_file(dir.join(name));
                }
                let _ = std::fs::remove_file(dir.join(crate::LOCK_FILE));
                drop(lock);
                if created_dir {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass() -> Passphrase {
        Passphrase::new(b"a passphrase for the creation test".to_vec())
    }

    #[test]
    fn creates_a_vault_that_opens_and_records_init() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("v");
        let (ks, keyring) =
            Vault::create(&dir, Suite::Aes256Gcm, &pass(), KdfParams::insecure_test()).unwrap();
        assert_eq!(ks.slots().len(), 1);
        Vault::open(dir.clone(), VaultCipher::new(keyring, Suite::Aes256Gcm)).unwrap();
        let log = keys::audit::read(&dir).unwrap();
        assert_eq!(log[0].event, "init");
        assert!(keys::audit::verify(&dir).unwrap().is_intact());
    }

    #[test]
    fn refuses_a_non_empty_directory_or_a_vault_and_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("thesis.docx"), b"mine").unwrap();
        let e = Vault::create(
            d.path(),
            Suite::Aes256Gcm,
            &pass(),
            KdfParams::insecure_test(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::NotEmpty(_)), "{e}");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["thesis.docx"]);

        let v = d.path().join("v");
        Vault::create(&v, Suite::Aes256Gcm, &pass(), KdfParams::insecure_test()).unwrap();
        let before = std::fs::read(v.join(keys::KEYSTORE_FILE)).unwrap();
        let e =
            Vault::create(&v, Suite::Aes256Gcm, &pass(), KdfParams::insecure_test()).unwrap_err();
        assert!(matches!(e, Error::AlreadyVault(_)), "{e}");
        assert_eq!(std::fs::read(v.join(keys::KEYSTORE_FILE)).unwrap(), before);
    }

    #[test]
    fn a_failed_creation_leaves_the_directory_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("v");
        // Parameters the keystore refuses (weaker than the floor, not
        // marked test-only): the creation fails after taking the directory.
        let weak = KdfParams {
            test_only: false,
            ..KdfParams::insecure_test()
        };
        assert!(Vault::create(&dir, Suite::Aes256Gcm, &pass(), weak).is_err());
        assert!(!dir.exists(), "the directory it made is removed again");
        std::fs::create_dir(&dir).unwrap();
        assert!(Vault::create(&dir, Suite::Aes256Gcm, &pass(), weak).is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "left empty");
    }
}
