//! Errors building a provider. Authentication failures are [`zta_core::AuthError`]s.

/// A provider could not be built: a setting is wrong; `field` names it.
#[derive(Debug, thiserror::Error)]
#[error("`{field}`: {message}")]
#[non_exhaustive]
pub struct Error {
    /// The setting.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Error {
    pub(crate) fn config(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}
