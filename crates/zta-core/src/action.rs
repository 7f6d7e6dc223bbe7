//! What an agent asks to do, and to what.

use serde::{Deserialize, Serialize};

/// The kind of interaction an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Calling a tool (`name` is the tool).
    ToolCall,
    /// Sending a message to another agent.
    Message,
    /// Running or assigning a task (`name` is the task type).
    Task,
    /// Handing the conversation or job over to another agent.
    Handoff,
    /// Letting another agent act on this agent's behalf.
    Delegation,
    /// Anything else (`name` is the action type).
    Custom,
}

impl ActionKind {
    /// The snake_case name of the kind, as policies see it in `action.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToolCall => "tool_call",
            Self::Message => "message",
            Self::Task => "task",
            Self::Handoff => "handoff",
            Self::Delegation => "delegation",
            Self::Custom => "custom",
        }
    }

    /// The kinds with a fixed verb: every kind but [`Custom`](Self::Custom).
    pub const BUILT_IN: [Self; 5] =
        [Self::ToolCall, Self::Message, Self::Task, Self::Handoff, Self::Delegation];

    /// The `action_type` verb of a built-in kind (`call_tool` for tool calls); `None` for
    /// custom actions, whose verb is their name.
    pub const fn verb(self) -> Option<&'static str> {
        match self {
            Self::ToolCall => Some("call_tool"),
            Self::Message => Some("send_message"),
            Self::Task => Some("execute_task"),
            Self::Handoff => Some("handoff"),
            Self::Delegation => Some("delegate"),
            Self::Custom => None,
        }
    }

    /// The built-in kind whose verb is exactly `verb`; `None` for any other verb (a custom
    /// action's).
    pub fn from_verb(verb: &str) -> Option<Self> {
        Self::BUILT_IN.into_iter().find(|k| k.verb() == Some(verb))
    }
}

/// A custom action named like a built-in action type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("custom action `{0}` takes the name of a built-in action type; use the built-in kind")]
pub struct ReservedVerb(pub String);

/// An action: its kind plus a name (the tool, the task type, or a custom verb).
///
/// Policies see three attributes: `action.kind`, `action.name`, and `action_type`, the verb the
/// original project's policies match on: `call_tool`, `send_message`, `execute_task`,
/// `handoff`, `delegate`, or the name itself for custom actions. Tool calls also set
/// `tool_name`. A custom action cannot be named like a built-in verb (in any letter case): it
/// is refused when built and when read from JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ActionFields")]
pub struct Action {
    kind: ActionKind,
    name: String,
}

/// The serialized shape of an [`Action`], checked on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFields {
    kind: ActionKind,
    name: String,
}

impl TryFrom<ActionFields> for Action {
    type Error = ReservedVerb;
    fn try_from(fields: ActionFields) -> Result<Self, ReservedVerb> {
        Self::new(fields.kind, fields.name)
    }
}

impl Action {
    /// An action of `kind` named `name`. Refuses a custom action named like a built-in verb.
    pub fn new(kind: ActionKind, name: impl Into<String>) -> Result<Self, ReservedVerb> {
        let name = name.into();
        // A custom action may not take a built-in verb, or it would match the rules and
        // segment flows written for the real thing.
        let built_in = |v: &str| name.trim().eq_ignore_ascii_case(v);
        if kind == ActionKind::Custom
            && ActionKind::BUILT_IN.into_iter().filter_map(ActionKind::verb).any(built_in)
        {
            return Err(ReservedVerb(name));
        }
        Ok(Self { kind, name })
    }
    /// Calling the tool `tool`.
    pub fn tool_call(tool: impl Into<String>) -> Self {
        Self { kind: ActionKind::ToolCall, name: tool.into() }
    }
    /// Sending a message of type `message_type` (e.g. `chat`, `result`).
    pub fn message(message_type: impl Into<String>) -> Self {
        Self { kind: ActionKind::Message, name: message_type.into() }
    }
    /// Running a task of type `task`.
    pub fn task(task: impl Into<String>) -> Self {
        Self { kind: ActionKind::Task, name: task.into() }
    }
    /// Handing work over, described by `what`.
    pub fn handoff(what: impl Into<String>) -> Self {
        Self { kind: ActionKind::Handoff, name: what.into() }
    }
    /// Delegating `scope` to another agent.
    pub fn delegation(scope: impl Into<String>) -> Self {
        Self { kind: ActionKind::Delegation, name: scope.into() }
    }
    /// A custom action whose `action_type` is `verb`. Refuses a built-in verb.
    pub fn custom(verb: impl Into<String>) -> Result<Self, ReservedVerb> {
        Self::new(ActionKind::Custom, verb)
    }

    /// The kind of interaction.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The tool, task type, message type or custom verb.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `action_type` attribute policies match on: the kind's verb, or the name of a custom
    /// action.
    pub fn action_type(&self) -> &str {
        self.kind.verb().unwrap_or(&self.name)
    }

    /// The tool name, for tool calls.
    pub fn tool_name(&self) -> Option<&str> {
        (self.kind == ActionKind::ToolCall).then_some(self.name.as_str())
    }

    /// Whether the action reaches another agent (and so may cross a segment boundary).
    pub fn is_agent_to_agent(&self) -> bool {
        matches!(self.kind, ActionKind::Message | ActionKind::Handoff | ActionKind::Delegation)
    }
}

/// The thing acted on. Policies see `resource.type`, `resource.id` and `resource.<attribute>`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The resource type (e.g. `document`, `dataset`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Further attributes (nested maps allowed).
    #[serde(
        default,
        skip_serializing_if = "serde_json::Map::is_empty",
        deserialize_with = "crate::strict_json::map"
    )]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Resource {
    /// A resource of type `kind` with id `id`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self { kind: kind.into(), id: id.into(), attributes: serde_json::Map::new() }
    }

    /// Adds an attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_kinds_map_both_ways() {
        for kind in ActionKind::BUILT_IN {
            let verb = kind.verb().unwrap();
            assert_eq!(ActionKind::from_verb(verb), Some(kind), "{verb}");
            let name = if kind == ActionKind::ToolCall { "t" } else { "x" };
            assert_eq!(Action::new(kind, name).unwrap().action_type(), verb);
        }
        assert_eq!(ActionKind::Custom.verb(), None);
        for other in ["create_agent", "CALL_TOOL", "custom", "tool_call", ""] {
            assert_eq!(ActionKind::from_verb(other), None, "{other}");
        }
    }

    #[test]
    fn a_custom_action_cannot_pose_as_a_built_in_one() {
        for verb in ActionKind::BUILT_IN.into_iter().filter_map(ActionKind::verb).chain([
            "Handoff",
            " delegate",
            "CALL_TOOL",
        ]) {
            assert_eq!(Action::custom(verb), Err(ReservedVerb(verb.to_owned())), "{verb}");
            let json = serde_json::json!({"kind": "custom", "name": verb});
            let err = serde_json::from_value::<Action>(json).unwrap_err().to_string();
            assert!(err.contains("built-in action type"), "{err}");
        }
        assert_eq!(Action::custom("create_agent").unwrap().action_type(), "create_agent");
        let handoff: Action =
            serde_json::from_value(serde_json::json!({"kind": "handoff", "name": "x"})).unwrap();
        assert_eq!(handoff.action_type(), "handoff");
    }
}
