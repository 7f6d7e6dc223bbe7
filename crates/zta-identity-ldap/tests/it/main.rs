//! The integration tests of `zta-identity-ldap`, against the two local `slapd` instances that
//! `cargo xtask services` sets up (one module per behaviour, one test binary).
// Test helpers, not only `#[test]` functions, unwrap and index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod binds;
mod directory_faults;
mod identity_conformance;
mod refresh;
mod support;
