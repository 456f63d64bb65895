//! glibc's memcpy setting for the TLS gateway on AMD Zen 3 and later.
//!
//! glibc before 2.40 copies anything above about 2 KiB with `rep movsb`
//! on CPUs that announce fast string moves. On AMD Zen 3 and later that
//! instruction runs about fifteen times slower when the destination lies
//! less than 64 bytes past the source modulo 4 KiB (glibc bug 30994), and
//! the gateway hits that case on every TLS record it sends: rustls copies
//! each 16 KiB of plaintext from hyper's upstream read buffer into a fresh
//! record buffer, and both allocations land at the same page offsets each
//! time (under gdb: from 0xf7 to 0x105, 14 bytes apart, for every record
//! of a 1 MiB response). Measured on a Zen 3 (EPYC) VM, the
//! copy was 23-27% of the gateway's CPU on 1 MiB responses, twice the
//! AES-GCM sealing of the same bytes.
//!
//! glibc's fix for that bug makes `rep movsb` start only above its
//! non-temporal threshold (several MiB) on AMD CPUs. For older glibc the
//! threshold exists as a tunable, read only when a program starts, so
//! `pivault proxy` re-executes itself once with
//! `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=<L2 size>` (above any
//! copy on its hot paths, which are at most one 16 KiB record), before it
//! reads a secret, opens a socket or starts a thread. The process keeps its
//! PID, arguments, descriptors and the rest of its environment. A
//! `GLIBC_TUNABLES` that already sets the threshold is left as it is, which
//! is also how to opt out (set it to glibc's default, 2112).

use std::ffi::OsString;

/// The tunable this module sets.
const TUNABLE: &str = "glibc.cpu.x86_rep_movsb_threshold";

/// The L2 size glibc itself assumes on these CPUs when sysfs says nothing.
const DEFAULT_L2: u64 = 512 * 1024;

/// Re-executes the running binary with the memcpy tunable when this CPU
/// and glibc need it; returns only when they do not, or when the exec
/// failed (then the process goes on as it is).
pub fn tune_memcpy() {
    // The re-executed image stops here, before reading /proc and sysfs again.
    if std::env::var_os("GLIBC_TUNABLES").is_some_and(|t| sets_threshold(&t)) {
        return;
    }
    let Some(value) = wanted(&Facts::read()) else {
        return;
    };
    let mut args = std::env::args_os();
    let Some(arg0) = args.next() else { return };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", &value)
        .exec();
    // Logging is not set up yet, and a failed exec changes nothing.
    eprintln!(
        "pivault: note: could not re-execute with {TUNABLE} set ({err}); going on without it. \
         Large copies run slower on this CPU: start the gateway with \
         GLIBC_TUNABLES={} to avoid that (docs/PROXY.md)",
        value.to_string_lossy()
    );
}

/// Whether a `GLIBC_TUNABLES` value already sets the threshold.
fn sets_threshold(tunables: &std::ffi::OsStr) -> bool {
    tunables.to_string_lossy().contains(TUNABLE)
}

/// What the decision depends on.
#[derive(Debug, Default)]
struct Facts {
    /// `vendor_id` from /proc/cpuinfo.
    vendor: String,
    /// `cpu family` from /proc/cpuinfo.
    family: u32,
    /// glibc's version ("2.36"), if this is glibc.
    glibc: Option<String>,
    /// `GLIBC_TUNABLES` as the process got it.
    tunables: Option<OsString>,
    /// Whether the process runs with AT_SECURE (setuid and the like):
    /// then glibc ignores the tunable and re-executing would loop.
    secure: bool,
    /// Whether it runs under valgrind, whose preload library is in
    /// `LD_PRELOAD`: re-executing would leave valgrind (it does not follow
    /// children by default), so a profile would silently measure nothing.
    valgrind: bool,
    /// The L2 cache size in bytes, if sysfs says.
    l2: Option<u64>,
}

impl Facts {
    fn read() -> Facts {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        Facts {
            vendor: field("vendor_id").unwrap_or_default(),
            family: field("cpu family")
                .and_then(|f| f.parse().ok())
                .unwrap_or(0),
            glibc: glibc_version(),
            tunables: std::env::var_os("GLIBC_TUNABLES"),
            // SAFETY: getauxval reads the auxiliary vector; no memory is
            // handed to it.
            secure: unsafe { libc::getauxval(libc::AT_SECURE) } != 0,
            valgrind: std::env::var_os("LD_PRELOAD")
                .is_some_and(|p| p.to_string_lossy().contains("vgpreload")),
            l2: std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size")
                .ok()
                .and_then(|s| parse_size(s.trim())),
        }
    }
}

