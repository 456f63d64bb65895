//! A content file (header and blocks) opened under the fixed key: every
//! byte it reads back is the byte every seed held there, never another,
//! also after the interrupted-grow recovery (FORMAT.md §6.4) cut it back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vault_core::{ContentFile, NameContext};

fuzz_target!(|data: &[u8]| {
    let Some((&suite, file)) = data.split_first() else {
        return;
    };
    let c = pivault_fuzz::cipher(suite);
    let at = NameContext::new(&pivault_fuzz::DIR_ID, pivault_fuzz::NAME);
    let Ok(mut f) = ContentFile::open(file.to_vec(), &c, at) else {
        return;
    };
    if let Ok(Some(g)) = f.interrupted_grow() {
        assert!(g.size < f.size() || g.old_host_len < g.host_len);
        f.undo_interrupted_grow(&g).unwrap();
    }
    let mut off = 0u64;
    let mut buf = vec![0u8; 10_000];
    while off < f.size().min(1 << 20) {
        match f.read_at(off, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for (i, b) in buf[..n].iter().enumerate() {
                    assert_eq!(
                        *b,
                        pivault_fuzz::pattern(off + i as u64),
                        "wrong plaintext at {}",
                        off + i as u64
                    );
                }
                off += n as u64;
            }
        }
    }
    let _ = f.verify();
});
