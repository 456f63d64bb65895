//! The PI detectors over arbitrary text, plain and delimited: findings lie
//! inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pi_scan::Layout;

fuzz_target!(|data: &[u8]| {
    for layout in [Layout::Plain, Layout::Delimited(b',')] {
        for f in pi_scan::scan_text(data, layout) {
            let _ = f;
        }
    }
});
