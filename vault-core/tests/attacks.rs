//! One test per attack on stored ciphertext. Each asserts the read fails
//! with the documented `vault_core::Error` variant, that the caller's buffer
//! receives no plaintext (it is pre-filled with a sentinel and must come
//! back unchanged), and, where the file still opens, that `verify()` lists
//! exactly the damaged block indices.

use std::collections::BTreeMap;

use vault_core::{
    ContentFile, DirIdFile, EncodedName, Error, Keyring, NameContext, SecretKey, Suite,
    VaultCipher, BLOCK_SIZE, HEADER_CORE_LEN, HEADER_LEN, ROOT_PARENT,
};

const SUITES: [Suite; 2] = [Suite::Aes256Gcm, Suite::XChaCha20Poly1305];
const DIR_A: [u8; 16] = [0xa1; 16];
const DIR_B: [u8; 16] = [0xb2; 16];
const SENTINEL: u8 = 0xa5;
const TAG: usize = 16;

/// Data keys 1 and 3 (current 3): a single bit flip of the header's key
/// version can then land on another version the keyring holds (3 ^ 2 = 1).
fn cipher(suite: Suite) -> VaultCipher {
    let mut data = BTreeMap::new();
    data.insert(1, SecretKey::from_bytes([0x01; 32]));
    data.insert(3, SecretKey::from_bytes([0x03; 32]));
    VaultCipher::new(
        Keyring::from_parts(SecretKey::from_bytes([0x77; 32]), data).unwrap(),
        suite,
    )
}

fn at_a() -> NameContext<'static> {
    NameContext::new(&DIR_A, b"ssn.csv")
}

fn at_b() -> NameContext<'static> {
    NameContext::new(&DIR_A, b"w2.pdf")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    // Never equal to the sentinel, so a leak is always visible.
    (0..len)
        .map(|i| {
            let b = (i as u8).wrapping_mul(31).wrapping_add(seed);
            if b == SENTINEL {
                0
            } else {
                b
            }
        })
        .collect()
}

fn cblock(suite: Suite) -> usize {
    BLOCK_SIZE + suite.overhead()
}

fn block_off(suite: Suite, index: usize) -> usize {
    HEADER_LEN + index * cblock(suite)
}

/// A sealed file holding `data`, bound to `at`, as raw store bytes.
fn make(c: &VaultCipher, at: NameContext<'_>, data: &[u8]) -> Vec<u8> {
    let mut f = ContentFile::create(Vec::new(), c, at).unwrap();
    f.write_at(0, data).unwrap();
    f.into_store()
}

/// Opens `store` (which must open), reads the whole plaintext span into a
/// sentinel-filled buffer, asserts the read fails and the buffer is
/// untouched, and returns the error. Also reads each block on its own:
/// blocks listed in `bad` must fail the same way, all others must return
/// the right plaintext (`expect`), so damage is confined to its blocks.
fn expect_read_fails(
    c: &VaultCipher,
    at: NameContext<'_>,
    store: Vec<u8>,
    expect: &[u8],
    bad: &[u64],
) -> Error {
    let f = ContentFile::open(store, c, at).expect("file still opens");
    let size = f.size() as usize;
    let mut buf = vec![SENTINEL; size.max(1)];
    let err = f
        .read_at(0, &mut buf)
        .expect_err("read of a damaged file must fail");
    assert!(
        buf.iter().all(|&b| b == SENTINEL || b == 0),
        "plaintext leaked into the buffer on a failed read (it must be untouched or zeroed)"
    );
    assert!(err.is_integrity(), "{err}");
    let nblocks = size.div_ceil(BLOCK_SIZE).max(1);
    for i in 0..nblocks {
        let start = i * BLOCK_SIZE;
        let len = size.saturating_sub(start).min(BLOCK_SIZE);
        let mut one = vec![SENTINEL; len];
        let r = f.read_at(start as u64, &mut one);
        if bad.contains(&(i as u64)) {
            assert!(
                matches!(r, Err(Error::BlockAuth { index }) if index == i as u64),
                "block {i}: {r:?}"
            );
            assert!(
                one.iter().all(|&b| b == SENTINEL || b == 0),
                "block {i} leaked"
            );
        } else if len > 0 {
            assert_eq!(r.unwrap(), len, "block {i}");
            assert!(one == expect[start..start + len], "block {i} content");
        }
    }
    assert_eq!(
        f.verify().unwrap(),
        bad,
        "verify() must list the damaged blocks"
    );
    err
}

