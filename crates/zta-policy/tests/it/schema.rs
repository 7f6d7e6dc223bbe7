//! A policy's `schema` declares the types of request attributes per action type. A request
//! that does not conform (a required attribute missing, a map or a list where a string is
//! declared) is an invalid request, refused before any rule runs: reshaping an attribute no
//! longer dodges a deny rule. Declarations are checked at load with positions, merged across
//! files, part of the digest, and `check` warns about rules on undeclared attributes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use serde_json::json;
use zta_core::{
    Action, AgentId, AuditError, AuditRecord, AuditSink, AuthError, AuthMethod, AuthzRequest, Basis,
    Credential, DenyReason, Durability, Effect, Guard, IdentityProvider, PolicyEngine, PolicyError,
    Principal, Request, Resource,
};
use zta_policy::{Diagnostic, Format, INVALID_REQUEST, PolicySet, Severity, Source, cli::check_files};

/// The shape of the finding: a deny on `message.type`, and an allow for messages below it.
const POLICY: &str = r#"
schema:
  send_message:
    message.type: {type: string, required: true}
    message.priority: number
    message.tags: list<string>
  call_tool:
    arguments: object
    deadline: time
    resource.owner: string
  "*":
    trace: string
policies:
  - name: deny_system_messages
    effect: deny
    priority: 200
    conditions:
      action_type: send_message
      message.type: {regex: "^system$"}
  - name: messages
    effect: allow
    priority: 100
    conditions: {action_type: send_message}
  - name: tools
    effect: allow
    priority: 100
    conditions: {action_type: call_tool}
  - name: tasks
    effect: allow
    priority: 100
    conditions: {action_type: execute_task}
"#;

fn message(m: serde_json::Value) -> AuthzRequest {
    req("research_bot", Action::message("chat")).ctx("message", m).build()
}

