//! The vault tree: how plaintext directories, names and files map onto the
//! ciphertext directory. One host directory per plaintext directory, one
//! host file per plaintext file (sync-friendly: no shared index), each host
//! directory holding its `pivault.dirid`.

use crate::hostfile::HostFile;
use crate::{Error, Result};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vault_core::{
    long_entry_for, ContentFile, DirId, DirIdFile, EncodedName, NameCipher, NameContext,
    VaultCipher, DIRID_FILE, DIRID_LEN, LONG_NAME_PREFIX, LONG_NAME_SUFFIX, ROOT_PARENT,
};

pub(crate) use crate::layout::{ROOT_FILES, TEMP_PREFIX};

mod dir;
mod moves;

pub use dir::{anchor, anchor_root, shown, Anchor, Dir, PROC_FD};

/// What a host entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (content format).
    File,
    /// A directory.
    Dir,
    /// A symlink with an encrypted target.
    Symlink,
    /// A node without content (fifo, socket, device), stored on the host
    /// as the same kind of node.
    Node(NodeKind),
}

/// The kinds of node that have no content to encrypt: only their name is
/// encrypted; a device's numbers are kept on the host node, in clear, as
/// its mode and owner are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A named pipe.
    Fifo,
    /// A Unix socket's name (the socket itself lives in the kernel).
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl NodeKind {
    /// The node's type for mknod(2).
    pub fn file_type(self) -> rustix::fs::FileType {
        use rustix::fs::FileType;
        match self {
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::Socket => FileType::Socket,
            NodeKind::CharDevice => FileType::CharacterDevice,
            NodeKind::BlockDevice => FileType::BlockDevice,
        }
    }

    /// True for device nodes, which only root may make.
    pub fn is_device(self) -> bool {
        matches!(self, NodeKind::CharDevice | NodeKind::BlockDevice)
    }
}

impl Kind {
    /// The kind of a host file type.
    pub fn of(ft: fs::FileType) -> Option<Kind> {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_file() {
            Some(Kind::File)
        } else if ft.is_dir() {
            Some(Kind::Dir)
        } else if ft.is_symlink() {
            Some(Kind::Symlink)
        } else if ft.is_fifo() {
            Some(Kind::Node(NodeKind::Fifo))
        } else if ft.is_socket() {
            Some(Kind::Node(NodeKind::Socket))
        } else if ft.is_char_device() {
            Some(Kind::Node(NodeKind::CharDevice))
        } else if ft.is_block_device() {
            Some(Kind::Node(NodeKind::BlockDevice))
        } else {
            None
        }
    }
}

/// A decrypted directory entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Plaintext name.
    pub name: Vec<u8>,
    /// Host path of its ciphertext.
    pub host: PathBuf,
    /// Its kind.
    pub kind: Kind,
    /// Host inode number of the ciphertext entry (from the directory
    /// listing, without a stat).
    pub ino: u64,
}

/// One result of listing a directory: an entry, or a host entry that could
/// not be made sense of.
#[derive(Debug)]
pub enum Listed {
    /// A valid entry.
    Entry(Entry),
    /// A damaged, tampered or foreign host entry.
    Damaged(Error),
}

/// An unsealed vault's tree.
pub struct Vault {
    root: PathBuf,
    cipher: std::sync::Arc<VaultCipher>,
    root_dir: Dir,
}

