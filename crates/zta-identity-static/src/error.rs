//! Errors of this crate: configuration, key handling and secret hashing. Authentication failures
//! are [`zta_core::AuthError`], never this type.

/// What went wrong building a [`StaticProvider`](crate::StaticProvider), loading an
/// [`AgentKey`](crate::AgentKey) or hashing a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An agent entry of the configuration is invalid.
    #[error("agent `{agent}`, field `{field}`: {reason}")]
    Agent {
        /// The agent id as written in the configuration.
        agent: String,
        /// The offending field (`public_key`, `secret_hash`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Two agent entries have the same id.
    #[error("agent `{0}` is declared more than once")]
    DuplicateAgent(String),
    /// A setting outside the agent entries is invalid.
    #[error("`{field}`: {reason}")]
    Config {
        /// The offending setting (`audience`, `lockout.window`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A private or public key could not be parsed or generated.
    #[error("agent key: {0}")]
    Key(String),
    /// A secret could not be hashed (or was empty).
    #[error("secret hashing: {0}")]
    Hash(String),
    /// An assertion could not be signed.
    #[error("signing the assertion failed: {0}")]
    Sign(String),
    /// The JWT crypto provider failed its start-up self-test.
    #[error(transparent)]
    Provider(#[from] zta_crypto::jose::SelfTestError),
    /// Signing and verifying a throwaway assertion did not work as it must.
    #[error("assertion self-test failed: {reason}")]
    SelfTest {
        /// What went wrong.
        reason: &'static str,
        /// The JWT library's error, where there is one.
        #[source]
        source: Option<jsonwebtoken::errors::Error>,
    },
}

impl Error {
    pub(crate) fn agent(agent: impl Into<String>, field: &'static str, reason: impl Into<String>) -> Self {
        Self::Agent { agent: agent.into(), field, reason: reason.into() }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Config { field, reason: reason.into() }
    }
}
