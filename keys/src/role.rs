//! Slot roles: an `admin` slot may add, remove and change slots and
//! policies, rotate and retire keys; a `restricted` slot may unseal and
//! change its own passphrase, nothing else. The role is in the slot record,
//! under the keystore MAC: a holder of a restricted slot who edits it there
//! makes the keystore fail its MAC check. A slot without a `role` member
//! (every slot of a keystore from before roles) is an admin slot, and the
//! last admin slot can be neither removed nor demoted.
//!
//! pivault enforces roles; the cryptography does not (a restricted slot
//! opens the same keyring): docs/THREAT-MODEL.md §6.

use crate::audit::Event;
use crate::body::SlotRecord;
use crate::keystore::Keystore;
use crate::unseal::Unsealed;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a slot's holder may do.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    #[default]
    Admin,
    /// Unseal, and change its own passphrase.
    Restricted,
}

impl Role {
    /// The name in the keystore and in `keys list`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Restricted => "restricted",
        }
    }

    /// Whether the record's `role` member is absent (admin).
    pub(crate) fn is_admin(r: &Option<Role>) -> bool {
        r.is_none_or(|r| r == Role::Admin)
    }
}

impl SlotRecord {
    /// The slot's role (absent: admin).
    pub(crate) fn role(&self) -> Role {
        self.role.unwrap_or_default()
    }
}

impl Keystore {
    /// Refuses `action` unless the slot that unsealed (`u`) is an admin
    /// slot; a refusal is itself recorded in the audit log.
    pub(crate) fn require_admin(&self, u: &Unsealed, action: &str) -> Result<()> {
        let role = u.role;
        if role == Role::Admin {
            return Ok(());
        }
        self.audited(
            u,
            Event::new("refused")
                .failed()
                .slot(u.slot)
                .detail("action", action)
                .detail("role", role.name()),
        );
        Err(Error::NotAdmin {
            slot: u.slot,
            action: action.to_string(),
        })
    }

    /// Refuses to leave the keystore without an admin slot once slot `id`
    /// is removed (`new_role` None) or given `new_role`.
    pub(crate) fn keep_an_admin(&self, id: u32, new_role: Option<Role>) -> Result<()> {
        let left = self
            .body
            .slots
            .iter()
            .filter(|s| {
                if s.id == id {
                    new_role == Some(Role::Admin)
                } else {
                    s.role() == Role::Admin
                }
            })
            .count();
        if left == 0 {
            return Err(Error::LastAdmin(id));
        }
        Ok(())
    }
}
