//! Differential tests of the content format against independent AEAD code.
//!
//! Every block vault-core seals must open with RustCrypto's `aes-gcm` (and
//! `chacha20poly1305` for the XChaCha suite) given only the documented
//! format: header layout, HKDF file key, block offsets and the block AAD.
//! In the other direction, blocks and whole files sealed by that independent
//! code must read back through [`ContentFile`].

use std::collections::BTreeMap;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use vault_core::{
    block_aad_for, derive, ContentFile, Header, Keyring, NameContext, SecretKey, Suite,
    VaultCipher, BLOCK_SIZE, HEADER_CORE_LEN, HEADER_LEN,
};

const MASTER: [u8; 32] = [0x11; 32];
const DATA_KEY_V1: [u8; 32] = [0x5a; 32];
const DATA_KEY_V2: [u8; 32] = [0xc3; 32];
const DIR: [u8; 16] = [0x42; 16];
const NAME: &[u8] = b"payroll.csv";
const CONTENT_LABEL: &str = "pivault v1 file content";
const TAG: usize = 16;

/// The sizes the brief asks for: empty, one byte, around one block, three
/// blocks and a partial one, and 300 KiB (75 blocks: the parallel path).
const SIZES: &[usize] = &[
    0,
    1,
    BLOCK_SIZE - 1,
    BLOCK_SIZE,
    BLOCK_SIZE + 1,
    3 * BLOCK_SIZE + 1234,
    300 * 1024,
];

fn keyring() -> Keyring {
    let mut data = BTreeMap::new();
    data.insert(1, SecretKey::from_bytes(DATA_KEY_V1));
    data.insert(2, SecretKey::from_bytes(DATA_KEY_V2));
    Keyring::from_parts(SecretKey::from_bytes(MASTER), data).unwrap()
}

fn cipher(suite: Suite) -> VaultCipher {
    VaultCipher::new(keyring(), suite)
}

fn at() -> NameContext<'static> {
    NameContext::new(&DIR, NAME)
}

/// Deterministic, non-repeating test data (so a block read from the wrong
/// place would not compare equal by accident).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn data_key(version: u32) -> [u8; 32] {
    match version {
        1 => DATA_KEY_V1,
        2 => DATA_KEY_V2,
        v => panic!("no data key version {v}"),
    }
}

/// HKDF-SHA256 (RFC 5869) written out over HMAC, to check `vault_core::derive`.
fn hkdf_by_hand(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    use ring::hmac;
    let salt = hmac::Key::new(hmac::HMAC_SHA256, b"pivault-hkdf-v1");
    let prk = hmac::sign(&salt, ikm);
    let prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(context);
    info.push(1); // T(1) = HMAC(PRK, info || 0x01); one block is 32 bytes.
    let t1 = hmac::sign(&prk, &info);
    t1.as_ref().try_into().unwrap()
}

/// The binding tag of FORMAT.md, computed without vault-core.
fn binding_by_hand(core: &[u8], dir: &[u8; 16], name: &[u8]) -> [u8; 16] {
    use ring::hmac;
    let key = hkdf_by_hand(&MASTER, "pivault v1 bindings", b"");
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"pivault file v1");
    for f in [core, &dir[..], name] {
        ctx.update(&(f.len() as u32).to_be_bytes());
        ctx.update(f);
    }
    ctx.sign().as_ref()[..16].try_into().unwrap()
}

/// The block AAD of FORMAT.md, built by hand.
fn aad_by_hand(core: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = core.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(last as u8);
    aad
}

/// What an independent reader learns from the first 96 bytes.
struct ParsedHeader {
    suite_id: u8,
    key_version: u32,
    file_id: [u8; 16],
    core: [u8; HEADER_CORE_LEN],
    slots: [[u8; 16]; 4],
}

