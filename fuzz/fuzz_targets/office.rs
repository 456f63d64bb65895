//! The scanner's Office Open XML extractors (.docx, .xlsx, .pptx), without
//! the panic guard the scanner wraps them in.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, doc)) = data.split_first() else {
        return;
    };
    let ext = ["docx", "xlsx", "pptx"][kind as usize % 3];
    let _ = pi_scan::fuzzing::extract(ext, doc);
});
