//! The report's data model. Its serde form is the JSON output
//! (`--format json`) and what `pivault compliance merge` reads back; the
//! field names are stable and documented in docs/COMPLIANCE.md ("JSON
//! fields"). Add fields, never rename them.

pub use crate::kinds::*;
use serde::{Deserialize, Serialize};

/// JSON schema version of the report (bumped only on an incompatible change).
pub const SCHEMA: u32 = 1;

/// The `report` field of a machine's report.
pub const REPORT_KIND: &str = "pivault compliance report";

/// The regulation the sections map to.
pub const REGULATION: &str = "201 CMR 17.00 (Massachusetts): Standards for the Protection of Personal Information of Residents of the Commonwealth";

/// A vault's current data key older than this many days is a stale
/// rotation: a caution in 17.04(5) and a fleet total. A year, because the
/// usual reason to rotate that pivault cannot see (someone who left kept a
/// copy of a keystore) is reviewed at least annually under 17.03(2)(i).
pub const ROTATION_MAX_AGE_DAYS: u64 = 365;

/// The whole report.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Report {
    /// Always [`REPORT_KIND`].
    pub report: String,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The regulation the sections map to.
    pub regulation: String,
    /// The machine the state was read on (`--hostname`,
    /// `PIVAULT_HOSTNAME`, or the system's host name): one row of a fleet
    /// report.
    pub host: String,
    /// When the report was made (RFC 3339 UTC).
    pub generated: String,
    /// Version of the pivault binary that read the state.
    pub pivault_version: String,
    /// The period failed unseals are counted in.
    pub period: Period,
    /// [`ROTATION_MAX_AGE_DAYS`]: the age past which a vault's current data
    /// key counts as a stale rotation.
    pub rotation_max_age_days: u64,
    /// One entry per vault named on the command line.
    pub vaults: Vec<VaultEvidence>,
    /// The gateway configuration, when `--proxy-config` was given.
    pub proxy: Option<ProxyEvidence>,
    /// One per technical requirement of 17.04, in order.
    pub sections: Vec<Section>,
    /// What remains the firm's own duty under 17.03 and 17.04.
    pub firm_duties: Vec<Duty>,
}

/// `since` .. `until`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Period {
    /// Start (RFC 3339 UTC).
    pub since: String,
    /// End: the time of the report.
    pub until: String,
}

/// One requirement of 17.04 and the evidence for it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Section {
    /// "17.04(1)" ...
    pub id: String,
    /// Short stable key ("authentication", "access_control", ...).
    pub key: String,
    /// Title.
    pub title: String,
    /// What the regulation asks, in short.
    pub requirement: String,
    /// Computed from the state.
    pub status: Status,
    /// The status in words, with the first finding or caution.
    pub status_text: String,
    /// What the state shows.
    pub evidence: Vec<String>,
    /// Things that need action (make the status `finding`).
    pub findings: Vec<String>,
    /// Gaps that leave it `partly`.
    pub cautions: Vec<String>,
    /// What the firm must do or show itself for this requirement.
    pub firm_duty: Vec<String>,
    /// How each of pivault's controls for it holds: by the cryptography
    /// (it holds against anyone without the keys, wherever the data goes)
    /// or by pivault on this machine (it binds the pivault software only).
    pub enforcement: Vec<Enforcement>,
}

/// One control and what enforces it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Enforcement {
    /// The control.
    pub control: String,
    /// What enforces it.
    pub by: EnforcedBy,
}

