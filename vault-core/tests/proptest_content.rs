//! Property tests of `ContentFile` against a plain `Vec<u8>` model.
//!
//! (a) Random sequences of writes, truncations/extensions and reads are
//!     applied to both; size, full content and ciphertext length must agree
//!     after every operation, and the file must reopen from its store with
//!     the same content and a clean `verify()`.
//! (b) Random data written at a random offset reads back over random ranges.
//!
//! Offsets and lengths are biased towards block boundaries (k * 4096 +/- 2),
//! where the last-block flag and partial-block re-reads change hands.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vault_core::{
    ContentFile, Geometry, Keyring, NameContext, SecretKey, Suite, VaultCipher, BLOCK_SIZE,
};

const DIR: [u8; 16] = [0x3c; 16];
const NAME: &[u8] = b"model.bin";
const SENTINEL: u8 = 0xee;

fn cipher(suite: Suite) -> VaultCipher {
    let mut data = BTreeMap::new();
    data.insert(1, SecretKey::from_bytes([0x24; 32]));
    VaultCipher::new(
        Keyring::from_parts(SecretKey::from_bytes([0x99; 32]), data).unwrap(),
        suite,
    )
}

fn at() -> NameContext<'static> {
    NameContext::new(&DIR, NAME)
}

/// Deterministic bytes from a seed (cheaper to generate and shrink than a
/// proptest `Vec<u8>` of up to 20 KiB, and never all zeros).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// A value in `0..max`, half the time near a multiple of the block size.
fn near_blocks(max: u64) -> impl Strategy<Value = u64> {
    let bs = BLOCK_SIZE as u64;
    prop_oneof![
        0..max,
        (0..=max / bs, -2i64..=2)
            .prop_map(move |(k, d)| { ((k * bs) as i64 + d).clamp(0, max as i64 - 1) as u64 }),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, len: usize, seed: u64 },
    SetLen(u64),
    Read { offset: u64, len: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (near_blocks(40 * 1024), near_blocks(20 * 1024), any::<u64>())
            .prop_map(|(offset, len, seed)| Op::Write { offset, len: len as usize, seed }),
        1 => near_blocks(60 * 1024).prop_map(Op::SetLen),
        2 => (near_blocks(64 * 1024), near_blocks(24 * 1024))
            .prop_map(|(offset, len)| Op::Read { offset, len: len as usize }),
    ]
}

/// Every case runs under both suites.
const SUITES: [Suite; 2] = [Suite::Aes256Gcm, Suite::XChaCha20Poly1305];

/// The whole plaintext, read through `read_at` into a buffer one byte
/// larger than the file (which must stay untouched).
fn read_all(f: &ContentFile<Vec<u8>>) -> Result<Vec<u8>, TestCaseError> {
    let size = f.size() as usize;
    let mut buf = vec![SENTINEL; size + 1];
    let n = f
        .read_at(0, &mut buf)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(n, size);
    prop_assert_eq!(buf[size], SENTINEL);
    buf.truncate(size);
    Ok(buf)
}

fn check_same(
    f: &ContentFile<Vec<u8>>,
    model: &[u8],
    geo: Geometry,
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(f.size(), model.len() as u64, "size after {}", what);
    prop_assert_eq!(
        f.store().len() as u64,
        geo.ciphertext_len(model.len() as u64),
        "ciphertext length after {}",
        what
    );
    let content = read_all(f)?;
    if content != model {
        let at = content.iter().zip(model).position(|(a, b)| a != b);
        return Err(TestCaseError::fail(format!(
            "content differs after {what}, first at byte {at:?}"
        )));
    }
    Ok(())
}

