//! The inode table: FUSE inode numbers are the host inode numbers of the
//! ciphertext entries (stable across mounts, and hard links share one), with
//! the vault root mapped to FUSE's root number 1. Each known inode records
//! its kind, the kernel's lookup count, the names it is known by (parent
//! inode and plaintext name), a directory's ID once read, and the state
//! shared by its open handles. A reverse index maps each (parent, name) to
//! the one inode holding it, so renames and unlinks move or drop names
//! without scanning.

use super::handles::OpenFile;
use std::collections::HashMap;
use std::sync::Arc;
use vault::Kind;
use vault_core::DirId;

/// FUSE's root inode number.
pub(crate) const ROOT: u64 = 1;

/// One name of an inode: a plaintext name in a parent directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Link {
    pub parent: u64,
    pub name: Vec<u8>,
}

/// What identifies unchanged host content: if the ciphertext still has the
/// same inode, size, mtime and ctime as when the kernel last cached the
/// plaintext, its cache may be kept across opens.
pub(crate) type CacheToken = (u64, u64, i64, i64, i64, i64);

/// One inode the kernel knows of.
pub(crate) struct Node {
    pub kind: Kind,
    /// Birth time of the host entry (nanoseconds, 0 unknown): tells a
    /// new file apart from a deleted one whose inode number it reuses.
    pub birth: u64,
    pub lookups: u64,
    pub links: Vec<Link>,
    pub dir_id: Option<DirId>,
    /// A directory's pinned host path, valid while the table's rename
    /// generation is the one recorded.
    pub host: Option<(u64, super::HostPath)>,
    pub open: Option<Arc<OpenFile>>,
    pub open_count: u32,
    pub cache_token: Option<CacheToken>,
}

impl Node {
    fn new(kind: Kind) -> Node {
        Node {
            kind,
            birth: 0,
            lookups: 0,
            links: Vec::new(),
            dir_id: None,
            host: None,
            open: None,
            open_count: 0,
            cache_token: None,
        }
    }
}

/// Maps host inode numbers to FUSE ones (and back: the map is its own
/// inverse): the root's host number and 1 swap places.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InoMap {
    pub root_host: u64,
}

impl InoMap {
    pub fn fuse(&self, host: u64) -> u64 {
        if host == self.root_host {
            ROOT
        } else if host == ROOT {
            self.root_host
        } else {
            host
        }
    }
}

/// All known inodes and the reverse name index.
pub(crate) struct InodeTable {
    pub nodes: HashMap<u64, Node>,
    names: HashMap<Link, u64>,
    /// Roughly how many nodes hold a cached directory path (each with a
    /// pinned descriptor); never fewer than there are.
    pub cached_dirs: usize,
}

