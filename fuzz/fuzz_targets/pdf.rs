//! The scanner's PDF text extractor, without the panic guard.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pi_scan::fuzzing::extract("pdf", data);
});
