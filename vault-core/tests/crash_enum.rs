//! Crash-point enumeration for the content format (issue 18, point 2;
//! docs/RELIABILITY.md, "Crash states of the content format").
//!
//! Seeded random sequences of the operations the vault issues on one
//! content file (writes, appends, truncations that shrink and grow, syncs,
//! and renames by the vault's protocol: add the new name's binding, sync,
//! rename the host entry, remove the old binding) run against a recording
//! store. For every crash point of the log, every subset and reordering of
//! the pending operations a journalling file system may leave (and torn
//! sectors of the last write; `crash/enumerate.rs`) is materialised and
//! checked (`crash/check.rs`): never other bytes, synced data survives, the
//! file opens under its host name.
//!
//! `PIVAULT_CRASH_CASES=n` runs `n` sequences instead of the CI default;
//! `PIVAULT_CRASH_SEED=s` starts from another seed.

mod crash;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crash::check::{Oracle, Seen, Snapshot};
use crash::enumerate::{enumerate, CrashPoint, Limits, Rng, State};
use crash::kill::KillSeen;
use crash::{Entry, Log, Op, Recorder, SharedLog};
use vault_core::{ContentFile, Keyring, NameContext, SecretKey, Suite, VaultCipher, BLOCK_SIZE};

const DIR: [u8; 16] = [0x5c; 16];
const NAMES: &[&[u8]] = &[b"ledger.db", b"ledger.db-new", b"old ledger", b"ledger (2)"];
const BS: u64 = BLOCK_SIZE as u64;
/// Operations stay within a few blocks (of the end of a long file's
/// synced body): enough for every block-boundary case (partial and full
/// last blocks, writes across two blocks, truncation into the middle),
/// small enough to enumerate.
const SPAN: u64 = 5 * BS + 300;
/// Sequences in one CI run (about 40 s of test time on a 2-core machine).
const CI_CASES: u64 = 100;
const STEPS: usize = 14;

fn cipher(suite: Suite) -> VaultCipher {
    let mut data = BTreeMap::new();
    data.insert(1, SecretKey::from_bytes([0x61; 32]));
    VaultCipher::new(
        Keyring::from_parts(SecretKey::from_bytes([0x17; 32]), data).unwrap(),
        suite,
    )
}

fn at(name: usize) -> NameContext<'static> {
    NameContext::new(&DIR, NAMES[name])
}

