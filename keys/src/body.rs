//! The keystore file's framing and JSON body (docs/FORMAT.md §4): the
//! first line with the format version, the body, the checksum line.
//! Needs no secret.

use crate::slot::{KdfParams, SlotKind};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use subtle::ConstantTimeEq;

pub(crate) const MAGIC_LINE: &str = "pivault-keystore";
/// The format version this build writes. Versions 1 and 2 are still read.
pub(crate) const VERSION: u32 = 3;

/// The `wraps` value of a slot carried over from format version 1: its
/// KEK seals the keyring itself rather than the keyring wrapping key.
pub(crate) const WRAPS_KEYRING: &str = "keyring";
/// The `wraps` value of a slot carried over from format version 2: its
/// KEK seals the keyring wrapping key itself, so a new one cannot reach it
/// without its holder's secret.
pub(crate) const WRAPS_KWK: &str = "kwk";

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Body {
    pub vault_id: String,
    pub suite: String,
    pub created: u64,
    pub data_key_versions: Vec<u32>,
    pub next_slot: u32,
    /// Version 2: the keyring sealed under the keyring wrapping key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<String>,
    pub slots: Vec<SlotRecord>,
    /// The audit log's verifying key and tail anchor (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditAnchor>,
    /// Format 3: slots whose authenticator key a removed holder may know
    /// (it was in the keyring they saw); each is replaced at that slot's
    /// next unseal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_auth: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The public part of the audit log's protection, stored on every write.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditAnchor {
    /// base64 of the Ed25519 verifying key (32 bytes).
    pub key: String,
    /// Sequence number of the last complete log record at the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Lowercase hex SHA-256 of that record's line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Format 3: the signing keys the log had before this one, oldest
    /// first, each with the last record it signed (the hand-over record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<PreviousAuditKey>,
}

/// An audit signing key a rotation replaced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviousAuditKey {
    /// base64 of its Ed25519 verifying key.
    pub key: String,
    /// The sequence number of the last record it signed: the record that
    /// hands the log over to the next key.
    pub last_seq: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlotRecord {
    pub id: u32,
    pub kind: SlotKind,
    pub created: u64,
    /// Argon2id parameters (passphrase slots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    pub salt: String,
    /// Who may unseal with this slot, until when, how many failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::SlotPolicy>,
    /// `restricted`, or absent for an admin slot (see `role`).
    #[serde(default, skip_serializing_if = "crate::role::Role::is_admin")]
    pub role: Option<crate::role::Role>,
    /// Share slots: threshold, count, set and share hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<crate::shares::SharesInfo>,
    /// Escrow slots: the age recipient and the sealed slot secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<crate::escrow::EscrowInfo>,
    /// Version 2 only: `"keyring"` for a slot carried over from version 1
    /// (absent: the slot wraps the keyring wrapping key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wraps: Option<String>,
    /// Passphrase slots: the passphrase was below the strength rule when
    /// set and accepted with `--allow-weak-passphrase` (absent: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weak: bool,
    /// Format 3: the slot's X25519 public key (`age1…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
    /// Format 3: base64 of the age file that encrypts the keyring wrapping
    /// key to `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwk: Option<String>,
    /// Format 3: base64 of HMAC-SHA256 under the slot's authenticator key
    /// over the canonical body without `mac` and without any slot's
    /// `auth` (see `auth_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    pub wrapped: String,
}

/// How a slot's KEK leads to the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotForm {
    /// Format 1: the KEK seals the keyring itself.
    Keyring,
    /// Format 2: the KEK seals the keyring wrapping key.
    Kwk,
    /// Format 3: the KEK seals the slot's X25519 identity, to which the
    /// keyring wrapping key is encrypted.
    KeyPair,
}

impl SlotRecord {
    /// The slot's form in a keystore of format `version`.
    pub(crate) fn form(&self, version: u32) -> SlotForm {
        match (version, self.wraps.as_deref()) {
            (1, _) | (_, Some(WRAPS_KEYRING)) => SlotForm::Keyring,
            (2, _) | (_, Some(_)) => SlotForm::Kwk,
            _ => SlotForm::KeyPair,
        }
    }
}

