//! pi-scan: finds unprotected personal information (SSNs, driver's licence
//! and account numbers, as 201 CMR 17.02 defines it) in files.
//!
//! Its implementation arrives with its own issue; the crate exists now so the
//! workspace has the shape the design describes.
#![forbid(unsafe_code)]
