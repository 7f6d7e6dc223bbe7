//! Verifying a stream: every writer's chain, message by message, in stream order.

use std::collections::BTreeMap;

use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use serde::Deserialize;
use zta_core::AuditRecord;

use crate::chain_hash;

/// One message's chain fields (its record is taken from the payload as stored).
#[derive(Deserialize)]
pub(crate) struct Entry {
    writer: String,
    pub(crate) seq: u64,
    prev_hash: String,
    hash: String,
}

impl Entry {
    pub(crate) fn hash_bytes(&self) -> Result<[u8; 32], String> {
        hash32(&self.hash)
    }

    /// The record's bytes in `payload`, which must be exactly in the publisher's layout.
    fn record<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], String> {
        let prefix = format!(
            "{{\"writer\":\"{}\",\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"record\":",
            self.writer, self.seq, self.prev_hash, self.hash
        );
        payload
            .strip_prefix(prefix.as_bytes())
            .and_then(|rest| rest.strip_suffix(b"}"))
            .ok_or_else(|| "the payload is not in the audit entry layout".to_owned())
    }
}

fn hash32(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| format!("`{text}` is not a 64-digit hex hash"))?;
    Ok(out)
}

/// What [`verify`] found: each writer's record count and last sequence number, and the
/// records in stream order.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Writer id -> records.
    pub writers: BTreeMap<String, u64>,
    /// Every record, in stream order.
    pub records: Vec<AuditRecord>,
}

/// Why a stream does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The stream could not be read.
    #[error("cannot read stream `{stream}`: {reason}")]
    Read {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
    /// A message breaks its writer's chain.
    #[error("stream `{stream}` message {sequence}: {reason}")]
    Broken {
        /// The stream.
        stream: String,
        /// The message's stream sequence number.
        sequence: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Reads every message of `stream` on the server at `url` and checks each writer's chain:
/// sequence numbers without gaps from 1, each `prev_hash` the previous `hash`, each `hash`
/// over the record as stored. A deleted, edited, reordered or inserted message fails.
pub async fn verify(url: &str, stream: &str) -> Result<VerifyReport, VerifyError> {
    let read = |reason: String| VerifyError::Read { stream: stream.to_owned(), reason };
    let client = async_nats::connect(url).await.map_err(|e| read(e.to_string()))?;
    let context = jetstream::new(client);
    let mut handle = context.get_stream(stream).await.map_err(|e| read(e.to_string()))?;
    let state = handle.info().await.map_err(|e| read(e.to_string()))?.state.clone();
    let mut heads: BTreeMap<String, (u64, [u8; 32])> = BTreeMap::new();
    let mut report = VerifyReport::default();
    if state.messages == 0 {
        return Ok(report);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let message = match handle.get_raw_message(sequence).await {
            Ok(message) => message,
            // A gap in the stream's numbering: the writer's chain shows whether it mattered.
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(read(format!("message {sequence}: {e}"))),
        };
        let broken = |reason: String| VerifyError::Broken { stream: stream.to_owned(), sequence, reason };
        let entry: Entry = serde_json::from_slice(&message.payload)
            .map_err(|e| broken(format!("not an audit entry: {e}")))?;
        let (last, prev) = heads.get(&entry.writer).copied().unwrap_or((0, [0; 32]));
        if entry.seq != last + 1 {
            return Err(broken(format!("writer `{}`: seq {} follows {last}", entry.writer, entry.seq)));
        }
        if hash32(&entry.prev_hash).map_err(&broken)? != prev {
            return Err(broken(format!(
                "writer `{}` seq {}: prev_hash is not the hash before it",
                entry.writer, entry.seq
            )));
        }
        let bytes = entry.record(&message.payload).map_err(&broken)?;
        let hash = chain_hash(&entry.writer, entry.seq, &prev, bytes);
        if hash32(&entry.hash).map_err(&broken)? != hash {
            return Err(broken(format!(
                "writer `{}` seq {}: the record does not match its hash",
                entry.writer, entry.seq
            )));
        }
        if !message.subject.ends_with(&format!(".{}", entry.writer)) {
            return Err(broken(format!("writer `{}` published on `{}`", entry.writer, message.subject)));
        }
        let record: AuditRecord =
            serde_json::from_slice(bytes).map_err(|e| broken(format!("not an audit record: {e}")))?;
        heads.insert(entry.writer.clone(), (entry.seq, hash));
        *report.writers.entry(entry.writer).or_default() += 1;
        report.records.push(record);
    }
    Ok(report)
}
