//! ZTA's embedded default audit sink: a tamper-evident, hash-chained JSON Lines log.
//!
//! The [`Guard`](zta_core::Guard) hands every [`AuditRecord`](zta_core::AuditRecord) to an
//! [`AuditSink`](zta_core::AuditSink); [`JsonlSink`] is the one that needs no service. It writes
//! `audit-000001.jsonl`, `audit-000002.jsonl`, ... in one directory, and [`verify`] (what
//! `zta audit verify` runs) detects any edit, deletion, insertion, reordering or truncation.
//!
//! # Line format
//!
//! One entry per line, always in exactly this layout (no spaces, this key order):
//!
//! ```text
//! {"seq":N,"prev_hash":"<64 hex>","hash":"<64 hex>","record":{...}}\n
//! ```
//!
//! `seq` starts at 1 and grows by one across files. `prev_hash` is the previous entry's `hash`
//! (64 zeros for seq 1), also across files. `record` is the [`AuditRecord`](zta_core::AuditRecord)
//! as compact JSON (serde_json). The whole line is also valid JSON.
//!
//! # Hash
//!
//! ```text
//! hash = SHA-256( "zta-audit-jsonl/v1\n" || seq as 8-byte big-endian || prev_hash as 32 raw bytes
//!                 || the record's JSON bytes exactly as they stand in the line )
//! ```
//!
//! The record is hashed as the bytes written, not re-serialized: re-serializing a parsed record
//! would make the hash depend on serializer details (number and string escaping, field order,
//! fields an older reader does not know and silently drops) and would let an unknown field be
//! added without changing the hash. Because the header layout is fixed too, the verifier accepts
//! only lines byte-identical to what the writer produces, so any change to any byte of a line is
//! detected. The verifier checks that the record is well-formed JSON but not its schema, so old
//! logs stay verifiable as [`AuditRecord`](zta_core::AuditRecord) grows.
//!
//! # Checkpoint
//!
//! `checkpoint.json` beside the log names the last committed entry (`seq`, `hash`, `file`) and
//! the `time` it was written. With [`JsonlConfig::checkpoint_key_file`] it also has `key_id`
//! (first 8 bytes of the SHA-256 of the raw Ed25519 public key, hex) and `signature` (base64
//! Ed25519) over:
//!
//! ```text
//! zta-audit-jsonl checkpoint v1\nseq=N\nhash=H\nfile=F\ntime=T\nkey_id=K\n
//! ```
//!
//! It is replaced atomically (temp file, fsync, rename, fsync of the directory) after every
//! group commit. A log that ends before the checkpoint's seq, or whose record at that seq has
//! another hash, has been cut or rewritten. Limits: the checkpoint anchors the log up to its seq
//! only, so a cut of the records after it (at most one flush interval's worth) looks like a
//! crash; and someone able to write the directory can put back an *older* signed checkpoint and
//! cut the log to match. Shipping checkpoints elsewhere (or comparing
//! [`VerifyReport::checkpoint_time`] with expectations) closes that gap.
//!
//! # Writing and durability
//!
//! [`JsonlSink::append`](zta_core::AuditSink::append) serializes the record on the caller's task
//! straight into a bounded queue buffer ([`JsonlConfig::queue_capacity`] records); when the
//! queue is full it waits ([`OnFull::Wait`]) or refuses with `AuditError::QueueFull`
//! ([`OnFull::Deny`]). A dedicated writer thread swaps the queue's buffer out once per batch,
//! chains and frames the records, and writes [`JsonlConfig::max_batch`] of them per call. While
//! records wait for their group commit it does not listen for new ones, so appenders rarely
//! wake it. It group-commits — `fdatasync`,
//! then the checkpoint, then wakes every waiter — as soon as a batch holds a
//! `Durability::Flushed` record or a `flush()`, and otherwise at most
//! [`JsonlConfig::flush_interval`] after the oldest uncommitted record was written. So
//! `Durability::Queued` returns once queued and the record is durable within about the flush
//! interval; `Durability::Flushed` returns once it is fsynced and in the checkpoint.
//!
//! Records are never dropped silently: if the writer hits an I/O error it stops for good, every
//! waiter and every later call gets `AuditError::Write`, and the error is logged. Dropping or
//! [closing](JsonlSink::close) the sink writes and commits everything queued first.
//!
//! # Recovery on open
//!
//! [`JsonlSink::open`] scans from the checkpoint's segment to the end. Entries after the
//! checkpoint that are not a sound continuation of the chain (a line torn by a crash, or the
//! garbage a crash can leave in unsynced data) are copied to `<file>.torn-<n>`, cut off, logged
//! and reported by [`JsonlSink::recovery`], and the chain resumes after the last good record.
//! A log that does not reach its checkpoint, a record at or before the checkpoint that does not
//! verify, or a missing checkpoint fails `open` with [`Error::Integrity`]: the sink fails closed
//! rather than extend a log someone cut. Segments before the checkpoint's are not re-read on
//! open; [`verify`] checks everything.
//!
//! # Rotation
//!
//! A segment is synced and closed before it would grow past [`JsonlConfig::max_file_bytes`];
//! the chain continues in the next one. Old segments can be archived as a whole, but then the
//! log no longer verifies from seq 1.
//!
//! # Files
//!
//! `audit-NNNNNN.jsonl` (the segments), `checkpoint.json` (and `checkpoint.json.tmp` while it
//! is replaced), `audit.lock` (held with an advisory lock while a sink writes, so a second
//! writer is refused with [`Error::Locked`]), and `audit-NNNNNN.jsonl.torn-<n>` (tails cut by
//! recovery). On Unix, new files are created `0640` and a new directory `0750`.
//!
//! The `test-hooks` feature only exists for this crate's own tests (it lets them park the
//! writer deterministically); do not enable it.

mod checkpoint;
mod config;
mod error;
mod format;
mod queue;
mod recovery;
mod sink;
mod verify;
mod writer;

pub use config::{JsonlConfig, OnFull};
pub use error::Error;
pub use recovery::Recovery;
pub use sink::JsonlSink;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use sink::WriterPause;
pub use verify::{CheckpointProblem, RecordProblem, SignatureStatus, VerifyError, VerifyReport, verify};