fn random_hex() -> Result<String> {
    let b = vault_core::random::array::<8>().map_err(Error::Core)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Vault {
    /// Writes the root directory ID file of a new vault (never overwrites).
    pub fn init(root: &Path, cipher: &VaultCipher) -> Result<()> {
        let f = DirIdFile::generate(cipher, NameContext::new(&ROOT_PARENT, b""))
            .map_err(Error::Core)?;
        let path = root.join(DIRID_FILE);
        keys::write_new(&path, &f.to_bytes(), 0o600).map_err(|e| match e {
            keys::Error::Io { path, source } => Error::io(path, source),
            e => Error::io(&path, std::io::Error::other(e.to_string())),
        })
    }

    /// Opens the tree of the vault at `root` with its unsealed cipher.
    pub fn open(root: PathBuf, cipher: VaultCipher) -> Result<Vault> {
        if cipher.keyring().tree_move_pending() {
            return Err(Error::TreeMovePending(root));
        }
        // The root is the path the user named (it may be a symlink they
        // made); everything below it is reached without following one.
        let (host, anchor) = anchor_root(&root).map_err(|e| Error::io(&root, e))?;
        let id = read_dirid(&cipher, &host, NameContext::new(&ROOT_PARENT, b""))?;
        let root_dir = Dir { host, id, anchor };
        Ok(Vault {
            root,
            cipher: std::sync::Arc::new(cipher),
            root_dir,
        })
    }

    /// A shared handle on the cipher, for taking in a rotated keyring
    /// while the vault is in use elsewhere (the mount).
    pub fn cipher_handle(&self) -> std::sync::Arc<VaultCipher> {
        self.cipher.clone()
    }

    /// The vault's host directory.
    pub fn root_path(&self) -> &Path {
        &self.root
    }

    /// The root directory.
    pub fn root(&self) -> &Dir {
        &self.root_dir
    }

    /// The vault's cipher handle.
    pub fn cipher(&self) -> &VaultCipher {
        &self.cipher
    }

    /// The encrypted form of `name` in `dir` and its host path.
    pub fn encode(&self, dir: &Dir, name: &[u8]) -> Result<(EncodedName, PathBuf)> {
        let enc = self
            .cipher
            .names()
            .encrypt(&dir.id, name)
            .map_err(|e| Error::core(&dir.host, e))?;
        let host = dir.host.join(enc.entry());
        Ok((enc, host))
    }

    /// The host path and kind of `name` in `dir`, or `None` when absent.
    pub fn lookup(&self, dir: &Dir, name: &[u8]) -> Result<Option<(PathBuf, fs::Metadata)>> {
        let (_, host) = self.encode(dir, name)?;
        match fs::symlink_metadata(&host) {
            Ok(m) => Ok(Some((host, m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(host, e)),
        }
    }

    /// Opens subdirectory `name` of `dir`, checking its directory ID file.
    pub fn subdir(&self, dir: &Dir, name: &[u8]) -> Result<Dir> {
        let (_, host) = self.encode(dir, name)?;
        // Pinned first, so the ID read and every later call reach the
        // same directory.
        let (host, anchor) = anchor(&host).map_err(|e| Error::io(&host, e))?;
        let id = read_dirid(&self.cipher, &host, NameContext::new(&dir.id, name))?;
        Ok(Dir { host, id, anchor })
    }

    /// Lists `dir`, decrypting every name. pivault's own files are skipped;
    /// anything that does not decrypt is returned as [`Listed::Damaged`].
    pub fn list(&self, dir: &Dir) -> Result<Vec<Listed>> {
        let is_root = dir.id == self.root_dir.id;
        let mut out = Vec::new();
        for de in fs::read_dir(&dir.host).map_err(|e| Error::io(&dir.host, e))? {
            let de = de.map_err(|e| Error::io(&dir.host, e))?;
            let os_name = de.file_name();
            let entry = os_name.to_string_lossy();
            let host = de.path();
            if entry == DIRID_FILE
                || entry.starts_with(TEMP_PREFIX)
                || (is_root && ROOT_FILES.contains(&&*entry))
                || (entry.starts_with(LONG_NAME_PREFIX) && entry.ends_with(LONG_NAME_SUFFIX))
            {
                continue;
            }
            let full = if entry.starts_with(LONG_NAME_PREFIX) {
                match read_long_name(&host, &entry) {
                    Ok(full) => full,
                    Err(e) => {
                        out.push(Listed::Damaged(e));
                        continue;
                    }
                }
            } else if NameCipher::is_encoded_entry(&entry) {
                entry.to_string()
            } else {
                out.push(Listed::Damaged(Error::damaged(
                    host,
                    vault_core::Error::NameEncoding(
                        "not a pivault entry (foreign or renamed file)",
                    ),
                )));
                continue;
            };
            let name = match self.cipher.names().decrypt(&dir.id, &full) {
                Ok(n) => n,
                Err(e) => {
                    out.push(Listed::Damaged(Error::core(host, e)));
                    continue;
                }
            };
            let kind = match de.file_type().map(Kind::of) {
                Ok(Some(k)) => k,
                Ok(None) => {
                    out.push(Listed::Damaged(Error::damaged(
                        host,
                        vault_core::Error::NameEncoding("unsupported file type in the vault"),
                    )));
                    continue;
                }
                Err(e) => return Err(Error::io(host, e)),
            };
            let ino = std::os::unix::fs::DirEntryExt::ino(&de);
            out.push(Listed::Entry(Entry {
                name,
                host,
                kind,
                ino,
            }));
        }
        Ok(out)
    }

    /// Writes the side file of a long name before its entry exists.
    pub fn prepare_name(&self, enc: &EncodedName, dir: &Dir) -> Result<()> {
        if let (Some(side), EncodedName::Long { full, .. }) = (enc.side_file(), enc) {
            let path = dir.host.join(side);
            keys::write_atomic(&path, full.as_bytes(), 0o600)
                .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
        }
        Ok(())
    }

    /// Creates an empty file `name` in `dir` (host mode `mode`), bound to
    /// its name; fails if it exists.
    pub fn create_file(&self, dir: &Dir, name: &[u8], mode: u32) -> Result<ContentFile<HostFile>> {
        let (enc, host) = self.encode(dir, name)?;
        refuse_existing(&host)?;
        self.prepare_name(&enc, dir)?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&host)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Exists(crate::tree::shown(&host)),
                _ => Error::io(&host, e),
            })?;
        ContentFile::create(HostFile(f), &self.cipher, NameContext::new(&dir.id, name))
            .map_err(|e| Error::core(&host, e))
    }

    /// Opens file `name` in `dir`, checking its header and binding.
    pub fn open_file(
        &self,
        dir: &Dir,
        name: &[u8],
        writable: bool,
    ) -> Result<ContentFile<HostFile>> {
        let (_, host) = self.encode(dir, name)?;
        // Not through a symlink or fifo put in the file's place on the host.
        let f = keys::open_regular(&host, OpenOptions::new().read(true).write(writable)).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(crate::tree::shown(&host)),
                _ => Error::io(&host, e),
            },
        )?;
        ContentFile::open(HostFile(f), &self.cipher, NameContext::new(&dir.id, name))
            .map_err(|e| Error::core(&host, e))
    }

    /// Creates directory `name` in `dir`. The host directory is built under
    /// a temporary name with its ID file inside, then renamed into place, so
    /// a crash never leaves a directory without an ID.
    pub fn mkdir(&self, dir: &Dir, name: &[u8], mode: u32) -> Result<Dir> {
        let (enc, host) = self.encode(dir, name)?;
        refuse_existing(&host)?;
        self.prepare_name(&enc, dir)?;
        let tmp = dir.host.join(format!("{TEMP_PREFIX}{}", random_hex()?));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let idf = DirIdFile::generate(&self.cipher, NameContext::new(&dir.id, name))
            .map_err(Error::Core)?;
        // Pinned before it gets its name: the directory returned is the one
        // built here, whatever is swapped in under the name later.
        let (tmp_host, anchor) = match anchor(&tmp) {
            Ok(a) => a,
            Err(e) => {
                let _ = fs::remove_dir(&tmp);
                return Err(Error::io(&tmp, e));
            }
        };
        let idpath = tmp_host.join(DIRID_FILE);
        // The temporary directory is private until the rename, so the ID
        // file is written in place; one fsync makes it durable before the
        // directory appears under its name.
        let res = write_synced(&idpath, &idf.to_bytes())
            .map_err(|e| Error::io(&idpath, e))
            .and_then(|_| {
                crate::hostattr::Pinned::open_as(&tmp, Kind::Dir)
                    .and_then(|p| p.chmod(mode))
                    .map_err(|e| Error::io(&tmp, e))
            })
            .and_then(|_| fs::rename(&tmp, &host).map_err(|e| Error::io(&host, e)));
        if let Err(e) = res {
            let _ = fs::remove_file(&idpath);
            let _ = fs::remove_dir(&tmp);
            return Err(e);
        }
        Ok(Dir {
            host: tmp_host,
            id: idf.id,
            anchor,
        })
    }

    /// Creates symlink `name` in `dir` pointing at `target` (encrypted,
    /// bound to the entry).
    pub fn symlink(&self, dir: &Dir, name: &[u8], target: &[u8]) -> Result<PathBuf> {
        let (enc, host) = self.encode(dir, name)?;
        refuse_existing(&host)?;
        self.prepare_name(&enc, dir)?;
        let sealed = self
            .cipher
            .seal_symlink(&dir.id, name, target)
            .map_err(Error::Core)?;
        std::os::unix::fs::symlink(&sealed, &host).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists(crate::tree::shown(&host)),
            _ => Error::io(&host, e),
        })?;
        Ok(host)
    }

    /// Creates node `name` in `dir`: a fifo, socket or device (`rdev`, as
    /// in `st_rdev`) has no content to encrypt; only its name is. The mode
    /// is set exactly, whatever this process's umask.
    pub fn mknode(
        &self,
        dir: &Dir,
        name: &[u8],
        node: NodeKind,
        mode: u32,
        rdev: u64,
    ) -> Result<PathBuf> {
        let (enc, host) = self.encode(dir, name)?;
        refuse_existing(&host)?;
        self.prepare_name(&enc, dir)?;
        let rdev = if node.is_device() { rdev } else { 0 };
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &host,
            node.file_type(),
            rustix::fs::Mode::from_raw_mode(mode & 0o7777),
            rdev,
        )
        .map_err(|e| match e {
            rustix::io::Errno::EXIST => Error::Exists(crate::tree::shown(&host)),
            e => Error::io(&host, e.into()),
        })?;
        crate::hostattr::Pinned::open_as(&host, Kind::Node(node))
            .and_then(|p| p.chmod(mode))
            .map_err(|e| Error::io(&host, e))?;
        Ok(host)
    }

    /// Reads and decrypts the target of symlink `name` in `dir`.
    pub fn readlink(&self, dir: &Dir, name: &[u8]) -> Result<Vec<u8>> {
        let (_, host) = self.encode(dir, name)?;
        let sealed = fs::read_link(&host).map_err(|e| Error::io(&host, e))?;
        self.cipher
            .open_symlink(&dir.id, name, sealed.as_os_str().as_bytes())
            .map_err(|e| Error::core(&host, e))
    }
}

