//! Offline import of a plaintext tree into a vault and export of a vault's
//! plaintext tree, without FUSE. Files, directories, symlinks and fifos are
//! copied with their modes and modification times.

use crate::hostattr::{Pinned, SetTime};
use crate::hostfile::HostFile;
use crate::tree::{Dir, Entry, Kind, NodeKind, Vault};
use crate::walk::{walk, Damage, Visitor};
use crate::{sys, Error, Progress, Result};
use filetime::FileTime;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vault_core::ContentFile;

const CHUNK: usize = 1 << 20;

/// What an import or export did.
#[derive(Debug, Default)]
pub struct Report {
    /// Regular files copied.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks copied.
    pub symlinks: u64,
    /// Plaintext bytes copied.
    pub bytes: u64,
    /// Entries left out, with the reason (sockets, devices).
    pub skipped: Vec<(PathBuf, String)>,
    /// Damaged entries (export only): everything intact was still exported.
    pub damaged: Vec<Damage>,
    /// Export only: entries whose setuid, setgid or sticky bits were not
    /// restored (see [`ExportOptions::keep_special_bits`]).
    pub special_bits_dropped: Vec<PathBuf>,
}

/// How an export writes what it reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Restore setuid, setgid and sticky bits. Off by default: the modes
    /// come from the host entries, which the MAC does not cover, so a
    /// writer of the vault directory could make an exported file setuid
    /// (and, exported by root, a root shell); with this on, the caller
    /// vouches for the vault directory.
    pub keep_special_bits: bool,
}

fn total_bytes(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    if m.is_dir() {
        fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| total_bytes(&e.path())).sum())
            .unwrap_or(0)
    } else if m.is_file() {
        m.len()
    } else {
        0
    }
}

/// Gives the entry at `path` the mode and times of `meta`, through a
/// descriptor pinned to it (never through a symlink swapped in for it,
/// and never opening a fifo, which would block).
fn set_times_and_mode(path: &Path, meta: &fs::Metadata, mode_mask: u32) -> Result<()> {
    let p = Pinned::open(path).map_err(|e| Error::io(path, e))?;
    if p.kind() == Some(Kind::Symlink) {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "replaced by a symbolic link while being written; left untouched",
            ),
        ));
    }
    p.chmod(meta.mode() & mode_mask)
        .and_then(|_| {
            p.set_times(
                SetTime::At(meta.atime(), meta.atime_nsec()),
                SetTime::At(meta.mtime(), meta.mtime_nsec()),
            )
        })
        .map_err(|e| Error::io(path, e))
}

/// Copies the plaintext tree under `src` into the vault root. Existing
/// directories are merged; an existing file or symlink stops the import
/// (nothing in the vault is overwritten).
pub fn import(vault: &Vault, src: &Path, progress: &dyn Progress) -> Result<Report> {
    let meta = fs::metadata(src).map_err(|e| Error::io(src, e))?;
    if !meta.is_dir() {
        return Err(Error::io(
            src,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        ));
    }
    if fs::canonicalize(src).ok() == fs::canonicalize(vault.root_path()).ok()
        || fs::canonicalize(vault.root_path())
            .ok()
            .zip(fs::canonicalize(src).ok())
            .is_some_and(|(v, s)| v.starts_with(&s))
    {
        return Err(Error::io(
            src,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the vault is inside the source tree; import a directory that does not contain the vault"),
        ));
    }
    progress.set_total(total_bytes(src));
    let mut report = Report::default();
    import_dir(vault, vault.root(), src, &mut report, progress)?;
    sys::syncfs(vault.root_path()).map_err(|e| Error::io(vault.root_path(), e))?;
    Ok(report)
}

