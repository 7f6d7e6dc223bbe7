//! Why the sink could not be opened, migrated or verified.

/// Why a sink could not be opened, the schema migrated, or a table verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is not usable.
    #[error("invalid PostgreSQL audit config: {0}")]
    Config(String),
    /// The database could not be reached or refused a statement.
    #[error("PostgreSQL `{url}`: {reason}")]
    Database {
        /// The server (without the password).
        url: String,
        /// Why.
        reason: String,
    },
    /// The embedded migrations could not be applied.
    #[error("PostgreSQL `{url}`: migrating the audit schema failed: {reason}")]
    Migrate {
        /// The server (without the password).
        url: String,
        /// Why.
        reason: String,
    },
    /// A row breaks its writer's chain.
    #[error("table `{table}`, writer `{writer}`, seq {seq}: {reason}")]
    Broken {
        /// The table.
        table: String,
        /// The writer whose chain breaks.
        writer: String,
        /// The row's (or the missing row's) sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}