/// One vault.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct VaultEvidence {
    /// The path as given.
    pub path: String,
    /// The vault's random ID (hex).
    pub vault_id: String,
    /// Keystore format version read.
    pub keystore_format: u32,
    /// Content cipher suite.
    pub suite: String,
    /// When the vault was made.
    pub created: String,
    /// Key slots.
    pub slots: Vec<SlotEvidence>,
    /// Data-key versions in the keyring.
    pub data_keys: Vec<DataKey>,
    /// Key-management events from the audit log (whole log).
    pub key_history: Vec<KeyEvent>,
    /// Rotations from the audit log (whole log).
    pub rotations: Vec<Rotation>,
    /// When the current data key was made: the last rotation in the audit
    /// log, or the vault's creation.
    pub data_key_since: String,
    /// Whole days from `data_key_since` to the report.
    pub data_key_age_days: u64,
    /// `data_key_age_days` is over the report's `rotation_max_age_days`.
    pub rotation_stale: bool,
    /// `pivault audit verify`.
    pub audit: AuditEvidence,
    /// Successful unseals in the period.
    pub unseals_in_period: u64,
    /// Successful unseals in the period by OS user.
    pub unseals_by_user: Vec<UserCount>,
    /// Failed unseals in the period.
    pub failed_unseals_in_period: u64,
    /// The failed unseals in the period (at most the last 50).
    pub failed_unseals: Vec<FailedUnseal>,
}

/// One key slot.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SlotEvidence {
    /// Slot number.
    pub id: u32,
    /// passphrase | recovery | shares | escrow.
    pub kind: SlotKind,
    /// Creation time.
    pub created: String,
    /// Last successful unseal (from the audit log).
    pub last_use: Option<String>,
    /// Failed unseals in a row since the last success.
    pub failures: u32,
    /// Locked by its max-failures policy.
    pub locked: bool,
    /// How the secret becomes a key.
    pub kdf: KdfEvidence,
    /// Unseal policy.
    pub policy: PolicyEvidence,
    /// Share slots: shares needed.
    pub threshold: Option<u8>,
    /// Share slots: shares made.
    pub shares: Option<u8>,
    /// Escrow slots: the age recipient.
    pub recipient: Option<String>,
    /// Carried over from keystore format 1.
    pub legacy: bool,
    /// The passphrase was accepted below the strength rule
    /// (`--allow-weak-passphrase`).
    pub weak_passphrase: bool,
}

/// KDF of a slot.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KdfEvidence {
    /// argon2id | hkdf-sha256 | age-x25519.
    pub algorithm: KdfAlgorithm,
    /// Argon2id memory, KiB.
    pub m_kib: Option<u32>,
    /// Argon2id passes.
    pub t: Option<u32>,
    /// Argon2id lanes.
    pub p: Option<u32>,
    /// Deliberately weak parameters for test suites.
    pub test_only: bool,
    /// Weaker than RFC 9106's second recommendation (m=64 MiB, t=3, p=4).
    pub below_minimum: bool,
}

/// A slot's policy.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PolicyEvidence {
    /// Any restriction at all.
    pub restricted: bool,
    /// OS users allowed (empty: anyone holding the secret).
    pub users: Vec<String>,
    /// Last instant the slot unseals.
    pub expires: Option<String>,
    /// The expiry has passed.
    pub expired: bool,
    /// Failed unseals in a row before the slot locks.
    pub max_failures: Option<u32>,
}

/// A data-key version.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DataKey {
    /// Version number.
    pub version: u32,
    /// The one new writes use.
    pub current: bool,
}

