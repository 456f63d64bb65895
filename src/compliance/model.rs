//! The report's data model. Its serde form is the JSON output
//! (`--format json`); the field names are stable and documented in
//! docs/COMPLIANCE.md ("JSON fields"). Add fields, never rename them.

use serde::Serialize;

/// JSON schema version of the report (bumped only on an incompatible change).
pub const SCHEMA: u32 = 1;

/// The whole report.
#[derive(Serialize, Debug)]
pub struct Report {
    /// Always "pivault compliance report".
    pub report: &'static str,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The regulation the sections map to.
    pub regulation: &'static str,
    /// When the report was made (RFC 3339 UTC).
    pub generated: String,
    /// Version of the pivault binary that read the state.
    pub pivault_version: &'static str,
    /// The period failed unseals are counted in.
    pub period: Period,
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
#[derive(Serialize, Debug)]
pub struct Period {
    /// Start (RFC 3339 UTC).
    pub since: String,
    /// End: the time of the report.
    pub until: String,
}

/// Status of a section.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The state read shows pivault provides the control.
    Met,
    /// pivault provides part of it; the rest is configuration or the firm's.
    Partly,
    /// Outside what software on the device can show.
    FirmsDuty,
    /// Something in the state needs action.
    Finding,
}

impl Status {
    /// The label shown in the md and html forms.
    pub fn label(self) -> &'static str {
        match self {
            Status::Met => "met by pivault",
            Status::Partly => "partly",
            Status::FirmsDuty => "firm's duty",
            Status::Finding => "finding",
        }
    }
}

/// One requirement of 17.04 and the evidence for it.
#[derive(Serialize, Debug)]
pub struct Section {
    /// "17.04(1)" ...
    pub id: &'static str,
    /// Short stable key ("authentication", "access_control", ...).
    pub key: &'static str,
    /// Title.
    pub title: &'static str,
    /// What the regulation asks, in short.
    pub requirement: &'static str,
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
#[derive(Serialize, Debug)]
pub struct Enforcement {
    /// The control.
    pub control: &'static str,
    /// [`CRYPTOGRAPHIC`] or [`BY_PIVAULT`].
    pub by: &'static str,
}

/// Holds against anyone without the keys, wherever the data goes.
pub const CRYPTOGRAPHIC: &str = "cryptographic";
/// Binds the pivault software on this machine; someone with a copy of the
/// vault and their own program is not bound by it.
pub const BY_PIVAULT: &str = "enforced by pivault on this machine";

/// One vault.
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
pub struct SlotEvidence {
    /// Slot number.
    pub id: u32,
    /// passphrase | recovery | shares | escrow.
    pub kind: &'static str,
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
#[derive(Serialize, Debug)]
pub struct KdfEvidence {
    /// argon2id | hkdf-sha256 | age-x25519.
    pub algorithm: &'static str,
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
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
pub struct Rotation {
    /// When.
    pub time: String,
    /// The new data-key version.
    pub new_version: Option<u64>,
    /// OS user.
    pub user: String,
}

/// The audit log's verification.
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
pub struct AuditProblem {
    /// Record number (line = record + 1).
    pub record: u64,
    /// What is wrong.
    pub what: String,
}

/// Unseals by one user.
#[derive(Serialize, Debug)]
pub struct UserCount {
    /// OS user name.
    pub user: String,
    /// Count.
    pub count: u64,
}

/// A failed unseal.
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
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
#[derive(Serialize, Debug)]
pub struct ListenerEvidence {
    /// Position in the file, from 1.
    pub index: usize,
    /// http | tcp | originate | redirect.
    pub mode: &'static str,
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
    pub tls_versions: Vec<&'static str>,
    /// Cipher suites (IANA names).
    pub cipher_suites: Vec<String>,
    /// "required" (client_ca set), "not requested", or "n/a".
    pub client_certificates: &'static str,
    /// CA file client certificates are checked against.
    pub client_ca: Option<String>,
    /// Allow-list of client certificates.
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
#[derive(Serialize, Debug)]
pub struct Duty {
    /// Short stable key.
    pub key: &'static str,
    /// Topic.
    pub topic: &'static str,
    /// Where the regulation asks for it.
    pub regulation: &'static str,
    /// What the firm must do.
    pub what: &'static str,
    /// What pivault offers towards it, if anything.
    pub pivault_help: Option<&'static str>,
}
