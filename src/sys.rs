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

extern "C" {
    /// glibc's environment: NUL-terminated array of `NAME=value` strings.
    static mut environ: *mut *mut libc::c_char;
}

/// Overwrites the value of `name` with zeros wherever it sits in the
/// process's environment block, then removes the variable. Removing alone
/// is not enough: `/proc/PID/environ` shows the block the process started
/// with, and unsetenv(3) only unlinks the string. Must run before any
/// other thread exists (it does, first thing in `main`).
pub fn scrub_env(name: &str) {
    let prefix = format!("{name}=");
    // SAFETY: single-threaded at this point (called at the start of main),
    // so nothing reads or changes the environment meanwhile. `environ` is a
    // NULL-terminated array of pointers to NUL-terminated strings that the
    // process may write (the startup block on the stack, or setenv's heap
    // copies); each write stays within the string's own bytes, before its
    // terminating NUL.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = *p;
            let bytes = std::ffi::CStr::from_ptr(entry).to_bytes();
            if bytes.starts_with(prefix.as_bytes()) {
                let value = entry.add(prefix.len());
                std::ptr::write_bytes(value, 0, bytes.len() - prefix.len());
            }
            p = p.add(1);
        }
        std::env::remove_var(name);
    }
}
