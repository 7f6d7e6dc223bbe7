//! The integration tests of `zta-identity-oidc`, against the local OIDC test server that
//! `cargo xtask services` starts (one module per behaviour, one test binary).
// Test helpers, not only `#[test]` functions, unwrap and index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod agent_client_obtains_tokens;
mod arbitrary_tokens_never_pass;
mod config_is_checked;
mod entra_tokens_are_verified;
mod generic_profile;
mod identity_conformance;
mod issuer_faults;
mod key_fetches_are_counted;
mod multi_tenant;
mod refusals;
mod signing_keys;
mod support;
