//! Audit log records: one that parses re-serialises to a line that parses
//! to the same record (what `audit verify` relies on to cover every byte).
#![no_main]
use keys::audit::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<Record>(data) {
        let line = r.line();
        let again: Record = serde_json::from_str(&line).expect("our line parses");
        assert_eq!(again, r);
        let _ = r.signed_bytes();
    }
});
