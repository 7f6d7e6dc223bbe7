//! Errors building a provider or a client. Verification failures are [`zta_core::AuthError`]s.

/// A provider or client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is wrong; `field` names it.
    #[error("`{field}`: {message}")]
    Config {
        /// The setting.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The issuer answered, but with something that cannot be right (a discovery document for
    /// another issuer, a key set without a usable key): a misconfiguration, not an outage.
    #[error("the issuer's metadata is not usable: {0}")]
    Issuer(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// jsonwebtoken's crypto provider failed its self-test.
    #[error(transparent)]
    Provider(#[from] zta_crypto::jose::SelfTestError),
}

impl Error {
    pub(crate) fn config(field: &str, message: impl Into<String>) -> Self {
        Self::Config { field: field.to_owned(), message: message.into() }
    }
}
