//! Why the sink could not be opened, migrated or verified.

/// Why a sink could not be opened, the schema migrated, or a file verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is not usable.
    #[error("invalid SQLite audit config: {0}")]
    Config(String),
    /// The file could not be opened or refused a statement.
    #[error("SQLite `{path}`: {reason}")]
    Database {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The embedded migrations could not be applied.
    #[error("SQLite `{path}`: migrating the audit schema failed: {reason}")]
    Migrate {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A row breaks its writer's chain.
    #[error("SQLite `{path}`, writer `{writer}`, seq {seq}: {reason}")]
    Broken {
        /// The file.
        path: String,
        /// The writer whose chain breaks.
        writer: String,
        /// The row's (or the missing row's) sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}