pub(crate) fn refuse_existing(host: &Path) -> Result<()> {
    match fs::symlink_metadata(host) {
        Ok(_) => Err(Error::Exists(crate::tree::shown(host))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(host, e)),
    }
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_data()
}

fn read_dirid(cipher: &VaultCipher, dir_host: &Path, at: NameContext<'_>) -> Result<DirId> {
    let first = read_dirid_file(cipher, &dir_host.join(DIRID_FILE), at);
    if first.is_ok() {
        return first;
    }
    // A rename interrupted after the host rename and before the ID file
    // was rebound: the next binding, written first, names the new place.
    match read_dirid_file(cipher, &dir_host.join(crate::layout::DIRID_NEXT), at) {
        Ok(id) => Ok(id),
        Err(_) => first,
    }
}

fn read_dirid_file(cipher: &VaultCipher, path: &Path, at: NameContext<'_>) -> Result<DirId> {
    let path = path.to_path_buf();
    let bytes = keys::read_regular(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::damaged(path.clone(), vault_core::Error::DirId("it is missing"))
        }
        _ => Error::io(&path, e),
    })?;
    if bytes.len() != DIRID_LEN {
        return Err(Error::damaged(
            path,
            vault_core::Error::DirId("wrong length"),
        ));
    }
    DirIdFile::open(cipher, &bytes, at)
        .map(|f| f.id)
        .map_err(|e| Error::core(path, e))
}

pub(crate) fn read_long_name(host: &Path, entry: &str) -> Result<String> {
    let side = host.with_file_name(format!("{entry}{LONG_NAME_SUFFIX}"));
    let full = keys::read_regular(&side).map_err(|e| {
        Error::damaged(
            side.clone(),
            vault_core::Error::NameEncoding(if e.kind() == std::io::ErrorKind::NotFound {
                "long-name side file is missing"
            } else {
                "long-name side file is unreadable"
            }),
        )
    })?;
    let full = String::from_utf8(full).map_err(|_| {
        Error::damaged(
            side.clone(),
            vault_core::Error::NameEncoding("long-name side file is not base64url"),
        )
    })?;
    if long_entry_for(&full) != entry {
        return Err(Error::damaged(
            side,
            vault_core::Error::NameEncoding("long-name side file does not match its entry"),
        ));
    }
    Ok(full)
}

/// Joins a plaintext name (raw bytes) onto a plaintext path.
pub fn join_plain(base: &Path, name: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(name))
}

#[cfg(test)]
mod tests;
