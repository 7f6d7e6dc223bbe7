//! Errors of the token service: configuration, key material and startup self-test.
//!
//! Request-path failures (a bad or revoked token) are [`zta_core::AuthError`]s, not these.

use std::path::PathBuf;

use crate::Algorithm;

/// Why the token service or a signing key could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid token config: {0}")]
    Config(String),
    /// Key material was refused (malformed, wrong algorithm, too weak).
    #[error("invalid {alg} key: {reason}")]
    Key {
        /// The algorithm the key was meant for.
        alg: Algorithm,
        /// Why it was refused.
        reason: String,
    },
    /// A key id was refused (empty, too long, odd characters, already in use).
    #[error("invalid key id `{kid}`: {reason}")]
    KeyId {
        /// The key id.
        kid: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A key file could not be read.
    #[error("cannot read key file `{path}`: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The key's algorithm differs from the configured one.
    #[error("key algorithm `{key}` does not match the configured algorithm `{configured}`")]
    AlgorithmMismatch {
        /// The key's algorithm.
        key: Algorithm,
        /// The configured algorithm.
        configured: Algorithm,
    },
    /// The crypto library failed (key generation, signing, randomness, encoding).
    #[error("crypto failure: {what}")]
    Crypto {
        /// What was being done.
        what: String,
        /// The library's error, where it has one worth keeping.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The JWT crypto provider failed its start-up self-test.
    #[error(transparent)]
    Provider(#[from] zta_crypto::jose::SelfTestError),
    /// Signing and verifying a throwaway token with a key did not work as it must.
    #[error("crypto self-test failed for key `{kid}`: {reason}")]
    SelfTest {
        /// The key that failed.
        kid: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// The crypto library failed while doing `what`, with its own error if it has one.
    pub(crate) fn crypto(
        what: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Crypto { what: what.into(), source }
    }
}
