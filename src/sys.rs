//! Process hardening: the one place the binary calls the OS directly.

/// Forbids core dumps and ptrace attach by other same-user processes
/// (PR_SET_DUMPABLE 0), and sets the core size limit to zero, so keys held
/// in memory never reach a core file.
pub fn harden() {
    // SAFETY: prctl(PR_SET_DUMPABLE) and setrlimit take plain integers and a
    // pointer to a live local; neither touches Rust-managed memory.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            tracing::warn!(
                "could not disable core dumps: {}",
                std::io::Error::last_os_error()
            );
        }
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
}
