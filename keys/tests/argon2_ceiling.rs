//! An attacker who can write the vault folder edits a passphrase slot's
//! Argon2id parameters. The MAC that protects them can only be checked
//! after the derivation they control, so they are bounded when the
//! keystore is parsed: the unseal fails at once with an error naming the
//! slot and the limit, nothing large is allocated, nothing is written.
//! Allocations are watched by a wrapping global allocator.

use keys::{Error, KdfParams, Keystore, Passphrase};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vault_core::Suite;

struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only other work is an atomic maximum.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// Replaces `from` by `to` in the keystore body and recomputes the
/// checksum line, as an attacker would (the checksum is not secret).
fn edit_keystore(path: &std::path::Path, from: &str, to: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "{from} not found");
    let body = &edited[..edited.len() - 72];
    let sum = hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
    let forged = format!("{body}sha256 {sum}\n").into_bytes();
    std::fs::write(path, &forged).unwrap();
    forged
}

#[test]
fn edited_huge_argon2_memory_is_refused_before_any_derivation() {
    let d = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(b"p".to_vec());
    Keystore::create(
        d.path(),
        Suite::Aes256Gcm,
        &pass,
        KdfParams::insecure_test(),
    )
    .unwrap();
    let path = Keystore::path_in(d.path());
    let cases = [
        (
            "\"m_kib\": 64,",
            "\"m_kib\": 4294967295,",
            "memory",
            4294967295u32,
            KdfParams::MAX_M_KIB,
        ),
        (
            "\"t\": 1,",
            "\"t\": 100000,",
            "passes",
            100000,
            KdfParams::MAX_T,
        ),
        (
            "\"p\": 1,",
            "\"p\": 16777215,",
            "lanes",
            16777215,
            KdfParams::MAX_P,
        ),
    ];
    let genuine = std::fs::read(&path).unwrap();
    for (from, to, what, value, limit) in cases {
        std::fs::write(&path, &genuine).unwrap();
        let forged = edit_keystore(&path, from, to);
        LARGEST.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let err = Keystore::load(d.path())
            .and_then(|ks| ks.unseal_passphrase(&pass, None))
            .expect_err("an edited Argon2id parameter must be refused");
        let took = start.elapsed();
        let largest = LARGEST.load(Ordering::Relaxed);
        match &err {
            Error::KdfOverLimit {
                slot,
                value: v,
                limit: l,
                what: w,
                ..
            } => {
                assert_eq!((*slot, *v, *l), (0, value, limit), "{err}");
                assert!(w.contains(what), "{err}");
            }
            other => panic!("{what}: expected KdfOverLimit, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("slot 0") && msg.contains(&format!("limit of {limit}")),
            "{msg}"
        );
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
        assert!(
            largest < 1 << 20,
            "{what}: allocated {largest} bytes at once"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            forged,
            "the keystore was rewritten"
        );
    }
    // At the ceilings the file parses (the parameters are then only as
    // costly as the limits allow); just above, it does not.
    std::fs::write(&path, &genuine).unwrap();
    edit_keystore(
        &path,
        "\"m_kib\": 64,",
        &format!("\"m_kib\": {},", KdfParams::MAX_M_KIB),
    );
    assert!(Keystore::load(d.path()).is_ok());
}

#[test]
fn parameters_above_the_ceiling_are_never_written() {
    let d = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(b"p".to_vec());
    let huge = KdfParams {
        m_kib: KdfParams::MAX_M_KIB + 1,
        ..KdfParams::default()
    };
    let err = Keystore::create(d.path(), Suite::Aes256Gcm, &pass, huge).unwrap_err();
    assert!(matches!(err, Error::KdfParams(_)), "{err}");
    assert!(err.to_string().contains("limit of 4194304"), "{err}");
    assert!(!Keystore::exists(d.path()));
}
