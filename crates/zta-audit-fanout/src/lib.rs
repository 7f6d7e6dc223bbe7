//! Audit fan-out: one [`AuditSink`](zta_core::AuditSink) that hands every record to several
//! sinks (e.g. the local JSON Lines log and a central PostgreSQL table), each with its own
//! failure mode.
//!
//! * [`Mode::Required`] — the record goes straight to the sink; if the sink cannot take it the
//!   append fails and the guard denies the request.
//! * [`Mode::Spool`] — the record is written to a local disk spool and a background task
//!   forwards the spool to the sink in order, so a sink that is down or slow never fails a
//!   request and loses nothing: the records wait on disk and are replayed when it is back. The
//!   spool is bounded ([`SpoolConfig::max_bytes`]); when it is full the append fails (and the
//!   guard denies) with an error that says so.
//!
//! Delivery from a spool is at least once: a crash after the sink took a batch but before the
//! spool recorded it may send that batch again on restart. Every record carries a unique id,
//! by which the sinks can tell a repeat.

mod fanout;
mod spool;

pub use fanout::{FanOutSink, Mode, Target};
pub use spool::{SpoolConfig, SpoolError};
