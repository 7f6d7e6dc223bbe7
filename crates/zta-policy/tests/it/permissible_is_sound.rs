//! `PolicyEngine::permissible` against evaluation, through the trait object the guard holds:
//! for random rule sets pinning action types, tools and targets (with open conditions, deny
//! rules and priorities), every request the engine allows has an action type, tool and target
//! the answer admits. And what the answer looks like for the cases a gateway meets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use crate::common::*;
use proptest::prelude::*;
use zta_core::{Action, AgentId, AuthzRequest, Candidates, PolicyEngine, Principal, Request};

const ACTIONS: &[&str] = &["call_tool", "send_message", "read", "write"];
const TOOLS: &[&str] = &["a", "b", "c"];
const TARGETS: &[&str] = &["t1", "t2"];

/// One condition of a generated rule, as YAML.
fn cond() -> impl Strategy<Value = String> {
    let pin = |path: &'static str, values: &'static [&'static str]| {
        (any::<bool>(), prop::sample::subsequence(values, 1..=values.len())).prop_map(move |(eq, v)| {
            if eq { format!("{path}: {}", v[0]) } else { format!("{path}: {{in: [{}]}}", v.join(", ")) }
        })
    };
    prop_oneof![
        pin("action_type", ACTIONS),
        pin("tool_name", TOOLS),
        pin("target_agent", TARGETS),
        Just("principal.roles: admin".to_owned()),
        Just("x: 1".to_owned()),
        Just("tool_name: {starts_with: b}".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    let rule = (any::<bool>(), 0i64..3, prop::collection::vec(cond(), 0..3));
    prop::collection::vec(rule, 0..7).prop_map(|rules| {
        let mut text = String::from("policies:\n");
        for (i, (allow, priority, conds)) in rules.into_iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            let conds: Vec<String> =
                conds.into_iter().filter(|c| seen.insert(c.split(':').next().unwrap().to_owned())).collect();
            let effect = if allow { "allow" } else { "deny" };
            text.push_str(&format!(
                "  - {{name: r{i}, effect: {effect}, priority: {priority}, conditions: {{{}}}}}\n",
                conds.join(", ")
            ));
        }
        text
    })
}

fn who(admin: bool) -> Principal {
    let p = principal("ana");
    if admin { p.with_roles(["admin"]) } else { p }
}

fn request(
    who: &Principal,
    action: usize,
    tool: usize,
    target: Option<usize>,
    x: Option<i64>,
) -> AuthzRequest {
    let action = match ACTIONS[action] {
        "call_tool" => Action::tool_call(TOOLS[tool]),
        "send_message" => Action::message("chat"),
        verb => Action::custom(verb).unwrap(),
    };
    let mut r = Request::new(action);
    if let Some(t) = target {
        r = r.with_target(AgentId::new(TARGETS[t]).unwrap());
    }
    if let Some(x) = x {
        r = r.with_context("x", x);
    }
    AuthzRequest::new(who.clone(), r, None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_allowed_request_is_admitted(
        text in policy(),
        admin in any::<bool>(),
        requests in prop::collection::vec(
            (0..ACTIONS.len(), 0..TOOLS.len(), prop::option::of(0..TARGETS.len()), prop::option::of(1i64..3)),
            1..16,
        ),
    ) {
        let engine: Arc<dyn PolicyEngine> = Arc::new(load(&text));
        let who = who(admin);
        let answer = engine.permissible(&who).expect("the native engine answers");
        for (action, tool, target, x) in requests {
            let r = request(&who, action, tool, target, x);
            if engine.evaluate(&r).unwrap().is_allowed() {
                let action = r.action();
                prop_assert!(answer.actions.admits(action.action_type()), "{r:?}\n{text}\n{answer:?}");
                if let Some(tool) = action.tool_name() {
                    prop_assert!(answer.may_call_tool(tool), "{r:?}\n{text}\n{answer:?}");
                }
                if let Some(t) = r.target() {
                    prop_assert!(answer.targets.admits(t.agent_id.as_str()), "{r:?}\n{text}\n{answer:?}");
                }
            }
        }
    }
}

#[test]
fn argument_dependent_grants_are_admitted_and_unconditional_denies_subtracted() {
    let engine: Arc<dyn PolicyEngine> = Arc::new(load(
        r#"
policies:
  - {name: read_data, effect: allow, conditions: {tool_name: files__read_file, arguments.path: {starts_with: /data/}}}
  - {name: any_tool_for_admins, effect: allow, conditions: {principal.roles: admin, action_type: call_tool}}
  - {name: never_delete, effect: deny, priority: 5, conditions: {tool_name: files__delete}}
  - {name: not_on_weekends, effect: deny, priority: 5, conditions: {tool_name: files__write, weekend: true}}
"#,
    ));
    let plain = engine.permissible(&principal("ana")).unwrap();
    assert_eq!(plain.tools, Candidates::only(["files__read_file"]));
    assert_eq!(plain.actions, Candidates::only(["call_tool"]));
    // A tool call may carry a target, and no rule pins one.
    assert_eq!(plain.targets, Candidates::any_except(Vec::<String>::new()));
    let admin = engine.permissible(&principal("root").with_roles(["admin"])).unwrap();
    // A deny that only the request's context decides does not hide anything.
    assert_eq!(admin.tools, Candidates::any_except(["files__delete"]));
    assert!(admin.may_call_tool("files__write") && !admin.may_call_tool("files__delete"));
}

#[test]
fn engines_that_cannot_tell_say_so() {
    #[derive(Debug)]
    struct Opaque;
    impl PolicyEngine for Opaque {
        fn evaluate(&self, _: &AuthzRequest) -> Result<zta_core::Decision, zta_core::PolicyError> {
            Err(zta_core::PolicyError::Evaluation("opaque".into()))
        }
        fn digest(&self) -> zta_core::PolicyDigest {
            zta_core::PolicyDigest([0; 32])
        }
    }
    let engine: Arc<dyn PolicyEngine> = Arc::new(Opaque);
    assert_eq!(engine.permissible(&principal("ana")), None);
}