/// The detail of the `InvalidRequest` that `evaluate` returns; panics on a decision.
fn invalid(p: &PolicySet, r: &AuthzRequest) -> String {
    match p.evaluate(r) {
        Err(PolicyError::InvalidRequest(detail)) => detail,
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

#[test]
fn conforming_requests_are_decided_by_the_rules() {
    let p = load(POLICY);
    assert!(p.has_schema());
    let chat = message(json!({"type": "chat", "priority": 2, "tags": ["a"]}));
    let d = p.evaluate(&chat).unwrap();
    assert_eq!((d.effect, d.determining[0].as_ref()), (Effect::Allow, "messages"));
    assert_eq!(p.decide(&chat), d);
    let system = message(json!({"type": "system"}));
    let d = p.evaluate(&system).unwrap();
    assert_eq!(
        (d.effect, d.basis, d.determining[0].as_ref()),
        (Effect::Deny, Basis::ExplicitDeny, "deny_system_messages")
    );
    // Undeclared attributes are allowed, and an action type without a declaration only gets
    // the `"*"` ones.
    let extra =
        req("a", Action::message("chat")).ctx("message", json!({"type": "chat", "extra": [1]})).ctx("x", 1);
    assert_eq!(p.evaluate(&extra.build()).unwrap().effect, Effect::Allow);
    assert_eq!(
        p.evaluate(&req("a", Action::task("t")).ctx("message", json!([])).build()).unwrap().effect,
        Effect::Allow
    );
    // Optional attributes may be absent; a declared resource attribute is read from the resource.
    let tool = req("a", Action::tool_call("web_search"))
        .ctx("arguments", json!({"q": "x"}))
        .ctx("deadline", "2030-01-01T00:00:00Z")
        .resource(Resource::new("doc", "1").with_attribute("owner", "ana"));
    assert_eq!(p.evaluate(&tool.build()).unwrap().effect, Effect::Allow);
    assert_eq!(p.evaluate(&req("a", Action::tool_call("web_search")).build()).unwrap().effect, Effect::Allow);
}

#[test]
fn a_missing_required_attribute_is_an_invalid_request_before_any_rule() {
    // An unconditional allow at the highest priority would allow anything that reached the rules.
    let p = load(&format!("{POLICY}  - {{name: allow_all, effect: allow, priority: 1000}}\n"));
    let r = req("research_bot", Action::message("chat")).build();
    let detail = invalid(&p, &r);
    assert!(detail.contains("`message.type` (string) is required for `send_message`"), "{detail}");
    let d = p.decide(&r);
    assert_eq!(
        (d.effect, d.basis, d.determining.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
        (Effect::Deny, Basis::ExplicitDeny, vec![INVALID_REQUEST.to_owned()])
    );
    // The same request with the attribute is allowed by that rule.
    assert_eq!(p.evaluate(&message(json!({"type": "chat"}))).unwrap().determining[0].as_ref(), "allow_all");
    // Required under `"*"` applies to every action.
    let p = load(
        "schema:\n  \"*\": {trace: {type: string, required: true}}\npolicies:\n  - {name: all, effect: allow}\n",
    );
    assert!(invalid(&p, &req("a", Action::task("t")).build()).contains("`trace`"));
    assert_eq!(
        p.evaluate(&req("a", Action::task("t")).ctx("trace", "t1").build()).unwrap().effect,
        Effect::Allow
    );
}

#[test]
fn a_reshaped_attribute_is_an_invalid_request_not_a_dodged_deny() {
    let p = load(POLICY);
    // A map where a string is declared: without the schema, the deny's regex sees no string.
    let detail = invalid(&p, &message(json!({"type": {"nested": "system"}})));
    assert_eq!(detail, "`message.type` must be a string, found a map");
    // A list where a string is declared: without the schema, `regex` would test each element.
    let detail = invalid(&p, &message(json!({"type": ["system"]})));
    assert_eq!(detail, "`message.type` must be a string, found a list");
    // The parent of a declared path is not a map.
    let detail = invalid(&p, &message(json!([{"type": "system"}])));
    assert_eq!(detail, "`message` must be a map to hold `message.priority` (number), found a list");
    assert!(invalid(&p, &message(json!("system"))).contains("found a string"));
    // Null is no type.
    assert!(invalid(&p, &message(json!({"type": null}))).ends_with("found null"));
    // Numbers, list elements, times, objects and resource attributes.
    assert!(
        invalid(&p, &message(json!({"type": "chat", "priority": "high"}))).contains("`message.priority`")
    );
    let detail = invalid(&p, &message(json!({"type": "chat", "tags": ["a", {"b": 1}]})));
    assert_eq!(detail, "`message.tags` must be a list of strings (list<string>), found a map at index 1");
    let tool = |k: &str, v: serde_json::Value| req("a", Action::tool_call("t")).ctx(k, v).build();
    assert!(invalid(&p, &tool("deadline", json!("tomorrow"))).contains("not an RFC 3339 time"));
    assert!(
        invalid(&p, &tool("arguments", json!("rm -rf /"))).contains("must be a map (object), found a string")
    );
    let owner = req("a", Action::tool_call("t"))
        .resource(Resource::new("doc", "1").with_attribute("owner", json!(["ana"])));
    assert_eq!(invalid(&p, &owner.build()), "`resource.owner` must be a string, found a list");
    // `"*"` declarations apply to declared and undeclared actions alike.
    assert!(invalid(&p, &req("a", Action::task("t")).ctx("trace", 7).build()).contains("`trace`"));
    // The flat spelling `message.type` is refused by the core before policy (a dotted key).
    let flat = Request::new(Action::message("chat")).with_context("message.type", json!(["system"]));
    assert!(AuthzRequest::new(principal("a"), flat, None).is_err());
}

#[test]
fn explain_shows_the_violation_and_reaches_no_rule() {
    let p = load(POLICY);
    let e = p.explain(&message(json!({"type": {"nested": "system"}})));
    assert_eq!(e.decision.determining[0].as_ref(), INVALID_REQUEST);
    assert_eq!(e.schema_violations, ["`message.type` must be a string, found a map"]);
    assert!(e.rules.iter().all(|r| !r.reached && !r.determining));
    let text = e.to_string();
    assert!(text.starts_with("DENY (invalid request: it does not conform to the policy schema)\n"), "{text}");
    assert!(text.contains("schema: `message.type` must be a string, found a map"), "{text}");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["schema_violations"][0], "`message.type` must be a string, found a map");
    // A conforming request shows no schema line.
    let e = p.explain(&message(json!({"type": "chat"})));
    assert!(e.schema_violations.is_empty() && !e.to_string().contains("schema:"));
}

fn errors(sources: &[(&str, &str)]) -> Vec<Diagnostic> {
    let sources: Vec<Source<'_>> =
        sources.iter().map(|(origin, text)| Source { origin, text, format: Format::Yaml }).collect();
    let e = PolicySet::from_sources(&sources).unwrap_err();
    let d = e.diagnostics().to_vec();
    for x in &d {
        assert_eq!(x.severity, Severity::Error);
        assert!(x.line > 0 && x.column > 0, "no position: {x}");
        assert!(x.hint.is_some(), "no hint: {x}");
    }
    d
}

fn one(yaml: &str) -> Diagnostic {
    let d = errors(&[("p.yaml", yaml)]);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

const RULE: &str = "policies:\n  - {name: r, effect: allow}\n";

#[test]
fn bad_declarations_are_load_errors_with_positions() {
    let at = |yaml: &str| {
        let d = one(&format!("{yaml}{RULE}"));
        (d.line, d.column, d.message, d.hint.unwrap(), d.rule)
    };
    for reserved in
        ["agent_id", "principal.roles", "action_type", "resource.type", "resource", "target.segment"]
    {
        let (line, col, msg, _, rule) = at(&format!("schema:\n  send_message:\n    {reserved}: string\n"));
        assert_eq!((line, col), (3, 5), "{reserved}");
        assert!(msg.contains(&format!("`{reserved}` is a reserved attribute")), "{msg}");
        assert_eq!(rule, None);
    }
    let (line, col, msg, hint, _) = at("schema:\n  send_message:\n    message.type: map\n");
    assert_eq!((line, col), (3, 19));
    assert!(msg.contains("unknown type `map`"), "{msg}");
    assert!(hint.contains("did you mean `object`"), "{hint}");
    let (.., msg, _, _) = at("schema:\n  send_message:\n    message.type: {type: list<map>}\n");
    assert!(msg.contains("unknown type `list<map>`"), "{msg}");
    let (line, col, msg, ..) = at("schema:\n  send_message:\n    message..type: string\n");
    assert_eq!((line, col), (3, 5));
    assert!(msg.contains("not an attribute path"), "{msg}");
    let (line, _, msg, ..) =
        at("schema:\n  send_message:\n    message.type: {type: string, required: yes please}\n");
    assert_eq!(line, 3);
    assert!(msg.contains("`required` of `message.type` must be true or false"), "{msg}");
    let (.., msg, hint, _) =
        at("schema:\n  send_message:\n    message.type: {type: string, optional: true}\n");
    assert!(msg.contains("unknown key `optional`") && hint.contains("type, required"), "{msg} {hint}");
    let (.., msg, _, _) = at("schema:\n  send_message:\n    message.type: {required: true}\n");
    assert!(msg.contains("has no `type`"), "{msg}");
    let (.., msg, _, _) = at("schema:\n  send_message: [message.type]\n");
    assert!(msg.contains("must be a map of attribute paths"), "{msg}");
    let (.., msg, _, _) = at("schema: [send_message]\n");
    assert!(msg.contains("`schema` must be a map"), "{msg}");
    // A path repeated in one action's map is a repeated key.
    let (line, ..) = at("schema:\n  send_message:\n    message.type: string\n    message.type: number\n");
    assert_eq!(line, 4);
    // A path inside one declared as something other than an object.
    let (line, col, msg, hint, _) =
        at("schema:\n  send_message:\n    message: string\n    message.type: string\n");
    assert_eq!((line, col), (4, 5));
    assert!(msg.contains("`message.type` is declared inside `message`"), "{msg}");
    assert!(hint.contains("p.yaml:3:5"), "{hint}");
    // ... but inside an object is fine.
    load(&format!("schema:\n  send_message:\n    message: object\n    message.type: string\n{RULE}"));
    // Errors after the rules are not blamed on the last rule.
    let d = one("policies:\n  - {name: r, effect: allow}\nschema:\n  x: {a: nope}\n");
    assert_eq!((d.line, d.rule), (4, None));
    // The original's whole config file may carry a schema too.
    let p = load(
        "policies:\n  schema: {send_message: {message.type: string}}\n  policies:\n    - {name: r, effect: allow}\n",
    );
    assert!(p.has_schema());
}

#[test]
fn schemas_of_several_files_merge_and_conflicts_are_load_errors() {
    let a = "schema:\n  send_message:\n    message.type: string\npolicies:\n  - {name: a, effect: allow}\n";
    let b_same = "schema:\n  send_message:\n    message.type: {type: string, required: true}\npolicies: []\n";
    let b_conflict = "schema:\n  send_message:\n    message.type: number\npolicies: []\n";
    let p = PolicySet::from_sources(&[
        Source { origin: "a.yaml", text: a, format: Format::Yaml },
        Source { origin: "b.yaml", text: b_same, format: Format::Yaml },
    ])
    .unwrap();
    // Required if any declaration says so.
    assert!(p.check_schema(&req("a", Action::message("chat")).build()).is_err());
    let d = errors(&[("a.yaml", a), ("b.yaml", b_conflict)]);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!((d[0].file.as_str(), d[0].line, d[0].column), ("b.yaml", 3, 5));
    assert!(d[0].message.contains("declared as number for `send_message`, and as string before"), "{}", d[0]);
    assert!(d[0].hint.as_deref().unwrap().contains("a.yaml:3:5"));
    // `"*"` and an action must agree too; `"*"` and an action's object must nest.
    let d = one("schema:\n  \"*\": {trace: string}\n  send_message: {trace: list}\npolicies: []\n");
    assert_eq!((d.line, d.column), (3, 18));
    assert!(d.message.contains("for `\"*\"`"), "{d}");
    let d =
        one("schema:\n  \"*\": {message: string}\n  send_message: {message.type: string}\npolicies: []\n");
    assert_eq!(d.line, 3);
    assert!(d.message.contains("declared inside `message`"), "{d}");
    // TOML and JSON carry the same section.
    let toml = "[schema.send_message]\n\"message.type\" = {type = \"string\", required = true}\n\n[[policies]]\nname = \"a\"\neffect = \"allow\"\n";
    let json = r#"{"schema": {"send_message": {"message.type": {"type": "string", "required": true}}}, "policies": [{"name": "a", "effect": "allow"}]}"#;
    let yaml = "schema:\n  send_message:\n    message.type: {type: string, required: true}\npolicies:\n  - {name: a, effect: allow}\n";
    let digests: Vec<_> = [(toml, Format::Toml), (json, Format::Json), (yaml, Format::Yaml)]
        .iter()
        .map(|(text, format)| {
            PolicySet::from_sources(&[Source { origin: "p", text, format: *format }]).unwrap().digest()
        })
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

#[test]
fn the_schema_is_part_of_the_digest() {
    let rules = "policies:\n  - {name: a, effect: allow}\n";
    let digest = |schema: &str| load(&format!("{schema}{rules}")).digest();
    let none = digest("");
    let string = digest("schema:\n  send_message: {message.type: string}\n");
    let number = digest("schema:\n  send_message: {message.type: number}\n");
    let required = digest("schema:\n  send_message: {message.type: {type: string, required: true}}\n");
    let other_action = digest("schema:\n  call_tool: {message.type: string}\n");
    let empty = digest("schema: {}\n");
    let all = [none, string, number, required, other_action, empty];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // The same declarations in another order, spelling or file layout: the same digest.
    assert_eq!(
        digest("schema:\n  send_message:\n    message.type: {required: false, type: string}\n"),
        string
    );
    let split = PolicySet::from_sources(&[
        Source {
            origin: "a",
            text: "schema:\n  send_message: {message.type: string}\npolicies: []\n",
            format: Format::Yaml,
        },
        Source { origin: "b", text: rules, format: Format::Yaml },
    ])
    .unwrap();
    assert_eq!(split.digest(), string);
}

#[test]
fn check_warns_about_rules_on_undeclared_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let rules = r#"policies:
  - name: system
    effect: deny
    conditions:
      action_type: send_message
      message.type: {regex: "^system$"}
      message.kind: system
  - name: any_action
    effect: deny
    conditions: {trace: x, message.type: y}
  - name: nested
    effect: allow
    conditions: {action_type: {in: [send_message, call_tool]}}
    when: {any: [{message: {exists: true}}, {arguments.path: /etc}, {resource.owner: ana}, {agent_id: a}]}
"#;
    // No schema: no warnings.
    let r = check_files(&[write("none.yaml", rules)]);
    assert!(r.ok() && r.warnings.is_empty(), "{r}");
    let schema = "schema:\n  send_message: {message.type: string}\n  call_tool: {arguments: object, message.type: string}\n  \"*\": {trace: string}\n";
    let path = write("p.yaml", &format!("{schema}{rules}"));
    let r = check_files(&[&path]);
    assert!(r.ok(), "{r}");
    let text = r.to_string();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("warning:")).collect();
    let file = path.display().to_string();
    assert_eq!(
        lines,
        [
            format!(
                "{file}:11:7: warning: rule `system` tests `message.kind`, which the schema does not declare for `send_message` (rule `system`)"
            ),
            format!(
                "{file}:14:28: warning: rule `any_action` tests `message.type`, which the schema does not declare for every action (`\"*\"`), and the rule does not pin `action_type` (rule `any_action`)"
            ),
            format!(
                "{file}:18:46: warning: rule `nested` tests `arguments.path`, which the schema does not declare for `send_message`, `call_tool` (rule `nested`)"
            ),
            format!(
                "{file}:18:70: warning: rule `nested` tests `resource.owner`, which the schema does not declare for `send_message`, `call_tool` (rule `nested`)"
            ),
        ],
        "{text}"
    );
    assert!(text.contains("hint: declare it in the schema"), "{text}");
    assert!(text.contains("4 warnings"), "{text}");
}

// ----- the guard -----

/// Accepts any password credential as the named agent.
#[derive(Debug)]
struct AnyAgent;

#[async_trait]
impl IdentityProvider for AnyAgent {
    fn name(&self) -> &str {
        "any"
    }
    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Password { .. })
    }
    async fn authenticate(&self, credential: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        let Credential::Password { username, .. } = credential else {
            return Err(AuthError::invalid("not a password"));
        };
        let now = time::OffsetDateTime::now_utc();
        Ok(std::sync::Arc::new(Principal::new(
            AgentId::new(username).unwrap(),
            "any",
            AuthMethod::AgentSecret,
            now,
            now + time::Duration::minutes(5),
        )))
    }
}

