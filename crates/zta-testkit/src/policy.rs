//! The [`PolicyEngine`] conformance suite.
//!
//! The checks decide small, fixed [`Scenario`]s. Each scenario is written here in the native
//! policy language ([`Scenario::native`]); the backend's test implements [`PolicyFixture`] to
//! load a scenario into the engine under test. The native engine loads the text as it is;
//! another engine (Cedar) supplies its own translation of the same scenario, which must mean
//! what the documentation of each scenario says.

use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;
use zta_core::{
    Action, AgentId, AuthMethod, AuthzRequest, Basis, Decision, PolicyEngine, Principal, Request,
};

use crate::must;

/// A small policy the suite decides requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scenario {
    /// No rules at all.
    Empty,
    /// One rule: allow `execute_task` (any task).
    AllowTasks,
    /// [`AllowTasks`](Self::AllowTasks) with its rule under another name.
    AllowTasksRenamed,
    /// One rule: allow `call_tool` (any tool). Same shape as `AllowTasks`, other content.
    AllowTools,
    /// Allow every `execute_task`, and deny the task `cleanup`.
    DenyCleanup,
    /// One allow rule per operator, each for the tool of that name (`t_eq` for `eq`, ...) and
    /// each on the context attribute `clearance`, which the suite's requests never carry:
    /// `eq`, `in`, `gt`, `regex`, `starts_with`, `exists: true` (positive) and `ne`, `not_in`,
    /// `exists: false` (negative).
    AbsentAttribute,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Self; 6] = [
        Self::Empty,
        Self::AllowTasks,
        Self::AllowTasksRenamed,
        Self::AllowTools,
        Self::DenyCleanup,
        Self::AbsentAttribute,
    ];

    /// The scenario in the native policy language (YAML).
    pub fn native(self) -> &'static str {
        match self {
            Self::Empty => "policies: []\n",
            Self::AllowTasks => {
                "policies:\n  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n"
            }
            Self::AllowTasksRenamed => {
                "policies:\n  - {name: all_tasks, effect: allow, conditions: {action_type: execute_task}}\n"
            }
            Self::AllowTools => {
                "policies:\n  - {name: tasks, effect: allow, conditions: {action_type: call_tool}}\n"
            }
            Self::DenyCleanup => concat!(
                "policies:\n",
                "  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n",
                "  - {name: no_cleanup, effect: deny, conditions: {action_type: execute_task, action.name: cleanup}}\n",
            ),
            Self::AbsentAttribute => concat!(
                "policies:\n",
                "  - {name: eq, effect: allow, conditions: {tool_name: t_eq, clearance: {eq: top}}}\n",
                "  - {name: in, effect: allow, conditions: {tool_name: t_in, clearance: {in: [top]}}}\n",
                "  - {name: gt, effect: allow, conditions: {tool_name: t_gt, clearance: {gt: 1}}}\n",
                "  - {name: regex, effect: allow, conditions: {tool_name: t_regex, clearance: {regex: '.*'}}}\n",
                "  - {name: starts, effect: allow, conditions: {tool_name: t_starts_with, clearance: {starts_with: ''}}}\n",
                "  - {name: exists, effect: allow, conditions: {tool_name: t_exists, clearance: {exists: true}}}\n",
                "  - {name: ne, effect: allow, conditions: {tool_name: t_ne, clearance: {ne: top}}}\n",
                "  - {name: not_in, effect: allow, conditions: {tool_name: t_not_in, clearance: {not_in: [top]}}}\n",
                "  - {name: absent, effect: allow, conditions: {tool_name: t_absent, clearance: {exists: false}}}\n",
            ),
        }
    }
}

/// Operators that hold for no absent attribute, by the tool [`Scenario::AbsentAttribute`]
/// allows with them.
pub const POSITIVE_OPERATORS: [&str; 6] = ["t_eq", "t_in", "t_gt", "t_regex", "t_starts_with", "t_exists"];

/// Operators that hold for every absent attribute, by the tool [`Scenario::AbsentAttribute`]
/// allows with them.
pub const NEGATIVE_OPERATORS: [&str; 3] = ["t_ne", "t_not_in", "t_absent"];

/// What the suite needs from an engine's test.
pub trait PolicyFixture: Send + Sync {
    /// The engine under test, deciding by `scenario` (its translation, for a non-native
    /// engine). Called again for the same scenario, it builds the engine anew.
    fn engine(&self, scenario: Scenario) -> Arc<dyn PolicyEngine>;
}

/// Runs every check of this module.
pub fn run_all(fixture: &dyn PolicyFixture) {
    default_deny(fixture);
    deny_overrides_allow(fixture);
    absent_attributes(fixture);
    decisions_are_deterministic(fixture);
    digest_follows_the_content(fixture);
}

/// A request by `research_bot` (segment `research`, role `researcher`) for `action`, with the
/// context `{"purpose": "test"}` and no target.
pub fn request(action: Action) -> AuthzRequest {
    let now = OffsetDateTime::now_utc();
    let principal = Principal::new(
        must("AgentId::new", AgentId::new("research_bot")),
        "zta-testkit",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    )
    .with_roles(["researcher"])
    .with_segment("research");
    let request = Request::new(action).with_context("purpose", Value::from("test"));
    must("AuthzRequest::new", AuthzRequest::new(principal, request, None))
}