fn run_ops(suite: Suite, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = cipher(suite);
    let geo = Geometry::new(suite);
    let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
    let mut model: Vec<u8> = Vec::new();
    check_same(&f, &model, geo, "create")?;
    for (i, op) in ops.iter().enumerate() {
        let what = format!("op {i} {op:?}");
        match *op {
            Op::Write { offset, len, seed } => {
                let data = bytes(len, seed);
                f.write_at(offset, &data).unwrap();
                let o = offset as usize;
                if len > 0 {
                    if model.len() < o + len {
                        model.resize(o + len, 0);
                    }
                    model[o..o + len].copy_from_slice(&data);
                }
            }
            Op::SetLen(size) => {
                f.set_len(size).unwrap();
                model.resize(size as usize, 0);
            }
            Op::Read { offset, len } => {
                let mut buf = vec![SENTINEL; len];
                let n = f.read_at(offset, &mut buf).unwrap();
                let o = offset as usize;
                let want = if o >= model.len() {
                    0
                } else {
                    len.min(model.len() - o)
                };
                prop_assert_eq!(n, want, "{}", what);
                prop_assert!(
                    buf[..n] == model[o.min(model.len())..][..n],
                    "read bytes, {}",
                    what
                );
                prop_assert!(
                    buf[n..].iter().all(|&b| b == SENTINEL),
                    "past the end, {}",
                    what
                );
            }
        }
        check_same(&f, &model, geo, &what)?;
    }
    // Reopen from the store alone.
    let store = f.into_store();
    let f = ContentFile::open(store, &c, at()).unwrap();
    check_same(&f, &model, geo, "reopen")?;
    prop_assert_eq!(f.verify().unwrap(), Vec::<u64>::new());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ops_match_vec_model(ops in prop::collection::vec(op(), 1..24)) {
        for suite in SUITES {
            run_ops(suite, &ops)?;
        }
    }

    #[test]
    fn byte_ranges_round_trip(
        offset in near_blocks(20 * 1024),
        len in near_blocks(50 * 1024),
        seed in any::<u64>(),
        ranges in prop::collection::vec((near_blocks(72 * 1024), near_blocks(72 * 1024)), 1..16),
    ) {
        let data = bytes(len as usize, seed);
        // An empty write does not extend the file (like pwrite(2)).
        let mut model = vec![0u8; if data.is_empty() { 0 } else { offset as usize }];
        model.extend_from_slice(&data);
        for suite in SUITES {
        let c = cipher(suite);
        let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
        f.write_at(offset, &data).unwrap();
        let f = ContentFile::open(f.into_store(), &c, at()).unwrap();
        prop_assert_eq!(f.size(), model.len() as u64);
        for &(a, b) in &ranges {
            let (start, end) = (a.min(b) as usize, a.max(b) as usize);
            let mut buf = vec![SENTINEL; end - start];
            let n = f.read_at(start as u64, &mut buf).unwrap();
            let want = model.len().saturating_sub(start).min(end - start);
            prop_assert_eq!(n, want, "range {}..{}", start, end);
            prop_assert!(
 buf[..n] == model[start.min(model.len())..][..n],
 "range {}..{}",
 start,
 end
 );
            prop_assert!(buf[n..].iter().all(|&x| x == SENTINEL));
        }
        prop_assert_eq!(f.verify().unwrap(), Vec::<u64>::new());
        }
    }

    /// The same bytes written in pieces, in any order, give the same file
    /// content as one write.
    #[test]
    fn split_writes_equal_one_write(
        len in near_blocks(24 * 1024),
        seed in any::<u64>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        reverse in any::<bool>(),
    ) {
        let len = len as usize;
        let data = bytes(len, seed);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
        points.extend([0, len]);
        points.sort_unstable();
        points.dedup();
        let mut pieces: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        if reverse {
            pieces.reverse();
        }
        for suite in SUITES {
            let c = cipher(suite);
            let mut f = ContentFile::create(Vec::new(), &c, at()).unwrap();
            for &(s, e) in &pieces {
                f.write_at(s as u64, &data[s..e]).unwrap();
            }
            check_same(&f, &data, Geometry::new(suite), "split writes")?;
            prop_assert_eq!(f.verify().unwrap(), Vec::<u64>::new());
        }
    }
}

/// Fixed edge cases the random runs may or may not hit.
#[test]
fn boundary_sequences() {
    let bs = BLOCK_SIZE as u64;
    let w = |offset, len, seed| Op::Write { offset, len, seed };
    let cases: Vec<Vec<Op>> = vec![
        vec![w(0, 0, 1)],
        vec![w(bs, 1, 1)],
        vec![
            w(0, BLOCK_SIZE, 1),
            w(bs, 1, 2),
            Op::SetLen(bs),
            Op::SetLen(bs - 1),
        ],
        vec![w(3 * bs + 7, 10, 3), Op::SetLen(0), w(0, 1, 4)],
        vec![
            Op::SetLen(2 * bs),
            w(bs - 1, 2, 5),
            Op::SetLen(bs + 1),
            Op::SetLen(5 * bs),
        ],
        vec![
            w(10, 40 * BLOCK_SIZE, 6),
            w(100, 33 * BLOCK_SIZE, 7),
            Op::SetLen(35 * bs + 3),
        ],
        vec![
            w(0, 100, 8),
            w(2 * bs, 100, 9),
            Op::Read {
                offset: 50,
                len: 3 * BLOCK_SIZE,
            },
        ],
    ];
    for suite in SUITES {
        for ops in &cases {
            if let Err(e) = run_ops(suite, ops) {
                panic!("{suite:?} {ops:?}: {e}");
            }
        }
    }
}
