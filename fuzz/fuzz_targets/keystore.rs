//! The keystore file: framing, body and slots (keys::Keystore::parse),
//! then an unseal with the examples' passphrase. Whatever the bytes, a
//! keystore that unseals must give one of the keyrings that were sealed
//! with it (FORMAT.md's format-1 and format-3 examples).
#![no_main]
use keys::{Keystore, Passphrase};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ks) = Keystore::parse("fuzz.keystore".into(), data) else {
        return;
    };
    let slots = ks.slots();
    let _ = (ks.audit_key(), ks.previous_audit_keys(), ks.audit_anchor());
    // The ceilings allow 4 GiB per unseal: keep each input cheap.
    if slots
        .iter()
        .any(|s| s.kdf.is_some_and(|k| k.m_kib > 1024 || k.t > 4 || k.p > 4))
    {
        return;
    }
    if let Ok(u) = ks.unseal_passphrase(&Passphrase::new(pivault_fuzz::PASS.into()), None) {
        let got = hex::encode(u.keyring.to_bytes().expose());
        assert!(
            got == pivault_fuzz::KEYRING3_HEX || got == pivault_fuzz::KEYRING1_HEX,
            "a fuzzed keystore unsealed to a keyring nobody sealed: {got}"
        );
    }
});