fn pattern(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut x = rng.next() | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// A value in `0..=max`, half the time within 2 bytes of a block boundary.
fn near_block(rng: &mut Rng, max: u64) -> u64 {
    if rng.below(2) == 0 {
        rng.below(max + 1)
    } else {
        let k = rng.below(max / BS + 1);
        (k * BS + rng.below(5)).saturating_sub(2).min(max)
    }
}

/// One recorded run: the log and the model after every step.
struct Run {
    suite: Suite,
    cipher: VaultCipher,
    entries: Vec<Entry>,
    snapshots: Vec<Snapshot>,
}

/// The driver: a content file over a recorder, and the model.
struct Driver {
    log: SharedLog,
    file: ContentFile<Recorder>,
    plain: Vec<u8>,
    host: usize,
    snapshots: Vec<Snapshot>,
}

impl Driver {
    fn new(cipher: &VaultCipher) -> Driver {
        let log: SharedLog = Rc::new(RefCell::new(Log::default()));
        let file = ContentFile::create(Recorder::new(log.clone()), cipher, at(0)).unwrap();
        let mut d = Driver {
            log,
            file,
            plain: Vec::new(),
            host: 0,
            snapshots: Vec::new(),
        };
        d.snap();
        d
    }

    /// Ends a step: the model after it, and the step the next entries
    /// belong to.
    fn snap(&mut self) {
        assert_eq!(self.file.size(), self.plain.len() as u64);
        self.snapshots.push(Snapshot {
            plain: self.plain.clone(),
            header: self.file.header().to_bytes(),
            host: self.host,
        });
        self.log.borrow_mut().step = self.snapshots.len();
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.file.write_at(offset, data).unwrap();
        let (o, e) = (offset as usize, offset as usize + data.len());
        if self.plain.len() < e {
            self.plain.resize(e, 0);
        }
        self.plain[o..e].copy_from_slice(data);
        self.snap();
    }

    fn set_len(&mut self, size: u64) {
        self.file.set_len(size).unwrap();
        self.plain.resize(size as usize, 0);
        self.snap();
    }

    fn sync(&mut self) {
        self.log.borrow_mut().push(Op::Sync);
        self.snap();
    }

    /// A rename as `vault::binding` does it (FORMAT.md §19): bind the new
    /// name and sync, rename the host entry and sync its directory, drop
    /// the old binding. Without the directory sync (`dir_sync` false, the
    /// protocol before this test found the window) the old binding's
    /// removal can be on disk while the rename is not.
    fn rename(&mut self, cipher: &VaultCipher, to: usize, dir_sync: bool) {
        self.file.add_binding(cipher, at(to)).unwrap();
        self.snap();
        self.sync();
        self.log.borrow_mut().push(Op::Rename(to));
        let from = self.host;
        self.host = to;
        self.snap();
        if dir_sync {
            self.sync();
        }
        self.file.remove_binding(cipher, at(from)).unwrap();
        self.snap();
    }

    fn finish(self, suite: Suite, cipher: VaultCipher) -> Run {
        let store = self.file.into_store();
        // The recorder's bytes are the log applied in order, and read back
        // as the model: the log is the whole story.
        let mut replay = Vec::new();
        let mut name = 0;
        for e in self.log.borrow().entries.iter() {
            crash::enumerate::apply(&mut replay, &mut name, &e.op, None);
        }
        assert!(
            replay == store.bytes(),
            "the log does not replay to the store"
        );
        assert_eq!(name, self.host);
        drop(store);
        let entries = std::mem::take(&mut self.log.borrow_mut().entries);
        Run {
            suite,
            cipher,
            entries,
            snapshots: self.snapshots,
        }
    }
}

/// A random sequence of `steps` operations from `seed`.
fn random_run(seed: u64, steps: usize) -> Run {
    let mut rng = Rng(seed);
    let suite = if seed % 2 == 0 {
        Suite::Aes256Gcm
    } else {
        Suite::XChaCha20Poly1305
    };
    let cipher = cipher(suite);
    let mut d = Driver::new(&cipher);
    // Every third sequence starts from a synced file of 10 to 17 blocks:
    // the sector and page boundaries fall at other places within the
    // blocks past the tenth (a block is 4096 + 28 or 40 bytes), some a few
    // bytes past a block's start, where a torn append would leave a length
    // the format cannot produce.
    let floor = if seed % 3 == 2 {
        let body = (10 + rng.below(8)) * BS + rng.below(BS);
        d.write(0, &pattern(body as usize, &mut rng));
        d.sync();
        body - body % BS
    } else {
        0
    };
    let max_size = floor + SPAN;
    let mut since_sync = 0;
    for _ in 0..steps {
        let size = d.plain.len() as u64;
        since_sync += 1;
        // Keep the pending window enumerable (`enumerate` takes up to 128).
        let pick = if since_sync > 8 { 9 } else { rng.below(12) };
        match pick {
            0..=3 => {
                let lo = floor.min(size);
                let offset = lo + near_block(&mut rng, (size - lo).min(max_size - 1 - lo));
                let len = 1 + near_block(&mut rng, (2 * BS).min(max_size - offset - 1));
                let data = pattern(len as usize, &mut rng);
                d.write(offset, &data);
            }
            4 | 5 if size < max_size => {
                let len = 1 + near_block(&mut rng, (2 * BS).min(max_size - size - 1));
                let data = pattern(len as usize, &mut rng);
                d.write(size, &data);
            }
            6 => {
                let lo = floor.min(size);
                d.set_len(lo + near_block(&mut rng, size - lo))
            }
            7 if size < max_size => d.set_len(size + 1 + rng.below((2 * BS).min(max_size - size))),
            8 => {
                let to = (d.host + 1 + rng.below(NAMES.len() as u64 - 1) as usize) % NAMES.len();
                d.rename(&cipher, to, true);
                since_sync = 0;
            }
            _ => {
                d.sync();
                since_sync = 0;
            }
        }
    }
    d.finish(suite, cipher)
}

fn limits(seed: u64) -> Limits {
    Limits {
        exhaustive: 10,
        sampled: 256,
        torn_all: 6,
        torn_prefixes: 8,
        seed,
    }
}

/// Enumerates and checks every crash state of `run`, each first passed
/// through `mutate` (the identity, except in the tests that show the
/// checker fails). The first violation, with what reproduces it, is the
/// error.
fn check_run(
    run: &Run,
    seed: u64,
    mutate: impl Fn(&CrashPoint<'_>, &mut State),
) -> Result<(u64, Seen), String> {
    let oracle = Oracle {
        cipher: &run.cipher,
        suite: run.suite,
        dir: &DIR,
        names: NAMES,
        snapshots: &run.snapshots,
    };
    let mut seen = Seen::default();
    let mut first = None;
    let count = enumerate(&run.entries, 0, &limits(seed), |cp, mut st| {
        if first.is_some() {
            return;
        }
        mutate(cp, &mut st);
        let (mask, order, torn, name) = (st.mask, st.order, st.torn, st.name);
        match oracle.check(cp, st) {
            Ok(s) => seen += s,
            Err(why) => {
                first = Some(format!(
                    "seed {seed}, crash before entry {} (synced up to {}), subset {mask:#b} \
                     {order:?}, torn {torn:?}, host name {name}: {why}\nlog:\n{}",
                    cp.k,
                    cp.synced,
                    describe(&run.entries)
                ))
            }
        }
    });
    match first {
        Some(why) => Err(why),
        None => Ok((count, seen)),
    }
}

fn describe(entries: &[Entry]) -> String {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let op = match &e.op {
                Op::Write {
                    offset,
                    bytes,
                    extends,
                } => format!(
                    "write {}..{}{}",
                    offset,
                    offset + bytes.len() as u64,
                    if *extends { " (extends)" } else { "" }
                ),
                other => format!("{other:?}"),
            };
            format!("  {i:3} step {:3}: {op}\n", e.step)
        })
        .collect()
}

