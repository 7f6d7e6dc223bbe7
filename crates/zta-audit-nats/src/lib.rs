//! ZTA audit sink on NATS JetStream.
//!
//! Several ZTA processes publish into one durable stream that a SIEM or an archive consumes.
//! Each process is a *writer* with its own id and its own hash chain; every message carries
//! the chain fields, so the stream verifies without any other store:
//!
//! ```text
//! subject  <subject_prefix>.<writer id>
//! header   Nats-Msg-Id: <record id>          (JetStream drops a repeat within its duplicate window)
//! payload  {"writer":"<id>","seq":N,"prev_hash":"<64 hex>","hash":"<64 hex>","record":{...}}
//! hash     SHA-256("zta-audit-nats/v1\n" || writer id || 0x00 || seq as 8-byte big-endian
//!                  || prev_hash as 32 raw bytes || the record's JSON bytes as in the payload)
//! ```
//!
//! Appends are queued and published in batches by one task, which waits for JetStream's
//! acknowledgement of every message of a batch: a `Flushed` append (and `flush`) returns only
//! once JetStream has stored the record. A batch that is not acknowledged is published again
//! (the same message ids, so nothing is stored twice) until [`NatsConfig::retry_for`] has
//! passed; then the sink stops, every later append fails (and the guard denies), and the ids
//! of the records that may be lost are logged.
//!
//! [`verify`] reads the whole stream and checks every writer's chain: a changed, removed,
//! reordered or inserted message is reported.
//!
//! Checkpoint anchoring: [`NatsAnchor`] keeps the signed checkpoints that a JSON Lines sink
//! publishes (`anchor: {nats: ...}`) in a stream of their own (`ZTA_AUDIT_ANCHOR`), one
//! acknowledged message per checkpoint on the subject `zta.anchor.<key id>.<log id>`, so that
//! `zta audit verify --anchor` can tell a rolled-back or cut local log.

mod anchor;
mod sink;
mod verify;

pub use anchor::{NatsAnchor, NatsAnchorConfig};
pub use sink::{Error, NatsConfig, NatsSink};
pub use verify::{VerifyError, VerifyReport, verify};

/// Domain separation tag at the start of every hashed message.
const DOMAIN: &[u8] = b"zta-audit-nats/v1\n";

/// The chain hash of one message.
fn chain_hash(writer: &str, seq: u64, prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    zta_audit_chain::link_hash(DOMAIN, writer, seq, prev, record)
}