fn assert_block_auth(err: Error, want: u64) {
    assert!(
        matches!(err, Error::BlockAuth { index } if index == want),
        "expected BlockAuth {{ index: {want} }}, got {err:?}"
    );
}

/// 3 full blocks and a partial one.
fn four_blocks() -> Vec<u8> {
    pattern(3 * BLOCK_SIZE + 1000, 1)
}

#[test]
fn flipped_bit_in_header_core() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let clean = make(&c, at_a(), &data);
        for byte in 0..HEADER_CORE_LEN {
            for bit in 0..8 {
                let mut s = clean.clone();
                s[byte] ^= 1 << bit;
                match ContentFile::open(s.clone(), &c, at_a()) {
                    // Magic, version, suite, block size, reserved bytes.
                    Err(Error::Header(_)) => {
                        assert!(!(8..28).contains(&byte), "byte {byte} bit {bit}")
                    }
                    Err(Error::UnknownKeyVersion(v)) => {
                        assert!((8..12).contains(&byte), "byte {byte} bit {bit}");
                        assert_eq!(v, 3 ^ (1 << (bit + 8 * (11 - byte))));
                    }
                    // The whole core (file ID, and a key version the
                    // keyring holds, 3 -> 1) is bound to the name.
                    Err(Error::Binding) => {
                        assert!((8..28).contains(&byte), "byte {byte} bit {bit}")
                    }
                    Ok(_) => panic!("byte {byte} bit {bit}: a changed header core opened"),
                    Err(e) => panic!("byte {byte} bit {bit}: unexpected {e:?}"),
                }
            }
        }
    }
}

#[test]
fn flipped_bit_in_binding_slot() {
    for suite in SUITES {
        let c = cipher(suite);
        let clean = make(&c, at_a(), &four_blocks());
        for byte in HEADER_CORE_LEN..HEADER_CORE_LEN + 16 {
            let mut s = clean.clone();
            s[byte] ^= 0x10;
            let r = ContentFile::open(s, &c, at_a());
            assert!(matches!(r, Err(Error::Binding)), "byte {byte}");
        }
    }
}

/// Flips one bit at `pos(block, suite)` in each block in turn.
fn flip_in_each_block(pos: impl Fn(Suite, usize, usize) -> Vec<usize>) {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let clean = make(&c, at_a(), &data);
        for block in 0..4usize {
            let len = (data.len() - block * BLOCK_SIZE).min(BLOCK_SIZE);
            for p in pos(suite, block, len) {
                let mut s = clean.clone();
                s[block_off(suite, block) + p] ^= 0x01;
                let err = expect_read_fails(&c, at_a(), s, &data, &[block as u64]);
                assert_block_auth(err, block as u64);
            }
        }
    }
}

#[test]
fn flipped_bit_in_block_nonce() {
    flip_in_each_block(|suite, _, _| vec![0, suite.nonce_len() / 2, suite.nonce_len() - 1]);
}

#[test]
fn flipped_bit_in_block_body() {
    flip_in_each_block(|suite, _, len| {
        let n = suite.nonce_len();
        vec![n, n + len / 2, n + len - 1]
    });
}

#[test]
fn flipped_bit_in_block_tag() {
    flip_in_each_block(|suite, _, len| {
        let t = suite.nonce_len() + len;
        vec![t, t + TAG / 2, t + TAG - 1]
    });
}

#[test]
fn flipped_bit_in_large_file_parallel_path() {
    // 75 blocks: reads and verify() go through the parallel code.
    for suite in SUITES {
        let c = cipher(suite);
        let data = pattern(300 * 1024, 9);
        let mut s = make(&c, at_a(), &data);
        s[block_off(suite, 40) + 100] ^= 0x80;
        s[block_off(suite, 61) + 5] ^= 0x02;
        let err = expect_read_fails(&c, at_a(), s, &data, &[40, 61]);
        // The lowest failing block is the one reported.
        assert_block_auth(err, 40);
    }
}

