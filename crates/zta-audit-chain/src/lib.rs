//! The per-writer hash chain of the audit sinks that several processes write at once
//! (PostgreSQL, SQLite, NATS JetStream), and their group-commit writer ([`GroupCommit`]); and
//! the interface of the stores that anchor the JSON Lines sink's checkpoints
//! ([`CheckpointAnchor`]).
//!
//! Each process is a *writer* with its own id; its records are numbered 1, 2, ... and each is
//! linked to the one before it:
//!
//! ```text
//! hash  SHA-256(domain || writer id || 0x00 || seq as 8-byte big-endian
//!               || prev hash (32 bytes; GENESIS for seq 1) || the record's bytes as stored)
//! ```
//!
//! The domain tag names the store and the format version (`"zta-audit-postgres/v1\n"`), so a
//! link from one store never verifies in another. The writer id cannot contain a NUL byte
//! (every sink allows only letters, digits and a little punctuation), so the 0x00 after it
//! ends it unambiguously.

mod anchor;
mod group_commit;
mod pruned;
mod verify;

pub use anchor::{AnchorEntry, AnchorError, CheckpointAnchor, check_log_id};
pub use group_commit::{BatchStore, Batching, GroupCommit};
pub use pruned::{MarkedChainCheck, MarkerReport, MarkerSigner, PruneMarker, Retention, key_id, public_key};
use sha2::{Digest, Sha256};
pub use verify::{ChainBreak, OrderedChainCheck, VerifyReport, WriterReport};

/// A record read back from a store of per-writer chains, with where it is stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredRecord {
    /// Its place in the store's order (`pos`).
    pub pos: i64,
    /// The writer whose chain holds it.
    pub writer_id: String,
    /// Its place in that chain.
    pub seq: i64,
    /// The record.
    pub record: zta_core::AuditRecord,
}

impl StoredRecord {
    /// `record`, stored at `pos` as `seq` of `writer_id`'s chain.
    pub fn new(pos: i64, writer_id: String, seq: i64, record: zta_core::AuditRecord) -> Self {
        Self { pos, writer_id, seq, record }
    }
}

/// The previous hash of a chain's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of the record `record` (its bytes exactly as stored) at `seq` in `writer`'s chain,
/// after the record whose hash is `prev`.
pub fn link_hash(domain: &[u8], writer: &str, seq: u64, prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(writer.as_bytes());
    h.update([0]);
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(record);
    h.finalize().into()
}

/// Checks a writer id: letters, digits, `-`, `_` and `.`, 1 to 128 bytes (so it holds no NUL
/// byte and reads safely in logs). The error says what is allowed.
pub fn check_writer_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(())
    } else {
        Err(format!(
            "writer_id `{}`: letters, digits, `-`, `_` and `.` only, at most 128 bytes",
            id.escape_debug()
        ))
    }
}

/// A writer id no other live sink has: `<hostname>-<pid>-<random>`.
pub fn default_writer_id() -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let host = if host.is_empty() { "host".to_owned() } else { host };
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), random.get(..12).unwrap_or(&random))
}

/// A writer's chain head from its last stored row (`(seq, hash)`, none for a new writer):
/// `(0, GENESIS)` to start from, or what makes the row unusable.
pub fn stored_head(last: Option<(i64, Vec<u8>)>) -> Result<(u64, [u8; 32]), &'static str> {
    match last {
        None => Ok((0, GENESIS)),
        Some((seq, hash)) => match (u64::try_from(seq), <[u8; 32]>::try_from(hash)) {
            (Ok(seq), Ok(hash)) => Ok((seq, hash)),
            (Err(_), _) => Err("a negative seq"),
            (_, Err(_)) => Err("a hash that is not 32 bytes"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored formats depend on these bytes: the value was computed independently
    /// (Python's hashlib) from the layout in the crate docs.
    #[test]
    fn link_hash_is_the_documented_layout() {
        let hash = link_hash(b"zta-audit-postgres/v1\n", "w1", 3, &GENESIS, br#"{"a":1}"#);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "89dc673670f07b2295d6735ef4d6245e589eeb093d2cd84ffc2ed1fa022c0215");
    }

    #[test]
    fn default_writer_ids_differ_and_pass_the_check() {
        let (a, b) = (default_writer_id(), default_writer_id());
        assert_ne!(a, b);
        assert!(check_writer_id(&a).is_ok(), "{a}");
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = link_hash(b"d\n", "w", 1, &GENESIS, b"r");
        assert_ne!(base, link_hash(b"e\n", "w", 1, &GENESIS, b"r"));
        assert_ne!(base, link_hash(b"d\n", "v", 1, &GENESIS, b"r"));
        assert_ne!(base, link_hash(b"d\n", "w", 2, &GENESIS, b"r"));
        assert_ne!(base, link_hash(b"d\n", "w", 1, &[1; 32], b"r"));
        assert_ne!(base, link_hash(b"d\n", "w", 1, &GENESIS, b"s"));
    }
}