fn cases() -> u64 {
    std::env::var("PIVAULT_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES)
}

fn first_seed() -> u64 {
    std::env::var("PIVAULT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x18_02)
}

#[test]
fn every_crash_state_of_random_sequences() {
    let started = std::time::Instant::now();
    let (mut states, mut points, mut total) = (0u64, 0u64, Seen::default());
    let first = first_seed();
    for seed in first..first + cases() {
        let run = random_run(seed, STEPS);
        let (n, seen) = check_run(&run, seed, |_, _| {}).unwrap_or_else(|why| panic!("{why}"));
        states += n;
        points += run.entries.len() as u64 + 1;
        total += seen;
    }
    eprintln!(
        "crash enumeration: {} sequences, {points} crash points, {states} crash states checked \
         ({} blocks read back, {} reported damaged, {} files unopenable) in {:.1?}",
        cases(),
        total.blocks_ok,
        total.blocks_damaged,
        total.files_damaged,
        started.elapsed()
    );
}

fn kill_oracle(run: &Run) -> Oracle<'_> {
    Oracle {
        cipher: &run.cipher,
        suite: run.suite,
        dir: &DIR,
        names: NAMES,
        snapshots: &run.snapshots,
    }
}

/// Every kill point (a process killed by a signal: every finished call
/// kept, the write in progress cut at a page boundary) of the same random
/// sequences: after the recovery a mount runs, the file reads as it was
/// before the interrupted step or after it (`crash/kill.rs`).
#[test]
fn every_kill_point_of_random_sequences() {
    let started = std::time::Instant::now();
    let mut total = KillSeen::default();
    let first = first_seed();
    for seed in first..first + cases() {
        let run = random_run(seed, STEPS);
        total += kill_oracle(&run)
            .check_kills(&run.entries)
            .unwrap_or_else(|why| panic!("seed {seed}: {why}\nlog:\n{}", describe(&run.entries)));
    }
    eprintln!(
        "kill points: {} sequences, {} kill states checked ({} recovered from an interrupted \
         grow, {} with blocks a torn write had not reached) in {:.1?}",
        cases(),
        total.states,
        total.recovered,
        total.torn,
        started.elapsed()
    );
    assert!(
        total.recovered > 0,
        "no sequence grew a file past a partial last block"
    );
}

/// Torture finding 1 (docs/RELIABILITY.md): a kill between the truncate
/// that grows a file and the write of its blocks left the old partial last
/// block, synced before, unreadable. Each suite, each kind of old last
/// block (empty, partial, full) and a grow within the same block.
#[test]
fn kill_between_the_growing_truncate_and_the_blocks_recovers_the_synced_tail() {
    for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        for (old, grow) in [
            (0, 10),
            (100, 200),
            (100, 5000),
            (4096, 300),
            (4096, 8191),
            (9000, 9000),
        ] {
            let run = scripted(suite, |d, _| {
                d.write(0, &vec![0x42; old]);
                d.sync();
                d.write(old as u64, &vec![0x17; grow]);
            });
            let seen = kill_oracle(&run)
                .check_kills(&run.entries)
                .unwrap_or_else(|e| panic!("{suite:?} {old}+{grow}: {e}"));
            assert!(seen.recovered >= 1, "{suite:?} {old}+{grow}: {seen:?}");
        }
    }
}