fn import_dir(
    vault: &Vault,
    dir: &Dir,
    src: &Path,
    report: &mut Report,
    progress: &dyn Progress,
) -> Result<()> {
    let mut children: Vec<_> = fs::read_dir(src)
        .map_err(|e| Error::io(src, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(src, e))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let name = child.file_name();
        let name = name.as_bytes();
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let sub = match vault.lookup(dir, name)? {
                Some((_, m)) if m.is_dir() => vault.subdir(dir, name)?,
                Some(_) => return Err(Error::Exists(path)),
                None => {
                    report.dirs += 1;
                    vault.mkdir(dir, name, 0o700)?
                }
            };
            import_dir(vault, &sub, &path, report, progress)?;
            set_times_and_mode(&sub.host, &meta, 0o7777)?;
        } else if ft.is_file() {
            let mut file = vault
                .create_file(dir, name, 0o600)
                .map_err(|e| conflict(e, &path))?;
            let host = file_host(vault, dir, name)?;
            let bytes = copy_in(&path, &mut file, &host, progress)?;
            drop(file);
            set_times_and_mode(&host, &meta, 0o7777)?;
            report.files += 1;
            report.bytes += bytes;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
            let host = vault
                .symlink(dir, name, target.as_os_str().as_bytes())
                .map_err(|e| conflict(e, &path))?;
            let mtime = FileTime::from_last_modification_time(&meta);
            filetime::set_symlink_file_times(&host, mtime, mtime)
                .map_err(|e| Error::io(&host, e))?;
            report.symlinks += 1;
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
            let host = vault
                .mknode(dir, name, NodeKind::Fifo, meta.mode(), 0)
                .map_err(|e| conflict(e, &path))?;
            set_times_and_mode(&host, &meta, 0o7777)?;
        } else {
            report.skipped.push((
                path,
                // A socket file outlives no listener and a device file
                // is a door to hardware: copying them is not an import's
                // job (a mount stores them when asked to make them).
                "import copies no sockets or device files".into(),
            ));
        }
    }
    Ok(())
}

/// Names the source path, not the ciphertext, when an entry already exists.
fn conflict(e: Error, src: &Path) -> Error {
    match e {
        Error::Exists(_) => Error::Exists(src.to_path_buf()),
        e => e,
    }
}

fn file_host(vault: &Vault, dir: &Dir, name: &[u8]) -> Result<PathBuf> {
    Ok(vault.encode(dir, name)?.1)
}

fn copy_in(
    src: &Path,
    file: &mut ContentFile<HostFile>,
    host: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut input = File::open(src).map_err(|e| Error::io(src, e))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
    let mut off = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(|e| Error::io(src, e))?;
        if n == 0 {
            break;
        }
        file.write_at(off, &buf[..n])
            .map_err(|e| Error::core(host, e))?;
        off += n as u64;
        progress.advance(n as u64);
    }
    Ok(off)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes the vault's plaintext tree to `dest`, which must be empty or not
/// exist. Damaged entries are skipped and listed in the report; everything
/// intact is exported.
pub fn export(
    vault: &Vault,
    dest: &Path,
    opts: ExportOptions,
    progress: &dyn Progress,
) -> Result<Report> {
    // Plaintext written inside the ciphertext tree would be synced and
    // backed up unencrypted along with it.
    let inside = |p: &Path| -> bool {
        let root = fs::canonicalize(vault.root_path()).ok();
        let mut probe = Some(p);
        while let Some(q) = probe {
            if let Ok(c) = fs::canonicalize(q) {
                return root.as_deref().is_some_and(|r| c.starts_with(r));
            }
            probe = q.parent();
        }
        false
    };
    if inside(dest) {
        return Err(Error::io(
            dest,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the destination is inside the vault directory; export to a directory outside it",
            ),
        ));
    }
    match fs::read_dir(dest) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::NotEmpty(dest.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dest)
                .map_err(|e| Error::io(dest, e))?;
        }
        Err(e) => return Err(Error::io(dest, e)),
    }
    progress.set_total(total_bytes(vault.root_path()));
    let mut ex = Exporter {
        dest: dest.to_path_buf(),
        report: Report::default(),
        progress,
        opts,
    };
    walk(vault, &mut ex)?;
    Ok(ex.report)
}