/// Decides `request`, asserting that the decision is one the contract allows: its effect is
/// its basis's, it names the engine's digest, a default deny names no rule and an allow or an
/// explicit deny names one.
#[track_caller]
pub fn decide(engine: &dyn PolicyEngine, request: &AuthzRequest) -> Decision {
    let decision = match engine.evaluate(request) {
        Ok(decision) => decision,
        Err(e) => panic!("the engine gave no decision for a valid request: {e}"),
    };
    assert_eq!(
        decision.effect,
        decision.basis.effect(),
        "inconsistent decision: effect {:?} on basis {:?}",
        decision.effect,
        decision.basis
    );
    assert_eq!(decision.policy_digest, engine.digest(), "the decision names another policy digest");
    match decision.basis {
        Basis::DefaultDeny => {
            assert!(decision.determining.is_empty(), "a default deny names determining rules")
        }
        Basis::Permitted | Basis::ExplicitDeny => {
            assert!(!decision.determining.is_empty(), "a rule-based decision names no determining rule")
        }
        Basis::FailClosed => {}
    }
    decision
}

/// No rule, or no matching rule, denies with [`Basis::DefaultDeny`]; a matching allow permits.
pub fn default_deny(fixture: &dyn PolicyFixture) {
    let empty = fixture.engine(Scenario::Empty);
    for action in [Action::task("report"), Action::tool_call("web_search"), Action::message("chat")] {
        let decision = decide(&*empty, &request(action));
        assert_eq!(decision.basis, Basis::DefaultDeny, "an empty policy did not deny by default");
    }
    let tasks = fixture.engine(Scenario::AllowTasks);
    let decision = decide(&*tasks, &request(Action::tool_call("web_search")));
    assert_eq!(decision.basis, Basis::DefaultDeny, "a request no rule matches was not denied by default");
    let decision = decide(&*tasks, &request(Action::task("report")));
    assert_eq!(decision.basis, Basis::Permitted, "a request an allow rule matches was not permitted");
}

/// A matching deny overrides a matching allow ([`Basis::ExplicitDeny`]).
pub fn deny_overrides_allow(fixture: &dyn PolicyFixture) {
    let engine = fixture.engine(Scenario::DenyCleanup);
    let decision = decide(&*engine, &request(Action::task("cleanup")));
    assert_eq!(decision.basis, Basis::ExplicitDeny, "a matching deny did not override a matching allow");
    let decision = decide(&*engine, &request(Action::task("report")));
    assert_eq!(decision.basis, Basis::Permitted, "a deny for one task denied another");
}

/// A condition on an absent attribute: every positive operator is false, every negative one
/// (`ne`, `not_in`, `exists: false`) is true. A deny on `{ne: admin}` must fire for a request
/// without the attribute, or leaving the attribute out would dodge it.
pub fn absent_attributes(fixture: &dyn PolicyFixture) {
    let engine = fixture.engine(Scenario::AbsentAttribute);
    for tool in POSITIVE_OPERATORS {
        let decision = decide(&*engine, &request(Action::tool_call(tool)));
        assert_eq!(
            decision.basis,
            Basis::DefaultDeny,
            "a positive operator (`{tool}`) held on an absent attribute"
        );
    }
    for tool in NEGATIVE_OPERATORS {
        let decision = decide(&*engine, &request(Action::tool_call(tool)));
        assert_eq!(
            decision.basis,
            Basis::Permitted,
            "a negative operator (`{tool}`) did not hold on an absent attribute"
        );
    }
}

/// The same request decided twice gives the same decision; the same scenario built twice
/// gives the same digest and the same decisions.
pub fn decisions_are_deterministic(fixture: &dyn PolicyFixture) {
    for scenario in Scenario::ALL {
        let (a, b) = (fixture.engine(scenario), fixture.engine(scenario));
        assert_eq!(
            a.digest(),
            b.digest(),
            "the same policy built twice gave different digests ({scenario:?})"
        );
        for action in [Action::task("cleanup"), Action::task("report"), Action::tool_call("t_ne")] {
            let request = request(action);
            let first = decide(&*a, &request);
            assert_eq!(
                first,
                decide(&*a, &request),
                "the same request decided twice gave different decisions"
            );
            assert_eq!(
                first,
                decide(&*b, &request),
                "the same policy built twice decided the same request differently ({scenario:?})"
            );
        }
    }
}

/// Policies with different content have different digests, also when only a rule's name
/// differs.
pub fn digest_follows_the_content(fixture: &dyn PolicyFixture) {
    let digests: Vec<_> = Scenario::ALL.iter().map(|s| (*s, fixture.engine(*s).digest())).collect();
    for (i, (a, da)) in digests.iter().enumerate() {
        for (b, db) in digests.iter().skip(i + 1) {
            assert_ne!(da, db, "two different policies ({a:?}, {b:?}) have the same digest");
        }
    }
}