fn parse_header_by_hand(bytes: &[u8]) -> ParsedHeader {
    assert!(bytes.len() >= HEADER_LEN);
    assert_eq!(HEADER_LEN, 96);
    assert_eq!(HEADER_CORE_LEN, 32);
    assert_eq!(&bytes[..4], b"PVLT", "magic");
    assert_eq!(bytes[4], 1, "format version");
    assert_eq!(bytes[6], 12, "block shift (4 KiB)");
    assert_eq!(bytes[7], 0, "reserved");
    assert_eq!(&bytes[28..32], &[0; 4], "reserved");
    let mut slots = [[0u8; 16]; 4];
    for (i, s) in slots.iter_mut().enumerate() {
        s.copy_from_slice(&bytes[32 + 16 * i..48 + 16 * i]);
    }
    ParsedHeader {
        suite_id: bytes[5],
        key_version: u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
        file_id: bytes[12..28].try_into().unwrap(),
        core: bytes[..32].try_into().unwrap(),
        slots,
    }
}

fn file_key(key_version: u32, file_id: &[u8; 16]) -> [u8; 32] {
    let mut key = [0u8; 32];
    derive(&data_key(key_version), CONTENT_LABEL, file_id, &mut key).unwrap();
    assert_eq!(
        key,
        hkdf_by_hand(&data_key(key_version), CONTENT_LABEL, file_id),
        "vault_core::derive is not HKDF-SHA256 as documented"
    );
    key
}

/// Opens one block with the independent implementation of `suite`.
fn open_block(suite: Suite, key: &[u8; 32], aad: &[u8], block: &[u8]) -> Option<Vec<u8>> {
    let nl = suite.nonce_len();
    let (nonce, rest) = block.split_at(nl);
    let (body, tag) = rest.split_at(rest.len() - TAG);
    let mut out = body.to_vec();
    let ok = match suite {
        Suite::Aes256Gcm => Aes256Gcm::new(key.into())
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out, tag.into())
            .is_ok(),
        Suite::XChaCha20Poly1305 => XChaCha20Poly1305::new(key.into())
            .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut out, tag.into())
            .is_ok(),
    };
    ok.then_some(out)
}

/// Seals one block with the independent implementation of `suite` under a
/// chosen nonce: `nonce || ct || tag`.
fn seal_block(suite: Suite, key: &[u8; 32], nonce: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    assert_eq!(nonce.len(), suite.nonce_len());
    let mut body = plain.to_vec();
    let tag = match suite {
        Suite::Aes256Gcm => Aes256Gcm::new(key.into())
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut body)
            .unwrap()
            .to_vec(),
        Suite::XChaCha20Poly1305 => XChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut body)
            .unwrap()
            .to_vec(),
    };
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

/// Decrypts a whole store without vault-core's content code and returns
/// the plaintext.
fn decrypt_store_independently(suite: Suite, store: &[u8]) -> Vec<u8> {
    let h = parse_header_by_hand(store);
    assert_eq!(h.suite_id, suite.id());
    assert_eq!(
        h.slots[0],
        binding_by_hand(&store[..32], &DIR, NAME),
        "binding slot 0"
    );
    assert!(
        h.slots[1..].iter().all(|s| *s == [0; 16]),
        "unused slots are zero"
    );
    let key = file_key(h.key_version, &h.file_id);
    let header = Header::parse(&store[..HEADER_LEN]).unwrap();
    assert_eq!(header.core_bytes(), h.core);
    assert_eq!(header.file_id, h.file_id);
    assert_eq!(header.key_version, h.key_version);

    let cb = BLOCK_SIZE + suite.overhead();
    let body = &store[HEADER_LEN..];
    assert!(!body.is_empty(), "every file has at least one block");
    let blocks: Vec<&[u8]> = body.chunks(cb).collect();
    let last = blocks.len() - 1;
    assert!(blocks[last].len() >= suite.overhead());
    if last > 0 {
        assert!(
            blocks[last].len() > suite.overhead(),
            "an empty block is only allowed as the sole block"
        );
    }
    let mut plain = Vec::with_capacity(body.len());
    for (i, block) in blocks.iter().enumerate() {
        let is_last = i == last;
        let aad = block_aad_for(&header, i as u64, is_last);
        assert_eq!(
            aad,
            aad_by_hand(&h.core, i as u64, is_last),
            "AAD of block {i}"
        );
        let p = open_block(suite, &key, &aad, block)
            .unwrap_or_else(|| panic!("block {i} does not open with the independent AEAD"));
        // The AAD really carries the index and the last flag.
        let wrong_last = aad_by_hand(&h.core, i as u64, !is_last);
        assert!(open_block(suite, &key, &wrong_last, block).is_none());
        let wrong_index = aad_by_hand(&h.core, i as u64 + 1, is_last);
        assert!(open_block(suite, &key, &wrong_index, block).is_none());
        plain.extend_from_slice(&p);
    }
    plain
}

