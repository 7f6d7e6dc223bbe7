//! The integration tests of `zta-state-redis`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod cluster_state_store_conformance;
mod common;
mod follows_a_slot_moved_to_another_node;
mod password_never_shows;
mod reconnects_after_connection_loss;
mod redis_state_store_conformance;
mod standing_reads_keys_on_every_cluster_node;
mod unreachable_cluster_denies_then_recovers;
mod unreachable_redis_denies;
