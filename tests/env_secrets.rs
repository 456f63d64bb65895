//! Secrets given in the environment leave it (issue 15, point 7): a mount
//! started with `PIVAULT_PASSPHRASE` keeps running for hours, and anyone
//! who may read its `/proc/PID/environ` (root, or the same user once the
//! process is dumpable) must not find the passphrase there.

mod common_fuse;

use common_fuse::*;

#[test]
fn passphrase_in_the_environment_is_wiped_from_a_running_mounts_environ() {
    let mut f = Fixture::new();
    f.mount(&[]);
    let pid = f.child.as_ref().unwrap().id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let found = environ.windows(PASS.len()).any(|w| w == PASS.as_bytes());
    assert!(
        !found,
        "the passphrase is still in the mount's environment block"
    );
    // The variable itself is gone from what the process (and any child)
    // sees; the name may linger in the block with its value zeroed.
    let listed: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|e| e.starts_with(b"PIVAULT_PASSPHRASE=") && e.len() > 19)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    assert!(listed.is_empty(), "{listed:?}");
    // And the mount works: the passphrase was taken, not lost.
    std::fs::write(f.p("a.txt"), b"still unsealed").unwrap();
    assert_eq!(std::fs::read(f.p("a.txt")).unwrap(), b"still unsealed");
    let (st, err) = f.unmount();
    assert!(st.success(), "{err}");
}
