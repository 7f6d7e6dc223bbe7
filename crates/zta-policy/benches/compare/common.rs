//! Equivalent policy sets and requests for the three engines (included by both comparison
//! benches with `#[path]`).
#![allow(dead_code, clippy::unwrap_used)]

use time::OffsetDateTime;
use zta_core::{Action, AgentId, AuthMethod, AuthzRequest, Principal, Request};

/// `(rules, agents)`: one deny plus one allow per agent.
pub(crate) const SIZES: [(usize, usize); 2] = [(21, 20), (2001, 2000)];

/// The agent whose request is timed: two thirds into the set.
pub(crate) fn subject(agents: usize) -> usize {
    agents * 2 / 3
}

pub(crate) fn native_yaml(agents: usize) -> String {
    let mut s = String::from(
        "policies:\n  - name: deny_system_messages\n    effect: deny\n    priority: 100\n    conditions: {action_type: send_message, message.type: system}\n",
    );
    for i in 0..agents {
        s.push_str(&format!(
            "  - name: agent_{i}_tools\n    effect: allow\n    priority: 10\n    conditions: {{agent_id: agent_{i}, action_type: call_tool, tool_name: {{in: [tool_{i}_a, tool_{i}_b]}}}}\n"
        ));
    }
    s
}

/// The same set as [`native_yaml`], in the JSON form of the policy model.
pub(crate) fn native_json(agents: usize) -> String {
    let mut s = String::from(
        r#"{"policies":[{"name":"deny_system_messages","effect":"deny","priority":100,"conditions":{"action_type":"send_message","message.type":"system"}}"#,
    );
    for i in 0..agents {
        s.push_str(&format!(
            r#",{{"name":"agent_{i}_tools","effect":"allow","priority":10,"conditions":{{"agent_id":"agent_{i}","action_type":"call_tool","tool_name":{{"in":["tool_{i}_a","tool_{i}_b"]}}}}}}"#
        ));
    }
    s.push_str("]}");
    s
}

pub(crate) fn cedar_text(agents: usize) -> String {
    let mut s = String::from(
        "forbid(principal, action == Action::\"send_message\", resource) when { context has message_type && context.message_type == \"system\" };\n",
    );
    for i in 0..agents {
        s.push_str(&format!(
            "permit(principal == Agent::\"agent_{i}\", action == Action::\"call_tool\", resource) when {{ [\"tool_{i}_a\", \"tool_{i}_b\"].contains(context.tool) }};\n"
        ));
    }
    s
}

pub(crate) fn governance_yaml(agents: usize) -> String {
    let mut s = String::from(
        "version: \"1\"\nagent: crew\npolicies:\n  - name: deny_system_messages\n    type: capability\n    denied_actions: [\"send_message.system\"]\n",
    );
    for i in 0..agents {
        s.push_str(&format!(
            "  - name: agent_{i}_tools\n    type: capability\n    conditions: {{agent_id: agent_{i}}}\n    allowed_actions: [\"call_tool.tool_{i}_a\", \"call_tool.tool_{i}_b\"]\n"
        ));
    }
    s
}

pub(crate) fn native_request(agent: usize) -> AuthzRequest {
    let now = OffsetDateTime::now_utc();
    let p = Principal::new(
        AgentId::new(format!("agent_{agent}")).unwrap(),
        "bench",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    );
    AuthzRequest::new(p, Request::new(Action::tool_call(format!("tool_{agent}_b"))), None).unwrap()
}
