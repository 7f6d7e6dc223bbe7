//! The integration tests of `zta-token`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod cached_token_expires_on_time;
mod common;
mod config_is_validated;
mod forged_tokens_are_refused;
mod issue_verify_roundtrip;
mod issuer_audience_and_type_are_checked;
mod key_rotation_keeps_old_tokens_for_the_overlap;
mod keys_and_jwks;
mod refresh_rotation_and_reuse_detection;
mod revocation_is_checked_every_request;
mod state_failure_fails_closed;
mod time_claims_are_enforced;
mod token_conformance;