#[test]
fn block_moved_within_file() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let clean = make(&c, at_a(), &data);
        let cb = cblock(suite);

        // Swap blocks 0 and 1.
        let mut s = clean.clone();
        let (b0, b1) = (block_off(suite, 0), block_off(suite, 1));
        let first = s[b0..b0 + cb].to_vec();
        s.copy_within(b1..b1 + cb, b0);
        s[b1..b1 + cb].copy_from_slice(&first);
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[0, 1]), 0);

        // Copy block 0 over block 2 (same length, different position).
        let mut s = clean.clone();
        s.copy_within(b0..b0 + cb, block_off(suite, 2));
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[2]), 2);
    }
}

#[test]
fn block_copied_from_another_file_at_same_index() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let a = make(&c, at_a(), &data);
        // Same plaintext, same name even: only the random file ID differs.
        let b = make(&c, at_a(), &data);
        for block in [0usize, 1, 3] {
            let start = block_off(suite, block);
            let end = if block == 3 {
                a.len()
            } else {
                start + cblock(suite)
            };
            let mut s = a.clone();
            s[start..end].copy_from_slice(&b[start..end]);
            let err = expect_read_fails(&c, at_a(), s, &data, &[block as u64]);
            assert_block_auth(err, block as u64);
        }
    }
}

#[test]
fn header_swapped_between_two_files() {
    for suite in SUITES {
        let c = cipher(suite);
        let data_a = four_blocks();
        let a = make(&c, at_a(), &data_a);
        let b = make(&c, at_b(), &pattern(data_a.len(), 2));

        // B's whole header on A's blocks.
        let mut s = a.clone();
        s[..HEADER_LEN].copy_from_slice(&b[..HEADER_LEN]);
        // Reached by A's name: B's header is not bound to it.
        assert!(matches!(
            ContentFile::open(s.clone(), &c, at_a()),
            Err(Error::Binding)
        ));
        // Reached by B's name the binding passes, but A's blocks are sealed
        // under A's header core and file key: nothing opens.
        let err = expect_read_fails(&c, at_b(), s, &data_a, &[0, 1, 2, 3]);
        assert_block_auth(err, 0);

        // Only B's header core, A's binding slots kept: the slots are tags
        // over the file ID, so the header no longer matches A's name.
        let mut s = a.clone();
        s[..HEADER_CORE_LEN].copy_from_slice(&b[..HEADER_CORE_LEN]);
        assert!(matches!(
            ContentFile::open(s, &c, at_a()),
            Err(Error::Binding)
        ));
    }
}

#[test]
fn truncated_at_block_boundary() {
    for suite in SUITES {
        let c = cipher(suite);

        // Three full blocks, the last removed: block 1 was sealed not-last.
        let data = pattern(3 * BLOCK_SIZE, 3);
        let mut s = make(&c, at_a(), &data);
        s.truncate(block_off(suite, 2));
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[1]), 1);

        // Three full blocks and a partial one, the partial one removed.
        let data = four_blocks();
        let mut s = make(&c, at_a(), &data);
        s.truncate(block_off(suite, 3));
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[2]), 2);

        // Down to a single full block.
        let data = pattern(2 * BLOCK_SIZE, 4);
        let mut s = make(&c, at_a(), &data);
        s.truncate(block_off(suite, 1));
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[0]), 0);
    }
}

#[test]
fn extended_at_block_boundary() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = pattern(2 * BLOCK_SIZE, 5);
        let clean = make(&c, at_a(), &data);
        let cb = cblock(suite);
        // The model for the good blocks; the appended block has no plaintext.
        let mut expect = data.clone();
        expect.resize(3 * BLOCK_SIZE, 0);

        // Block 1 was sealed as last, which a reader accepts before the
        // end too (a file grown past a full last block keeps it so,
        // FORMAT.md §6.2): what fails is every appended block, which no
        // writer sealed at its index for this file.

        // Append a copy of the last block: it was sealed as last at index 1.
        let mut s = clean.clone();
        let b1 = block_off(suite, 1);
        s.extend_from_within(b1..b1 + cb);
        assert_block_auth(expect_read_fails(&c, at_a(), s, &expect, &[2]), 2);

        // Append a copy of block 0.
        let mut s = clean.clone();
        let b0 = block_off(suite, 0);
        s.extend_from_within(b0..b0 + cb);
        assert_block_auth(expect_read_fails(&c, at_a(), s, &expect, &[2]), 2);

        // Append a block of another file sealed as last at index 2.
        let other = make(&c, at_a(), &pattern(2 * BLOCK_SIZE + 10, 6));
        let mut s = clean.clone();
        s.extend_from_slice(&other[block_off(suite, 2)..]);
        let mut expect = data.clone();
        expect.resize(2 * BLOCK_SIZE + 10, 0);
        assert_block_auth(expect_read_fails(&c, at_a(), s, &expect, &[2]), 2);
    }
}

