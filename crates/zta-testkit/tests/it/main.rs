//! The integration tests of `zta-testkit`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod audit_suite_catches_broken_sinks;
mod state_suite_catches_broken_stores;