fn write_then_check_independently(suite: Suite) {
    let c = cipher(suite);
    for (n, &size) in SIZES.iter().enumerate() {
        let data = pattern(size, n as u32 + 1);
        let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
        assert_eq!(
            f.header().key_version,
            2,
            "new files use the newest data key"
        );
        f.write_at(0, &data).unwrap();
        assert_eq!(f.size(), size as u64);
        let store = f.into_store();
        let cb = BLOCK_SIZE + suite.overhead();
        let nblocks = size.div_ceil(BLOCK_SIZE).max(1);
        assert_eq!(
            store.len(),
            HEADER_LEN + size + nblocks * suite.overhead(),
            "ciphertext length for {size} bytes"
        );
        assert_eq!((store.len() - HEADER_LEN).div_ceil(cb), nblocks);
        let plain = decrypt_store_independently(suite, &store);
        assert!(
            plain == data,
            "independent decryption differs for size {size}"
        );
    }
}

#[test]
fn aes_gcm_blocks_open_with_rustcrypto() {
    write_then_check_independently(Suite::Aes256Gcm);
}

#[test]
fn xchacha_blocks_open_with_rustcrypto() {
    write_then_check_independently(Suite::XChaCha20Poly1305);
}

/// Files built up by many small writes and a truncation (so blocks are
/// re-sealed, flags move) still decrypt independently.
#[test]
fn rewritten_files_open_with_rustcrypto() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(suite);
        let mut model = Vec::new();
        let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
        for (i, (off, len)) in [
            (0, 10),
            (5000, 3000),
            (100, 9000),
            (20_000, 1),
            (4096, 4096),
        ]
        .into_iter()
        .enumerate()
        {
            let d = pattern(len, 100 + i as u32);
            f.write_at(off as u64, &d).unwrap();
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&d);
        }
        f.set_len(8192 + 7).unwrap();
        model.truncate(8192 + 7);
        let store = f.into_store();
        assert!(decrypt_store_independently(suite, &store) == model);
    }
}

/// `seal_block_into` is the format's block seal: its output opens
/// independently with the same AAD.
#[test]
fn seal_block_into_matches_independent_open() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(suite);
        let f = ContentFile::create(Vec::new(), &c, at()).unwrap();
        let key = file_key(f.header().key_version, &f.header().file_id);
        for (index, last, len) in [(0u64, true, 0usize), (7, false, BLOCK_SIZE), (9, true, 17)] {
            let plain = pattern(len, index as u32);
            let mut out = vec![0u8; len + suite.overhead()];
            f.seal_block_into(index, last, &plain, &mut out).unwrap();
            let aad = block_aad_for(f.header(), index, last);
            assert_eq!(open_block(suite, &key, &aad, &out).unwrap(), plain);
        }
    }
}

/// Reverse direction: a block sealed by RustCrypto under a chosen nonce,
/// written into a vault-core file, reads back through `ContentFile`.
#[test]
fn independently_sealed_block_reads_back() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(suite);
        let size = 3 * BLOCK_SIZE + 100;
        let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
        let mut model = pattern(size, 7);
        f.write_at(0, &model).unwrap();
        let header = f.header().clone();
        let mut store = f.into_store();
        let key = file_key(header.key_version, &header.file_id);
        let cb = BLOCK_SIZE + suite.overhead();

        // Replace block 1 (full, not last) and block 3 (partial, last).
        for (index, len, last) in [(1usize, BLOCK_SIZE, false), (3, 100, true)] {
            let new_plain = pattern(len, 1000 + index as u32);
            let nonce: Vec<u8> = (0..suite.nonce_len() as u8)
                .map(|b| b ^ index as u8)
                .collect();
            let aad = aad_by_hand(&header.core_bytes(), index as u64, last);
            let sealed = seal_block(suite, &key, &nonce, &aad, &new_plain);
            assert_eq!(sealed.len(), len + suite.overhead());
            let off = HEADER_LEN + index * cb;
            store[off..off + sealed.len()].copy_from_slice(&sealed);
            model[index * BLOCK_SIZE..index * BLOCK_SIZE + len].copy_from_slice(&new_plain);
        }

        let f = ContentFile::open(store, &c, at()).unwrap();
        assert_eq!(f.size(), size as u64);
        let mut buf = vec![0u8; size];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), size);
        assert!(buf == model);
        assert!(f.verify().unwrap().is_empty());
    }
}

