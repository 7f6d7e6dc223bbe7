//! Anchor stores: where the JSON Lines sink publishes its signed checkpoints so that a log
//! rolled back on its own disk shows (see `zta-audit-jsonl`). The PostgreSQL and NATS crates
//! implement [`CheckpointAnchor`]; the JSON Lines crate publishes through it and checks a log
//! against what it returns, without depending on either.
//!
//! An entry belongs to one log: the `log_id` the sink was configured with *and* the id of the
//! key that signed its checkpoints. Several logs share one store; a store returns only the
//! entries of the log asked for, and the verifier checks every entry's signature, so an entry
//! of another log (or a forged one) is never taken for this log's.

use std::fmt;

use async_trait::async_trait;

/// One signed checkpoint as an anchor store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnchorEntry {
    /// The log's name in the store ([`check_log_id`]).
    pub log_id: String,
    /// The id of the key that signed the checkpoint (16 hex digits, see [`key_id`](crate::key_id)).
    pub key_id: String,
    /// The checkpoint's seq: the last record it vouches for.
    pub seq: u64,
    /// That record's hash, 64 lowercase hex digits.
    pub hash: String,
    /// The checkpoint exactly as the log wrote it (one line of JSON, signature included): what
    /// the verifier checks. The other fields are copies for the store's queries.
    pub checkpoint: String,
}

impl AnchorEntry {
    /// The checkpoint `checkpoint` (its JSON text) of the log `log_id`, signed by `key_id`,
    /// vouching for `seq` with `hash`.
    pub fn new(log_id: String, key_id: String, seq: u64, hash: String, checkpoint: String) -> Self {
        Self { log_id, key_id, seq, hash, checkpoint }
    }
}

/// Why an anchor store could not publish or read (the store could not be reached, refused a
/// statement, or holds something unreadable). No credentials in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorError(String);

impl AnchorError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for AnchorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnchorError {}

/// A store that keeps published checkpoints apart from the log they vouch for.
///
/// The JSON Lines sink calls it from a thread and a runtime of its own, never on the request
/// path, so implementations connect lazily inside the calls (and again after a failure: a kept
/// connection that fails is replaced once within the call) and keep no task on any other
/// runtime. A connection belongs to the runtime that made it: give a sink a store of its own,
/// and read with another.
#[async_trait]
pub trait CheckpointAnchor: Send + Sync + fmt::Debug + 'static {
    /// How messages name the store, e.g. ``PostgreSQL table `zta_audit_anchor` at `postgres://db/zta` ``
    /// (never with a password).
    fn describe(&self) -> String;

    /// Stores `entry` durably (committed, or acknowledged by the server) before it returns
    /// `Ok`. Publishing the same entry twice is harmless.
    async fn publish(&self, entry: &AnchorEntry) -> Result<(), AnchorError>;

    /// Every entry of the log `log_id` signed by `key_id`, in the order the store took them.
    async fn entries(&self, log_id: &str, key_id: &str) -> Result<Vec<AnchorEntry>, AnchorError>;
}

/// Checks a log id: letters, digits, `-` and `_`, 1 to 64 bytes (it is part of a NATS
/// subject). The error says what is allowed.
pub fn check_log_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        Ok(())
    } else {
        Err(format!("log_id `{}`: letters, digits, `-` and `_` only, at most 64 bytes", id.escape_debug()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids() {
        for good in ["gateway-1", "a", "host_A-2"] {
            assert!(check_log_id(good).is_ok(), "{good}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(check_log_id(bad).unwrap_err().contains("log_id"), "{bad}");
        }
    }
}
