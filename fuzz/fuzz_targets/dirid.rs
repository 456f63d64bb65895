//! Directory ID files: one that opens is byte-identical to what the
//! writer makes of it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vault_core::{DirIdFile, NameContext};

fuzz_target!(|data: &[u8]| {
    let c = pivault_fuzz::cipher(0);
    let at = NameContext::new(&pivault_fuzz::DIR_ID, pivault_fuzz::NAME);
    if let Ok(f) = DirIdFile::open(&c, data, at) {
        assert_eq!(&f.to_bytes()[..], data);
    }
});