/// A whole file written from scratch by an independent implementation of
/// FORMAT.md (chosen file ID, hand-made binding, RustCrypto blocks) opens
/// and reads through `ContentFile`, for both suites and several sizes.
#[test]
fn independently_written_file_opens() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(suite);
        for (n, &size) in SIZES.iter().enumerate() {
            let file_id: [u8; 16] = std::array::from_fn(|i| (i as u8) * 3 + n as u8);
            let key_version = 1u32; // an older, still held data key
            let mut store = Vec::new();
            store.extend_from_slice(b"PVLT");
            store.extend_from_slice(&[1, suite.id(), 12, 0]);
            store.extend_from_slice(&key_version.to_be_bytes());
            store.extend_from_slice(&file_id);
            store.extend_from_slice(&[0; 4]);
            let core = store.clone();
            store.extend_from_slice(&binding_by_hand(&core, &DIR, NAME));
            store.extend_from_slice(&[0; 48]);
            assert_eq!(store.len(), HEADER_LEN);

            let key = file_key(key_version, &file_id);
            let data = pattern(size, 50 + n as u32);
            let nblocks = size.div_ceil(BLOCK_SIZE).max(1);
            for i in 0..nblocks {
                let chunk = &data[(i * BLOCK_SIZE).min(size)..((i + 1) * BLOCK_SIZE).min(size)];
                let nonce = pattern(suite.nonce_len(), 9000 + i as u32);
                let aad = aad_by_hand(&core, i as u64, i == nblocks - 1);
                store.extend_from_slice(&seal_block(suite, &key, &nonce, &aad, chunk));
            }

            let f = ContentFile::open(store, &c, at()).unwrap();
            assert_eq!(f.header().key_version, 1);
            assert_eq!(f.header().file_id, file_id);
            assert_eq!(f.size(), size as u64);
            let mut buf = vec![0u8; size];
            assert_eq!(f.read_at(0, &mut buf).unwrap(), size);
            assert!(buf == data, "size {size}");
            assert!(f.verify().unwrap().is_empty());
        }
    }
}

/// Pins the key schedule: the HKDF output for fixed inputs must not change
/// between releases (files written today must open tomorrow).
#[test]
fn file_key_derivation_is_pinned() {
    let mut key = [0u8; 32];
    derive(&DATA_KEY_V1, CONTENT_LABEL, &[0u8; 16], &mut key).unwrap();
    assert_eq!(key, hkdf_by_hand(&DATA_KEY_V1, CONTENT_LABEL, &[0u8; 16]));
    assert_eq!(hex::encode(key), PINNED_FILE_KEY);
}

/// HKDF-SHA256(salt "pivault-hkdf-v1", ikm [0x5a; 32],
/// info "pivault v1 file content" || 0x00 || [0; 16]), cross-checked with
/// Python's hmac/hashlib.
const PINNED_FILE_KEY: &str = "4c429b6d03e2e34ea9d4c4ff8c0e6daf80e671481291de82d10f9065b57c8bd2";

