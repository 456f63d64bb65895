//! Key slots: how a secret a person holds becomes the key that unwraps the
//! keyring. A passphrase slot stretches the passphrase with Argon2id.

use crate::{Error, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use vault_core::{SecretBytes, SecretKey};
use zeroize::Zeroizing;

/// A passphrase: secret bytes, wiped on drop, never printed.
pub type Passphrase = SecretBytes;

/// The kind of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotKind {
    /// Opened by a passphrase through Argon2id.
    Passphrase,
    /// Opened by a random 256-bit recovery key (HKDF; no stretching needed).
    Recovery,
    /// Opened by any K of N Shamir shares of a random 256-bit secret.
    Shares,
    /// Opened by an organisation's age X25519 identity.
    Escrow,
}

impl SlotKind {
    /// The name shown by `pivault keys list`.
    pub fn name(self) -> &'static str {
        match self {
            SlotKind::Passphrase => "passphrase",
            SlotKind::Recovery => "recovery",
            SlotKind::Shares => "shares",
            SlotKind::Escrow => "escrow",
        }
    }
}

/// Argon2id cost parameters, as stored in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// True for the deliberately weak parameters tests may ask for; every
    /// unseal of such a slot is warned about.
    #[serde(default)]
    pub test_only: bool,
}

/// RFC 9106 §4 second recommendation: 64 MiB, t=3, p=4. pivault's default is
/// four times the memory (256 MiB, t=3, p=4), about a second on the 2-core
/// development VM (docs/FORMAT.md records the measurement).
impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_kib: 256 * 1024,
            t: 3,
            p: 4,
            test_only: false,
        }
    }
}

/// Which Argon2id parameter is above pivault's ceiling, by how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverLimit {
    /// The parameter, as the error names it.
    pub what: &'static str,
    /// Its value.
    pub value: u32,
    /// The ceiling.
    pub limit: u32,
}

impl KdfParams {
    /// The ceiling of the memory parameter: 4 GiB (in KiB), 16 times the
    /// default. Argon2id allocates m KiB before anything can be checked, so
    /// a keystore writer could otherwise make every unseal ask for up to
    /// 4 TiB (docs/FORMAT.md §4.3).
    pub const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    /// The ceiling of the passes: 64, about 21 times the default of 3 (the
    /// time an unseal takes grows with m × t).
    pub const MAX_T: u32 = 64;
    /// The ceiling of the lanes: 64, 16 times the default of 4.
    pub const MAX_P: u32 = 64;

    /// The first parameter above its ceiling ([`KdfParams::MAX_M_KIB`],
    /// [`KdfParams::MAX_T`], [`KdfParams::MAX_P`]), if any. Checked when a
    /// keystore is parsed, before any derivation.
    pub(crate) fn over_limit(&self) -> Option<OverLimit> {
        [
            ("memory (m_kib, in KiB)", self.m_kib, Self::MAX_M_KIB),
            ("passes (t)", self.t, Self::MAX_T),
            ("lanes (p)", self.p, Self::MAX_P),
        ]
        .into_iter()
        .find(|(_, value, limit)| value > limit)
        .map(|(what, value, limit)| OverLimit { what, value, limit })
    }

    /// The floor below which only `test_only` slots may go (RFC 9106's
    /// second recommendation).
    pub const MIN: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
        test_only: false,
    };

    /// Deliberately weak parameters for test suites: 64 KiB, t=1, p=1. They
    /// are recorded in the slot as `test_only` and warned about on every use.
    pub fn insecure_test() -> KdfParams {
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
            test_only: true,
        }
    }

    /// Checks the parameters are in range and, unless `test_only`, no
    /// weaker than [`KdfParams::MIN`].
    pub fn validate(&self) -> Result<()> {
        self.check_ceiling()?;
        Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| Error::KdfParams(e.to_string()))?;
        if !self.test_only
            && (self.m_kib < Self::MIN.m_kib || self.t < Self::MIN.t || self.p < Self::MIN.p)
        {
            return Err(Error::KdfParams(format!(
                "m={} KiB, t={}, p={} is weaker than RFC 9106's second recommendation (m=65536 KiB, t=3, p=4)",
                self.m_kib, self.t, self.p
            )));
        }
        Ok(())
    }

    fn check_ceiling(&self) -> Result<()> {
        match self.over_limit() {
            None => Ok(()),
            Some(o) => Err(Error::KdfParams(format!(
                "Argon2id {} = {} is above pivault's limit of {}",
                o.what, o.value, o.limit
            ))),
        }
    }

    /// Stretches `passphrase` with `salt` into a 256-bit key.
    pub fn derive(&self, passphrase: &Passphrase, salt: &[u8]) -> Result<SecretKey> {
        self.check_ceiling()?;
        let params = Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| Error::KdfParams(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.expose(), salt, out.as_mut())
            .map_err(|e| Error::KdfParams(e.to_string()))?;
        Ok(SecretKey::from_bytes(*out))
    }
}
