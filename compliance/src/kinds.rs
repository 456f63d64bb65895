//! The report's closed sets of values as types: a section's status, a
//! slot's kind and KDF, a listener's mode and client-certificate rule, and
//! what enforces a control. Each serialises to exactly the string the JSON
//! report has always carried (docs/COMPLIANCE.md), so consumers written
//! against the strings keep working, and the renderers cannot misspell one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Status of a section.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    /// The JSON name, also the CSS class of the html form's badges.
    pub fn key(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Partly => "partly",
            Status::FirmsDuty => "firms_duty",
            Status::Finding => "finding",
        }
    }

    /// How much a status asks of a reader: a finding first, then a gap.
    /// "Firm's duty" ranks below "met": it says nothing about the machine,
    /// so a machine whose every section is the firm's reads as such only
    /// when nothing was measured at all.
    fn rank(self) -> u8 {
        match self {
            Status::FirmsDuty => 0,
            Status::Met => 1,
            Status::Partly => 2,
            Status::Finding => 3,
        }
    }

    /// The overall status of several sections: the one that asks most.
    /// `None` for no sections.
    pub fn overall(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
        statuses.into_iter().max_by_key(|s| s.rank())
    }
}

/// How a slot opens the keyring (`pivault keys add-*`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// A passphrase stretched with Argon2id.
    Passphrase,
    /// A random 256-bit recovery key.
    Recovery,
    /// K of N Shamir shares.
    Shares,
    /// An organisation's age identity.
    Escrow,
}

impl SlotKind {
    /// The keystore's kind, as `pivault keys list` names it.
    pub fn of(k: keys::SlotKind) -> SlotKind {
        match k {
            keys::SlotKind::Passphrase => SlotKind::Passphrase,
            keys::SlotKind::Recovery => SlotKind::Recovery,
            keys::SlotKind::Shares => SlotKind::Shares,
            keys::SlotKind::Escrow => SlotKind::Escrow,
        }
    }

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Passphrase => "passphrase",
            SlotKind::Recovery => "recovery",
            SlotKind::Shares => "shares",
            SlotKind::Escrow => "escrow",
        }
    }
}

/// How a slot's secret becomes a key.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfAlgorithm {
    /// Passphrase slots.
    #[serde(rename = "argon2id")]
    Argon2id,
    /// Recovery and share slots (the secret is already uniform).
    #[serde(rename = "hkdf-sha256")]
    HkdfSha256,
    /// Escrow slots.
    #[serde(rename = "age-x25519")]
    AgeX25519,
}

impl KdfAlgorithm {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            KdfAlgorithm::Argon2id => "argon2id",
            KdfAlgorithm::HkdfSha256 => "hkdf-sha256",
            KdfAlgorithm::AgeX25519 => "age-x25519",
        }
    }
}

/// A gateway listener's mode (docs/PROXY.md).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ListenerMode {
    /// HTTPS reverse proxy.
    Http,
    /// TLS tunnel to a TCP upstream.
    Tcp,
    /// Plaintext in from local clients, TLS out.
    Originate,
    /// Plaintext listener that only redirects to HTTPS.
    Redirect,
}

impl ListenerMode {
    /// The configuration's mode.
    pub fn of(m: vault_proxy::config::Mode) -> ListenerMode {
        use vault_proxy::config::Mode;
        match m {
            Mode::Http => ListenerMode::Http,
            Mode::Tcp => ListenerMode::Tcp,
            Mode::Originate => ListenerMode::Originate,
            Mode::Redirect => ListenerMode::Redirect,
        }
    }

    /// The JSON and configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerMode::Http => "http",
            ListenerMode::Tcp => "tcp",
            ListenerMode::Originate => "originate",
            ListenerMode::Redirect => "redirect",
        }
    }
}

/// A listener's rule for client certificates.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificates {
    /// `client_ca` is set: no handshake completes without one.
    #[serde(rename = "required")]
    Required,
    /// A TLS listener without `client_ca`.
    #[serde(rename = "not requested")]
    NotRequested,
    /// A plaintext listener.
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl ClientCertificates {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCertificates::Required => "required",
            ClientCertificates::NotRequested => "not requested",
            ClientCertificates::NotApplicable => "n/a",
        }
    }
}

/// What enforces a control.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcedBy {
    /// Holds against anyone without the keys, wherever the data goes.
    #[serde(rename = "cryptographic")]
    Cryptography,
    /// Binds the pivault software on this machine; someone with a copy of
    /// the vault and their own program is not bound by it.
    #[serde(rename = "enforced by pivault on this machine")]
    Pivault,
}

impl EnforcedBy {
    /// The JSON name, also the md and html text.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcedBy::Cryptography => "cryptographic",
            EnforcedBy::Pivault => "enforced by pivault on this machine",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(
    SlotKind,
    KdfAlgorithm,
    ListenerMode,
    ClientCertificates,
    EnforcedBy
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON strings are the report's interface: each value, both ways.
    #[test]
    fn serialise_to_the_documented_strings() {
        fn both<T>(v: T, s: &str)
        where
            T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
        {
            let json = serde_json::to_string(&v).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""), "{v:?}");
            let back: Option<T> = serde_json::from_str(&json).ok();
            assert_eq!(back.as_ref(), Some(&v), "{s}");
        }
        for (v, s) in [
            (Status::Met, "met"),
            (Status::Partly, "partly"),
            (Status::FirmsDuty, "firms_duty"),
            (Status::Finding, "finding"),
        ] {
            both(v, s);
            assert_eq!(v.key(), s);
        }
        for (v, s) in [
            (SlotKind::Passphrase, "passphrase"),
            (SlotKind::Recovery, "recovery"),
            (SlotKind::Shares, "shares"),
            (SlotKind::Escrow, "escrow"),
        ] {
            both(v, s);
            assert_eq!(v.as_str(), s);
        }
        for (v, s) in [
            (KdfAlgorithm::Argon2id, "argon2id"),
            (KdfAlgorithm::HkdfSha256, "hkdf-sha256"),
            (KdfAlgorithm::AgeX25519, "age-x25519"),
        ] {
            both(v, s);
            assert_eq!(v.as_str(), s);
        }
        for (v, s) in [
            (ListenerMode::Http, "http"),
            (ListenerMode::Tcp, "tcp"),
            (ListenerMode::Originate, "originate"),
            (ListenerMode::Redirect, "redirect"),
        ] {
            both(v, s);
            assert_eq!(v.as_str(), s);
        }
        for (v, s) in [
            (ClientCertificates::Required, "required"),
            (ClientCertificates::NotRequested, "not requested"),
            (ClientCertificates::NotApplicable, "n/a"),
        ] {
            both(v, s);
            assert_eq!(v.as_str(), s);
        }
        both(EnforcedBy::Cryptography, "cryptographic");
        both(EnforcedBy::Pivault, "enforced by pivault on this machine");
    }

    #[test]
    fn overall_is_the_status_that_asks_most() {
        use Status::*;
        let cases: &[(&[Status], Option<Status>)] = &[
            (&[], None),
            (&[FirmsDuty, FirmsDuty], Some(FirmsDuty)),
            (&[FirmsDuty, Met], Some(Met)),
            (&[Met, Partly, FirmsDuty], Some(Partly)),
            (&[Met, Finding, Partly], Some(Finding)),
            (&[Finding], Some(Finding)),
        ];
        for (input, want) in cases {
            assert_eq!(Status::overall(input.iter().copied()), *want, "{input:?}");
        }
    }
}
