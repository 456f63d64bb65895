//! The tree's housekeeping around renames: long-name side files, a
//! directory's ID rebound to its new place (FORMAT.md §8), temporary
//! entries, and whether a host directory is empty.

use super::*;

impl Vault {
    /// Removes the long-name side file of `name` in `dir`, if it has one
    /// (after its entry is gone). A missing side file is not an error.
    pub fn remove_side_file(&self, dir: &Dir, name: &[u8]) -> Result<()> {
        let (enc, _) = self.encode(dir, name)?;
        if let Some(side) = enc.side_file() {
            let path = dir.host.join(side);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(())
    }

    /// Reads the ID of the directory at `host`, reached as `name` in
    /// directory `parent` (checks its binding).
    pub fn dir_id_at(&self, host: &Path, parent: &DirId, name: &[u8]) -> Result<DirId> {
        read_dirid(&self.cipher, host, NameContext::new(parent, name))
    }

    /// Before a directory at `host` is renamed on the host to `name` in
    /// `parent`: writes (and syncs) the binding to that place beside its
    /// ID file, so the directory opens under either name until
    /// [`Vault::rebind_dir`] makes the new one its only binding.
    pub fn prepare_dir_move(
        &self,
        host: &Path,
        id: &DirId,
        parent: &DirId,
        name: &[u8],
    ) -> Result<()> {
        let f = DirIdFile::with_id(&self.cipher, *id, NameContext::new(parent, name));
        let next = host.join(crate::layout::DIRID_NEXT);
        let _ = fs::remove_file(&next);
        write_synced(&next, &f.to_bytes()).map_err(|e| Error::io(&next, e))
    }

    /// Atomically rewrites the ID file of the directory at `host` so that it
    /// binds `id` to its new place (`name` in directory `parent`): the
    /// directory was renamed, its ID and everything inside stay valid.
    pub fn rebind_dir(&self, host: &Path, id: &DirId, parent: &DirId, name: &[u8]) -> Result<()> {
        let f = DirIdFile::with_id(&self.cipher, *id, NameContext::new(parent, name));
        let tmp = host.join(format!("{TEMP_PREFIX}{}", random_hex()?));
        let target = host.join(DIRID_FILE);
        let res = (|| -> std::io::Result<()> {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            std::io::Write::write_all(&mut out, &f.to_bytes())?;
            out.sync_data()?;
            fs::rename(&tmp, &target)?;
            fs::File::open(host)?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(target, e));
        }
        // The ID file is rebound and durable: the next binding, if a
        // rename wrote one, has done its job.
        let _ = fs::remove_file(host.join(crate::layout::DIRID_NEXT));
        Ok(())
    }

    /// A fresh temporary entry name in `dir` (listings skip it).
    pub fn temp_entry(&self, dir: &Dir) -> Result<PathBuf> {
        Ok(dir.host.join(format!("{TEMP_PREFIX}{}", random_hex()?)))
    }

    /// True when `host` (a ciphertext directory) holds no entries besides
    /// its directory ID file.
    pub fn host_dir_is_empty(host: &Path) -> Result<bool> {
        for de in fs::read_dir(host).map_err(|e| Error::io(host, e))? {
            let de = de.map_err(|e| Error::io(host, e))?;
            let n = de.file_name();
            if n != DIRID_FILE && n != crate::layout::DIRID_NEXT {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