impl InodeTable {
    pub fn new(root_id: DirId) -> InodeTable {
        let mut root = Node::new(Kind::Dir);
        root.dir_id = Some(root_id);
        root.lookups = u64::MAX / 2;
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, root);
        InodeTable {
            nodes,
            names: HashMap::new(),
            cached_dirs: 0,
        }
    }

    /// Records that `ino` (of `kind`, born at `birth`) is reachable as
    /// `name` in `parent`, and adds `lookups` to its lookup count. Returns
    /// the node.
    pub fn remember(
        &mut self,
        ino: u64,
        kind: Kind,
        parent: u64,
        name: &[u8],
        lookups: u64,
        birth: u64,
    ) -> &mut Node {
        self.reborn(ino, birth);
        let link = Link {
            parent,
            name: name.to_vec(),
        };
        match self.names.get(&link) {
            Some(&holder) if holder == ino => {}
            Some(&holder) => {
                self.drop_link(holder, &link);
                self.names.insert(link.clone(), ino);
                self.attach(ino, kind, link);
            }
            None => {
                self.names.insert(link.clone(), ino);
                self.attach(ino, kind, link);
            }
        }
        let node = self.nodes.entry(ino).or_insert_with(|| Node::new(kind));
        if node.kind != kind {
            // The host inode number was reused for a different kind of entry.
            node.kind = kind;
            node.dir_id = None;
            node.host = None;
        }
        node.lookups = node.lookups.saturating_add(lookups);
        node
    }

    /// The host inode number `ino` now names a file born at `birth`: when
    /// the node held another file (a deleted one whose number the host
    /// gave again), nothing of that file carries over: its names, its
    /// directory ID and path, its shared open state (its own handles keep
    /// theirs) and its cache token.
    fn reborn(&mut self, ino: u64, birth: u64) {
        let old_links = match self.nodes.get_mut(&ino) {
            Some(n) if birth != 0 && n.birth != birth => {
                let was = n.birth;
                n.birth = birth;
                if was == 0 {
                    // First time its birth is known: the same file.
                    return;
                }
                n.dir_id = None;
                if n.host.take().is_some() {
                    self.cached_dirs = self.cached_dirs.saturating_sub(1);
                }
                n.open = None;
                n.cache_token = None;
                std::mem::take(&mut n.links)
            }
            _ => return,
        };
        for l in old_links {
            if self.names.get(&l) == Some(&ino) {
                self.names.remove(&l);
            }
        }
    }

    fn attach(&mut self, ino: u64, kind: Kind, link: Link) {
        let node = self.nodes.entry(ino).or_insert_with(|| Node::new(kind));
        if !node.links.contains(&link) {
            // A new name: any cached host path is not this one's. A node
            // that had no name left may be a reused host inode number, so
            // its directory ID is read again too.
            node.host = None;
            if node.links.is_empty() {
                node.dir_id = None;
            }
            // The most recent name goes first: it is the one used to reach
            // the ciphertext.
            node.links.insert(0, link);
        }
    }

    fn drop_link(&mut self, ino: u64, link: &Link) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.links.retain(|l| l != link);
        }
        self.maybe_remove(ino);
    }

    /// Drops every cached directory path and the descriptor it holds.
    pub fn drop_cached_dirs(&mut self) {
        for n in self.nodes.values_mut() {
            n.host = None;
        }
        self.cached_dirs = 0;
    }

    /// The inode holding `name` in `parent`, if known.
    #[cfg(test)]
    pub fn holder(&self, parent: u64, name: &[u8]) -> Option<u64> {
        self.names
            .get(&Link {
                parent,
                name: name.to_vec(),
            })
            .copied()
    }

    /// `name` in `parent` is gone (unlink, rmdir).
    pub fn unlink(&mut self, parent: u64, name: &[u8]) {
        let link = Link {
            parent,
            name: name.to_vec(),
        };
        if let Some(ino) = self.names.remove(&link) {
            self.drop_link(ino, &link);
        }
    }

    /// The entry at `from` now lives at `to`; whatever held `to` lost it.
    pub fn rename(&mut self, from: Link, to: Link) {
        if let Some(old) = self.names.remove(&to) {
            self.drop_link(old, &to);
        }
        if let Some(ino) = self.names.remove(&from) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                for l in n.links.iter_mut() {
                    if *l == from {
                        *l = to.clone();
                    }
                }
            }
            self.names.insert(to, ino);
        }
    }

    /// The entries at `a` and `b` swapped places.
    pub fn exchange(&mut self, a: Link, b: Link) {
        let ia = self.names.get(&a).copied();
        let ib = self.names.get(&b).copied();
        if ia == ib {
            return;
        }
        self.names.remove(&a);
        self.names.remove(&b);
        for (ino, from, to) in [(ia, &a, &b), (ib, &b, &a)] {
            if let Some(ino) = ino {
                if let Some(n) = self.nodes.get_mut(&ino) {
                    for l in n.links.iter_mut() {
                        if l == from {
                            *l = to.clone();
                        }
                    }
                }
                self.names.insert(to.clone(), ino);
            }
        }
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.maybe_remove(ino);
    }

    /// Removes a node nobody refers to any more.
    pub fn maybe_remove(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        let gone = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.lookups == 0 && n.open_count == 0);
        if gone {
            if let Some(n) = self.nodes.remove(&ino) {
                if n.host.is_some() {
                    self.cached_dirs = self.cached_dirs.saturating_sub(1);
                }
                for l in n.links {
                    if self.names.get(&l) == Some(&ino) {
                        self.names.remove(&l);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(p: u64, n: &str) -> Link {
        Link {
            parent: p,
            name: n.as_bytes().to_vec(),
        }
    }

    #[test]
    fn names_follow_renames_unlinks_and_forgets() {
        let mut t = InodeTable::new([0; 16]);
        t.remember(10, Kind::File, ROOT, b"a", 1, 0);
        t.remember(10, Kind::File, ROOT, b"b", 1, 0);
        assert_eq!(t.nodes[&10].links.len(), 2);
        t.remember(11, Kind::File, ROOT, b"c", 1, 0);
        t.rename(link(ROOT, "a"), link(ROOT, "c"));
        assert_eq!(t.holder(ROOT, b"c"), Some(10));
        assert_eq!(t.holder(ROOT, b"a"), None);
        assert!(t.nodes[&11].links.is_empty());
        t.exchange(link(ROOT, "b"), link(ROOT, "c"));
        assert_eq!(t.holder(ROOT, b"b"), Some(10));
        t.unlink(ROOT, b"b");
        t.forget(11, 1);
        assert!(!t.nodes.contains_key(&11));
        t.forget(10, 2);
        assert!(!t.nodes.contains_key(&10));
        assert_eq!(t.holder(ROOT, b"c"), None);
        // A host inode number given again to a new file: the deleted
        // file's names and open state do not carry over; a known birth
        // seen for the first time is the same file.
        t.remember(12, Kind::File, ROOT, b"old", 1, 0);
        t.remember(12, Kind::File, ROOT, b"old", 0, 100);
        t.nodes.get_mut(&12).unwrap().dir_id = Some([7; 16]);
        assert_eq!(t.holder(ROOT, b"old"), Some(12));
        t.remember(12, Kind::File, ROOT, b"new", 1, 200);
        assert_eq!(t.holder(ROOT, b"old"), None);
        assert_eq!(t.holder(ROOT, b"new"), Some(12));
        assert_eq!(t.nodes[&12].links, vec![link(ROOT, "new")]);
        assert_eq!(t.nodes[&12].dir_id, None);
        let m = InoMap { root_host: 77 };
        assert_eq!((m.fuse(77), m.fuse(1), m.fuse(5)), (ROOT, 77, 5));
    }
}
