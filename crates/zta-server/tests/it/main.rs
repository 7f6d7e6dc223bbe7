//! The integration tests of `zta-server`, one module per behaviour, linked into one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod authzen_action_search;
mod authzen_evaluations;
mod common;
mod https_with_the_configured_certificate;
mod jwks_fetches_are_counted;
mod logins_record_their_source;
mod operators_read_the_audit_log;
mod operators_suspend_and_reinstate;
mod readiness_and_metrics;
mod sessions_over_the_native_api;
mod time_limit_and_shutdown;
mod trusted_enforcement_points_assert_subjects;
mod ui_login_and_data_calls;
mod unauthenticated_evaluations_are_401;