struct Exporter<'a> {
    dest: PathBuf,
    report: Report,
    progress: &'a dyn Progress,
    opts: ExportOptions,
}

impl Exporter<'_> {
    /// Sets the exported entry's mode and times from its host entry,
    /// without the special bits unless asked for (and noting the drop).
    fn finish(&mut self, out: &Path, meta: &fs::Metadata) -> Result<()> {
        let mask = if self.opts.keep_special_bits {
            0o7777
        } else {
            0o0777
        };
        if meta.mode() & 0o7000 & !mask != 0 {
            self.report.special_bits_dropped.push(out.to_path_buf());
        }
        set_times_and_mode(out, meta, mask)
    }

    fn host_meta(entry: &Entry) -> Result<fs::Metadata> {
        fs::symlink_metadata(&entry.host).map_err(|e| Error::io(&entry.host, e))
    }

    fn write_file(&mut self, out: &Path, file: &ContentFile<HostFile>, host: &Path) -> Result<u64> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| Error::io(out, e))?;
        let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
        let mut off = 0;
        while off < file.size() {
            let n = file
                .read_at(off, &mut buf)
                .map_err(|e| Error::core(host, e))?;
            f.write_all(&buf[..n]).map_err(|e| Error::io(out, e))?;
            off += n as u64;
            self.progress.advance(n as u64);
        }
        Ok(off)
    }
}

impl Visitor for Exporter<'_> {
    fn enter_dir(&mut self, plain: &Path, _entry: &Entry) -> Result<()> {
        let out = self.dest.join(plain);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&out)
            .map_err(|e| Error::io(&out, e))?;
        self.report.dirs += 1;
        Ok(())
    }

    fn leave_dir(&mut self, plain: &Path, entry: &Entry) -> Result<()> {
        let out = self.dest.join(plain);
        self.finish(&out, &Self::host_meta(entry)?)
    }

    fn file(&mut self, plain: &Path, entry: &Entry, file: ContentFile<HostFile>) -> Result<()> {
        let out = self.dest.join(plain);
        match self.write_file(&out, &file, &entry.host) {
            Ok(n) => {
                self.finish(&out, &Self::host_meta(entry)?)?;
                self.report.files += 1;
                self.report.bytes += n;
                Ok(())
            }
            Err(e) => {
                // Never leave part of a damaged file behind as if it were whole.
                let _ = fs::remove_file(&out);
                Err(e)
            }
        }
    }

    fn symlink(&mut self, plain: &Path, entry: &Entry, target: &[u8]) -> Result<()> {
        let out = self.dest.join(plain);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &out)
            .map_err(|e| Error::io(&out, e))?;
        let mtime = FileTime::from_last_modification_time(&Self::host_meta(entry)?);
        filetime::set_symlink_file_times(&out, mtime, mtime).map_err(|e| Error::io(&out, e))?;
        self.report.symlinks += 1;
        Ok(())
    }

    fn node(&mut self, plain: &Path, entry: &Entry, node: NodeKind) -> Result<()> {
        let out = self.dest.join(plain);
        if node.is_device() {
            // A device's type, numbers and mode are the host node's own,
            // unauthenticated: a writer of the vault directory can put a
            // node of the host's disk, mode 0666, under any valid name. In
            // the mount it is inert (nodev); recreated by an export run as
            // root it would open that disk to everyone.
            self.report.skipped.push((
                out,
                "device files are not exported (their type and numbers are not authenticated)"
                    .into(),
            ));
            return Ok(());
        }
        let meta = Self::host_meta(entry)?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &out,
            node.file_type(),
            rustix::fs::Mode::from_raw_mode(meta.mode() & 0o0777),
            0,
        )
        .map_err(|e| Error::io(&out, e.into()))?;
        self.finish(&out, &meta)
    }

    fn damaged(&mut self, damage: Damage) {
        self.report.damaged.push(damage);
    }
}
