//! Which mounted filesystem a path is on, from `/proc/self/mountinfo`. A
//! vault's mount names it as its source (`pivault:VAULT`, or `pivault`), so
//! `pivault unmount` finds the vault to wait for, `pivault mount` refuses a
//! mountpoint in use, and `scan --move-into` writes only into a mounted
//! vault, never into the bare directory one was mounted on before an idle
//! seal or an unmount.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A mounted pivault vault: its mount point and the device number every
/// file in it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultMount {
    /// The mount point.
    pub point: PathBuf,
    /// `st_dev` of the mount.
    pub dev: u64,
}

/// Undoes the octal escapes of mountinfo fields (space, tab, newline,
/// backslash).
pub fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// (mount point, fstype, source) of each line of `info`, in order.
fn entries(info: &str) -> impl Iterator<Item = (String, String, String)> + '_ {
    info.lines().filter_map(|line| {
        let point = unescape(line.split(' ').nth(4)?);
        let mut rest = line.split(" - ").nth(1)?.split(' ');
        Some((point, rest.next()?.to_string(), rest.next()?.to_string()))
    })
}

/// Whether a mount of `fstype` from `source` is a pivault vault.
pub fn is_pivault(fstype: &str, source: &str) -> bool {
    fstype.starts_with("fuse") && (source == "pivault" || source.starts_with("pivault:"))
}

/// The pivault vault mount that `path` (an existing directory) is in, if
/// the innermost mount containing it is one.
pub fn vault_mount_of(path: &Path) -> Option<VaultMount> {
    let canon = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The innermost (longest) mount point containing the path; of several
    // at one point, the last mounted.
    let (point, fstype, source) = entries(&info)
        .filter(|(p, _, _)| canon.starts_with(p))
        .fold(None::<(String, String, String)>, |best, e| match &best {
            Some(b) if b.0.len() > e.0.len() => best,
            _ => Some(e),
        })?;
    if !is_pivault(&fstype, &source) {
        return None;
    }
    let dev = std::fs::metadata(&point).ok()?.dev();
    Some(VaultMount {
        point: PathBuf::from(point),
        dev,
    })
}

/// The filesystem type and source mounted exactly at `path`.
pub fn mounted_at(path: &Path) -> Option<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let point = fields.nth(4)?;
        if unescape(point) != want {
            return None;
        }
        let mut rest = line.split(" - ").nth(1)?.split(' ');
        Some((rest.next()?.to_string(), rest.next()?.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_types_and_sources() {
        let info = "36 35 98:0 / /mnt/a\\040b rw,noatime - fuse.pivault pivault:/home/x/vault rw\n\
                    37 35 98:1 / /data rw - ext4 /dev/sda1 rw\n";
        let all: Vec<_> = entries(info).collect();
        assert_eq!(all[0].0, "/mnt/a b");
        assert!(is_pivault(&all[0].1, &all[0].2));
        assert!(!is_pivault(&all[1].1, &all[1].2));
        assert!(!is_pivault("fuse.sshfs", "host:/x"));
    }

    #[test]
    fn a_plain_directory_is_not_a_vault() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(vault_mount_of(d.path()), None);
    }
}
