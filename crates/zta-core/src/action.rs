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
}

/// An action: its kind plus a name (the tool, the task type, or a custom verb).
///
/// Policies see three attributes: `action.kind`, `action.name`, and `action_type`, the verb the
/// original project's policies match on: `call_tool`, `send_message`, `execute_task`,
/// `handoff`, `delegate`, or the name itself for custom actions. Tool calls also set
/// `tool_name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action {
    /// The kind of interaction.
    pub kind: ActionKind,
    /// The tool, task type, message type or custom verb.
    pub name: String,
}

impl Action {
    /// An action of `kind` named `name`.
    pub fn new(kind: ActionKind, name: impl Into<String>) -> Self {
        Self { kind, name: name.into() }
    }
    /// Calling the tool `tool`.
    pub fn tool_call(tool: impl Into<String>) -> Self {
        Self::new(ActionKind::ToolCall, tool)
    }
    /// Sending a message of type `message_type` (e.g. `chat`, `result`).
    pub fn message(message_type: impl Into<String>) -> Self {
        Self::new(ActionKind::Message, message_type)
    }
    /// Running a task of type `task`.
    pub fn task(task: impl Into<String>) -> Self {
        Self::new(ActionKind::Task, task)
    }
    /// Handing work over, described by `what`.
    pub fn handoff(what: impl Into<String>) -> Self {
        Self::new(ActionKind::Handoff, what)
    }
    /// Delegating `scope` to another agent.
    pub fn delegation(scope: impl Into<String>) -> Self {
        Self::new(ActionKind::Delegation, scope)
    }
    /// A custom action whose `action_type` is `verb`.
    pub fn custom(verb: impl Into<String>) -> Self {
        Self::new(ActionKind::Custom, verb)
    }

    /// The `action_type` attribute policies match on.
    pub fn action_type(&self) -> &str {
        match self.kind {
            ActionKind::ToolCall => "call_tool",
            ActionKind::Message => "send_message",
            ActionKind::Task => "execute_task",
            ActionKind::Handoff => "handoff",
            ActionKind::Delegation => "delegate",
            ActionKind::Custom => &self.name,
        }
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
