//! Errors of opening a sink.

use std::{io, path::PathBuf};

use crate::VerifyError;

/// Why [`JsonlSink::open`](crate::JsonlSink::open) failed. Appends report
/// [`AuditError`](zta_core::AuditError) instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range.
    #[error("invalid audit config: {0}")]
    Config(String),
    /// A file operation failed.
    #[error("cannot {action} `{}`: {error}", path.display())]
    Io {
        /// What was being done (`create directory`, `lock`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// Another sink (in this or another process) is writing to the directory.
    #[error("audit log `{}` is locked by another writer", dir.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A line of a segment is not an audit entry.
    #[error("`{}` line {line}: not an audit entry: {reason}", path.display())]
    Unreadable {
        /// The segment file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
        /// Why.
        reason: String,
    },
    /// The checkpoint signing key could not be loaded.
    #[error("cannot load checkpoint key `{}`: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The checkpoint could not be published to the anchor when the sink opened.
    #[error("cannot publish the audit checkpoint to the anchor {anchor}: {reason}")]
    Anchor {
        /// The anchor (`file `...`` or `command `...``).
        anchor: String,
        /// Why.
        reason: String,
    },
    /// A new checkpoint key could not be made.
    #[error("cannot generate a checkpoint key: {0}")]
    KeyGeneration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The log on disk is not a consistent continuation of its checkpoint (a cut tail, an edited
    /// record, a missing checkpoint). The sink refuses to append to it; inspect it with
    /// [`verify`](crate::verify).
    #[error("refusing to open audit log `{}`: {error}", dir.display())]
    Integrity {
        /// The log directory.
        dir: PathBuf,
        /// What is wrong, as the verifier would say it.
        error: VerifyError,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |error| Self::Io { action, path, error }
    }
}
