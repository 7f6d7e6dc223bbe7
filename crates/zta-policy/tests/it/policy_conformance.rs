//! The native engine passes zta-testkit's `PolicyEngine` suite on the native text of each
//! scenario; and the suite fails engines that are this one with one fault each (kept here,
//! not in zta-testkit, because zta-testkit is a dev-dependency of this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{
    Arc,
    atomic::{AtomicU8, AtomicU32, Ordering},
};

use zta_core::{
    AuthzRequest, Basis, Decision, Determining, Obligation, PolicyDigest, PolicyEngine, PolicyError,
};
use zta_policy::PolicySet;
use zta_testkit::{PolicyFixture, Scenario, policy};

/// The native engine, loading each scenario's native text.
struct Native;

impl PolicyFixture for Native {
    fn engine(&self, scenario: Scenario) -> Arc<dyn PolicyEngine> {
        Arc::new(PolicySet::from_yaml(scenario.native()).unwrap())
    }
}

#[test]
fn the_native_engine_passes_the_policy_suite() {
    policy::run_all(&Native);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No matching rule allows.
    DefaultAllow,
    /// A rule on an absent attribute is skipped, negative operators too (the original
    /// project's fail-open bug, seen from the other side).
    AbsentSkipsRules,
    /// A positive operator on an absent attribute holds.
    AbsentMatchesAll,
    /// An explicit deny comes back with effect allow.
    InconsistentDeny,
    /// Every second decision carries an obligation the first did not.
    Flaky,
    /// Each build gets a digest of its own.
    DigestPerBuild,
    /// The digest covers the number of rules only.
    DigestOfTheShape,
}

/// The native engine with one fault.
#[derive(Debug)]
struct Faulty {
    inner: PolicySet,
    fault: Fault,
    calls: AtomicU32,
    build: u8,
}

impl PolicyEngine for Faulty {
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError> {
        let mut decision = self.inner.evaluate(request)?;
        let absent = !request.context().contains_key("clearance");
        let tool = request.action().tool_name().is_some();
        let rule = |name: &str| -> Determining { [Arc::from(name)].into_iter().collect() };
        match self.fault {
            Fault::DefaultAllow if decision.basis == Basis::DefaultDeny => {
                decision = Decision::new(Basis::Permitted, rule("default"), decision.policy_digest);
            }
            Fault::AbsentSkipsRules if absent && tool => {
                decision = Decision::new(Basis::DefaultDeny, Determining::new(), decision.policy_digest);
            }
            Fault::AbsentMatchesAll if absent && tool => {
                decision = Decision::new(Basis::Permitted, rule("clearance"), decision.policy_digest);
            }
            Fault::InconsistentDeny if decision.basis == Basis::ExplicitDeny => {
                decision.effect = zta_core::Effect::Allow;
            }
            Fault::Flaky if self.calls.fetch_add(1, Ordering::SeqCst) % 2 == 1 => {
                decision.obligations.push(Obligation { name: "log".into(), params: serde_json::Value::Null });
            }
            _ => {}
        }
        decision.policy_digest = self.digest();
        Ok(decision)
    }

    fn digest(&self) -> PolicyDigest {
        match self.fault {
            Fault::DigestPerBuild => PolicyDigest([self.build; 32]),
            Fault::DigestOfTheShape => PolicyDigest([u8::try_from(self.inner.len()).unwrap(); 32]),
            _ => self.inner.digest(),
        }
    }
}

/// The native fixture, its engine with one fault.
struct Broken {
    fault: Fault,
    builds: AtomicU8,
}

fn broken(fault: Fault) -> Broken {
    Broken { fault, builds: AtomicU8::new(0) }
}

impl PolicyFixture for Broken {
    fn engine(&self, scenario: Scenario) -> Arc<dyn PolicyEngine> {
        Arc::new(Faulty {
            inner: PolicySet::from_yaml(scenario.native()).unwrap(),
            fault: self.fault,
            calls: AtomicU32::new(0),
            build: self.builds.fetch_add(1, Ordering::SeqCst),
        })
    }
}

#[test]
#[should_panic(expected = "an empty policy did not deny by default")]
fn a_default_allow_fails() {
    policy::default_deny(&broken(Fault::DefaultAllow));
}

#[test]
#[should_panic(expected = "a negative operator (`t_ne`) did not hold on an absent attribute")]
fn skipping_rules_on_absent_attributes_fails() {
    policy::absent_attributes(&broken(Fault::AbsentSkipsRules));
}

#[test]
#[should_panic(expected = "a positive operator (`t_eq`) held on an absent attribute")]
fn matching_absent_attributes_fails() {
    policy::absent_attributes(&broken(Fault::AbsentMatchesAll));
}

#[test]
#[should_panic(expected = "inconsistent decision: effect Allow on basis ExplicitDeny")]
fn an_inconsistent_decision_fails() {
    policy::deny_overrides_allow(&broken(Fault::InconsistentDeny));
}

#[test]
#[should_panic(expected = "the same request decided twice gave different decisions")]
fn a_flaky_engine_fails() {
    policy::decisions_are_deterministic(&broken(Fault::Flaky));
}

#[test]
#[should_panic(expected = "the same policy built twice gave different digests")]
fn a_digest_per_build_fails() {
    policy::decisions_are_deterministic(&broken(Fault::DigestPerBuild));
}

#[test]
#[should_panic(expected = "two different policies (AllowTasks, AllowTasksRenamed) have the same digest")]
fn a_digest_of_the_shape_fails() {
    policy::digest_follows_the_content(&broken(Fault::DigestOfTheShape));
}
