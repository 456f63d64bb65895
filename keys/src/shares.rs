//! Share slots: a random 256-bit slot secret split into N share files
//! (Shamir's scheme over GF(256), `blahaj`), any K of which unseal; K-1
//! reveal nothing about it.
//!
//! A share file is three lines: `pivault-share 1`, one JSON object
//! (vault ID, slot, share-set ID, threshold, count, x, y), and
//! `sha256 <hex>` over the lines before it (catches damage). The slot
//! record keeps a hash of every share, under the keystore MAC, so a share
//! that is damaged, forged, from another vault or from an older set of the
//! slot is named before anything is combined. The KEK is
//! HKDF-SHA256(secret, "pivault v1 share slot", salt).

use crate::atomic::write_new;
use crate::audit::Event;
use crate::body::SlotRecord;
use crate::keystore::{now, Keystore};
use crate::slot::SlotKind;
use crate::unseal::Unsealed;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vault_core::SecretKey;
use zeroize::Zeroizing;

const MAGIC_LINE: &str = "pivault-share 1";
const KEK_LABEL: &str = "pivault v1 share slot";
const HASH_DOMAIN: &[u8] = b"pivault share v1";

/// The public facts of a share slot, in its record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharesInfo {
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub count: u8,
    /// hex of 8 random bytes naming this set of shares.
    pub set: String,
    /// Lowercase hex SHA-256 of each share (see [`share_hash`]), by x - 1.
    pub hashes: Vec<String>,
}

/// The base64 text of a share value: a secret string, wiped on drop and
/// never printed.
#[derive(Clone, Default)]
struct SecretString(Zeroizing<String>);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretString(Zeroizing::new(s)))
    }
}

/// One share file's contents.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    vault_id: String,
    slot: u32,
    set: String,
    threshold: u8,
    count: u8,
    x: u8,
    y: SecretString,
}

/// A share read from a file (checked for damage, not yet against a vault).
/// Its value is wiped on drop and never printed (`Debug` shows the file,
/// slot and share number only).
#[derive(Clone)]
pub struct ShareFile {
    path: PathBuf,
    body: ShareBody,
    y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ShareFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareFile")
            .field("path", &self.path)
            .field("slot", &self.body.slot)
            .field("set", &self.body.set)
            .field("x", &self.body.x)
            .field("threshold", &self.body.threshold)
            .field("count", &self.body.count)
            .finish_non_exhaustive()
    }
}

fn share_hash(set: &str, x: u8, y: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(HASH_DOMAIN);
    ctx.update(set.as_bytes());
    ctx.update(&[x]);
    ctx.update(y);
    hex::encode(ctx.finish().as_ref())
}

fn kek(secret: &[u8], salt: &[u8]) -> Result<SecretKey> {
    let mut out = Zeroizing::new([0u8; 32]);
    vault_core::derive(secret, KEK_LABEL, salt, out.as_mut())?;
    Ok(SecretKey::from_bytes(*out))
}

