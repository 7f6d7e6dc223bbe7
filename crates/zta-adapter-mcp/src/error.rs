//! Errors building a gateway. What goes wrong while serving becomes an MCP error for the agent.

/// A gateway could not be built: a setting is wrong; `field` names it.
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
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