#[test]
fn truncated_to_header_only() {
    for suite in SUITES {
        let c = cipher(suite);
        for data in [Vec::new(), pattern(10, 7), four_blocks()] {
            let mut s = make(&c, at_a(), &data);
            s.truncate(HEADER_LEN);
            let r = ContentFile::open(s, &c, at_a());
            assert!(matches!(r, Err(Error::Length(96))), "{:?}", r.err());
        }
        // Shorter than a header, and nothing at all.
        for len in [0, 1, HEADER_LEN - 1] {
            let mut s = make(&c, at_a(), &four_blocks());
            s.truncate(len);
            let r = ContentFile::open(s, &c, at_a());
            assert!(
                matches!(r, Err(Error::Length(l)) if l == len as u64),
                "{:?}",
                r.err()
            );
        }
    }
}

#[test]
fn truncated_mid_block() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let clean = make(&c, at_a(), &data);
        let oh = suite.overhead();
        // Cut points inside the last (partial) block and inside block 2.
        let last = block_off(suite, 3);
        let b2 = block_off(suite, 2);
        let cuts = [
            (last + 1, "less than a nonce"),
            (last + oh - 1, "less than nonce and tag"),
            (last + oh, "an empty block after full blocks"),
            (last + oh + 1, "one byte of the last block"),
            (clean.len() - 1, "last byte dropped"),
            (b2 + 1, "inside a full block"),
            (b2 + oh + 100, "inside a full block"),
            (b2 + cblock(suite) - 1, "one byte short of a full block"),
        ];
        for (cut, what) in cuts {
            let mut s = clean.clone();
            s.truncate(cut);
            let rem = (cut - HEADER_LEN) % cblock(suite);
            let index = ((cut - HEADER_LEN) / cblock(suite)) as u64;
            match ContentFile::open(s.clone(), &c, at_a()) {
                Err(Error::Length(l)) => {
                    assert_eq!(l, cut as u64);
                    assert!(rem <= oh, "{what}: length {cut} should open");
                }
                Ok(f) => {
                    assert!(rem > oh, "{what}: length {cut} should be impossible");
                    drop(f);
                    let err = expect_read_fails(&c, at_a(), s, &data, &[index]);
                    assert_block_auth(err, index);
                }
                Err(e) => panic!("{what}: unexpected {e:?}"),
            }
        }
    }
}

#[test]
fn block_replaced_by_zeros() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let clean = make(&c, at_a(), &data);
        for block in 0..4usize {
            let start = block_off(suite, block);
            let end = (start + cblock(suite)).min(clean.len());
            let mut s = clean.clone();
            s[start..end].fill(0);
            let err = expect_read_fails(&c, at_a(), s, &data, &[block as u64]);
            assert_block_auth(err, block as u64);
        }
        // All blocks zeroed (a sparse hole punched over the whole body).
        let mut s = clean.clone();
        s[HEADER_LEN..].fill(0);
        assert_block_auth(expect_read_fails(&c, at_a(), s, &data, &[0, 1, 2, 3]), 0);
    }
}

#[test]
fn whole_ciphertext_swapped_with_another_files() {
    for suite in SUITES {
        let c = cipher(suite);
        let a = make(&c, at_a(), &four_blocks());
        let b = make(&c, at_b(), &pattern(100, 8));
        // The entry for A now holds B's ciphertext, and the other way round.
        assert!(matches!(
            ContentFile::open(b.clone(), &c, at_a()),
            Err(Error::Binding)
        ));
        assert!(matches!(
            ContentFile::open(a.clone(), &c, at_b()),
            Err(Error::Binding)
        ));
        // Same name in another directory, and a renamed file, do not open either.
        let moved = NameContext::new(&DIR_B, b"ssn.csv");
        assert!(matches!(
            ContentFile::open(a.clone(), &c, moved),
            Err(Error::Binding)
        ));
        let renamed = NameContext::new(&DIR_A, b"ssn.csv.bak");
        assert!(matches!(
            ContentFile::open(a.clone(), &c, renamed),
            Err(Error::Binding)
        ));
        // And the genuine ones do.
        assert!(ContentFile::open(a, &c, at_a()).is_ok());
        assert!(ContentFile::open(b, &c, at_b()).is_ok());
    }
}

