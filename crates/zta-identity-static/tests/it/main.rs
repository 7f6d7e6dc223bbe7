//! The integration tests of `zta-identity-static`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod alg_none_is_refused;
#[path = "../common/mod.rs"]
mod common;
mod concurrent_failures_all_count;
mod config_validation;
mod expired_assertion_is_refused;
mod hs256_forged_with_public_key_is_refused;
mod identity_conformance;
mod impersonation_is_refused;
mod key_url_headers_are_refused;
mod lockout_after_failures;
mod overlong_assertion_is_refused;
mod replayed_assertion_is_refused;
mod secret_authentication;
mod state_store_failure_denies;
mod success_does_not_reset_an_attack;
mod unknown_agent_fails_like_bad_signature;
mod valid_assertion_yields_principal;
mod wrong_audience_is_refused;