#[derive(Debug, Default)]
struct MemorySink(Mutex<Vec<AuditRecord>>);

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, record: AuditRecord, _: Durability) -> Result<(), AuditError> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_guard_denies_a_non_conforming_request_as_invalid() {
    let sink = Arc::new(MemorySink::default());
    let guard = Guard::builder(Arc::new(load(POLICY)), sink.clone())
        .identity_provider(Arc::new(AnyAgent))
        .build()
        .unwrap();
    let agent = Credential::password("research_bot", "x");
    let send = |m: serde_json::Value| Request::new(Action::message("chat")).with_context("message", m);

    let permit = guard.check(&agent, send(json!({"type": "chat"}))).await.unwrap();
    assert_eq!(permit.decision().determining[0].as_ref(), "messages");

    let denied = guard.check(&agent, send(json!({"type": {"nested": "system"}}))).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::InvalidRequest(_)), "{:?}", denied.reason());
    assert_eq!(denied.reason().to_string(), "invalid request");
    assert!(denied.decision().is_none(), "no rule ran");
    let record = sink.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(record.effect, Effect::Deny);
    assert_eq!(
        record.reason.as_deref(),
        Some("invalid request: `message.type` must be a string, found a map")
    );
    assert!(record.determining.is_empty());

    let denied = guard.check(&agent, Request::new(Action::message("chat"))).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::InvalidRequest(d) if d.contains("is required")));
}

/// What `zta.yaml` builds: the hot-reloading watcher must report a schema violation the same
/// way, or the guard would deny it as an ordinary policy denial.
#[tokio::test]
async fn the_watcher_reports_a_non_conforming_request_as_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, POLICY).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = zta_policy::PolicyWatcher::new(&zta_policy::PolicyConfig::new([&file]), sink).unwrap();
    let err = watcher.evaluate(&message(json!({"type": {"nested": "system"}}))).unwrap_err();
    assert!(matches!(err, PolicyError::InvalidRequest(ref d) if d.contains("`message.type`")), "{err:?}");
    assert!(watcher.evaluate(&message(json!({"type": "chat"}))).unwrap().is_allowed());
}
