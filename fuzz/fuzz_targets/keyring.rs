//! The keyring TLV (inside the sealed keyring): a keyring that parses
//! serialises to bytes that parse to the same keyring.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vault_core::Keyring;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = Keyring::from_bytes(data) {
        let bytes = k.to_bytes();
        let again = Keyring::from_bytes(bytes.expose()).expect("our own serialisation parses");
        assert_eq!(again.to_bytes().expose(), bytes.expose());
        assert_eq!(bytes.len(), k.serialized_len());
    }
});