/// The kill checker fails on a state that reads wrong: a byte of the
/// synced block flipped in the log.
#[test]
fn kill_checker_catches_a_flipped_byte() {
    let mut run = scripted(Suite::Aes256Gcm, |d, _| {
        d.write(0, &[7u8; 100]);
        d.sync();
        d.write(100, &[8u8; 5000]);
    });
    kill_oracle(&run).check_kills(&run.entries).unwrap();
    for e in run.entries.iter_mut().filter(|e| e.step == 1) {
        if let Op::Write { bytes, .. } = &mut e.op {
            bytes[40] ^= 1;
        }
    }
    let err = kill_oracle(&run).check_kills(&run.entries).unwrap_err();
    assert!(err.contains("fails") || err.contains("no version"), "{err}");
}

/// A run of the steps `script` takes.
fn scripted(suite: Suite, script: impl FnOnce(&mut Driver, &VaultCipher)) -> Run {
    let cipher = cipher(suite);
    let mut d = Driver::new(&cipher);
    script(&mut d, &cipher);
    d.finish(suite, cipher)
}

/// The log as the content code wrote it before the enumerator's finding:
/// a growing write extends the file itself, without the truncate first.
fn without_length_first(entries: &[Entry]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let (mut len, mut name) = (Vec::new(), 0);
    let mut skip_next_len = false;
    for (i, e) in entries.iter().enumerate() {
        let mut e = e.clone();
        if let (Op::SetLen(n), Some(next)) = (&e.op, entries.get(i + 1)) {
            if let Op::Write { offset, bytes, .. } = &next.op {
                let grows = *n > len.len() as u64;
                if grows && next.step == e.step && offset + bytes.len() as u64 == *n {
                    crash::enumerate::apply(&mut len, &mut name, &e.op, None);
                    skip_next_len = true;
                    continue;
                }
            }
        }
        if let Op::Write { extends, .. } = &mut e.op {
            *extends |= std::mem::take(&mut skip_next_len);
        }
        crash::enumerate::apply(&mut len, &mut name, &e.op, None);
        out.push(e);
    }
    out
}

