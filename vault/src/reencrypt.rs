//! Re-encryption: rewrites every file still under an older data-key
//! version to the newest, so the older versions can be retired.
//!
//! Each file is rewritten whole into a temporary host file in its own host
//! directory (`.pivault-tmp-reenc-<hex>`, skipped by listings), under the
//! same file ID (so what hangs off the ID, extended attributes, stays
//! valid) and with every name it is bound to. Temporary files are flushed
//! to disk (one syncfs per batch, which also makes the previous batch's
//! renames durable), and only then renamed over the old names; a last
//! syncfs follows the last batch. A kill at any moment therefore
//! leaves every name pointing at a whole file under one version, old or
//! new; a re-run removes leftover temporaries and continues with the files
//! still under an old version.
//!
//! The work holds the vault's lock file (`pivault.lock`, flock) so it
//! never runs beside a mount, which could write to a file being replaced.

use crate::hostfile::HostFile;
pub use crate::lock::VaultLock;
use crate::tree::{join_plain, Dir, Kind, Listed, Vault};
use crate::walk::Damage;
use crate::{sys, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use vault_core::{ContentFile, NameContext};

const REENC_PREFIX: &str = ".pivault-tmp-reenc-";
/// Plaintext bytes moved per read/write step (a multiple of the block size).
const CHUNK: usize = 4 << 20;
/// A batch is flushed and renamed into place after this many bytes...
const BATCH_BYTES: u64 = 64 << 20;
/// ...or this many files.
const BATCH_FILES: usize = 256;

/// What the vault holds, by data-key version (after a walk).
#[derive(Debug, Default)]
pub struct Census {
    /// Regular files per data-key version.
    pub files_by_version: BTreeMap<u32, u64>,
    /// Everything damaged (including files under a version the keyring no
    /// longer holds).
    pub damaged: Vec<Damage>,
}

impl Census {
    /// Files under a version below `current`.
    pub fn older_than(&self, current: u32) -> u64 {
        self.files_by_version.range(..current).map(|(_, n)| n).sum()
    }
}

/// Progress of a re-encryption: files and plaintext bytes.
pub trait ReencryptProgress: Sync {
    /// The work found: files to rewrite and their plaintext bytes.
    fn start(&self, _files: u64, _bytes: u64) {}
    /// Plaintext bytes rewritten since the last call.
    fn bytes(&self, _n: u64) {}
    /// One more file rewritten (and in place).
    fn file_done(&self) {}
}

impl ReencryptProgress for crate::NoProgress {}

/// What a re-encryption did.
#[derive(Debug, Default)]
pub struct ReencryptReport {
    /// Files rewritten to the newest version.
    pub rewritten: u64,
    /// Plaintext bytes rewritten.
    pub bytes: u64,
    /// Files already under the newest version.
    pub current: u64,
    /// Leftover temporary files of an interrupted run, removed.
    pub leftovers_removed: u64,
    /// Damaged entries (left as they are).
    pub damaged: Vec<Damage>,
}

/// One name of a file to rewrite.
#[derive(Debug, Clone)]
struct Name {
    dir: Dir,
    name: Vec<u8>,
    plain: PathBuf,
    host: PathBuf,
}

/// One host file (all its names) under an older version.
#[derive(Debug)]
struct Job {
    names: Vec<Name>,
    size: u64,
}

/// Walks the vault: counts files by version and collects the files under
/// a version below the current one, grouped by host inode (hard links).
fn survey(vault: &Vault, clean: bool, report: &mut ReencryptReport) -> Result<(Census, Vec<Job>)> {
    let current = vault.cipher().keyring().current_version();
    let mut census = Census::default();
    let mut jobs: Vec<Job> = Vec::new();
    let mut by_inode: HashMap<(u64, u64), usize> = HashMap::new();
    let mut stack = vec![(vault.root().clone(), PathBuf::new())];
    while let Some((dir, plain)) = stack.pop() {
        if clean {
            report.leftovers_removed += remove_leftovers(&dir.host)?;
        }
        let mut entries = Vec::new();
        for item in vault.list(&dir)? {
            match item {
                Listed::Entry(e) => entries.push(e),
                Listed::Damaged(e) => census.damaged.push(Damage::from_error(None, &e)),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            let path = join_plain(&plain, &entry.name);
            match entry.kind {
                Kind::Dir => match vault.subdir(&dir, &entry.name) {
                    Ok(sub) => stack.push((sub, path)),
                    Err(e) if e.is_damage() => {
                        census.damaged.push(Damage::from_error(Some(&path), &e))
                    }
                    Err(e) => return Err(e),
                },
                Kind::File => {
                    let file = match vault.open_file(&dir, &entry.name, false) {
                        Ok(f) => f,
                        Err(e) if e.is_damage() => {
                            census.damaged.push(Damage::from_error(Some(&path), &e));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let v = file.header().key_version;
                    *census.files_by_version.entry(v).or_default() += 1;
                    if v >= current {
                        continue;
                    }
                    let meta = file
                        .store()
                        .0
                        .metadata()
                        .map_err(|e| Error::io(&entry.host, e))?;
                    let name = Name {
                        dir: dir.clone(),
                        name: entry.name.clone(),
                        plain: path,
                        host: entry.host.clone(),
                    };
                    let key = (meta.dev(), meta.ino());
                    match by_inode.get(&key) {
                        Some(&i) => jobs[i].names.push(name),
                        None => {
                            by_inode.insert(key, jobs.len());
                            jobs.push(Job {
                                names: vec![name],
                                size: file.size(),
                            });
                        }
                    }
                }
                Kind::Symlink | Kind::Node(_) => {}
            }
        }
    }
    Ok((census, jobs))
}

/// Counts the vault's files by data-key version, without writing.
pub fn census(vault: &Vault) -> Result<Census> {
    let mut scratch = ReencryptReport::default();
    Ok(survey(vault, false, &mut scratch)?.0)
}

/// Removes temporary files an interrupted re-encryption left in `dir`.
fn remove_leftovers(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for de in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let de = de.map_err(|e| Error::io(dir, e))?;
        if de.file_name().to_string_lossy().starts_with(REENC_PREFIX)
            && de.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            let p = de.path();
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            n += 1;
        }
    }
    Ok(n)
}

/// A rewritten file waiting for the batch flush before it is renamed in.
struct Pending {
    tmp: PathBuf,
    names: Vec<Name>,
    size: u64,
}

/// Rewrites every file under an older data-key version to the current
/// one. Needs the vault's lock (see [`VaultLock`]).
pub fn reencrypt(
    vault: &Vault,
    _lock: &VaultLock,
    progress: &dyn ReencryptProgress,
) -> Result<ReencryptReport> {
    let mut report = ReencryptReport::default();
    let (census, jobs) = survey(vault, true, &mut report)?;
    let current = vault.cipher().keyring().current_version();
    report.current = census.files_by_version.get(&current).copied().unwrap_or(0);
    report.damaged = census.damaged;
    progress.start(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    // Worker threads rewrite files into temporaries (one file each at a
    // time); this thread gathers them into batches and commits each batch
    // (flush, then rename into place) while the workers go on.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let queue = Mutex::new(jobs.into_iter());
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Done>>(BATCH_FILES);
    let mut first_error = None;
    let (mut files, mut bytes) = (0u64, 0u64);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (queue, stop) = (&queue, &stop);
            s.spawn(move || worker(vault, queue, stop, tx, progress));
        }
        drop(tx);
        let mut batch: Vec<Pending> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut commit_batch = |batch: &mut Vec<Pending>, first_error: &mut Option<Error>| {
            match commit(vault, batch, progress) {
                Ok((f, b)) => {
                    files += f;
                    bytes += b;
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                    // What was not renamed stays a temporary, removed by
                    // the next run.
                    batch.clear();
                }
            }
        };
        for item in rx {
            match item {
                Ok(Done::Written(p)) => {
                    batch_bytes += p.size;
                    batch.push(p);
                }
                Ok(Done::Damaged(d)) => report.damaged.push(d),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
            if batch.len() >= BATCH_FILES || batch_bytes >= BATCH_BYTES {
                commit_batch(&mut batch, &mut first_error);
                batch_bytes = 0;
            }
        }
        // Whatever was written whole is put in place, even after an error.
        commit_batch(&mut batch, &mut first_error);
    });
    if files > 0 {
        flush(vault)?;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    report.rewritten = files;
    report.bytes = bytes;
    Ok(report)
}

/// What a worker made of one file.
enum Done {
    Written(Pending),
    Damaged(Damage),
}

/// Takes files from the queue and rewrites each into a temporary file,
/// until the queue is empty or the work stops on an error.
fn worker(
    vault: &Vault,
    queue: &Mutex<std::vec::IntoIter<Job>>,
    stop: &AtomicBool,
    tx: std::sync::mpsc::SyncSender<Result<Done>>,
    progress: &dyn ReencryptProgress,
) {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
    while !stop.load(Ordering::Relaxed) {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
        let Some(job) = next else { return };
        let item = match rewrite(vault, &job, &mut buf, progress) {
            Ok(tmp) => Ok(Done::Written(Pending {
                tmp,
                names: job.names,
                size: job.size,
            })),
            Err(e) if e.is_damage() => Ok(Done::Damaged(Damage::from_error(
                Some(&job.names[0].plain),
                &e,
            ))),
            Err(e) => Err(e),
        };
        if tx.send(item).is_err() {
            return;
        }
    }
}

/// Writes the new ciphertext of one file to a temporary file beside its
/// first name; returns the temporary path (not yet flushed).
fn rewrite(
    vault: &Vault,
    job: &Job,
    buf: &mut [u8],
    progress: &dyn ReencryptProgress,
) -> Result<PathBuf> {
    let first = &job.names[0];
    let old = vault.open_file(&first.dir, &first.name, false)?;
    let tmp = first
        .dir
        .host
        .join(format!("{REENC_PREFIX}{}", random_hex()?));
    let res = (|| -> Result<()> {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let cipher = vault.cipher();
        let mut new = ContentFile::create_with_id(
            HostFile(out),
            cipher,
            old.header().file_id,
            NameContext::new(&first.dir.id, &first.name),
        )
        .map_err(|e| Error::core(&tmp, e))?;
        for n in &job.names[1..] {
            new.add_binding(cipher, NameContext::new(&n.dir.id, &n.name))
                .map_err(|e| Error::core(&tmp, e))?;
        }
        let mut off = 0u64;
        // Plaintext passes through `buf`; the part used is wiped after the
        // file (the whole buffer when it is dropped).
        let used = (old.size().min(buf.len() as u64)) as usize;
        while off < old.size() {
            let n = old
                .read_at(off, buf)
                .map_err(|e| Error::core(&first.host, e))?;
            if n == 0 {
                break;
            }
            new.write_at(off, &buf[..n])
                .map_err(|e| Error::core(&tmp, e))?;
            off += n as u64;
            progress.bytes(n as u64);
        }
        buf[..used].fill(0);
        let out = new.into_store().0;
        copy_metadata(&old.store().0, &out, &first.host, &tmp)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Gives the new host file the old one's permission bits, owner (when
/// allowed), host extended attributes (pivault's encrypted attributes,
/// bound to the unchanged file ID) and times.
fn copy_metadata(old: &File, new: &File, old_path: &Path, new_path: &Path) -> Result<()> {
    let meta = old.metadata().map_err(|e| Error::io(old_path, e))?;
    for name in sys::flistxattr(old).map_err(|e| Error::io(old_path, e))? {
        let value = sys::fgetxattr(old, &name).map_err(|e| Error::io(old_path, e))?;
        sys::fsetxattr(new, &name, &value).map_err(|e| Error::io(new_path, e))?;
    }
    // Keeping the owner only matters (and only works) for root.
    let _ = std::os::unix::fs::fchown(new, Some(meta.uid()), Some(meta.gid()));
    new.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| Error::io(new_path, e))?;
    let atime = filetime::FileTime::from_last_access_time(&meta);
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    filetime::set_file_handle_times(new, Some(atime), Some(mtime))
        .map_err(|e| Error::io(new_path, e))
}

/// Flushes a batch of temporary files to disk (one syncfs, which also
/// makes the previous batch's renames durable), then renames each over its
/// names. The caller flushes once more after the last batch.
fn commit(
    vault: &Vault,
    batch: &mut Vec<Pending>,
    progress: &dyn ReencryptProgress,
) -> Result<(u64, u64)> {
    let mut done = (0, 0);
    if batch.is_empty() {
        return Ok(done);
    }
    flush(vault)?;
    for p in batch.drain(..) {
        // Every name but the last gets its own link to the new file, which
        // is then renamed over it; the last takes the temporary name itself.
        let (last, others) = p.names.split_last().expect("a job has a name");
        for n in others {
            let link = n.dir.host.join(format!("{REENC_PREFIX}{}", random_hex()?));
            fs::hard_link(&p.tmp, &link).map_err(|e| Error::io(&link, e))?;
            fs::rename(&link, &n.host).map_err(|e| Error::io(&n.host, e))?;
        }
        fs::rename(&p.tmp, &last.host).map_err(|e| Error::io(&last.host, e))?;
        done.0 += 1;
        done.1 += p.size;
        progress.file_done();
    }
    Ok(done)
}

/// syncfs(2) on the vault's filesystem: file data and the journal (so
/// every rename before it) reach the disk.
fn flush(vault: &Vault) -> Result<()> {
    sys::syncfs(vault.root_path()).map_err(|e| Error::io(vault.root_path(), e))
}

fn random_hex() -> Result<String> {
    let b = vault_core::random::array::<8>().map_err(Error::Core)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TEMP_PREFIX;
    use vault_core::{Keyring, Suite, VaultCipher};

    #[test]
    fn temporaries_are_skipped_by_listings() {
        assert!(REENC_PREFIX.starts_with(TEMP_PREFIX));
    }

    #[test]
    fn rewrites_old_files_and_keeps_content_names_and_links() {
        let d = tempfile::tempdir().unwrap();
        let mut ring = Keyring::generate().unwrap();
        let c = VaultCipher::new(ring.clone(), Suite::Aes256Gcm);
        Vault::init(d.path(), &c).unwrap();
        let v = Vault::open(d.path().to_path_buf(), c).unwrap();
        let sub = v.mkdir(v.root(), b"sub", 0o700).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut f = v.create_file(&sub, b"a", 0o640).unwrap();
        f.write_at(0, &data).unwrap();
        drop(f);
        v.create_file(v.root(), b"empty", 0o600).unwrap();
        ring.rotate().unwrap();
        let v = Vault::open(
            d.path().to_path_buf(),
            VaultCipher::new(ring.clone(), Suite::Aes256Gcm),
        )
        .unwrap();
        let lock = VaultLock::acquire(d.path()).unwrap();
        assert!(
            VaultLock::acquire(d.path()).is_err(),
            "the lock is exclusive"
        );
        let before = census(&v).unwrap();
        assert_eq!(before.older_than(2), 2);
        let r = reencrypt(&v, &lock, &crate::NoProgress).unwrap();
        assert_eq!(r.rewritten, 2);
        assert_eq!(r.bytes, data.len() as u64);
        assert!(r.damaged.is_empty());
        let after = census(&v).unwrap();
        assert_eq!(after.older_than(2), 0);
        let f = v.open_file(&sub, b"a", false).unwrap();
        assert_eq!(f.header().key_version, 2);
        let mut back = vec![0u8; data.len()];
        assert_eq!(f.read_at(0, &mut back).unwrap(), data.len());
        assert_eq!(back, data);
        let mode = f.store().0.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // Nothing left over; a second run has nothing to do.
        let r2 = reencrypt(&v, &lock, &crate::NoProgress).unwrap();
        assert_eq!((r2.rewritten, r2.current), (0, 2));
    }
}
