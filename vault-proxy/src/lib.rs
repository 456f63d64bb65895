//! vault-proxy: pivault's TLS gateway in front of legacy applications
//! (HTTPS reverse proxy, raw TCP tunnel, TLS origination, redirect listener).
//!
//! Its implementation arrives with its own issue; the crate exists now so the
//! workspace has the shape `docs/` and the design describe.
#![forbid(unsafe_code)]
