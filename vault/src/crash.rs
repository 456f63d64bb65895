//! Test crash points: places in a multi-step protocol (a rename, a move of
//! the tree to a new key) where a process may die. In release builds a
//! crash point does nothing; in the crate's tests, one chosen point stops
//! the protocol with an error there, as if the process had been killed,
//! so a test can check what the host holds at every such moment.

use crate::Result;
use std::path::Path;

#[cfg(not(test))]
pub(crate) fn crash_point(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// The number of crash points to pass before stopping.
    static CRASH_AFTER: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// How many crash points were passed since the last reset.
    static CRASH_POINTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
pub(crate) fn crash_point(at: &Path) -> Result<()> {
    CRASH_POINTS.with(|c| c.set(c.get() + 1));
    CRASH_AFTER.with(|c| match c.get() {
        Some(0) => Err(crate::Error::io(
            at,
            std::io::Error::new(std::io::ErrorKind::Interrupted, "test crash point"),
        )),
        Some(n) => {
            c.set(Some(n - 1));
            Ok(())
        }
        None => Ok(()),
    })
}

/// Tests: counts the crash points `f` passes.
#[cfg(test)]
pub(crate) fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    CRASH_POINTS.with(|c| c.set(0));
    let r = f();
    (r, CRASH_POINTS.with(|c| c.get()))
}

/// Tests: runs `f`, stopping it at its crash point number `n` (from 0).
#[cfg(test)]
pub(crate) fn stop_at<T>(n: u64, f: impl FnOnce() -> T) -> T {
    CRASH_AFTER.with(|c| c.set(Some(n)));
    let r = f();
    CRASH_AFTER.with(|c| c.set(None));
    r
}
