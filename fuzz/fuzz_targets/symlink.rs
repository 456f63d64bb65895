//! Sealed symlink targets: one that opens is the only target ever sealed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = pivault_fuzz::cipher(0);
    if let Ok(t) = c.open_symlink(&pivault_fuzz::DIR_ID, pivault_fuzz::NAME, data) {
        assert_eq!(t, pivault_fuzz::LINK_TARGET);
    }
});
