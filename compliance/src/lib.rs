//! pivault's evidence for Massachusetts 201 CMR 17.00.
//!
//! [`gather()`] reads a machine's state (vault keystores and audit logs, the
//! gateway configuration) without any secret; [`clauses`] evaluates each
//! clause of 17.04 on it, one function per clause, into a [`model::Report`]
//! with typed statuses; [`render()`] writes it as Markdown, JSON or HTML.
//! [`fleet`] reads many machines' JSON reports back, checks them, and
//! makes one fleet report with a row per machine and fleet totals.
//!
//! The `pivault compliance` command only parses arguments and prints what
//! this crate returns (docs/COMPLIANCE.md).

pub mod clauses;
pub mod error;
pub mod fleet;
pub mod gather;
pub mod kinds;
pub mod model;
pub mod render;

pub use error::{Error, Result};
pub use gather::{gather, hostname, now, Request};
pub use model::Report;
pub use render::{render, Format};

/// The pivault version reports name: the crate shares the workspace's
/// version, so it is the binary's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
