//! Who made an administrative change: a suspension, a reinstatement or a revocation.

use std::fmt;

use crate::AgentId;

/// Who made an administrative change, as its audit record names it (`detail.by`, written as
/// [`Display`](fmt::Display) shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Actor {
    /// An authenticated agent over an API: an operator, or an agent ending its own sessions.
    /// Shown as `agent:<id>`.
    Agent(AgentId),
    /// A monitoring detector's automatic response, by the detector's name. Shown as
    /// `monitor:<name>`.
    Monitor(String),
    /// Whoever runs this process with its configuration: the CLI, an embedding application.
    /// Shown as `local`.
    Local,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(agent) => write!(f, "agent:{agent}"),
            Self::Monitor(name) => write!(f, "monitor:{name}"),
            Self::Local => f.write_str("local"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_shown_with_their_kind() {
        let ops = AgentId::new("ops_bot").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Actor::Agent(ops).to_string(), "agent:ops_bot");
        assert_eq!(Actor::Monitor("scanning".into()).to_string(), "monitor:scanning");
        assert_eq!(Actor::Local.to_string(), "local");
    }
}
