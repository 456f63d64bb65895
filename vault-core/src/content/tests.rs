//! The content format's own unit tests: growing, gap filling and cuts at
//! block boundaries.

use super::*;
use crate::{Keyring, Suite};

#[test]
fn write_far_past_the_end_fills_the_gap_in_chunks() {
    let c = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
    let at = NameContext::new(&[5; 16], b"sparse");
    let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
    f.write_at(0, b"head").unwrap();
    let far = 3 * HOLE_CHUNK as u64 + 17;
    f.write_at(far, b"tail").unwrap();
    assert_eq!(f.size(), far + 4);
    assert_eq!(
        f.store().len() as u64,
        Geometry::new(Suite::Aes256Gcm).ciphertext_len(far + 4)
    );
    let f = ContentFile::open(f.into_store(), &c, at).unwrap();
    let mut all = vec![1u8; (far + 4) as usize];
    f.read_at(0, &mut all).unwrap();
    assert_eq!(&all[..4], b"head");
    assert!(all[4..far as usize].iter().all(|&b| b == 0));
    assert_eq!(&all[far as usize..], b"tail");
    assert!(f.verify().unwrap().is_empty());
}

/// The crash the issue names: a file whose data was synced, then
/// grown past its full last block, crashes before the new length is
/// durable. The synced block is never rewritten, so every state the
/// disk can be left in reads the synced data back.
#[test]
fn growing_past_a_full_last_block_never_rewrites_it() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = VaultCipher::new(Keyring::generate().unwrap(), suite);
        let at = NameContext::new(&[7; 16], b"ledger");
        let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
        let synced: Vec<u8> = (0..BLOCK_SIZE).map(|i| (i % 251) as u8).collect();
        f.write_at(0, &synced).unwrap();
        let before = f.store().clone();
        f.write_at(BLOCK_SIZE as u64, b"appended after the sync")
            .unwrap();
        let after = f.store().clone();
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "{suite:?}: block 0 rewritten"
        );
        // Every crash state: the old file, then the new tail cut at
        // every length, or with its bytes torn.
        let mut states: Vec<Vec<u8>> = (before.len()..=after.len())
            .map(|n| after[..n].to_vec())
            .collect();
        let mut torn = after.clone();
        let last = torn.len() - 5;
        torn[last] ^= 0xff;
        states.push(torn);
        for disk in states {
            let len = disk.len();
            let Ok(g) = ContentFile::open(disk, &c, at) else {
                // A length no valid file has: reported, not misread.
                continue;
            };
            let mut back = vec![0u8; BLOCK_SIZE];
            assert_eq!(
                g.read_at(0, &mut back).unwrap(),
                BLOCK_SIZE,
                "{suite:?}, {len} bytes on disk"
            );
            assert_eq!(back, synced, "{suite:?}, {len} bytes on disk");
        }
        // The grown file reads whole, and verifies.
        let g = ContentFile::open(after, &c, at).unwrap();
        let mut all = vec![0u8; g.size() as usize];
        g.read_at(0, &mut all).unwrap();
        assert_eq!(&all[..BLOCK_SIZE], &synced[..]);
        assert_eq!(&all[BLOCK_SIZE..], b"appended after the sync");
        assert!(g.verify().unwrap().is_empty());
    }
}

/// The last flag still detects a file cut at a block boundary: the
/// block that becomes last was sealed as not last.
#[test]
fn a_file_cut_at_a_block_boundary_is_still_detected() {
    let c = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
    let at = NameContext::new(&[8; 16], b"cut");
    let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
    f.write_at(0, &vec![3u8; 3 * BLOCK_SIZE + 10]).unwrap();
    let g = Geometry::new(Suite::Aes256Gcm);
    let mut disk = f.into_store();
    disk.truncate(g.ciphertext_len(2 * BLOCK_SIZE as u64) as usize);
    let f = ContentFile::open(disk, &c, at).unwrap();
    let mut buf = vec![0u8; 2 * BLOCK_SIZE];
    assert!(matches!(
        f.read_at(0, &mut buf),
        Err(Error::BlockAuth { index: 1 })
    ));
    assert_eq!(f.verify().unwrap(), vec![1]);
}

/// Only the state an interrupted grow leaves is taken for one: an intact
/// file, a file with other bytes after its last block, and a file whose
/// old last block was tampered with are not.
#[test]
fn interrupted_grow_is_found_only_where_a_grow_was_cut() {
    let c = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
    let at = NameContext::new(&[6; 16], b"grow");
    let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
    f.write_at(0, &[9u8; 5000]).unwrap();
    assert_eq!(f.interrupted_grow().unwrap(), None, "intact");
    let intact = f.into_store();
    let geo = Geometry::new(Suite::Aes256Gcm);
    let grown = geo.ciphertext_len(9000) as usize;

    // The truncate of a grow to 9000 bytes, and nothing after it.
    let mut cut = intact.clone();
    cut.resize(grown, 0);
    let mut f = ContentFile::open(cut, &c, at).unwrap();
    let found = f.interrupted_grow().unwrap().expect("an interrupted grow");
    assert_eq!((found.block, found.size), (1, 5000));
    f.undo_interrupted_grow(&found).unwrap();
    assert_eq!(f.store(), &intact);

    // Non-zero bytes after the old last block: not a grow this code made.
    let mut junk = intact.clone();
    junk.resize(grown, 0);
    junk[intact.len() + 10] = 1;
    let f = ContentFile::open(junk, &c, at).unwrap();
    assert_eq!(f.interrupted_grow().unwrap(), None, "junk after the block");

    // The old last block tampered with.
    let mut bad = intact.clone();
    bad[intact.len() - 30] ^= 1;
    bad.resize(grown, 0);
    let f = ContentFile::open(bad, &c, at).unwrap();
    assert_eq!(f.interrupted_grow().unwrap(), None, "tampered block");
}

#[test]
fn interrupted_grow_past_a_full_last_block() {
    let c = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
    let at = NameContext::new(&[6; 16], b"full");
    let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
    f.write_at(0, &[3u8; 4096]).unwrap();
    let mut st = f.into_store();
    st.resize(
        Geometry::new(Suite::Aes256Gcm).ciphertext_len(12_287) as usize,
        0,
    );
    let f = ContentFile::open(st, &c, at).unwrap();
    let g = f.interrupted_grow().unwrap().expect("found");
    assert_eq!((g.block, g.size), (0, 4096));
}

#[test]
fn interrupted_grow_of_an_empty_file() {
    let c = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
    let at = NameContext::new(&[6; 16], b"empty");
    let f = ContentFile::create(Vec::new(), &c, at).unwrap();
    let mut st = f.into_store();
    st.resize(
        Geometry::new(Suite::Aes256Gcm).ciphertext_len(20_000) as usize,
        0,
    );
    let f = ContentFile::open(st, &c, at).unwrap();
    let g = f.interrupted_grow().unwrap().expect("found");
    assert_eq!((g.block, g.size), (0, 0));
}
