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
//! another hash, has been cut or rewritten. What that is worth depends on the signature:
//!
//! * **Unsigned, or verified without the public key**: nothing protects the tail. Someone able
//!   to write the directory cuts records from the end and writes a matching unsigned checkpoint
//!   (no secret is needed). [`verify`] still checks the chain, but its report says the tail is
//!   unprotected ([`VerifyReport::tail_protected`] is false; `zta audit verify` exits 4).
//! * **Signed and verified with the key**: the checkpoint cannot be forged, so the log is
//!   protected up to the checkpoint's seq. Records after it (at most one flush interval's
//!   worth) can still be cut: that looks like a crash. And someone able to write the directory
//!   can put back an *older* signed checkpoint and cut the log to match: a rollback.
//! * **With an [anchor](#anchor)**: a rollback shows.
//!
//! # Anchor
//!
//! With [`JsonlConfig::anchor`] each committed checkpoint is also published outside the log
//! directory: appended as one JSON line to a file (meant for another volume, or an append-only
//! file), or given on stdin to a command (which ships it anywhere). A thread of its own
//! publishes the newest checkpoint at most once per [`AnchorConfig::interval`] (default 1 s)
//! and once more at close, so the anchor trails the log by at most about that interval; it
//! never gets ahead, because a checkpoint is published only once it is durable beside the log.
//! [`JsonlSink::open`] publishes the current checkpoint before it returns (a misconfigured
//! anchor fails the open), and with a file anchor refuses a log whose checkpoint is older than
//! the newest anchored one.
//!
//! [`verify_with`] and an anchor file (`zta audit verify --anchor`) hold the log against every
//! anchored checkpoint: each must match the log's record at its seq, anchored seqs must never go
//! back (a rolled-back log that was written on), the log must reach the newest anchored seq,
//! and the local checkpoint must not be older than it; anything else is
//! [`VerifyError::RolledBack`]. What an anchor cannot show: a cut of the records committed after
//! the newest anchored checkpoint (about one interval's worth, unless the sink closed cleanly),
//! and anything done by someone who can also rewrite the anchor.
//!
//! The anchor can also be a store that several logs share, a PostgreSQL table or a NATS
//! JetStream stream ([`AnchorConfig::store`], any [`CheckpointAnchor`]; the `zta` facade's
//! `anchor: {postgres: ...}` or `{nats: ...}`): each entry is the checkpoint's JSON with the
//! log's [`AnchorConfig::log_id`] and the key id, so a store anchor needs a checkpoint key.
//! [`verify_anchored`] reads the entries of this log and key and checks each one's signature
//! (a forged entry is [`VerifyError::Anchor`]) as well as everything above. A store is called
//! on the anchor thread's own runtime; it is not contacted by `open`, and one that cannot be
//! reached never fails the sink: the failure is logged and retried, and the anchor lags
//! ([`AnchorReport::lag`]).
//!
//! A publication to a file or a command that fails is logged at error level and retried with
//! the newest checkpoint at the next interval. Once publishing has failed for
//! [`AnchorConfig::fail_after`] (default 10 s), the sink fails closed: it commits what it had accepted and refuses every later record,
//! so the guard denies every request. Failing closed at once would turn any hiccup of a remote
//! anchor into an outage; never failing would let someone who can break the anchor roll back
//! unseen. A failed publication at close makes [`JsonlSink::close`] return the error.
//!
//! # Writing and durability
//!
//! [`JsonlSink::append`](zta_core::AuditSink::append) serializes the record on the caller's task
//! straight into a bounded queue buffer ([`JsonlConfig::queue_capacity`] records); when the
//! queue is full it waits ([`OnFull::Wait`], at most [`JsonlConfig::full_wait`], default 1 s)
//! or refuses at once ([`OnFull::Deny`]) with `AuditError::QueueFull`, and the guard denies. The
//! wait is timed by a small thread of the sink's own, so it ends on time even while the writer
//! is stuck in a slow fsync, and on any runtime. A dedicated writer thread swaps the queue's buffer out once per batch,
//! chains and frames the records, and writes [`JsonlConfig::max_batch`] of them per call. While
//! records wait for their group commit it does not listen for new ones, so appenders rarely
//! wake it. It group-commits — `fdatasync`,
//! then the checkpoint, then wakes every waiter — as soon as a batch holds a
//! `Durability::Flushed` record or a `flush()`, and otherwise at most
//! [`JsonlConfig::flush_interval`] after the oldest uncommitted record was written. So
//! `Durability::Queued` returns once queued and the record is durable within about the flush
//! interval; `Durability::Flushed` returns once it is fsynced and in the checkpoint.
//!
//! So with `Durability::Queued` (the guard's default, `durable_before_permit: false`) a permit
//! can be returned for a record that is not yet on disk. If the process, the machine or the
//! disk dies, the records accepted within about the last flush interval are lost, and their
//! requests may have been permitted. `Durability::Flushed` (`durable_before_permit: true`)
//! returns a permit only for a durable record, at the cost of waiting for a group commit.
//!
//! # Write failures
//!
//! Records are never dropped silently. At the first I/O error (disk full, a failed fsync, a
//! checkpoint that cannot be written) the writer stops for good: every waiter and every later
//! call gets `AuditError::Write`, so every later request is denied. The records accepted but
//! not yet durable (written and fsynced) are lost; the sink reports them loudly, with their
//! count, the seq of the last durable record and every lost record's id (which is the request
//! id): in an error-level log line, and in `lost-<time>.txt` in the log directory (a comment
//! header, then one id per line). [`verify`] reads those files and fails with
//! [`VerifyError::Lost`] ("N records were lost after seq S") for the listed records that the log
//! does not hold; move a file out of the directory once its loss is dealt with. If the
//! directory cannot take the file either (a full disk), the log line is the only report. A loss
//! file is a report, not evidence: someone able to write the directory can delete it.
//!
//! Dropping or [closing](JsonlSink::close) the sink writes and commits everything queued first.
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
//! writer is refused with [`Error::Locked`]), `audit-NNNNNN.jsonl.torn-<n>` (tails cut by
//! recovery) and `lost-<time>.txt` (records a failed writer lost). On Unix, new files are
//! created `0640` and a new directory `0750`. [`generate_checkpoint_key`] makes a signing key.
//!
//! The `test-hooks` feature only exists for this crate's own tests (it lets them park the
//! writer deterministically); do not enable it.

mod anchor;
mod checkpoint;
mod config;
mod error;
mod format;
mod lost;
mod queue;
mod read;
mod recovery;
mod sink;
mod timer;
mod verify;
mod writer;

pub use checkpoint::generate_checkpoint_key;
pub use config::{AnchorConfig, JsonlConfig, OnFull};
pub use error::Error;
pub use read::{JsonlReader, read_records};
pub use recovery::Recovery;
pub use sink::JsonlSink;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use sink::WriterPause;
pub use verify::{
    AnchorReport, CheckpointProblem, Loss, RecordProblem, RollbackProblem, SignatureStatus, VerifyError,
    VerifyOptions, VerifyReport, verify, verify_anchored, verify_with,
};
pub use zta_audit_chain::{AnchorEntry, AnchorError, CheckpointAnchor};
