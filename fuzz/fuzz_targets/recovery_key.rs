//! Recovery keys as typed: one that parses encodes back to a key that
//! parses to the same bytes.
#![no_main]
use keys::RecoveryKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = RecoveryKey::parse(text) {
        let again = RecoveryKey::parse(&k.encode()).expect("our encoding parses");
        assert_eq!(*again.encode(), *k.encode());
    }
});
