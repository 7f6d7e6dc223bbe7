//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::panic)]

use serde_json::Value;
use time::OffsetDateTime;
use zta_core::{Action, AgentId, AuthMethod, AuthzRequest, Basis, Effect, Principal, Request, Resource};
use zta_policy::PolicySet;

pub fn principal(agent: &str) -> Principal {
    let now = OffsetDateTime::now_utc();
    Principal::new(
        AgentId::new(agent).unwrap(),
        "test",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    )
}

/// A request builder with the common knobs.
#[derive(Clone)]
pub struct Req {
    pub principal: Principal,
    pub request: Request,
    pub target_segment: Option<String>,
}

pub fn req(agent: &str, action: Action) -> Req {
    Req { principal: principal(agent), request: Request::new(action), target_segment: None }
}

impl Req {
    pub fn ctx(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.request = self.request.with_context(key, value);
        self
    }
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.principal = self.principal.with_roles(roles.iter().copied());
        self
    }
    pub fn segment(mut self, s: &str) -> Self {
        self.principal = self.principal.with_segment(s);
        self
    }
    pub fn target(mut self, agent: &str, segment: Option<&str>) -> Self {
        self.request = self.request.with_target(AgentId::new(agent).unwrap());
        self.target_segment = segment.map(str::to_owned);
        self
    }
    pub fn resource(mut self, r: Resource) -> Self {
        self.request = self.request.with_resource(r);
        self
    }
    pub fn build(self) -> AuthzRequest {
        AuthzRequest::new(self.principal, self.request, self.target_segment).unwrap()
    }
}

pub fn load(yaml: &str) -> PolicySet {
    match PolicySet::from_yaml(yaml) {
        Ok(p) => p,
        Err(e) => panic!("policy failed to load:\n{e}"),
    }
}

pub fn effect(p: &PolicySet, r: Req) -> Effect {
    p.decide(&r.build()).effect
}

pub fn outcome(p: &PolicySet, r: Req) -> (Effect, Basis, Vec<String>) {
    let d = p.decide(&r.build());
    (d.effect, d.basis, d.determining.iter().map(|n| n.to_string()).collect())
}

pub fn load_err(yaml: &str) -> zta_policy::Error {
    match PolicySet::from_yaml(yaml) {
        Ok(_) => panic!("policy unexpectedly loaded:\n{yaml}"),
        Err(e) => e,
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