/// The checker fails on a byte flipped in synced data (a store that lost
/// what it had promised to keep).
#[test]
fn checker_catches_a_flipped_byte_in_synced_data() {
    let run = scripted(Suite::Aes256Gcm, |d, _| {
        d.write(0, &[7u8; 3 * BLOCK_SIZE]);
        d.sync();
        d.write(2 * BS + 5, b"pending");
    });
    check_run(&run, 1, |_, _| {}).unwrap();
    let err = check_run(&run, 1, |cp, st| {
        if cp.synced > 0 {
            st.bytes[150] ^= 1;
        }
    })
    .unwrap_err();
    assert!(err.contains("synced block 0 fails authentication"), "{err}");
}

/// The checker fails on an authentic block that no version since the last
/// sync had: a block rolled back past a sync.
#[test]
fn checker_catches_an_authentic_block_from_before_the_sync() {
    let mut old = Vec::new();
    let cb = BLOCK_SIZE + Suite::Aes256Gcm.overhead();
    let run = scripted(Suite::Aes256Gcm, |d, _| {
        d.write(0, &[1u8; BLOCK_SIZE]);
        d.sync();
        old = d.file.store().bytes()[96..96 + cb].to_vec();
        d.write(0, &[2u8; BLOCK_SIZE]);
        d.sync();
        d.write(BS, b"tail");
    });
    check_run(&run, 2, |_, _| {}).unwrap();
    let second_sync = run
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.op, Op::Sync))
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap();
    let err = check_run(&run, 2, |cp, st| {
        if cp.synced >= second_sync {
            st.bytes[96..96 + cb].copy_from_slice(&old);
        }
    })
    .unwrap_err();
    assert!(
        err.contains("block 0 reads 4096 bytes that no version"),
        "{err}"
    );
}

/// Finding 1: a torn append could leave a length the format cannot
/// produce, and the whole file, synced blocks included, failed to open.
/// A file of 14 full blocks under AES-256-GCM has a sector boundary 24
/// bytes into block 14; the old code's append, torn there, left 24 bytes
/// of a 28-byte-overhead block. The content code now sets the length
/// first; the same log written the old way is caught.
#[test]
fn torn_append_leaving_an_impossible_length_is_caught() {
    let run = scripted(Suite::Aes256Gcm, |d, _| {
        d.write(0, &[9u8; 14 * BLOCK_SIZE]);
        d.sync();
        d.write(14 * BS, &[8u8; 100]);
    });
    check_run(&run, 3, |_, _| {}).unwrap();
    let old = Run {
        entries: without_length_first(&run.entries),
        ..run
    };
    let err = check_run(&old, 3, |_, _| {}).unwrap_err();
    assert!(
        err.contains("synced block 0 unreadable") && err.contains("impossible"),
        "{err}"
    );
}

/// Finding 2: renaming without syncing the directory before dropping the
/// old binding. The header write can reach the disk before the rename
/// does (data write-back is not ordered after the journal), leaving the
/// file under its old name bound to the new one only. `vault::binding`
/// now syncs the directory first; the old protocol is caught.
#[test]
fn rename_dropping_the_old_binding_before_the_rename_is_durable_is_caught() {
    let with = scripted(Suite::XChaCha20Poly1305, |d, c| {
        d.write(0, &[3u8; 5000]);
        d.sync();
        d.rename(c, 1, true);
    });
    check_run(&with, 4, |_, _| {}).unwrap();
    let without = scripted(Suite::XChaCha20Poly1305, |d, c| {
        d.write(0, &[3u8; 5000]);
        d.sync();
        d.rename(c, 1, false);
    });
    let err = check_run(&without, 4, |_, _| {}).unwrap_err();
    assert!(err.contains("does not open under its host name"), "{err}");
}
