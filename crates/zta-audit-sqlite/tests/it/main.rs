//! The integration tests of `zta-audit-sqlite`, each on files in a temporary directory. Two of
//! them run a second copy of this test binary as a child process (an ignored test that only
//! runs when its parent starts it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod hostile_and_large_records_round_trip;
mod killed_writer_loses_nothing_acknowledged;
mod migrations_run_once_in_wal_mode;
mod pruned_chains_verify_from_a_signed_marker;
mod sqlite_sink_conformance;
mod tampered_rows_are_detected;
mod two_processes_share_a_file;