impl DataKey {
    /// The versions as a reader sees them: "1, 2 (current)".
    pub fn list(keys: &[DataKey]) -> String {
        keys.iter()
            .map(|d| {
                if d.current {
                    format!("{} (current)", d.version)
                } else {
                    d.version.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A key-management event.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KeyEvent {
    /// Record number in the audit log.
    pub seq: u64,
    /// When.
    pub time: String,
    /// The record's event name (init, rotate, reencrypt, retire, slot-add...).
    pub event: String,
    /// The slot involved.
    pub slot: Option<u32>,
    /// OS user.
    pub user: String,
    /// In words.
    pub summary: String,
}

/// A rotation.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Rotation {
    /// When.
    pub time: String,
    /// The new data-key version.
    pub new_version: Option<u64>,
    /// OS user.
    pub user: String,
}

/// The audit log's verification.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AuditEvidence {
    /// The log file.
    pub file: String,
    /// Records read.
    pub records: u64,
    /// Records with a valid signature.
    pub signed: u64,
    /// Trailing failed unseals not yet covered by a signed record.
    pub uncovered: u64,
    /// SHA-256 of the verifying key (hex).
    pub key_fingerprint: Option<String>,
    /// No problem found.
    pub intact: bool,
    /// The first problem.
    pub problem: Option<AuditProblem>,
    /// Time of the first record.
    pub first_record: Option<String>,
    /// Time of the last record.
    pub last_record: Option<String>,
}

/// The first bad record.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AuditProblem {
    /// Record number (line = record + 1).
    pub record: u64,
    /// What is wrong.
    pub what: String,
}

/// Unseals by one user.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct UserCount {
    /// OS user name.
    pub user: String,
    /// Count.
    pub count: u64,
}

/// A failed unseal.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FailedUnseal {
    /// Record number.
    pub seq: u64,
    /// When.
    pub time: String,
    /// OS user.
    pub user: String,
    /// Host.
    pub host: String,
    /// Slots tried.
    pub tried: Vec<u64>,
    /// Why it failed.
    pub reason: Option<String>,
}

/// The gateway configuration.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ProxyEvidence {
    /// The file.
    pub config: String,
    /// Access log (JSON lines), if any.
    pub access_log: Option<String>,
    /// Metrics listener, if any.
    pub metrics_listen: Option<String>,
    /// Listeners in file order.
    pub listeners: Vec<ListenerEvidence>,
}

/// One listener.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ListenerEvidence {
    /// Position in the file, from 1.
    pub index: usize,
    /// http | tcp | originate | redirect.
    pub mode: ListenerMode,
    /// Listen address.
    pub listen: String,
    /// Clients connect with TLS.
    pub tls_in: bool,
    /// Accepts plaintext from clients.
    pub plaintext_in: bool,
    /// Plaintext listener that only redirects to HTTPS.
    pub redirect_only: bool,
    /// TLS versions offered ("1.2", "1.3"), to clients (http, tcp) or to
    /// the upstream (originate).
    pub tls_versions: Vec<String>,
    /// Cipher suites (IANA names).
    pub cipher_suites: Vec<String>,
    /// "required" (client_ca set), "not requested", or "n/a".
    pub client_certificates: ClientCertificates,
    /// CA file client certificates are checked against.
    pub client_ca: Option<String>,
    /// Allow-list of client certificates, each rule as `allow` takes it
    /// (empty: every certificate that chains to `client_ca` is admitted;
    /// the gateway refuses an `allow` key with no rule).
    pub allow: Vec<String>,
    /// CRL files client certificates are checked against (empty: no
    /// revocation check).
    pub client_crl: Vec<String>,
    /// Strict-Transport-Security (http mode).
    pub hsts: Option<bool>,
    /// Redirect target (redirect mode).
    pub redirect_to: Option<String>,
    /// Upstream (http, tcp, originate).
    pub upstream: Option<String>,
    /// The upstream is on this host (loopback).
    pub upstream_loopback: Option<bool>,
    /// The upstream is reached with TLS (originate).
    pub upstream_tls: bool,
    /// Originate: CA bundle ("system roots" when unset).
    pub upstream_ca: Option<String>,
    /// Originate: a client certificate is presented upstream.
    pub upstream_client_certificate: bool,
    /// The key is sealed in a vault's keystore.
    pub key_sealed: bool,
    /// Extra certificates by SNI: their names.
    pub sni_names: Vec<String>,
}

/// A duty that stays with the firm.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Duty {
    /// Short stable key.
    pub key: String,
    /// Topic.
    pub topic: String,
    /// Where the regulation asks for it.
    pub regulation: String,
    /// What the firm must do.
    pub what: String,
    /// What pivault offers towards it, if anything.
    pub pivault_help: Option<String>,
}