/// Splits and checks a keystore file: version line, checksum, JSON body.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<(u32, Body)> {
    let nl = bytes.iter().position(|&b| b == b'\n');
    let first = nl.map(|i| &bytes[..i]).unwrap_or(bytes);
    let first = std::str::from_utf8(first).unwrap_or("");
    let version = first
        .strip_prefix(MAGIC_LINE)
        .and_then(|v| v.strip_prefix(' '))
        .ok_or_else(|| Error::corrupt(path, "it does not start with `pivault-keystore` (not a keystore, or overwritten with other data)"))?;
    // Strictly canonical decimal: no sign, no leading zeros.
    let canonical = !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && (version == "0" || !version.starts_with('0'));
    let version: u32 = version
        .parse()
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| Error::corrupt(path, "its format version is not a number"))?;
    if version > VERSION {
        return Err(Error::FutureVersion {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    if version == 0 {
        return Err(Error::corrupt(path, "format version 0 does not exist"));
    }
    // The checksum line is the last line: "sha256 <64 hex>\n".
    const SUM_LINE: usize = 7 + 64 + 1;
    if bytes.len() < SUM_LINE || !bytes.ends_with(b"\n") {
        return Err(Error::corrupt(
            path,
            "it is truncated (the checksum line is missing)",
        ));
    }
    let (content, sum_line) = bytes.split_at(bytes.len() - SUM_LINE);
    let want = sum_line
        .strip_prefix(b"sha256 ")
        .filter(|h| {
            h[..64]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        })
        .and_then(|h| hex::decode(&h[..64]).ok())
        .ok_or_else(|| Error::corrupt(path, "it is truncated (the checksum line is missing)"))?;
    let got = ring::digest::digest(&ring::digest::SHA256, content);
    if !bool::from(got.as_ref().ct_eq(&want)) {
        return Err(Error::corrupt(
            path,
            "its SHA-256 checksum does not match (the file was damaged or edited)",
        ));
    }
    let json = &content[nl.map(|i| i + 1).unwrap_or(0)..];
    let body: Body = serde_json::from_slice(json)
        .map_err(|e| Error::corrupt(path, format!("its contents are malformed ({e})")))?;
    if body.slots.is_empty() {
        return Err(Error::corrupt(path, "it has no slots"));
    }
    for s in &body.slots {
        if let Some(o) = s.kdf.as_ref().and_then(KdfParams::over_limit) {
            return Err(Error::KdfOverLimit {
                path: path.to_path_buf(),
                slot: s.id,
                what: o.what,
                value: o.value,
                limit: o.limit,
            });
        }
        match (s.kind, &s.kdf) {
            (SlotKind::Passphrase, None) => {
                return Err(Error::corrupt(
                    path,
                    format!("passphrase slot {} has no Argon2id parameters", s.id),
                ))
            }
            (SlotKind::Recovery | SlotKind::Shares | SlotKind::Escrow, Some(_)) => {
                return Err(Error::corrupt(
                    path,
                    format!("{} slot {} has Argon2id parameters", s.kind.name(), s.id),
                ))
            }
            _ => {}
        }
        if (s.kind == SlotKind::Shares) != s.shares.is_some()
            || (s.kind == SlotKind::Escrow) != s.escrow.is_some()
        {
            return Err(Error::corrupt(
                path,
                format!("slot {} does not have the members of its kind", s.id),
            ));
        }
        let key_pair = s.public.is_some() || s.kwk.is_some() || s.auth.is_some();
        if version < 3 && key_pair {
            return Err(Error::corrupt(
                path,
                format!(
                    "slot {} has a public key, which format {version} does not have",
                    s.id
                ),
            ));
        }
        if version >= 3
            && s.wraps.is_none()
            && !(s.public.is_some() && s.kwk.is_some() && s.auth.is_some())
        {
            return Err(Error::corrupt(
                path,
                format!(
                    "slot {} lacks its public key, wrapped key or authenticator",
                    s.id
                ),
            ));
        }
        if s.wraps.is_some() && key_pair {
            return Err(Error::corrupt(
                path,
                format!(
                    "slot {} is carried over from an older format but has a public key",
                    s.id
                ),
            ));
        }
        if (s.kind != SlotKind::Passphrase || s.policy.is_some())
            && (version == 1 || s.wraps.as_deref() == Some(WRAPS_KEYRING))
        {
            return Err(Error::corrupt(
                path,
                format!("slot {} is of a kind format 1 does not have", s.id),
            ));
        }
    }
    match version {
        1 if body.keyring.is_some()
            || body.audit.is_some()
            || body.slots.iter().any(|s| s.wraps.is_some()) =>
        {
            return Err(Error::corrupt(
                path,
                "it says format version 1 but has version-2 members",
            ))
        }
        2 | 3 if body.keyring.is_none() => {
            return Err(Error::corrupt(path, "its sealed keyring is missing"))
        }
        2 if body
            .slots
            .iter()
            .any(|s| s.wraps.as_deref().is_some_and(|w| w != WRAPS_KEYRING)) =>
        {
            return Err(Error::corrupt(path, "a slot has an unknown `wraps` value"))
        }
        3 if body.slots.iter().any(|s| {
            s.wraps
                .as_deref()
                .is_some_and(|w| w != WRAPS_KEYRING && w != WRAPS_KWK)
        }) =>
        {
            return Err(Error::corrupt(path, "a slot has an unknown `wraps` value"))
        }
        1 | 2
            if body.audit.as_ref().is_some_and(|a| !a.previous.is_empty())
                || !body.stale_auth.is_empty() =>
        {
            return Err(Error::corrupt(
                path,
                "it lists previous audit keys or stale authenticators, which its format does not have",
            ))
        }
        _ => {}
    }
    Ok((version, body))
}

/// The canonical MAC input: the compact body without `mac`.
pub(crate) fn mac_input(body: &Body) -> Vec<u8> {
    let mut b = body.clone();
    b.mac = None;
    serde_json::to_vec(&b).expect("keystore body serializes")
}

/// What each slot's authenticator covers: the compact body without `mac`
/// and without any slot's `auth`, after a per-slot prefix.
pub(crate) fn auth_input(body: &Body) -> Vec<u8> {
    let mut b = body.clone();
    b.mac = None;
    for s in &mut b.slots {
        s.auth = None;
    }
    serde_json::to_vec(&b).expect("keystore body serializes")
}

/// The whole file for `body` (which already carries its MAC).
pub(crate) fn frame(body: &Body) -> Vec<u8> {
    let mut out = format!("{MAGIC_LINE} {VERSION}\n").into_bytes();
    out.extend_from_slice(&serde_json::to_vec_pretty(body).expect("keystore body serializes"));
    out.push(b'\n');
    let sum = ring::digest::digest(&ring::digest::SHA256, &out);
    out.extend_from_slice(format!("sha256 {}\n", hex::encode(sum.as_ref())).as_bytes());
    out
}
