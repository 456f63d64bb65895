//! `pivault proxy` re-executes itself with glibc's memcpy tunable on AMD
//! Zen 3 and later under glibc before 2.40 (see src/tunables.rs), keeps
//! its PID and serves as before; elsewhere, and when the tunable is
//! already set, its environment is left alone.

mod proxy_common;

use proxy_common::*;

/// Whether this machine is one the gateway tunes memcpy on.
fn tuned_here() -> bool {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().unwrap().trim() == name)
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
            .unwrap_or_default()
    };
    // SAFETY: a pointer to glibc's static version string.
    let glibc = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_str()
        .unwrap()
        .to_string();
    let mut v = glibc.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap(), v.next().unwrap());
    cfg!(target_arch = "x86_64")
        && field("vendor_id") == "AuthenticAMD"
        && field("cpu family").parse::<u32>().unwrap() >= 0x19
        && (major, minor) < (2, 40)
}

/// The environment block the running gateway's image started with, as
/// text. glibc writes a NUL after each tunable it parses, in place, so the
/// block is searched as a whole rather than split into variables.
fn environ_of(gw: &Gw) -> String {
    let env = std::fs::read(format!("/proc/{}/environ", gw.child.id())).unwrap();
    String::from_utf8_lossy(&env).into_owned()
}

#[test]
fn the_gateway_runs_with_the_memcpy_tunable_where_glibc_needs_it() {
    let s = setup();
    let gw = Gw::start_env(
        &s.dir,
        &s.http(http_backend(), ""),
        &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")],
    );
    let env = environ_of(&gw);
    assert!(
        env.contains("GLIBC_TUNABLES=glibc.malloc.arena_max=4"),
        "the user's tunable was dropped: {env:?}"
    );
    let set = env
        .split_once("glibc.cpu.x86_rep_movsb_threshold=")
        .map(|(_, v)| v.split(['\0', ':']).next().unwrap().parse::<u64>().unwrap());
    if tuned_here() {
        let n = set.unwrap_or_else(|| panic!("threshold not set: {env:?}"));
        assert!(n >= 64 * 1024, "threshold {n} below a TLS record");
    } else {
        assert_eq!(set, None, "tuned where it need not be");
    }
    // The re-executed image is the same process, and it serves.
    let (rc, out, err) = s.curl(
        gw.addrs[0],
        "/big",
        &["-o", "/dev/null", "-w", "%{size_download}"],
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, (1 << 20).to_string());
}

#[test]
fn a_threshold_set_by_the_user_is_left_as_it_is() {
    let s = setup();
    let mine = "glibc.cpu.x86_rep_movsb_threshold=2112";
    let gw = Gw::start_env(
        &s.dir,
        &s.http(http_backend(), ""),
        &[("GLIBC_TUNABLES", mine)],
    );
    let env = environ_of(&gw);
    assert!(env.contains(&format!("GLIBC_TUNABLES={mine}")), "{env:?}");
    assert_eq!(env.matches("x86_rep_movsb_threshold").count(), 1, "{env:?}");
    let (rc, out, _) = s.curl(
        gw.addrs[0],
        "/big",
        &["-o", "/dev/null", "-w", "%{size_download}"],
    );
    assert_eq!(rc, 0);
    assert_eq!(out, (1 << 20).to_string());
}
