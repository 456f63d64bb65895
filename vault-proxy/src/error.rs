//! The one error type of vault-proxy. Every variant names the thing at
//! fault (a file, a line and key, an address) so the binary can print one
//! line a person can act on.

use std::path::PathBuf;

/// What went wrong while loading a configuration or running the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is not valid: where, which key, and what is expected.
    #[error("{}:{line}:{col}: {}{msg}", file.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        col: usize,
        /// The key at fault, when known.
        key: Option<String>,
        /// What is wrong and what is expected.
        msg: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate, key or CA file has no usable content.
    #[error("{}: {msg}", path.display())]
    Pem {
        /// The PEM file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// rustls refused a certificate/key pair or a CA set.
    #[error("{what}: {source}")]
    Tls {
        /// Which listener or file the TLS setup was for.
        what: String,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the config.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A sealed key (`key = "sealed:VAULT:NAME"`) could not be opened.
    #[error("sealed key {spec}: {msg}")]
    SealedKey {
        /// The key reference from the config.
        spec: String,
        /// Why it could not be used.
        msg: String,
    },
    /// ACME (`[acme]`): the storage, the account or a certificate order.
    #[error("ACME: {0}")]
    Acme(String),
    /// A development certificate could not be generated.
    #[error("generating a development certificate: {0}")]
    DevCert(String),
}

/// Result with vault-proxy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn pem(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Pem {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
