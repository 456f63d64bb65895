//! Randomness from the operating system (ring's `SystemRandom`, getrandom(2)).

use crate::{Error, Result};
use ring::rand::{SecureRandom, SystemRandom};

/// Fills `buf` with random bytes from the OS.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

/// Returns `N` random bytes.
pub fn array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}
