//! Every key change records itself: each mutation of the keystore (a slot
//! added, changed or removed, a policy set, a rotation, a retirement, a
//! recovery, an unlock) appends its own signed audit record inside the
//! library call, with the reason the caller gave when it unsealed. So a
//! program that uses this crate directly leaves the same trail as the
//! `pivault` command.

use crate::audit::{self, Event};
use crate::keystore::Keystore;
use crate::unseal::Unsealed;
use std::path::Path;

impl Keystore {
    /// Appends `event`, signed with `u`'s keyring, to this vault's log. The
    /// change it records is already made (and saved): a log that cannot
    /// be written is reported as a warning, never as a failed change.
    pub(crate) fn audited(&self, u: &Unsealed, event: Event) {
        let vault = self.path.parent().unwrap_or(Path::new("."));
        let event = match &u.reason {
            Some(r) => event.reason(r.clone()),
            None => event,
        };
        if let Err(e) = audit::append(vault, Some(&u.keyring), event) {
            tracing::warn!(
                "the key change was made, but the audit log {} could not record it: {e}",
                audit::path_in(vault).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{audit, KdfParams, Keystore, Passphrase, SlotPolicy};
    use vault_core::Suite;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.as_bytes().to_vec())
    }

    #[test]
    fn a_program_using_the_library_leaves_the_same_trail_as_the_cli() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        Keystore::create(d.path(), Suite::Aes256Gcm, &pass("one"), kdf).unwrap();
        let mut ks = Keystore::load(d.path()).unwrap();
        let secret = crate::Secret::Passphrase(pass("one"));
        let mut u = ks.unseal_as(&secret, None, "a library caller").unwrap();
        let id = ks
            .add_passphrase(&mut u, &pass("two"), kdf, crate::Role::Admin)
            .unwrap();
        ks.rotate(&mut u).unwrap();
        let policy = SlotPolicy {
            max_failures: Some(3),
            ..Default::default()
        };
        ks.set_policy(&mut u, id, policy, crate::Role::Restricted)
            .unwrap();
        ks.remove_slot(&mut u, id).unwrap();
        let log = audit::read(d.path()).unwrap();
        let events: Vec<(&str, Option<u32>, Option<&str>, bool)> = log
            .iter()
            .map(|r| {
                (
                    r.event.as_str(),
                    r.slot,
                    r.reason.as_deref(),
                    r.sig.is_some(),
                )
            })
            .collect();
        let why = Some("a library caller");
        assert_eq!(
            events,
            [
                ("slot-add", Some(id), why, true),
                ("audit-key-rotated", Some(0), why, true),
                ("rotate", Some(0), why, true),
                ("policy", Some(id), why, true),
                ("slot-remove", Some(id), why, true),
            ],
            "{log:#?}"
        );
        let v = audit::verify(d.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.problem);
    }
}
