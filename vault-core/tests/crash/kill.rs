//! Kill points: what a process killed by a signal leaves (docs/RELIABILITY.md,
//! torture finding 1). Unlike a machine crash, a kill loses nothing the
//! process had written: the page cache holds every finished system call,
//! in order. Only the call in progress can stop part way, and a write stops
//! at a page boundary (the kernel looks for a fatal signal between the
//! pages it copies). So the states are the log's prefixes, each with the
//! interrupted write also cut at every page boundary it crosses.
//!
//! Each state, once the recovery a mount runs after an unclean end has
//! undone an interrupted grow (`ContentFile::interrupted_grow`), must have
//! the size of the file before the interrupted step or after it, and every
//! block must read as that block before or after (a write that was not
//! acknowledged may have landed in part, block by block), except that
//! blocks a torn write had not reached yet may fail authentication (never
//! read as other bytes). A torn first write of a grow is not such a write:
//! it must be undone whole.

use super::check::Oracle;
use super::enumerate::apply;
use super::{Entry, Op};
use vault_core::{ContentFile, Error, Geometry, NameContext, Suite, BLOCK_SIZE};

/// The kernel's unit for a write a signal interrupts.
pub const PAGE: u64 = 4096;
const BS: u64 = BLOCK_SIZE as u64;

/// Totals over the kill states of one or more logs.
#[derive(Default, Debug, Clone, Copy)]
pub struct KillSeen {
    /// States checked.
    pub states: u64,
    /// States that read as a model version only after undoing an
    /// interrupted grow.
    pub recovered: u64,
    /// States with blocks a torn write had not reached.
    pub torn: u64,
}

impl std::ops::AddAssign for KillSeen {
    fn add_assign(&mut self, o: KillSeen) {
        self.states += o.states;
        self.recovered += o.recovered;
        self.torn += o.torn;
    }
}

/// Each block's plaintext, or `None` for a block that failed.
fn read_blocks(f: &ContentFile<Vec<u8>>, suite: Suite) -> Result<Vec<Option<Vec<u8>>>, String> {
    let n = Geometry::new(suite).blocks(f.size());
    let mut out = Vec::new();
    let mut buf = vec![0u8; BLOCK_SIZE];
    for i in 0..n {
        match f.read_at(i * BS, &mut buf) {
            Ok(got) => out.push(Some(buf[..got].to_vec())),
            Err(Error::BlockAuth { index }) if index == i => out.push(None),
            Err(e) => return Err(format!("block {i}: unexpected error {e}")),
        }
    }
    Ok(out)
}

fn block(plain: &[u8], i: usize) -> &[u8] {
    let a = (i * BLOCK_SIZE).min(plain.len());
    let b = ((i + 1) * BLOCK_SIZE).min(plain.len());
    &plain[a..b]
}

fn all_open(blocks: &[Option<Vec<u8>>]) -> bool {
    blocks.iter().all(Option::is_some)
}

/// Visits every state a kill can leave while `entries` run: for each entry
/// `k`, the entries before it done and `k` not started (`cut` None), and,
/// for a write, also `k` stopped at each page boundary it crosses (`cut`,
/// the file offset it reached). `visit` gets the bytes, the host name and
/// the length before entry `k`.
pub fn kill_states(
    entries: &[Entry],
    mut visit: impl FnMut(usize, Option<u64>, Vec<u8>, usize, u64) -> Result<(), String>,
) -> Result<(), String> {
    let (mut disk, mut name) = (Vec::new(), 0usize);
    for (k, e) in entries.iter().enumerate() {
        let mut cuts = vec![None];
        if let Op::Write { offset, bytes, .. } = &e.op {
            let end = offset + bytes.len() as u64;
            let mut b = (offset / PAGE + 1) * PAGE;
            while b < end {
                cuts.push(Some(b));
                b += PAGE;
            }
        }
        for cut in cuts {
            let (mut st, mut nm) = (disk.clone(), name);
            if let (
                Some(c),
                Op::Write {
                    offset,
                    bytes,
                    extends,
                },
            ) = (cut, &e.op)
            {
                let part = Op::Write {
                    offset: *offset,
                    bytes: bytes[..(c - offset) as usize].to_vec(),
                    extends: *extends,
                };
                apply(&mut st, &mut nm, &part, None);
            }
            visit(k, cut, st, nm, disk.len() as u64)?;
        }
        apply(&mut disk, &mut name, &e.op, None);
    }
    Ok(())
}

impl Oracle<'_> {
    /// Checks every kill state of `entries`.
    pub fn check_kills(&self, entries: &[Entry]) -> Result<KillSeen, String> {
        let mut seen = KillSeen::default();
        kill_states(entries, |k, cut, st, nm, _| {
            let e = &entries[k];
            // Step 0 creates the file; a kill there leaves no file to read.
            if e.step == 0 {
                return Ok(());
            }
            // A torn first write of a grow (the new blocks from the second
            // past the old last block on) must be undone whole: only the
            // second write, of the blocks rewritten in place and the first
            // new block, may leave a damaged block when torn.
            let geo = Geometry::new(self.suite);
            let (was, now) = (
                self.snapshots[e.step - 1].plain.len() as u64,
                self.snapshots[e.step].plain.len() as u64,
            );
            let first_call = geo.block_offset(geo.blocks(was) + 1);
            let cut = cut.filter(|_| {
                !matches!(&e.op, Op::Write { offset, .. } if now > was && *offset >= first_call)
            });
            self.check_one(st, nm, e.step, cut, &mut seen)
                .map_err(|why| format!("kill before entry {k} (cut at {cut:?}): {why}"))?;
            seen.states += 1;
            Ok(())
        })?;
        Ok(seen)
    }

    fn check_one(
        &self,
        st: Vec<u8>,
        nm: usize,
        step: usize,
        cut: Option<u64>,
        seen: &mut KillSeen,
    ) -> Result<(), String> {
        let (before, after) = (&self.snapshots[step - 1].plain, &self.snapshots[step].plain);
        let at = NameContext::new(self.dir, self.names[nm]);
        let mut f = ContentFile::open(st, self.cipher, at)
            .map_err(|e| format!("the file does not open: {e}"))?;
        let mut blocks = read_blocks(&f, self.suite)?;
        let mut recovered = false;
        if !all_open(&blocks) {
            let gg = f.interrupted_grow();
            if let Some(g) = gg.map_err(|e| e.to_string())? {
                f.undo_interrupted_grow(&g).map_err(|e| e.to_string())?;
                blocks = read_blocks(&f, self.suite)?;
                recovered = true;
            }
        }
        if recovered {
            seen.recovered += 1;
        }
        let size = f.size() as usize;
        if size != before.len() && size != after.len() {
            return Err(format!(
                "{size} bytes, neither the {} before nor the {} after{}",
                before.len(),
                after.len(),
                if recovered {
                    " (after undoing an interrupted grow)"
                } else {
                    ""
                }
            ));
        }
        // What still fails must be where a torn write had not reached;
        // what reads must be some version's.
        let geo = Geometry::new(self.suite);
        for (i, b) in blocks.iter().enumerate() {
            match b {
                Some(got) => {
                    if block(before, i) != got.as_slice() && block(after, i) != got.as_slice() {
                        return Err(format!("block {i} reads bytes no version had there"));
                    }
                }
                None if cut.is_some_and(|c| geo.block_offset(i as u64 + 1) > c) => {}
                None => {
                    return Err(format!(
                        "block {i} fails authentication, and no interrupted grow is found"
                    ))
                }
            }
        }
        if all_open(&blocks) {
            return Ok(());
        }
        seen.torn += 1;
        Ok(())
    }
}
