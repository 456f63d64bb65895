//! The gateway's TOML configuration: parsing and checking never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vault_proxy::Config::parse(text, std::path::Path::new("fuzz.toml"));
    }
});
