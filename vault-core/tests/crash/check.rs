//! What a crash state must satisfy (FORMAT.md §6.4, §19; THREAT-MODEL.md
//! §9), checked by opening it with `ContentFile` under the host name it has.
//!
//! 1. Never other bytes. The header is byte for byte one the program wrote
//!    since the last sync (or before it, when nothing was written since);
//!    every block that authenticates holds exactly that block of some model
//!    version between the last sync and the crash (old or new content,
//!    same length); every other block is reported (`BlockAuth`), and
//!    `verify()` lists exactly those.
//! 2. Synced data survives. A block that was synced and that no pending
//!    operation touched (no write overlapping its ciphertext, no
//!    truncation into it) reads back exactly. Blocks a pending write
//!    re-sealed may be lost (FORMAT.md §6.4: an in-place rewrite can tear),
//!    never misread.
//! 3. The name holds. The file opens under whichever host name the crash
//!    left it with (§19's rename protocol).
//! 4. No crash, no loss: the whole log applied reads back as the model.

use super::enumerate::{CrashPoint, State};
use super::Op;
use vault_core::{
    ContentFile, Error, Geometry, NameContext, Suite, VaultCipher, BLOCK_SIZE, HEADER_LEN,
};

/// The driver's model after one step.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Plaintext.
    pub plain: Vec<u8>,
    /// Header bytes (the binding slots change with links and renames).
    pub header: [u8; HEADER_LEN],
    /// Host name (index into the name pool).
    pub host: usize,
}

/// Everything a check needs besides the state.
pub struct Oracle<'a> {
    pub cipher: &'a VaultCipher,
    pub suite: Suite,
    pub dir: &'a [u8; 16],
    pub names: &'a [&'a [u8]],
    /// Snapshot `i` is the model once step `i` is done (step 0: created).
    pub snapshots: &'a [Snapshot],
}

/// What one state showed, for the totals.
#[derive(Default, Debug, Clone, Copy)]
pub struct Seen {
    /// Blocks read back, each as one version's.
    pub blocks_ok: u64,
    /// Blocks reported damaged.
    pub blocks_damaged: u64,
    /// States whose file did not open (length, header, binding).
    pub files_damaged: u64,
}

impl std::ops::AddAssign for Seen {
    fn add_assign(&mut self, o: Seen) {
        self.blocks_ok += o.blocks_ok;
        self.blocks_damaged += o.blocks_damaged;
        self.files_damaged += o.files_damaged;
    }
}

const BS: u64 = BLOCK_SIZE as u64;

fn block(plain: &[u8], i: u64) -> &[u8] {
    let a = ((i * BS) as usize).min(plain.len());
    let b = (((i + 1) * BS) as usize).min(plain.len());
    &plain[a..b]
}

