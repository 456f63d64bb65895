//! The vault directory's layout: every host file name pivault itself
//! writes in a vault, in one place, each taken from the crate that owns
//! the file (docs/FORMAT.md §2). Everything else in the root is the
//! encrypted tree.

/// The keystore (`keys`).
pub const KEYSTORE: &str = keys::KEYSTORE_FILE;
/// The keystore's write lock (`keys`).
pub const KEYSTORE_LOCK: &str = keys::KEYSTORE_LOCK_FILE;
/// The audit log (`keys`).
pub const AUDIT_LOG: &str = keys::audit::AUDIT_FILE;
/// How far the audit log was delivered to the audit server (`keys`).
pub const AUDIT_SHIPPED: &str = keys::audit_ship::SHIPPED_FILE;
/// The gateway's sealed TLS keys (`keys`).
pub const TLS_KEYS: &str = keys::sealed_keys::TLS_KEYS_FILE;
/// The vault lock (this crate).
pub const LOCK: &str = "pivault.lock";
/// The mark of a running read-write mount, gone once it unmounts: found
/// by the next mount, it means recovery (this crate, `recover`).
pub const MOUNTED: &str = "pivault.mounted";
/// A directory's ID file, in every directory of the tree (`vault-core`).
pub const DIRID: &str = vault_core::DIRID_FILE;
/// Prefix of temporary entries (never a valid encrypted name: base64url
/// has no dot).
pub const TEMP_PREFIX: &str = ".pivault-tmp-";

/// A directory's ID file bound to the place a rename is moving it to,
/// written before the host rename and removed after the ID file itself is
/// rebound (FORMAT.md §8): a crash in between leaves a directory that
/// opens by either name. Listings skip it (it has the temporary prefix).
pub const DIRID_NEXT: &str = ".pivault-tmp-dirid-next";

/// The root's files that belong to pivault, not to the tree.
pub const ROOT_FILES: &[&str] = &[
    KEYSTORE,
    AUDIT_LOG,
    AUDIT_SHIPPED,
    LOCK,
    MOUNTED,
    KEYSTORE_LOCK,
    TLS_KEYS,
];
