//! Encrypted names (short and long): a name that decrypts is the
//! canonical encoding of what it decrypts to.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vault_core::EncodedName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = pivault_fuzz::cipher(0);
    if let Ok(name) = c.names().decrypt(&pivault_fuzz::DIR_ID, text) {
        let enc = c
            .names()
            .encrypt(&pivault_fuzz::DIR_ID, &name)
            .expect("a decrypted name re-encrypts");
        let full = match &enc {
            EncodedName::Short(s) => s.as_str(),
            EncodedName::Long { full, .. } => full.as_str(),
        };
        assert_eq!(full, text, "two encodings of one name");
    }
});