#[test]
fn name_moved_to_another_directory() {
    let c = cipher(Suite::Aes256Gcm);
    for name in [&b"ssn.csv"[..], &[b'n'; 200][..]] {
        let enc = c.names().encrypt(&DIR_A, name).unwrap();
        let full = match &enc {
            EncodedName::Short(s) => s.clone(),
            EncodedName::Long { full, .. } => full.clone(),
        };
        assert_eq!(c.names().decrypt(&DIR_A, &full).unwrap(), name);
        let r = c.names().decrypt(&DIR_B, &full);
        assert!(matches!(r, Err(Error::Name)), "{r:?}");
        // An edited name fails the same way.
        let mut edited = full.into_bytes();
        edited[3] = if edited[3] == b'A' { b'B' } else { b'A' };
        let r = c
            .names()
            .decrypt(&DIR_A, std::str::from_utf8(&edited).unwrap());
        assert!(matches!(r, Err(Error::Name)), "{r:?}");
    }
}

#[test]
fn directory_id_file_replaced() {
    let c = cipher(Suite::Aes256Gcm);
    let root = DirIdFile::generate(&c, NameContext::new(&ROOT_PARENT, b"")).unwrap();
    let hr_at = NameContext::new(&root.id, b"hr");
    let hr = DirIdFile::generate(&c, hr_at).unwrap();
    let it = DirIdFile::generate(&c, NameContext::new(&root.id, b"it")).unwrap();
    assert_eq!(
        DirIdFile::open(&c, &hr.to_bytes(), hr_at).unwrap().id,
        hr.id
    );
    // Another directory's ID file copied in.
    let r = DirIdFile::open(&c, &it.to_bytes(), hr_at);
    assert!(matches!(r, Err(Error::DirId(_))), "{r:?}");
    // The directory itself moved elsewhere (same ID file, other parent).
    let r = DirIdFile::open(&c, &hr.to_bytes(), NameContext::new(&hr.id, b"hr"));
    assert!(matches!(r, Err(Error::DirId(_))), "{r:?}");
    // The ID edited (to point the names at another directory's ID).
    let mut forged = hr.to_bytes();
    forged[8..24].copy_from_slice(&it.id);
    let r = DirIdFile::open(&c, &forged, hr_at);
    assert!(matches!(r, Err(Error::DirId(_))), "{r:?}");
    // Every single-bit flip is caught.
    for byte in 0..hr.to_bytes().len() {
        let mut b = hr.to_bytes();
        b[byte] ^= 0x04;
        let r = DirIdFile::open(&c, &b, hr_at);
        assert!(matches!(r, Err(Error::DirId(_))), "byte {byte}: {r:?}");
    }
}

#[test]
fn symlink_target_moved() {
    for suite in SUITES {
        let c = cipher(suite);
        let s = c
            .seal_symlink(&DIR_A, b"link", b"../secret/ssn.csv")
            .unwrap();
        assert_eq!(
            c.open_symlink(&DIR_A, b"link", s.as_bytes()).unwrap(),
            b"../secret/ssn.csv"
        );
        let r = c.open_symlink(&DIR_A, b"other-link", s.as_bytes());
        assert!(matches!(r, Err(Error::Symlink)), "{r:?}");
        let r = c.open_symlink(&DIR_B, b"link", s.as_bytes());
        assert!(matches!(r, Err(Error::Symlink)), "{r:?}");
        // Target swapped with another symlink's.
        let t = c.seal_symlink(&DIR_A, b"link2", b"/etc/shadow").unwrap();
        let r = c.open_symlink(&DIR_A, b"link", t.as_bytes());
        assert!(matches!(r, Err(Error::Symlink)), "{r:?}");
    }
}

