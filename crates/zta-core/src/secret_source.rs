//! Secrets a configuration names instead of holding: an environment variable (`secret_env`)
//! or a file (`secret_file`), exactly one of the two.

use std::path::Path;

/// Why a named secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretSourceError {
    /// The variable `secret_env` names is not set.
    #[error("`{0}` is not set")]
    NotSet(String),
    /// The file `secret_file` names cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// Both or neither were given.
    #[error("give exactly one of `secret_env` and `secret_file`")]
    NotExactlyOne,
}

impl SecretSourceError {
    /// The setting it is about: `secret_env`, `secret_file`, or `None` for the pair.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::NotSet(_) => Some("secret_env"),
            Self::Unreadable(_) => Some("secret_file"),
            Self::NotExactlyOne => None,
        }
    }
}

/// The secret in the variable `env` or the file `file` (its trailing line break removed),
/// whichever of the two is given.
pub fn read(env: Option<&str>, file: Option<&Path>) -> Result<String, SecretSourceError> {
    match (env, file) {
        (Some(var), None) => std::env::var(var).map_err(|_| SecretSourceError::NotSet(var.to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| SecretSourceError::Unreadable(format!("{}: {e}", path.display()))),
        _ => Err(SecretSourceError::NotExactlyOne),
    }
}
