//! Agent identifiers: the one name every check, rule and audit record agrees on.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// Longest accepted agent id, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 128;

/// A validated agent identifier.
///
/// 1 to 128 characters from `A-Z a-z 0-9 _ - . : @`, starting with a letter or digit. The
/// restriction keeps ids safe to put in logs, file names, LDAP filters and policy regexes
/// without escaping. Cloning is cheap (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct AgentId(Arc<str>);

impl Serialize for AgentId {
    // Written directly: `into = "String"` would copy the id for every audit record.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Why a string is not a valid [`AgentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidAgentId {
    /// The id is empty.
    #[error("agent id is empty")]
    Empty,
    /// The id is longer than [`MAX_AGENT_ID_LEN`].
    #[error("agent id is longer than {MAX_AGENT_ID_LEN} bytes")]
    TooLong,
    /// The id does not start with an ASCII letter or digit.
    #[error("agent id must start with a letter or digit")]
    BadStart,
    /// The id contains a character outside the allowed set.
    #[error("agent id contains `{0}`; allowed are letters, digits and `_ - . : @`")]
    BadChar(char),
}

impl AgentId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidAgentId> {
        let id = id.as_ref();
        validate(id)?;
        Ok(Self(Arc::from(id)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(id: &str) -> Result<(), InvalidAgentId> {
    let first = id.chars().next().ok_or(InvalidAgentId::Empty)?;
    if id.len() > MAX_AGENT_ID_LEN {
        return Err(InvalidAgentId::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Err(InvalidAgentId::BadStart);
    }
    match id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@'))) {
        Some(c) => Err(InvalidAgentId::BadChar(c)),
        None => Ok(()),
    }
}

impl TryFrom<String> for AgentId {
    type Error = InvalidAgentId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl std::str::FromStr for AgentId {
    type Err = InvalidAgentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl From<AgentId> for String {
    fn from(value: AgentId) -> Self {
        value.0.to_string()
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["research_bot", "a", "agent-7", "svc:writer@tenant.example", "0x1"] {
            assert!(AgentId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_bad_ids() {
        assert_eq!(AgentId::new(""), Err(InvalidAgentId::Empty));
        assert_eq!(AgentId::new("_x"), Err(InvalidAgentId::BadStart));
        assert_eq!(AgentId::new("a b"), Err(InvalidAgentId::BadChar(' ')));
        assert_eq!(AgentId::new("a*)(uid=*"), Err(InvalidAgentId::BadChar('*')));
        assert_eq!(AgentId::new("a\n"), Err(InvalidAgentId::BadChar('\n')));
        assert_eq!(AgentId::new("a".repeat(129)), Err(InvalidAgentId::TooLong));
        assert!(AgentId::new("a".repeat(128)).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<AgentId>("\"ok_id\"").is_ok());
        assert!(serde_json::from_str::<AgentId>("\"not ok\"").is_err());
    }
}