/// An empty file is one empty final block; damage to it must still be
/// reported by `verify()` even though there is no plaintext to read.
#[test]
fn empty_file_block_tampered() {
    for suite in SUITES {
        let c = cipher(suite);
        let clean = make(&c, at_a(), &[]);
        assert_eq!(clean.len(), HEADER_LEN + suite.overhead());
        let f = ContentFile::open(clean.clone(), &c, at_a()).unwrap();
        assert_eq!(f.size(), 0);
        assert!(f.verify().unwrap().is_empty());
        for pos in [HEADER_LEN, HEADER_LEN + suite.nonce_len(), clean.len() - 1] {
            let mut s = clean.clone();
            s[pos] ^= 1;
            let f = ContentFile::open(s, &c, at_a()).unwrap();
            let mut buf = [SENTINEL; 8];
            // No plaintext exists, so a read returns end-of-file...
            assert_eq!(f.read_at(0, &mut buf).unwrap(), 0);
            assert_eq!(buf, [SENTINEL; 8]);
            // ...but the damage is found.
            assert_eq!(f.verify().unwrap(), vec![0], "byte {pos}");
        }
        // The empty block of another file (or of another index) does not fit.
        let other = make(&c, at_a(), &[]);
        let mut s = clean.clone();
        s[HEADER_LEN..].copy_from_slice(&other[HEADER_LEN..]);
        let f = ContentFile::open(s, &c, at_a()).unwrap();
        assert_eq!(f.verify().unwrap(), vec![0]);
    }
}

/// Writing into a damaged file must not launder the damage: the partial
/// block a write has to re-read fails, and nothing is written.
#[test]
fn write_over_damaged_block_fails() {
    for suite in SUITES {
        let c = cipher(suite);
        let data = four_blocks();
        let mut s = make(&c, at_a(), &data);
        s[block_off(suite, 1) + 40] ^= 1;
        let before = s.clone();
        let mut f = ContentFile::open(s, &c, at_a()).unwrap();
        let r = f.write_at(BLOCK_SIZE as u64 + 10, b"x");
        assert!(matches!(r, Err(Error::BlockAuth { index: 1 })), "{r:?}");
        assert!(f.store() == &before, "a failed write changed the store");
        // Truncating into the damaged block fails the same way.
        let r = f.set_len(BLOCK_SIZE as u64 + 5);
        assert!(matches!(r, Err(Error::BlockAuth { index: 1 })), "{r:?}");
        assert!(f.store() == &before);
        assert_eq!(f.size(), data.len() as u64);
    }
}

/// An attacker with write access to the vault folder pads a file with
/// zeros, or puts an older copy back padded to the current length, to
/// make the interrupted-grow recovery (FORMAT.md §6.4) produce bytes of
/// their choosing. The recovery only ever gives back a length and content
/// the file once had: the padded current file reads as itself, the padded
/// old copy as that old version (the rollback THREAT-MODEL.md §5 accepts),
/// and a block they altered is not taken for an old end at all.
#[test]
fn zero_padding_recovers_only_a_version_the_file_had() {
    for suite in SUITES {
        let c = cipher(suite);
        let v1 = pattern(5000, 1);
        let old = make(&c, at_a(), &v1);
        // The same file later grown: same file ID and key, new content.
        let mut f = ContentFile::open(old.clone(), &c, at_a()).unwrap();
        let v2 = pattern(12_000, 2);
        f.write_at(0, &v2).unwrap();
        let current = f.into_store();

        // The current file padded with zeros: it reads as itself.
        let mut padded = current.clone();
        padded.resize(current.len() + 3000, 0);
        let mut f = ContentFile::open(padded, &c, at_a()).unwrap();
        let g = f.interrupted_grow().unwrap().expect("found");
        f.undo_interrupted_grow(&g).unwrap();
        let mut buf = vec![SENTINEL; 20_000];
        let n = f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], &v2[..], "{suite:?}");

        // The old copy put back, padded to the current length: version 1.
        let mut rolled = old.clone();
        rolled.resize(current.len(), 0);
        let mut f = ContentFile::open(rolled, &c, at_a()).unwrap();
        let g = f.interrupted_grow().unwrap().expect("found");
        f.undo_interrupted_grow(&g).unwrap();
        let n = f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], &v1[..], "{suite:?}");

        // A byte of the old end changed: no recovery, the read still fails.
        let mut forged = old.clone();
        let last = forged.len() - TAG - 1;
        forged[last] ^= 0x40;
        forged.resize(current.len(), 0);
        let f = ContentFile::open(forged, &c, at_a()).unwrap();
        assert_eq!(f.interrupted_grow().unwrap(), None, "{suite:?}");
        assert!(matches!(
            f.read_at(0, &mut vec![0u8; 20_000]),
            Err(Error::BlockAuth { .. })
        ));
    }
}
