//! The integration tests of `zta-core`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod a_named_subject_must_be_the_credentials_agent;
mod audit_record_json_matches_serde;
mod bearer_tokens_route_by_issuer;
mod common;
mod denials_carry_a_code_and_the_claimed_agent;
mod guard_fails_closed;
mod memory_state_store_conformance;
mod only_trusted_callers_assert_a_subject;
mod refresh_revalidates_with_the_source_provider;
mod reserved_attribute_spoofing_is_denied;
mod session_token_standing_is_one_state_read;
