//! Why a report could not be made or reports could not be merged. Every
//! message names the file or directory at fault and, where there is one,
//! what to do; the binary prints it as it is.

use std::path::PathBuf;

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vault path that does not exist.
    #[error("{}: no such vault directory", .0.display())]
    NoSuchVault(PathBuf),
    /// A vault path that is a file.
    #[error("{}: not a vault (not a directory)", .0.display())]
    NotADirectory(PathBuf),
    /// The keystore or audit log could not be read; keys' message names
    /// the vault or file.
    #[error(transparent)]
    Keys(#[from] keys::Error),
    /// The gateway configuration does not parse (file, line and key).
    #[error("invalid proxy configuration: {0}")]
    ProxyConfig(vault_proxy::Error),
    /// The gateway configuration cannot be read.
    #[error("cannot read the proxy configuration: {0}")]
    ProxyUnreadable(vault_proxy::Error),
    /// A report to merge cannot be read.
    #[error("{}: cannot read the report: {source}", file.display())]
    ReadReport {
        /// The file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file to merge is not a machine's JSON report.
    #[error("{}: not a pivault compliance report ({why}); make one on each machine with `pivault compliance report VAULT... --format json --out FILE`", file.display())]
    NotAReport {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A report made by a newer pivault, in a schema this one cannot read.
    #[error("{}: report schema {found} is newer than this pivault reads (schema {supported}); merge with pivault {made_by} or later", file.display())]
    NewerSchema {
        /// The file.
        file: PathBuf,
        /// Its schema.
        found: u64,
        /// The schema this build reads.
        supported: u32,
        /// The pivault version that made it.
        made_by: String,
    },
    /// A report made before reports named their machine.
    #[error("{}: the report does not name its machine (made by pivault {made_by}, before reports carried `host`); make it again with this pivault's `compliance report --format json`", file.display())]
    NoHost {
        /// The file.
        file: PathBuf,
        /// The pivault version that made it.
        made_by: String,
    },
    /// Two reports for one machine.
    #[error("{}: machine {host:?} is already in {}; give one report per machine (the newest), or name each machine with `compliance report --hostname NAME`", second.display(), first.display())]
    DuplicateMachine {
        /// The machine, as in the reports.
        host: String,
        /// The file read first.
        first: PathBuf,
        /// The file that repeats it.
        second: PathBuf,
    },
    /// `merge` with nothing to merge (the parser requires one, so only a
    /// library caller sees this).
    #[error("no reports to merge")]
    NoReports,
    /// A report could not be serialised (not expected: every field is a
    /// plain value).
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}
