//! A ciphertext file on the host as a [`CipherStore`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use vault_core::CipherStore;

/// A host file holding one file's ciphertext.
#[derive(Debug)]
pub struct HostFile(pub File);

impl CipherStore for HostFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}