impl ShareFile {
    /// Reads and checks a share file (framing and checksum).
    pub fn read(path: &Path) -> Result<ShareFile> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
        Self::parse(path, &text)
    }

    /// Checks a share file's text (framing and checksum); `path` names it
    /// in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ShareFile> {
        let bad = |why: &str| Error::BadShare {
            path: path.to_path_buf(),
            reason: why.to_string(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC_LINE) {
            return Err(bad("it is not a pivault share file"));
        }
        let json = lines.next().ok_or_else(|| bad("it is truncated"))?;
        let sum = lines
            .next()
            .and_then(|l| l.strip_prefix("sha256 "))
            .ok_or_else(|| bad("it is truncated (no checksum line)"))?;
        let want = Zeroizing::new(format!("{MAGIC_LINE}\n{json}\n"));
        let got =
            hex::encode(ring::digest::digest(&ring::digest::SHA256, want.as_bytes()).as_ref());
        if got != sum || lines.next().is_some() {
            return Err(bad("it is damaged (its checksum does not match)"));
        }
        let body: ShareBody =
            serde_json::from_str(json).map_err(|_| bad("it is damaged (malformed contents)"))?;
        let y = Zeroizing::new(
            B64.decode(body.y.0.as_bytes())
                .ok()
                .filter(|y| y.len() == 32)
                .ok_or_else(|| bad("it is damaged (the share value is not 32 bytes)"))?,
        );
        Ok(ShareFile {
            path: path.to_path_buf(),
            body,
            y,
        })
    }

    /// The slot the share belongs to.
    pub fn slot(&self) -> u32 {
        self.body.slot
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, path: &Path) -> Result<()> {
        let json = Zeroizing::new(serde_json::to_string(&self.body).expect("share serializes"));
        // Reserved at the final size: a String that grows leaves its old
        // buffer (with the share value) unwiped.
        let len = MAGIC_LINE.len() + 1 + json.len() + 1 + "sha256 ".len() + 64 + 1;
        let mut text = Zeroizing::new(String::with_capacity(len));
        text.push_str(MAGIC_LINE);
        text.push('\n');
        text.push_str(&json);
        text.push('\n');
        let sum =
            hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
        text.push_str("sha256 ");
        text.push_str(&sum);
        text.push('\n');
        debug_assert_eq!((text.len(), text.capacity()), (len, len));
        write_new(path, text.as_bytes(), 0o600)
    }
}

impl Keystore {
    /// Adds a share slot: a random secret split into `count` shares, any
    /// `threshold` of which unseal, written as new files in `out_dir`
    /// (created if missing; existing files are never overwritten). Saves
    /// the keystore atomically once every file is written. Returns the
    /// slot and the files.
    pub fn add_shares(
        &mut self,
        u: &mut Unsealed,
        threshold: u8,
        count: u8,
        out_dir: &Path,
    ) -> Result<(u32, Vec<PathBuf>)> {
        self.require_admin(u, "add a slot")?;
        if threshold < 2 || count < threshold {
            return Err(Error::SharesParams(format!(
                "threshold {threshold} of {count} shares: need 2 <= threshold <= shares <= 255"
            )));
        }
        self.begin_write(u)?;
        let id = self.body.next_slot;
        let secret = SecretKey::random()?;
        let set = hex::encode(vault_core::random::array::<8>()?);
        let dealer = blahaj::Sharks(threshold).dealer(secret.expose());
        let mut files = Vec::new();
        let mut hashes = Vec::new();
        for share in dealer.take(count as usize) {
            let bytes = Zeroizing::new(Vec::<u8>::from(&share));
            let (x, y) = (bytes[0], &bytes[1..]);
            hashes.push(share_hash(&set, x, y));
            files.push(ShareFile {
                path: out_dir.join(format!("pivault-slot{id}-share{x}-of-{count}.pvshare")),
                body: ShareBody {
                    vault_id: B64.encode(self.vault_id),
                    slot: id,
                    set: set.clone(),
                    threshold,
                    count,
                    x,
                    y: SecretString(Zeroizing::new(B64.encode(y))),
                },
                y: Zeroizing::new(y.to_vec()),
            });
        }
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
        for (i, f) in files.iter().enumerate() {
            if let Err(e) = f.write(&f.path) {
                for done in &files[..i] {
                    let _ = std::fs::remove_file(&done.path);
                }
                return Err(e);
            }
        }
        let salt = vault_core::random::array::<16>()?;
        let kek = kek(secret.expose(), &salt)?;
        let (wrapped, public, _) = self.seal_new_identity(&kek, id, SlotKind::Shares)?;
        let rec = SlotRecord {
            id,
            kind: SlotKind::Shares,
            created: now(),
            kdf: None,
            salt: B64.encode(salt),
            policy: None,
            role: None,
            shares: Some(SharesInfo {
                threshold,
                count,
                set,
                hashes,
            }),
            escrow: None,
            wraps: None,
            weak: false,
            public: Some(public),
            kwk: None,
            wrapped,
        };
        self.body.slots.push(rec);
        self.body.next_slot = id + 1;
        if let Err(e) = self.save(u) {
            for f in &files {
                let _ = std::fs::remove_file(&f.path);
            }
            return Err(e);
        }
        self.audited(
            u,
            Event::new("slot-add")
                .slot(id)
                .detail("kind", "shares")
                .detail("threshold", threshold)
                .detail("shares", count)
                .detail("by_slot", u.slot),
        );
        Ok((id, files.into_iter().map(|f| f.path).collect()))
    }

