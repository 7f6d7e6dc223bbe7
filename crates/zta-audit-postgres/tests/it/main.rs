//! The integration tests of `zta-audit-postgres`, against the PostgreSQL server in
//! `ZTA_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`; `cargo xtask test`
//! sets it and `cargo xtask services` checks the server answers). Each test makes a database of
//! its own (`zta_test_<random>`) through that URL and drops it at the end. One of them runs a
//! second copy of this test binary as a child process (an ignored test that only runs when its
//! parent starts it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod concurrent_migrations_are_safe;
mod connection_cut_fails_closed;
mod hostile_and_large_records_round_trip;
mod killed_writer_loses_nothing_acknowledged;
mod postgres_sink_conformance;
mod pruned_chains_verify_from_a_signed_marker;
mod restarted_writer_continues_its_chain;
mod tampered_rows_are_detected;
mod two_writers_share_a_table;
mod url_env_names_the_server;
