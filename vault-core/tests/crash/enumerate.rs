//! The on-disk states a crash may leave, from a recorded log.
//!
//! Model (a journalling file system such as ext4 in `data=ordered` mode):
//! a crash after log entry `k - 1` finds everything before the last
//! [`Op::Sync`] durable, and of the operations since then (the *pending*
//! ones) any subset, each whole, applied in program order; where two
//! pending writes overlap, the subset is also applied with the writes in
//! reverse order (page write-back does not keep submission order). The
//! last pending write may also be torn: only a prefix of its 512-byte
//! sectors applied. Writes that did not extend the file when issued never
//! move its length: their bytes past the length of the state they land in
//! are lost (the size change that would make them visible is not durable).
//! A subset with pending length changes or renames left out models them
//! not being committed yet. This is a superset of what ext4 can produce,
//! which is the safe direction: a state it cannot produce can only make a
//! check fail, not pass.
//!
//! Up to [`Limits::exhaustive`] pending operations every subset is tried;
//! beyond, the extremes (none, all, each prefix, each single operation and
//! all-but-one) and [`Limits::sampled`] random subsets from a seeded
//! generator.

use super::{Entry, Op, SECTOR};
use std::collections::BTreeSet;

/// How much of the state space is tried.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Every subset is tried up to this many pending operations.
    pub exhaustive: usize,
    /// Random subsets tried beyond that.
    pub sampled: usize,
    /// Torn variants of the last write for every subset up to this many
    /// pending operations; beyond, only for "it alone" and "all".
    pub torn_all: usize,
    /// Most sector prefixes tried per torn write (evenly spread, always
    /// including the first and the last but one).
    pub torn_prefixes: u64,
    /// Seed of the sampled subsets.
    pub seed: u64,
}

/// Where the crash happens: entries `..k` were issued, entries `..synced`
/// were durable.
pub struct CrashPoint<'a> {
    pub k: usize,
    pub synced: usize,
    /// Indices of the entries in `synced..k` (none is a sync).
    pub pending: Vec<usize>,
    pub entries: &'a [Entry],
}

/// Application order of a subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Program,
    WritesReversed,
}

/// One materialised crash state.
#[derive(Debug)]
pub struct State {
    pub bytes: Vec<u8>,
    /// Host name the file has (index into the name pool).
    pub name: usize,
    /// Bit `j` set: `pending[j]` is applied.
    pub mask: u128,
    pub order: Order,
    /// Sectors of the last pending write applied, when it is torn.
    pub torn: Option<u64>,
}

impl State {
    /// True when this is the log up to `k` applied whole: what the program
    /// saw, with no crash at all.
    pub fn is_complete(&self, cp: &CrashPoint<'_>) -> bool {
        self.mask == full(cp.pending.len()) && self.order == Order::Program && self.torn.is_none()
    }
}

fn full(m: usize) -> u128 {
    if m == 128 {
        u128::MAX
    } else {
        (1u128 << m) - 1
    }
}

/// A small seeded generator (splitmix64): the sampled subsets of one seed
/// are the same on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Applies `op` to `disk` (and the host name), the last write cut to its
/// first `torn` sectors when given.
pub fn apply(disk: &mut Vec<u8>, name: &mut usize, op: &Op, torn: Option<u64>) {
    match op {
        Op::Write {
            offset,
            bytes,
            extends,
        } => {
            let start = *offset as usize;
            let mut end = start + bytes.len();
            if let Some(p) = torn {
                end = end.min(((offset / SECTOR + p) * SECTOR) as usize);
            }
            if !extends {
                end = end.min(disk.len());
            }
            if end <= start {
                return;
            }
            if disk.len() < end {
                disk.resize(end, 0);
            }
            disk[start..end].copy_from_slice(&bytes[..end - start]);
        }
        Op::SetLen(n) => disk.resize(*n as usize, 0),
        Op::Sync => {}
        Op::Rename(to) => *name = *to,
    }
}

/// Byte range a write covers.
fn write_range(op: &Op) -> Option<(u64, u64)> {
    match op {
        Op::Write { offset, bytes, .. } => Some((*offset, offset + bytes.len() as u64)),
        _ => None,
    }
}

/// Number of sectors a write touches.
fn sectors(offset: u64, len: u64) -> u64 {
    (offset + len).div_ceil(SECTOR) - offset / SECTOR
}

