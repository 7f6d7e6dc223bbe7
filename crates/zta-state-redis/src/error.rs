//! Errors of building a [`RedisStateStore`](crate::RedisStateStore). Failures of its operations
//! are [`zta_core::StateError`], never this type.

/// A Redis state store could not be built or could not reach its server.
///
/// No message contains the password of the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("`{field}`: {reason}")]
    Config {
        /// The offending setting (`url`, `url_env`, `key_prefix`, `timeout`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not answer, or refused the connection or the credentials.
    #[error("cannot reach redis at `{target}`: {reason}")]
    Connect {
        /// The URL without its user information.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Config { field, reason: reason.into() }
    }
}
