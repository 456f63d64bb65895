//! Content-format throughput beside raw AES-256-GCM from `ring`.
//!
//! Each group runs pivault's format for both suites next to a bare `ring`
//! seal or open of the same number of bytes, so the report reads directly
//! as "what the format costs": per-block random nonces, AAD, header-bound
//! keys, the store copy and (for 1 MiB) the block split and thread pool.
//!
//! `cargo bench --bench content` (about two minutes); add `-- --quick` for a
//! rough pass.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use vault_core::{ContentFile, Keyring, NameContext, Suite, VaultCipher, BLOCK_SIZE};

const SUITES: [Suite; 2] = [Suite::Aes256Gcm, Suite::XChaCha20Poly1305];
const MIB: usize = 1 << 20;
const DIR: [u8; 16] = [1; 16];

fn cipher(suite: Suite) -> VaultCipher {
    VaultCipher::new(Keyring::generate().expect("OS random"), suite)
}

fn at() -> NameContext<'static> {
    NameContext::new(&DIR, b"bench.bin")
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13)).collect()
}

/// A file holding `len` bytes, over a `Vec` store.
fn file(c: &VaultCipher, len: usize) -> ContentFile<Vec<u8>> {
    let mut f = ContentFile::create(Vec::new(), c, at()).expect("create");
    f.write_at(0, &data(len)).expect("write");
    f
}

fn ring_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"))
}

/// A fixed nonce: fine for timing, never for real data.
fn nonce() -> Nonce {
    Nonce::assume_unique_for_key([9u8; 12])
}

const RAW: &str = "ring-raw/aes-256-gcm";

fn label(suite: Suite) -> String {
    format!("pivault/{}", suite.name())
}

/// Raw ring seal of `len` bytes in place (one message).
fn ring_seal(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, len: usize) {
    let key = ring_key();
    let mut buf = data(len);
    g.bench_function(RAW, |b| {
        // The returned tag is passed through black_box by criterion.
        b.iter(|| {
            key.seal_in_place_separate_tag(nonce(), Aad::from(&[0u8; 41]), black_box(&mut buf))
                .expect("seal")
        })
    });
}

/// Raw ring open of a `len`-byte message: copy the ciphertext into a work
/// buffer (the format copies it out of the store too), then open in place.
fn ring_open(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, len: usize) {
    let key = ring_key();
    let aad = [0u8; 41];
    let mut ct = data(len);
    let tag: Tag = key
        .seal_in_place_separate_tag(nonce(), Aad::from(&aad), &mut ct)
        .expect("seal");
    let mut work = vec![0u8; len];
    g.bench_function(RAW, |b| {
        b.iter(|| {
            work.copy_from_slice(&ct);
            let plain = key
                .open_in_place_separate_tag(nonce(), Aad::from(&aad), tag, &mut work, 0..)
                .expect("open");
            black_box(plain);
        })
    });
}

fn seal_4k(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal_4k");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    for suite in SUITES {
        let vc = cipher(suite);
        let f = file(&vc, 0);
        let plain = data(BLOCK_SIZE);
        let mut out = vec![0u8; BLOCK_SIZE + suite.overhead()];
        g.bench_function(label(suite), |b| {
            b.iter(|| {
                f.seal_block_into(1, false, black_box(&plain), &mut out)
                    .expect("seal");
                black_box(&out);
            })
        });
    }
    ring_seal(&mut g, BLOCK_SIZE);
    g.finish();
}

fn open_4k(c: &mut Criterion) {
    let mut g = c.benchmark_group("open_4k");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    for suite in SUITES {
        let vc = cipher(suite);
        // Three blocks; read the middle one (a full, not-last block).
        let f = file(&vc, 3 * BLOCK_SIZE);
        let mut buf = vec![0u8; BLOCK_SIZE];
        g.bench_function(label(suite), |b| {
            b.iter(|| {
                let n = f
                    .read_at(black_box(BLOCK_SIZE as u64), &mut buf)
                    .expect("read");
                assert_eq!(n, BLOCK_SIZE);
                black_box(&buf);
            })
        });
    }
    ring_open(&mut g, BLOCK_SIZE);
    g.finish();
}

fn write_1m(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_1m");
    g.throughput(Throughput::Bytes(MIB as u64));
    for suite in SUITES {
        let vc = cipher(suite);
        // Pre-sized: the timed writes overwrite, never grow the store.
        let mut f = file(&vc, MIB);
        let buf = data(MIB);
        g.bench_function(label(suite), |b| {
            b.iter(|| f.write_at(0, black_box(&buf)).expect("write"))
        });
    }
    ring_seal(&mut g, MIB);
    g.finish();
}

fn read_1m(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_1m");
    g.throughput(Throughput::Bytes(MIB as u64));
    for suite in SUITES {
        let vc = cipher(suite);
        let f = file(&vc, MIB);
        let mut buf = vec![0u8; MIB];
        g.bench_function(label(suite), |b| {
            b.iter(|| {
                let n = f.read_at(0, &mut buf).expect("read");
                assert_eq!(n, MIB);
                black_box(&buf);
            })
        });
    }
    ring_open(&mut g, MIB);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_4k, open_4k, write_1m, read_1m
}
criterion_main!(benches);
