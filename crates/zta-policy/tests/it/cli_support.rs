//! The library side of `zta policy check | eval | explain | test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use serde_json::json;
use zta_core::{ActionKind, AttrValue, Effect};
use zta_policy::{
    Format,
    cli::{check_files, request_from_attributes, run_tests},
};

#[test]
fn request_files_map_to_core_requests() {
    let r = request_from_attributes(&json!({
        "agent_id": "research_bot",
        "action_type": "call_tool",
        "tool_name": "web_search",
        "target_agent": "analyst",
        "target": {"segment": "analysis"},
        "resource": {"type": "dataset", "id": "d1", "owner": "ana"},
        "principal": {"roles": ["researcher"], "segment": "research", "tenant": "t1", "auth_method": "oidc",
                      "delegation": ["alice"]},
        "framework": "crewai",
        "message": {"type": "chat"}
    }))
    .unwrap();
    assert_eq!(r.action().kind(), ActionKind::ToolCall);
    assert_eq!(r.attribute("tool_name"), Some(AttrValue::Str("web_search")));
    assert_eq!(r.attribute("target.segment"), Some(AttrValue::Str("analysis")));
    assert_eq!(r.attribute("principal.segment"), Some(AttrValue::Str("research")));
    assert_eq!(r.attribute("principal.tenant"), Some(AttrValue::Str("t1")));
    assert_eq!(r.attribute("principal.auth_method"), Some(AttrValue::Str("oidc")));
    assert_eq!(r.attribute("resource.owner"), Some(AttrValue::Json(&json!("ana"))));
    assert_eq!(r.attribute("framework"), Some(AttrValue::Json(&json!("crewai"))));

    let kind = |v| request_from_attributes(&v).unwrap().action().clone();
    let m = kind(json!({"agent_id": "a", "action_type": "send_message", "message": {"type": "system"}}));
    assert_eq!((m.kind(), m.name()), (ActionKind::Message, "system"));
    assert_eq!(kind(json!({"agent_id": "a", "action_type": "send_message"})).name(), "message");
    assert_eq!(kind(json!({"agent_id": "a", "action_type": "execute_task"})).kind(), ActionKind::Task);
    assert_eq!(kind(json!({"agent_id": "a", "action_type": "handoff"})).kind(), ActionKind::Handoff);
    assert_eq!(kind(json!({"agent_id": "a", "action_type": "delegate"})).kind(), ActionKind::Delegation);
    let c = kind(json!({"agent_id": "a", "action_type": "create_agent"}));
    assert_eq!((c.kind(), c.action_type()), (ActionKind::Custom, "create_agent"));
}

#[test]
fn bad_request_files_are_refused() {
    for bad in [
        json!({"action_type": "execute_task"}),
        json!({"agent_id": "a"}),
        json!({"agent_id": "not ok", "action_type": "x"}),
        json!({"agent_id": "a", "action_type": "call_tool"}),
        json!({"agent_id": "a", "source_agent": "b", "action_type": "x"}),
        json!({"agent_id": "a", "action_type": "x", "principal": {"rolez": []}}),
        json!({"agent_id": "a", "action_type": "x", "target": {"segment": "s"}}),
        json!({"agent_id": "a", "action_type": "x", "principal.roles": ["admin"]}),
        json!(["not a map"]),
    ] {
        assert!(request_from_attributes(&bad).is_err(), "{bad}");
    }
}

#[test]
fn check_files_reports_errors_and_warnings() {
    let r = check_files(&[fixture("original_config.yaml")]);
    assert!(r.ok());
    assert_eq!(r.warnings.len(), 3);
    let text = r.to_string();
    assert!(text.contains("warning: allow rule `allow_openai_tool_execution`"), "{text}");
    assert!(text.contains("ok: 14 rules in 1 file, 3 warnings"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "policies:\n  - {name: r, effect: permit}\n").unwrap();
    let r = check_files(&[bad.clone(), dir.path().join("missing.yaml")]);
    assert!(!r.ok());
    assert!(r.errors[0].file.ends_with("missing.yaml"), "io errors first: {:?}", r.errors);
    let r = check_files(&[bad]);
    assert!(r.to_string().contains("bad.yaml:2:"), "{r}");
    assert!(r.to_string().contains("failed: 1 error"), "{r}");
}

#[test]
fn test_runner_reports_passes_and_failures() {
    let p = load("policies:\n  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n");
    let cases = r#"
cases:
  - name: task allowed
    request: {agent_id: a, action_type: execute_task}
    expect: allow
    determining: [tasks]
  - name: wrong expectation
    request: {agent_id: a, action_type: execute_task}
    expect: deny
  - name: wrong determining
    request: {agent_id: a, action_type: execute_task}
    expect: allow
    determining: other
  - name: broken request
    request: {action_type: x}
    expect: deny
"#;
    let report = run_tests(&p, cases, Format::Yaml, "cases.yaml").unwrap();
    assert!(!report.passed());
    let passed: Vec<bool> = report.cases.iter().map(|c| c.passed).collect();
    assert_eq!(passed, [true, false, false, false]);
    assert_eq!(report.cases[1].actual, Some(Effect::Allow));
    let text = report.to_string();
    assert!(text.contains("PASS    task allowed"), "{text}");
    assert!(text.contains("FAIL    wrong determining"), "{text}");
    assert!(text.contains("(expected: other)"), "{text}");
    assert!(text.contains("1 passed, 3 failed"), "{text}");
    assert!(run_tests(&p, "cases: [{name: x, expect: maybe, request: {}}]", Format::Yaml, "c").is_err());
    assert!(run_tests(&p, "cases: []\nextra: 1", Format::Yaml, "c").is_err());
}
