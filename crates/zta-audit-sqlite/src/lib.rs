//! ZTA audit sink on SQLite.
//!
//! The guard hands every audit record to an [`AuditSink`](zta_core::AuditSink); this one
//! stores them in the table `zta_audit` of one SQLite file that several ZTA processes on the
//! same machine may share. Each process is a *writer* with its own id and its own hash chain,
//! so every writer's rows verify on their own:
//!
//! ```text
//! row   writer_id, seq (1, 2, ... per writer), prev_hash, hash, record (the JSON text),
//!       and copies for queries: record_id, time, event, effect, agent_id, action_kind,
//!       action_name, reason
//! hash  SHA-256("zta-audit-sqlite/v1\n" || writer id || 0x00 || seq as 8-byte big-endian
//!               || prev_hash (32 bytes) || the record's JSON bytes, exactly as stored)
//! ```
//!
//! The file is in WAL mode with `synchronous = FULL`: a committed batch survives the process
//! being killed and the machine losing power. Appends go into a bounded queue; one task per
//! sink takes them in batches and inserts each batch with multi-row `INSERT`s in one
//! `BEGIN IMMEDIATE` transaction: a group commit. A
//! [`Durability::Flushed`](zta_core::Durability::Flushed) append and
//! [`flush`](zta_core::AuditSink::flush) return only once their batch committed.
//!
//! Each batch reads where its writer's chain ends inside its own write transaction (SQLite
//! lets one writer at a time in, and the others wait up to
//! [`SqliteConfig::busy_timeout`]), so the chain continues from what is stored whatever came
//! before: a restart, a failed batch, another process. A batch that fails to commit fails its
//! waiting `Flushed` appends and flushes (so a required sink denies) and logs the ids of its
//! queued records as lost; queued records taken after it are dropped until a flush, which
//! fails, so a sender that appends again (a spool) keeps its order. A sink whose writer's
//! chain already had rows, or that had a failed batch, skips records its writer has stored
//! already (by record id): a record sent again is stored once.
//!
//! The schema comes from migrations embedded in the crate (see [`migrate`]), applied when a
//! sink opens. [`verify`] walks every writer's chain and names the first break.
//! [`SqliteReader`] finds records (by agent, action, effect, event, reason, time and request
//! id) in SQL on the indexes the migrations make, for `zta audit query` and `zta audit tail`.
//!
//! Retention: [`prune`] (`zta audit prune`, or the sink's `retention` setting) deletes each
//! writer's oldest rows, never its last, and leaves a "pruned up to" marker (the last deleted
//! row's seq and hash) signed with the audit checkpoint key; [`verify_with`] checks the
//! markers with the public key and starts each pruned chain after its marker.

mod config;
mod error;
mod prune;
mod read;
mod schema;
mod sink;
mod verify;

pub use config::SqliteConfig;
pub use error::Error;
pub use prune::{Pruned, prune};
pub use read::SqliteReader;
pub use schema::{Migrated, migrate};
pub use sink::SqliteSink;
pub use verify::{verify, verify_with};
pub use zta_audit_chain::StoredRecord;
pub use zta_audit_chain::{MarkerReport, MarkerSigner, Retention, public_key};
pub use zta_audit_chain::{VerifyReport, WriterReport};

/// Domain separation tag at the start of every hashed row.
const DOMAIN: &[u8] = b"zta-audit-sqlite/v1\n";

/// The chain hash of one row.
fn chain_hash(writer: &str, seq: u64, prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    zta_audit_chain::link_hash(DOMAIN, writer, seq, prev, record)
}
