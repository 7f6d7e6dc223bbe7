//! The integration tests of `zta-audit-nats`, against the NATS server in `ZTA_TEST_NATS_URL`
//! (default `nats://127.0.0.1:4222`, JetStream enabled; `cargo xtask services` checks it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod nats_sink_conformance;
mod restarted_server_loses_nothing;
mod tampered_stream_fails_verification;