#[cfg(target_env = "gnu")]
fn glibc_version() -> Option<String> {
    // SAFETY: gnu_get_libc_version returns a pointer to a static,
    // NUL-terminated string owned by glibc.
    let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    Some(v.to_string_lossy().into_owned())
}

#[cfg(not(target_env = "gnu"))]
fn glibc_version() -> Option<String> {
    None
}

/// "512K" (sysfs) in bytes.
fn parse_size(s: &str) -> Option<u64> {
    let (n, mul) = match s.strip_suffix('K') {
        Some(n) => (n, 1024),
        None => match s.strip_suffix('M') {
            Some(n) => (n, 1024 * 1024),
            None => (s, 1),
        },
    };
    n.parse::<u64>().ok().map(|n| n * mul)
}

/// The `GLIBC_TUNABLES` value to re-execute with, or None to run as is.
fn wanted(f: &Facts) -> Option<OsString> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) || f.secure || f.valgrind {
        return None;
    }
    // Zen 3 is family 0x19; Zen 5 is 0x1a.
    if f.vendor != "AuthenticAMD" || f.family < 0x19 {
        return None;
    }
    // The fix is in 2.39 or 2.40; below 2.40 the tunable is set either way
    // (on 2.39 it only lowers glibc's own, larger threshold).
    let (major, minor) = f.glibc.as_deref()?.split_once('.')?;
    let minor: u32 = minor.split('.').next()?.parse().ok()?;
    if (major.parse::<u32>().ok()?, minor) >= (2, 40) {
        return None;
    }
    if f.tunables.as_deref().is_some_and(sets_threshold) {
        return None;
    }
    let existing = f
        .tunables
        .as_ref()
        .map(|t| t.to_string_lossy().into_owned());
    let setting = format!("{TUNABLE}={}", f.l2.unwrap_or(DEFAULT_L2));
    Some(match existing {
        Some(t) if !t.is_empty() => format!("{t}:{setting}").into(),
        _ => setting.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zen3() -> Facts {
        Facts {
            vendor: "AuthenticAMD".into(),
            family: 25,
            glibc: Some("2.36".into()),
            l2: Some(512 * 1024),
            ..Facts::default()
        }
    }

    #[test]
    fn zen3_with_old_glibc_gets_the_threshold_at_its_l2_size() {
        assert_eq!(
            wanted(&zen3()).unwrap(),
            "glibc.cpu.x86_rep_movsb_threshold=524288"
        );
        let no_sysfs = Facts { l2: None, ..zen3() };
        assert_eq!(
            wanted(&no_sysfs).unwrap(),
            "glibc.cpu.x86_rep_movsb_threshold=524288"
        );
    }

    #[test]
    fn other_tunables_are_kept() {
        let f = Facts {
            tunables: Some("glibc.malloc.arena_max=2".into()),
            ..zen3()
        };
        assert_eq!(
            wanted(&f).unwrap(),
            "glibc.malloc.arena_max=2:glibc.cpu.x86_rep_movsb_threshold=524288"
        );
    }

    #[test]
    fn a_threshold_already_set_is_left_alone_so_there_is_no_loop() {
        let f = Facts {
            tunables: Some("glibc.cpu.x86_rep_movsb_threshold=2112".into()),
            ..zen3()
        };
        assert!(wanted(&f).is_none());
    }

    #[test]
    fn nothing_changes_elsewhere() {
        for f in [
            Facts {
                vendor: "GenuineIntel".into(),
                family: 6,
                ..zen3()
            },
            Facts {
                family: 0x17,
                ..zen3()
            }, // Zen 2: no fast short moves
            Facts {
                glibc: Some("2.40".into()),
                ..zen3()
            },
            Facts {
                glibc: Some("2.41.9000".into()),
                ..zen3()
            },
            Facts {
                glibc: None,
                ..zen3()
            }, // musl
            Facts {
                secure: true,
                ..zen3()
            },
            Facts {
                valgrind: true,
                ..zen3()
            },
        ] {
            assert!(wanted(&f).is_none(), "{f:?}");
        }
    }

    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(parse_size("512K"), Some(524_288));
        assert_eq!(parse_size("1M"), Some(1_048_576));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("big"), None);
    }
}
