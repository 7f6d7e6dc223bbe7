//! ZTA audit sink on PostgreSQL.
//!
//! The guard hands every audit record to an [`AuditSink`](zta_core::AuditSink); this one
//! stores them in one PostgreSQL table that several ZTA processes may share. Each process is a
//! *writer* with its own id and its own hash chain, so every writer's rows verify on their own:
//!
//! ```text
//! row   writer_id, seq (1, 2, ... per writer), prev_hash, hash, record (the JSON text),
//!       and copies for queries: record_id, time, event, effect, agent_id, action_kind,
//!       action_name, reason
//! hash  SHA-256("zta-audit-postgres/v1\n" || writer id || 0x00 || seq as 8-byte big-endian
//!               || prev_hash (32 bytes) || the record's JSON bytes, exactly as stored)
//! ```
//!
//! Appends go into a bounded queue; one task per sink takes them in batches and inserts each
//! batch in one transaction (one multi-row `INSERT ... SELECT FROM UNNEST` with bind
//! parameters): a group commit. A [`Durability::Flushed`](zta_core::Durability::Flushed) append
//! and [`flush`](zta_core::AuditSink::flush) return only once their batch committed.
//!
//! A batch that fails to commit (the connection was cut, the server is down) fails its waiting
//! `Flushed` appends and flushes (so a required sink denies), and the ids of its queued records
//! are logged as possibly lost; queued records taken after it are dropped until a flush, which
//! fails, so a sender that appends again (a spool) keeps its order. The sink does not stop: the
//! next batch opens a new connection, takes the writer lock again (if another live sink holds
//! it now, the sink stops with an error that says so) and re-reads where the chain ends, since
//! the failed commit may have landed. From then on each batch skips the records this writer
//! has stored already (by record id, before hashing, so the chain stays gapless): a record
//! sent again is stored exactly once. A sink opened again with the same writer id continues
//! the chain from the last stored row, and skips stored records the same way.
//!
//! The schema comes from migrations embedded in the crate (see [`migrate`]), run at startup
//! under PostgreSQL advisory locks so that processes starting together do not race.
//! [`verify`] walks every writer's chain and names the first break. [`PostgresReader`] finds
//! records (by agent, action, effect, event, reason, time and request id) in SQL on the indexes
//! the migrations make, for `zta audit query` and `zta audit tail`.
//!
//! Retention: [`prune`] (`zta audit prune`, or the sink's `retention` setting) deletes each
//! writer's oldest rows, never its last, and leaves a "pruned up to" marker (the last deleted
//! row's seq and hash) signed with the audit checkpoint key; [`verify_with`] checks the
//! markers with the public key and starts each pruned chain after its marker.
//!
//! Checkpoint anchoring: [`PostgresAnchor`] keeps the signed checkpoints that a JSON Lines
//! sink publishes (`anchor: {postgres: ...}`) in the table `zta_audit_anchor` (migration 4),
//! one row per checkpoint, so that `zta audit verify --anchor` can tell a rolled-back or cut
//! local log.

mod anchor;
mod config;
mod error;
mod prune;
mod read;
mod schema;
mod sink;
mod verify;

pub use anchor::{PostgresAnchor, PostgresAnchorConfig};
pub use config::PostgresConfig;
pub use error::Error;
pub use prune::{Pruned, prune};
pub use read::PostgresReader;
pub use schema::{Migrated, migrate};
pub use sink::PostgresSink;
pub use verify::{verify, verify_with};
pub use zta_audit_chain::StoredRecord;
pub use zta_audit_chain::{MarkerReport, MarkerSigner, Retention, public_key};
pub use zta_audit_chain::{VerifyReport, WriterReport};

/// Domain separation tag at the start of every hashed row.
const DOMAIN: &[u8] = b"zta-audit-postgres/v1\n";

/// The chain hash of one row.
fn chain_hash(writer: &str, seq: u64, prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    zta_audit_chain::link_hash(DOMAIN, writer, seq, prev, record)
}
