//! Hand-written fakes for guard tests: small, deterministic stand-ins for real backends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use zta_core::*;

/// Accepts `Credential::Password` for the listed agents when the password is `right`.
#[derive(Debug)]
pub struct FakeIdentity {
    pub segments: Vec<(&'static str, &'static str)>,
}

#[async_trait]
impl IdentityProvider for FakeIdentity {
    fn name(&self) -> &str {
        "fake"
    }
    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Password { .. })
    }
    async fn authenticate(&self, credential: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        let Credential::Password { username, password } = credential else {
            return Err(AuthError::Unsupported(credential.kind()));
        };
        let segment = self.segments.iter().find(|(a, _)| a == username).map(|(_, s)| *s);
        match (segment, password.expose_secret()) {
            (Some(segment), "right") => {
                let now = OffsetDateTime::now_utc();
                Ok(std::sync::Arc::new(
                    Principal::new(
                        AgentId::new(username).unwrap(),
                        "fake",
                        AuthMethod::AgentSecret,
                        now,
                        now + time::Duration::minutes(5),
                    )
                    .with_segment(segment)
                    .with_roles(["worker"]),
                ))
            }
            _ => Err(AuthError::invalid("wrong password or unknown agent")),
        }
    }
    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        self.segments.iter().find(|(a, _)| *a == agent.as_str()).map(|(_, s)| (*s).to_owned())
    }
}

type Decide = dyn Fn(&AuthzRequest) -> Result<Decision, PolicyError> + Send + Sync;

/// A policy given as a closure.
pub struct FnPolicy(pub Box<Decide>);

impl std::fmt::Debug for FnPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnPolicy")
    }
}

impl PolicyEngine for FnPolicy {
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError> {
        (self.0)(request)
    }
    fn digest(&self) -> PolicyDigest {
        PolicyDigest([7; 32])
    }
}

pub fn allow_all() -> FnPolicy {
    FnPolicy(Box::new(|_| Ok(decision(Basis::Permitted, "allow-all"))))
}

pub fn decision(basis: Basis, rule: &str) -> Decision {
    let mut determining = Determining::new();
    determining.push(RuleName::from(rule));
    Decision::new(basis, determining, PolicyDigest([7; 32]))
}

/// Keeps records in memory; can be told to refuse.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub records: Mutex<Vec<AuditRecord>>,
    pub refuse: std::sync::atomic::AtomicBool,
}

impl MemorySink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().unwrap().clone()
    }
    pub fn last(&self) -> AuditRecord {
        self.records().last().cloned().expect("no audit record")
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, record: AuditRecord, _: Durability) -> Result<(), AuditError> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditError::write("disk full"));
        }
        self.records.lock().unwrap().push(record);
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

pub fn crew() -> FakeIdentity {
    FakeIdentity { segments: vec![("research_bot", "research"), ("writer_bot", "writing")] }
}

pub fn guard(policy: FnPolicy, sink: Arc<MemorySink>) -> Guard {
    Guard::builder(Arc::new(policy), sink).identity_provider(Arc::new(crew())).build().unwrap()
}

pub fn research() -> Credential {
    Credential::password("research_bot", "right")
}
