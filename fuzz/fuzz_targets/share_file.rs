//! Share files (framing, checksum, JSON): parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keys::ShareFile::parse(std::path::Path::new("fuzz.share"), text);
    }
});