impl Oracle<'_> {
    /// The model versions a state at `cp` may show: the one synced, up to
    /// the one of the step the crash interrupted.
    fn versions(&self, cp: &CrashPoint<'_>) -> std::ops::RangeInclusive<usize> {
        let from = if cp.synced == 0 {
            0
        } else {
            cp.entries[cp.synced - 1].step
        };
        let to = if cp.k > cp.synced {
            cp.entries[cp.k - 1].step
        } else {
            from
        };
        from..=to
    }

    /// Blocks of the synced version no pending operation touched.
    fn protected(&self, cp: &CrashPoint<'_>) -> Vec<u64> {
        if cp.synced == 0 {
            return Vec::new();
        }
        let synced = &self.snapshots[cp.entries[cp.synced - 1].step].plain;
        let geo = Geometry::new(self.suite);
        let ov = self.suite.overhead() as u64;
        let n = geo.blocks(synced.len() as u64);
        (0..n)
            .filter(|&i| !block(synced, i).is_empty())
            .filter(|&i| {
                let a = geo.block_offset(i);
                let b = a + block(synced, i).len() as u64 + ov;
                let partial_last = i + 1 == n && block(synced, i).len() < BLOCK_SIZE;
                cp.pending.iter().all(|&j| match &cp.entries[j].op {
                    Op::Write { offset, bytes, .. } => {
                        offset + bytes.len() as u64 <= a || *offset >= b
                    }
                    // A cut into the block, or, for a partial last block,
                    // any other length: the block's extent changes, so it
                    // is at risk until its rewrite is durable (a growing
                    // file sets its length before re-sealing that block).
                    // A partial last block changes extent with any other
                    // length, so it is at risk from the truncate that
                    // grows the file until its rewrite is durable (the
                    // rewrite FORMAT.md §6.4 warns of); a full block only
                    // from a cut into it.
                    Op::SetLen(len) if partial_last => *len == b,
                    Op::SetLen(len) => *len >= b,
                    Op::Sync | Op::Rename(_) => true,
                })
            })
            .collect()
    }

    /// Checks one state; `Err` says what was broken.
    pub fn check(&self, cp: &CrashPoint<'_>, st: State) -> Result<Seen, String> {
        let versions = self.versions(cp);
        let snaps = &self.snapshots[versions.clone()];
        let protected = self.protected(cp);
        let synced = (cp.synced > 0).then(|| &self.snapshots[*versions.start()].plain);
        // A step boundary: the program could have observed this state.
        let boundary = cp.k > 0
            && (cp.k == cp.entries.len() || cp.entries[cp.k].step != cp.entries[cp.k - 1].step);
        let complete = (boundary && st.is_complete(cp)).then(|| &self.snapshots[*versions.end()]);
        let mut seen = Seen::default();

        // 1. The header: one that was written, whole.
        if st.bytes.len() >= HEADER_LEN {
            let h = &st.bytes[..HEADER_LEN];
            // Before the first sync the creating write may be missing: the
            // header is still the zeros a later write extended over.
            let unwritten = cp.synced == 0 && h.iter().all(|&b| b == 0);
            if !unwritten && !snaps.iter().any(|v| v.header[..] == *h) {
                return Err("header bytes that no version since the last sync had".into());
            }
        }
        if let Some(v) = complete.filter(|v| v.host != st.name) {
            return Err(format!(
                "no crash, yet host name {} (model: {})",
                st.name, v.host
            ));
        }
        let at = NameContext::new(self.dir, self.names[st.name]);
        let file = match ContentFile::open(st.bytes, self.cipher, at) {
            Ok(f) => f,
            Err(e) => {
                if complete.is_some() {
                    return Err(format!("no crash, yet the file does not open: {e}"));
                }
                if matches!(e, Error::Binding) && cp.synced > 0 {
                    return Err(format!(
                        "the file does not open under its host name {:?}: {e}",
                        String::from_utf8_lossy(self.names[st.name])
                    ));
                }
                if let Some(&i) = protected.first() {
                    return Err(format!(
                        "synced block {i} unreadable: the file fails to open: {e}"
                    ));
                }
                if !matches!(e, Error::Length(_) | Error::Header(_) | Error::Binding) {
                    return Err(format!("unexpected error opening the file: {e}"));
                }
                seen.files_damaged += 1;
                return Ok(seen);
            }
        };
        let size = file.size();
        let geo = Geometry::new(self.suite);
        let n = geo.blocks(size);
        let mut damaged = Vec::new();
        let mut buf = vec![0u8; BLOCK_SIZE];
        for i in 0..n {
            match file.read_at(i * BS, &mut buf) {
                Ok(got) => {
                    let got = &buf[..got];
                    if !snaps.iter().any(|v| block(&v.plain, i) == got) {
                        return Err(format!(
                            "block {i} reads {} bytes that no version since the last sync had there",
                            got.len()
                        ));
                    }
                    if let Some(s) = synced.filter(|_| protected.contains(&i)) {
                        if block(s, i) != got {
                            return Err(format!("synced block {i} reads back changed"));
                        }
                    }
                    seen.blocks_ok += 1;
                }
                Err(Error::BlockAuth { index }) if index == i => {
                    if protected.contains(&i) {
                        return Err(format!("synced block {i} fails authentication"));
                    }
                    damaged.push(i);
                    seen.blocks_damaged += 1;
                }
                Err(e) => return Err(format!("block {i}: unexpected error {e}")),
            }
        }
        if let Some(&i) = protected.iter().find(|&&i| i >= n) {
            return Err(format!("synced block {i} lies past the end ({size} bytes)"));
        }
        let listed = file.verify().map_err(|e| format!("verify: {e}"))?;
        // An empty file's one block holds no bytes, so a read ends before
        // opening it; only `verify()` sees its damage (attacks.rs,
        // `empty_file_block_tampered`). No byte is misread either way.
        if size == 0 && listed == [0] && complete.is_none() {
            damaged.push(0);
            seen.blocks_damaged += 1;
        }
        if listed != damaged {
            return Err(format!(
                "verify() lists {listed:?}, reads failed for {damaged:?}"
            ));
        }
        // 4. No crash: exactly the model.
        if let Some(v) = complete {
            if !damaged.is_empty() || size != v.plain.len() as u64 {
                return Err(format!(
                    "no crash, yet {size} bytes with damaged blocks {damaged:?} (model: {} bytes)",
                    v.plain.len()
                ));
            }
        }
        Ok(seen)
    }
}