/// The interrupted-grow rule of FORMAT.md §6.4, implemented from the text
/// with the independent AEAD: the host length the file is cut back to, or
/// `None`.
fn old_end_by_hand(suite: Suite, store: &[u8]) -> Option<u64> {
    let h = parse_header_by_hand(store);
    let key = file_key(h.key_version, &h.file_id);
    let o = suite.overhead();
    let c = BLOCK_SIZE + o;
    let len = store.len();
    let n = (len - HEADER_LEN).div_ceil(c);
    let last = n - 1;
    let off = |b: usize| HEADER_LEN + b * c;
    let slot = |b: usize| &store[off(b)..(off(b) + c).min(len)];
    let opens = |b: usize, bytes: &[u8], last_flag: bool| {
        open_block(
            suite,
            &key,
            &aad_by_hand(&h.core, b as u64, last_flag),
            bytes,
        )
        .is_some()
    };
    // "Opens where it stands": the last block with last = 1; an earlier one
    // with either flag (§6.2).
    let stands = |b: usize| opens(b, slot(b), b == last) || (b < last && opens(b, slot(b), true));
    let zero = |b: usize| slot(b).iter().all(|&x| x == 0);
    let short_last = |b: usize| -> Option<u64> {
        let s = slot(b);
        let q = s.iter().rposition(|&x| x != 0)?;
        (o.max(q + 1)..=(q + 17).min(s.len() - 1))
            .find(|&k| opens(b, &s[..k], true))
            .map(|k| (off(b) + k) as u64)
    };
    let full_last = |b: usize| b < last && opens(b, slot(b), true);
    let lowest = len.saturating_sub(4 << 20).saturating_sub(HEADER_LEN) / c;
    let mut b = last as isize;
    // 1. all-zero failing blocks, then at most one other failing block
    //    (unless it is already the old end of 4).
    let mut zero_above = false;
    while b >= lowest as isize && !stands(b as usize) && zero(b as usize) {
        zero_above = true;
        b -= 1;
    }
    if b < lowest as isize {
        return None;
    }
    if !stands(b as usize) {
        if let Some(end) = short_last(b as usize) {
            return Some(end);
        }
        b -= 1;
        zero_above = false;
    }
    // 2. blocks that open.
    let mut run = 0;
    while b >= lowest as isize && stands(b as usize) {
        if run == 0 && zero_above && full_last(b as usize) {
            return Some(off(b as usize + 1) as u64);
        }
        run += 1;
        b -= 1;
    }
    if b < lowest as isize {
        return None;
    }
    // 3. at most one all-zero failing block, directly above 4.
    if !stands(b as usize) && zero(b as usize) {
        b -= 1;
        if b < lowest as isize {
            return None;
        }
        if full_last(b as usize) {
            return Some(off(b as usize + 1) as u64);
        }
    }
    // 4. a failing block that opens as the last block at a shorter length.
    short_last(b as usize)
}

/// The interrupted-grow recovery agrees with the rule as FORMAT.md §6.4
/// writes it, on every state a kill can leave while files of several
/// sizes grow by several amounts (every prefix of the recorded calls, the
/// write in progress cut at each page), under both suites.
#[test]
fn interrupted_grow_follows_the_documented_rule() {
    use std::cell::RefCell;
    use std::rc::Rc;
    #[path = "crash/mod.rs"]
    #[allow(dead_code)]
    mod crash;
    use crash::{Log, Recorder};

    let mut checked = (0, 0);
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(suite);
        for old in [0usize, 1, 100, 4096, 4097, 8192, 9000] {
            for grow in [1usize, 300, 4096, 5000, 12_000, 40_000] {
                let log = Rc::new(RefCell::new(Log::default()));
                let mut f = ContentFile::create(Recorder::new(log.clone()), &c, at()).unwrap();
                f.write_at(0, &pattern(old, 1)).unwrap();
                let grow_from = log.borrow().entries.len();
                f.write_at(old as u64, &pattern(grow, 2)).unwrap();
                let entries = log.borrow().entries.clone();
                crash::kill::kill_states(&entries, |k, cut, st, _, _| {
                    if k < grow_from {
                        return Ok(());
                    }
                    let ours = ContentFile::open(st.clone(), &c, at())
                        .unwrap()
                        .interrupted_grow()
                        .unwrap()
                        .map(|g| g.old_host_len);
                    let theirs = old_end_by_hand(suite, &st);
                    assert_eq!(ours, theirs, "{suite:?} {old}+{grow}, cut {cut:?}");
                    checked.0 += 1;
                    checked.1 += ours.is_some() as u32;
                    Ok(())
                })
                .unwrap();
            }
        }
    }
    eprintln!(
        "{} kill states compared, {} of them interrupted grows",
        checked.0, checked.1
    );
    assert!(checked.1 > 100);
}
