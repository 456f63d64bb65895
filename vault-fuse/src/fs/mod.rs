//! The FUSE filesystem: the plaintext view of an unsealed vault, mounted
//! with `fuser`. Requests map onto the vault tree ([`vault::Vault`]) and
//! the content format; the kernel's page cache holds plaintext between
//! opens of unchanged files, and POSIX and flock locks are left to the
//! kernel (the filesystem does not ask for FUSE_POSIX_LOCKS or
//! FUSE_FLOCK_LOCKS, so the kernel keeps them locally: right for a mount
//! that only this host uses).
//!
//! Modules: `inodes` (inode table), `handles` (open files and
//! directories), `nodes` (lookup, attributes, directories, links),
//! `files` (open, read, write, truncate), `rename`, `xattr`, `ops` (the
//! `fuser::Filesystem` glue) and `session` (mount, signals, idle seal,
//! unmount).

mod files;
mod handles;
mod inodes;
mod nodes;
mod ops;
mod rename;
mod session;
mod xattr;

pub use session::{daemonize, run, unmount, Daemon, MountConfig, MountEnd};

use fuser::{Errno, FileAttr, FileType};
use handles::{Handles, OpenFile};
use inodes::{InoMap, InodeTable, Link, ROOT};
use std::collections::HashSet;
use std::fs::Metadata;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vault::{Dir, Kind, NodeKind, Vault};
use vault_core::{Geometry, XattrCipher};

/// How long the kernel may cache attributes and names.
const TTL: Duration = Duration::from_secs(1);

/// How many directories may hold a cached pinned descriptor
/// ([`vault::Dir`]) at once. Every directory the kernel knows keeps one
/// while its path is cached; past this many, all are dropped and taken
/// again as directories are used, so a `find` over a huge tree does not
/// run the mount out of descriptors.
const CACHED_DIRS: usize = 16_384;

/// A host path with the descriptor of the directory it is built on (its
/// `/proc/self/fd/N/` prefix goes through it): holding this keeps that
/// number naming the same directory.
#[derive(Clone, Debug)]
pub(crate) struct HostPath {
    path: PathBuf,
    anchor: vault::Anchor,
}

impl Deref for HostPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for HostPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A vault directory, pinned.
#[derive(Clone, Debug)]
pub(crate) struct HostDir {
    dir: Dir,
}

impl HostDir {
    /// The host path of `name` in this directory (already encrypted).
    fn at(&self, host: PathBuf) -> HostPath {
        HostPath {
            path: host,
            anchor: self.dir.anchor.clone(),
        }
    }

    /// The directory itself as a host path.
    fn itself(&self) -> HostPath {
        self.at(self.dir.host.clone())
    }
}

impl Deref for HostDir {
    type Target = Dir;
    fn deref(&self) -> &Dir {
        &self.dir
    }
}

