//! The scanner's readers of archives, e-mail, OpenDocument, RTF and legacy
//! Office files (pi-scan/src/formats), without the panic guard the
//! scanner wraps them in. The first byte picks the format.
#![no_main]
use libfuzzer_sys::fuzz_target;

const KINDS: &[&str] = &[
    "zip", "tar", "tgz", "gz", "eml", "mbox", "odt", "ods", "odp", "rtf", "doc", "xls", "ppt",
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, doc)) = data.split_first() else {
        return;
    };
    let _ = pi_scan::fuzzing::extract(KINDS[kind as usize % KINDS.len()], doc);
});