    /// The KEK of share slot `rec` from `shares`: every share is checked
    /// against the slot (vault, slot, set, hash) and named when it does
    /// not belong; duplicates are named; too few are refused with how many
    /// more are needed.
    pub(crate) fn shares_kek(&self, rec: &SlotRecord, shares: &[ShareFile]) -> Result<SecretKey> {
        let info = rec.shares.as_ref().ok_or_else(|| {
            Error::corrupt(
                &self.path,
                format!("share slot {} has no share list", rec.id),
            )
        })?;
        let vault_id = B64.encode(self.vault_id);
        let mut seen: Vec<&ShareFile> = Vec::new();
        for s in shares {
            let foreign = |why: String| Error::BadShare {
                path: s.path.clone(),
                reason: why,
            };
            if s.body.vault_id != vault_id {
                return Err(foreign("it belongs to another vault".into()));
            }
            if s.body.slot != rec.id || s.body.set != info.set {
                return Err(foreign(format!(
                    "it belongs to slot {} (set {}), not to slot {}'s current shares",
                    s.body.slot, s.body.set, rec.id
                )));
            }
            let known = info
                .hashes
                .get(usize::from(s.body.x).wrapping_sub(1))
                .is_some_and(|h| *h == share_hash(&s.body.set, s.body.x, &s.y));
            if !known {
                return Err(foreign(format!(
                    "it is not one of slot {}'s shares (altered or forged)",
                    rec.id
                )));
            }
            if let Some(dup) = seen.iter().find(|d| d.body.x == s.body.x) {
                return Err(foreign(format!(
                    "it is the same share (number {}) as {}",
                    s.body.x,
                    dup.path.display()
                )));
            }
            seen.push(s);
        }
        if seen.len() < usize::from(info.threshold) {
            return Err(Error::NotEnoughShares {
                slot: rec.id,
                have: seen.len(),
                need: info.threshold,
            });
        }
        let parts: Vec<blahaj::Share> = seen
            .iter()
            .map(|s| {
                let mut b = Zeroizing::new(vec![s.body.x]);
                b.extend_from_slice(&s.y);
                blahaj::Share::try_from(b.as_slice()).expect("33 bytes")
            })
            .collect();
        let secret = Zeroizing::new(
            blahaj::Sharks(info.threshold)
                .recover(&parts)
                .map_err(|e| Error::SharesParams(e.to_string()))?,
        );
        let salt = B64.decode(&rec.salt).map_err(|_| {
            Error::corrupt(&self.path, format!("slot {} has a malformed salt", rec.id))
        })?;
        kek(&secret, &salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KdfParams, Passphrase};

    #[test]
    fn debug_of_a_share_prints_no_share_value() {
        let d = tempfile::tempdir().unwrap();
        let pass = Passphrase::new(b"p".to_vec());
        Keystore::create(
            d.path(),
            vault_core::Suite::Aes256Gcm,
            &pass,
            KdfParams::insecure_test(),
        )
        .unwrap();
        let mut ks = Keystore::load(d.path()).unwrap();
        let mut u = ks.unseal_passphrase(&pass, None).unwrap();
        let (_, files) = ks.add_shares(&mut u, 2, 3, &d.path().join("s")).unwrap();
        let share = ShareFile::read(&files[0]).unwrap();
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let y_b64 = text
            .split("\"y\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let y = B64.decode(y_b64).unwrap();
        let shown = format!("{share:?} {share:#?} {:?}", share.body);
        assert!(!shown.contains(y_b64), "{shown}");
        assert!(!shown.contains(&hex::encode(&y)), "{shown}");
        // Nor as a list of byte values ([12, 200, ...]).
        let as_list = format!("{:?}", &y[..4]);
        assert!(!shown.contains(&as_list[1..as_list.len() - 1]), "{shown}");
        assert!(
            shown.contains("ShareFile") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