/// Time of the last FUSE request, for `--idle-seal`.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_secs(), Ordering::Relaxed);
    }

    /// How long since the last request.
    pub fn idle(&self) -> Duration {
        let now = self.start.elapsed().as_secs();
        Duration::from_secs(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// The mounted filesystem.
pub(crate) struct VaultFs {
    vault: Vault,
    xattr: XattrCipher,
    geo: Geometry,
    read_only: bool,
    writeback_cache: bool,
    inos: InoMap,
    table: Mutex<InodeTable>,
    handles: Handles,
    logged: Mutex<HashSet<PathBuf>>,
    activity: Arc<Activity>,
    /// True when the daemon runs as root: new entries are then given to
    /// the requesting user.
    as_root: bool,
    /// This process's umask, which the host applies to the files it
    /// creates (all bits when it cannot be read: every new file's mode is
    /// then set again).
    umask: u32,
    /// Bumped by every directory rename: cached directory host paths from
    /// an older generation are stale.
    generation: AtomicU64,
}

/// The errno the kernel gets for a vault error: damage and anything
/// cryptographic is EIO, a host error keeps its own, names and entries map
/// to their POSIX errors.
pub(crate) fn errno_of(e: &vault::Error) -> i32 {
    match e {
        vault::Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        vault::Error::NameTooLong(_) => libc::ENAMETOOLONG,
        vault::Error::InvalidName(_) => libc::EINVAL,
        vault::Error::Exists(_) => libc::EEXIST,
        vault::Error::NotFound(_) => libc::ENOENT,
        vault::Error::NotEmpty(_) => libc::ENOTEMPTY,
        vault::Error::NotADirectory(_) => libc::ENOTDIR,
        vault::Error::IsADirectory(_) => libc::EISDIR,
        vault::Error::TooManyLinks(_) => libc::EMLINK,
        vault::Error::NotLinkable(_) => libc::EPERM,
        _ => libc::EIO,
    }
}

fn to_errno(e: &std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The kernel's generation number for an inode: the host entry's birth
/// time (nanoseconds), 0 where the host file system keeps none. FUSE node
/// IDs are host inode numbers, and the host gives a freed number to the
/// next new file while the kernel may still hold the deleted file's inode
/// (its size, its cached pages): a reply naming that node ID with a
/// different generation makes the kernel drop the stale inode and start a
/// fresh one (`fuse_iget` checks the generation), so a new file never
/// shows another file's bytes. Hard links and renames keep the birth time.
pub(crate) fn generation(a: &FileAttr) -> fuser::Generation {
    fuser::Generation(birth(a.crtime))
}

/// The birth time of a host entry as [`birth`] counts it.
pub(crate) fn born(m: &Metadata) -> u64 {
    birth(m.created().unwrap_or(UNIX_EPOCH))
}

/// Nanoseconds since the epoch of a birth time (0 when there is none).
pub(crate) fn birth(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// A host `st_rdev` in the 32-bit encoding of the FUSE protocol (the
/// kernel's `new_encode_dev`, include/linux/kdev_t.h: minor's low 8 bits,
/// then 12 bits of major, then minor's high 12 bits).
fn fuse_rdev(rdev: u64) -> u32 {
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// A FUSE protocol device number (`new_decode_dev`) as a host `dev_t`.
fn host_rdev(rdev: u32) -> u64 {
    let major = (rdev & 0xfff00) >> 8;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    rustix::fs::makedev(major, minor)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Node(NodeKind::Fifo) => FileType::NamedPipe,
        Kind::Node(NodeKind::Socket) => FileType::Socket,
        Kind::Node(NodeKind::CharDevice) => FileType::CharDevice,
        Kind::Node(NodeKind::BlockDevice) => FileType::BlockDevice,
    }
}

impl VaultFs {
    pub(crate) fn new(
        vault: Vault,
        read_only: bool,
        writeback_cache: bool,
        activity: Arc<Activity>,
    ) -> vault::Result<VaultFs> {
        let root_meta = std::fs::metadata(vault.root_path())
            .map_err(|e| vault::Error::io(vault.root_path(), e))?;
        let xattr = vault.cipher().xattr_cipher().map_err(vault::Error::Core)?;
        let geo = Geometry::new(vault.cipher().suite());
        let table = InodeTable::new(vault.root().id);
        Ok(VaultFs {
            xattr,
            geo,
            read_only,
            writeback_cache,
            inos: InoMap {
                root_host: root_meta.ino(),
            },
            table: Mutex::new(table),
            handles: Handles::default(),
            logged: Mutex::new(HashSet::new()),
            activity,
            as_root: crate::sys::euid() == 0,
            umask: crate::sys::umask().unwrap_or(0o7777),
            generation: AtomicU64::new(1),
            vault,
        })
    }

    fn table(&self) -> MutexGuard<'_, InodeTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.activity.touch();
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The errno for a tree error; damage is logged once per ciphertext path.
    fn fail(&self, e: vault::Error) -> Errno {
        if let vault::Error::Damaged { host, source } = &e {
            let host = vault::shown(host);
            let first = self
                .logged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host.clone());
            if first {
                tracing::error!(
                    "damaged ciphertext {}: {source}; reads of it fail with EIO (run `pivault fsck`)",
                    host.display()
                );
            }
        }
        Errno::from_i32(errno_of(&e))
    }

    /// A content error on the file at `host`.
    fn fail_content(&self, host: &Path, e: vault_core::Error) -> Errno {
        self.fail(vault::Error::core(host, e))
    }

    /// The directory inode `ino` stands for: its host path and ID. Walks
    /// up the names to the nearest directory whose host path is cached
    /// (for the current rename generation) and encrypts each name below it,
    /// taking a descriptor on the way wherever the path grows long.
    fn dir(&self, ino: u64) -> Result<HostDir, Errno> {
        if ino == ROOT {
            return Ok(HostDir {
                dir: self.vault.root().clone(),
            });
        }
        let gen = self.generation.load(Ordering::Acquire);
        let mut chain = Vec::new();
        let mut base = HostDir {
            dir: self.vault.root().clone(),
        };
        {
            let t = self.table();
            let mut cur = ino;
            while cur != ROOT {
                let node = t.nodes.get(&cur).ok_or(Errno::ENOENT)?;
                if node.kind != Kind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                if let (Some((g, host)), Some(id)) = (&node.host, node.dir_id) {
                    if *g == gen {
                        base = HostDir {
                            dir: Dir {
                                host: host.path.clone(),
                                id,
                                anchor: host.anchor.clone(),
                            },
                        };
                        break;
                    }
                }
                let link = node.links.first().ok_or(Errno::ENOENT)?;
                chain.push((cur, link.name.clone(), node.dir_id));
                cur = link.parent;
                if chain.len() > 4096 {
                    return Err(Errno::ELOOP);
                }
            }
        }
        let mut d = base;
        for (node, name, id) in chain.into_iter().rev() {
            let (_, host) = self.vault.encode(&d, &name).map_err(|e| self.fail(e))?;
            // Pinned (without following a symlink in its place) before its
            // ID is read: the ID and every later call reach the same
            // directory.
            let (host, anchor) = vault::anchor(&host).map_err(|e| to_errno(&e))?;
            let id = match id {
                Some(id) => id,
                None => self
                    .vault
                    .dir_id_at(&host, &d.id, &name)
                    .map_err(|e| self.fail(e))?,
            };
            let pinned = HostPath {
                path: host.clone(),
                anchor: anchor.clone(),
            };
            {
                let mut t = self.table();
                if t.cached_dirs >= CACHED_DIRS {
                    t.drop_cached_dirs();
                }
                let fresh = match t.nodes.get_mut(&node) {
                    Some(n) => {
                        n.dir_id = Some(id);
                        n.host.replace((gen, pinned)).is_none()
                    }
                    None => false,
                };
                if fresh {
                    t.cached_dirs += 1;
                }
            }
            d = HostDir {
                dir: Dir { host, id, anchor },
            };
        }
        Ok(d)
    }

    /// A directory moved: every cached directory path may be stale.
    fn paths_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        // Stale pins would hold descriptors until replaced.
        self.table().drop_cached_dirs();
    }

    /// The parent directory and name by which inode `ino` is reached.
    fn locate(&self, ino: u64) -> Result<(HostDir, Vec<u8>), Errno> {
        let link: Link = {
            let t = self.table();
            let node = t.nodes.get(&ino).ok_or(Errno::ENOENT)?;
            node.links.first().cloned().ok_or(Errno::ENOENT)?
        };
        Ok((self.dir(link.parent)?, link.name))
    }

    /// The host path of inode `ino`.
    fn host_of(&self, ino: u64) -> Result<HostPath, Errno> {
        if ino == ROOT {
            return Ok(self.dir(ROOT)?.itself());
        }
        {
            // A directory's host path is usually cached.
            let gen = self.generation.load(Ordering::Acquire);
            let t = self.table();
            if let Some((g, host)) = t.nodes.get(&ino).and_then(|n| n.host.as_ref()) {
                if *g == gen {
                    return Ok(host.clone());
                }
            }
        }
        let (dir, name) = self.locate(ino)?;
        let (_, host) = self.vault.encode(&dir, &name).map_err(|e| self.fail(e))?;
        Ok(dir.at(host))
    }

    fn kind_of(&self, ino: u64) -> Result<Kind, Errno> {
        self.table()
            .nodes
            .get(&ino)
            .map(|n| n.kind)
            .ok_or(Errno::ENOENT)
    }

    /// The shared open state of `ino`, if any handle is open.
    fn open_state(&self, ino: u64) -> Option<Arc<OpenFile>> {
        self.table().nodes.get(&ino).and_then(|n| n.open.clone())
    }

    /// Plaintext size of a host entry that is not open.
    fn plain_size(&self, kind: Kind, m: &Metadata) -> u64 {
        match kind {
            Kind::File => self.geo.plaintext_len(m.len()).unwrap_or_else(|_| {
                // An impossible length (torn or tampered): show roughly
                // what is there; reads fail with EIO.
                let body = m.len().saturating_sub(vault_core::HEADER_LEN as u64);
                let oh = self.vault.cipher().suite().overhead() as u64;
                let cb = vault_core::BLOCK_SIZE as u64 + oh;
                body / cb * vault_core::BLOCK_SIZE as u64 + (body % cb).saturating_sub(oh)
            }),
            // base64url without padding of suite id || nonce || target || tag
            Kind::Symlink => {
                (m.len() * 3 / 4).saturating_sub(1 + self.vault.cipher().suite().overhead() as u64)
            }
            Kind::Dir => m.len(),
            Kind::Node(_) => 0,
        }
    }

    fn attr(&self, ino: u64, kind: Kind, m: &Metadata, size: u64) -> FileAttr {
        FileAttr {
            ino: fuser::INodeNo(ino),
            size,
            blocks: m.blocks(),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            // Linux FUSE does not report crtime; it carries the host
            // entry's birth time to `generation`.
            crtime: m.created().unwrap_or(UNIX_EPOCH),
            kind: file_type(kind),
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: fuse_rdev(m.rdev()),
            blksize: 65536,
            flags: 0,
        }
    }

    /// Current attributes of a known inode.
    fn stat(&self, ino: u64) -> Result<FileAttr, Errno> {
        let kind = self.kind_of(ino)?;
        if let Some(open) = self.open_state(ino) {
            let c = open.read();
            let m = c.store().0.metadata().map_err(|e| to_errno(&e))?;
            return Ok(self.attr(ino, kind, &m, c.size()));
        }
        let host = self.host_of(ino)?;
        let m = std::fs::symlink_metadata(&host).map_err(|e| to_errno(&e))?;
        Ok(self.attr(ino, kind, &m, self.plain_size(kind, &m)))
    }

    /// The group and exact mode a new entry in `dir` gets, made by a
    /// caller with group `gid` asking for `mode` (the kernel has applied
    /// the caller's umask and, for a caller outside the directory's group,
    /// already dropped a setgid bit it may not set). A setgid directory
    /// gives its group to new entries and its setgid bit to new
    /// directories, as on any local filesystem: the host cannot do that
    /// for a root daemon, which gives each entry to its caller afterwards.
    fn new_entry(&self, dir: &Dir, is_dir: bool, mode: u32, gid: u32) -> Result<(u32, u32), Errno> {
        let parent = std::fs::metadata(&dir.host).map_err(|e| to_errno(&e))?;
        if parent.mode() & libc::S_ISGID == 0 {
            return Ok((gid, mode & 0o7777));
        }
        let mode = if is_dir { mode | libc::S_ISGID } else { mode };
        Ok((parent.gid(), mode & 0o7777))
    }

    /// Gives a new host entry to the requesting user when running as root.
    /// True when its owner changed (which clears setuid and setgid bits
    /// of a non-directory on the host: the caller sets the mode again).
    fn give_to(&self, host: &Path, uid: u32, gid: u32) -> Result<bool, Errno> {
        if self.as_root && (uid != 0 || gid != 0) {
            std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|e| to_errno(&e))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Sets exactly `mode` on the new entry at `host` again after
    /// [`VaultFs::give_to`] changed its owner, when it has a setuid or
    /// setgid bit the change cleared.
    fn keep_special_bits(
        &self,
        host: &Path,
        kind: Kind,
        chowned: bool,
        mode: u32,
    ) -> Result<(), Errno> {
        if !chowned || mode & 0o6000 == 0 || kind == Kind::Symlink {
            return Ok(());
        }
        vault::hostattr::Pinned::open_as(host, kind)
            .and_then(|p| p.chmod(mode))
            .map_err(|e| to_errno(&e))
    }
}
