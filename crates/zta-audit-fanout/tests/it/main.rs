//! The integration tests of `zta-audit-fanout`, one module per behaviour, linked into one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod fanout_sink_conformance;
mod full_spool_refuses;
mod queue_depth_sums_targets_and_spools;
mod required_sink_failure_denies;
mod spool_keeps_records_while_the_sink_is_down;
mod spool_survives_a_restart;
