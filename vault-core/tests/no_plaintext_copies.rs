//! Decrypting key material must leave no copy outside the caller's
//! zeroizing buffer: `Aead::open_into` may not allocate (a temporary
//! buffer holding the plaintext would be freed without being wiped).
//! Allocations are counted per thread by a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use vault_core::{Aead, SecretKey, Suite};
use zeroize::Zeroizing;

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a thread-local Cell that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|n| n.set(n.get() + layout.size()));
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|n| n.set(n.get() + new));
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> usize {
    ALLOCATED.with(Cell::get)
}

#[test]
fn open_into_decrypts_a_key_without_a_temporary_plaintext_buffer() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let aead = Aead::new(suite, &SecretKey::random().unwrap()).unwrap();
        let secret = [0x5a_u8; 4096];
        let sealed = aead.seal(b"aad", &secret).unwrap();
        let mut out = Zeroizing::new(vec![0u8; secret.len()]);
        let before = allocated();
        let ok = aead.open_into(b"aad", &sealed, &mut out);
        let during = allocated() - before;
        assert!(ok, "{suite:?}");
        assert_eq!(&out[..], &secret[..]);
        assert_eq!(
            during, 0,
            "{suite:?}: open_into allocated {during} bytes (a plaintext copy outside the caller's buffer)"
        );
        // A forged message: nothing allocated either, and `out` is wiped.
        let mut forged = sealed.clone();
        *forged.last_mut().unwrap() ^= 1;
        let before = allocated();
        assert!(!aead.open_into(b"aad", &forged, &mut out));
        assert_eq!(allocated() - before, 0);
        assert!(
            out.iter().all(|&b| b == 0),
            "{suite:?}: unauthenticated bytes left"
        );
    }
}