/// The subsets tried for `m` pending operations.
fn masks(m: usize, limits: &Limits, rng: &mut Rng) -> Vec<u128> {
    assert!(
        m <= 128,
        "{m} operations pending: the driver syncs more often"
    );
    if m <= limits.exhaustive {
        return (0..1u128 << m).collect();
    }
    let all = full(m);
    let mut set = BTreeSet::from([0, all]);
    for j in 0..m {
        set.insert(full(j));
        set.insert(1 << j);
        set.insert(all ^ (1 << j));
    }
    for _ in 0..limits.sampled {
        set.insert(((rng.next() as u128) << 64 | rng.next() as u128) & all);
    }
    set.into_iter().collect()
}

/// Visits every crash state of `entries` (the file named `first_name`
/// before the log starts, and empty). Returns how many it visited.
pub fn enumerate(
    entries: &[Entry],
    first_name: usize,
    limits: &Limits,
    mut visit: impl FnMut(&CrashPoint<'_>, State),
) -> u64 {
    let mut rng = Rng(limits.seed);
    let mut base: Vec<u8> = Vec::new();
    let mut base_name = first_name;
    let mut synced = 0;
    let mut count = 0;
    for k in 0..=entries.len() {
        if k > 0 && matches!(entries[k - 1].op, Op::Sync) {
            for e in &entries[synced..k] {
                apply(&mut base, &mut base_name, &e.op, None);
            }
            synced = k;
        }
        let cp = CrashPoint {
            k,
            synced,
            pending: (synced..k).collect(),
            entries,
        };
        let m = cp.pending.len();
        let ops: Vec<&Op> = cp.pending.iter().map(|&i| &entries[i].op).collect();
        let last_write = ops
            .last()
            .and_then(|op| write_range(op))
            .and_then(|(a, b)| {
                let n = sectors(a, b - a);
                (n > 1).then_some(n)
            });
        let torn_prefixes: Vec<u64> = match last_write {
            None => Vec::new(),
            Some(n) if n - 1 <= limits.torn_prefixes => (1..n).collect(),
            Some(n) => {
                let t = limits.torn_prefixes;
                let mut v: BTreeSet<u64> = (0..t).map(|i| 1 + i * (n - 2) / (t - 1)).collect();
                v.insert(n - 1);
                v.into_iter().collect()
            }
        };
        for mask in masks(m, limits, &mut rng) {
            let chosen: Vec<usize> = (0..m).filter(|j| mask >> j & 1 == 1).collect();
            let mut run = |order: Order, seq: &[usize], torn: Option<u64>| {
                let mut st = State {
                    bytes: base.clone(),
                    name: base_name,
                    mask,
                    order,
                    torn,
                };
                for (n, &j) in seq.iter().enumerate() {
                    let t = if n + 1 == seq.len() { torn } else { None };
                    apply(&mut st.bytes, &mut st.name, ops[j], t);
                }
                visit(&cp, st);
                count += 1;
            };
            run(Order::Program, &chosen, None);
            // The writes among `chosen` in reverse order, in the slots the
            // writes held: only worth a state when two of them overlap.
            let writes: Vec<usize> = chosen
                .iter()
                .copied()
                .filter(|&j| write_range(ops[j]).is_some())
                .collect();
            let overlap = writes.iter().enumerate().any(|(x, &a)| {
                writes[x + 1..].iter().any(|&b| {
                    let (Some((a0, a1)), Some((b0, b1))) =
                        (write_range(ops[a]), write_range(ops[b]))
                    else {
                        return false;
                    };
                    a0 < b1 && b0 < a1
                })
            });
            if overlap {
                let mut rev = writes.iter().rev();
                let seq: Vec<usize> = chosen
                    .iter()
                    .map(|&j| {
                        if write_range(ops[j]).is_some() {
                            *rev.next().unwrap_or(&j)
                        } else {
                            j
                        }
                    })
                    .collect();
                run(Order::WritesReversed, &seq, None);
            }
            let has_last = m > 0 && mask >> (m - 1) & 1 == 1;
            let torn_here =
                has_last && (m <= limits.torn_all || mask == 1 << (m - 1) || mask == full(m));
            if torn_here {
                for &p in &torn_prefixes {
                    run(Order::Program, &chosen, Some(p));
                }
            }
        }
    }
    count
}
