//! The static provider passes zta-testkit's `IdentityProvider` suite, once for assertions and
//! once for secrets; and the suite fails providers that are this one with one fault each
//! (kept here, not in zta-testkit, because zta-testkit is a dev-dependency of this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use common::*;
use secrecy::ExposeSecret;
use zta_core::{AgentId, AuthError, Credential, IdentityProvider, MemoryStateStore, Principal, StateStore};
use zta_identity_static::{AgentKey, StaticProvider};
use zta_testkit::{Expected, IdentityFixture, identity};

/// Assertions of `alice` (segment `research`, roles, groups and tenant set).
struct Assertions {
    alice: AgentKey,
    bob: AgentKey,
    mallory: AgentKey,
}

impl Assertions {
    fn new() -> Self {
        Self {
            alice: AgentKey::generate().unwrap(),
            bob: AgentKey::generate().unwrap(),
            mallory: AgentKey::generate().unwrap(),
        }
    }
}

#[async_trait]
impl IdentityFixture for Assertions {
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider> {
        Arc::new(StaticProvider::new(config(&self.alice, &self.bob, &secret_hash()), state).unwrap())
    }
    async fn valid(&self) -> Credential {
        assertion(&self.alice, "alice")
    }
    async fn wrong(&self) -> Credential {
        assertion(&self.mallory, "alice")
    }
    async fn unknown_agent(&self) -> Credential {
        assertion(&self.mallory, "mallory")
    }
    fn malformed(&self, text: &str) -> Credential {
        Credential::agent_assertion(text)
    }
    fn unsupported(&self) -> Option<Credential> {
        Some(Credential::bearer("an.opaque.token"))
    }
    fn one_time(&self) -> bool {
        true
    }
    fn expected(&self) -> Expected {
        Expected {
            agent: id("alice"),
            roles: vec!["reader".into(), "summarizer".into()],
            groups: vec!["team-a".into()],
            segment: Some("research".into()),
            tenant: Some("acme".into()),
        }
    }
    fn secrets(&self) -> Vec<String> {
        let pem = self.alice.to_pkcs8_pem().expose_secret().to_owned();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        vec![pem, body, SECRET.to_owned(), secret_hash()]
    }
}

/// Secrets of `writer` (segment `content`, role `writer`).
struct Secrets {
    alice: AgentKey,
    bob: AgentKey,
}

impl Secrets {
    fn new() -> Self {
        Self { alice: AgentKey::generate().unwrap(), bob: AgentKey::generate().unwrap() }
    }
}

#[async_trait]
impl IdentityFixture for Secrets {
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider> {
        Arc::new(StaticProvider::new(config(&self.alice, &self.bob, &secret_hash()), state).unwrap())
    }
    async fn valid(&self) -> Credential {
        Credential::password("writer", SECRET)
    }
    async fn wrong(&self) -> Credential {
        Credential::password("writer", "not the right secret at all")
    }
    async fn unknown_agent(&self) -> Credential {
        Credential::password("nobody", SECRET)
    }
    fn malformed(&self, text: &str) -> Credential {
        Credential::password(text, text)
    }
    fn unsupported(&self) -> Option<Credential> {
        Some(Credential::bearer("an.opaque.token"))
    }
    fn one_time(&self) -> bool {
        false
    }
    fn expected(&self) -> Expected {
        Expected {
            agent: id("writer"),
            roles: vec!["writer".into()],
            groups: Vec::new(),
            segment: Some("content".into()),
            tenant: None,
        }
    }
    fn secrets(&self) -> Vec<String> {
        vec![SECRET.to_owned(), secret_hash()]
    }
}

#[tokio::test]
async fn assertions_pass_the_identity_suite() {
    identity::run_all(&Assertions::new()).await;
}

#[tokio::test]
async fn secrets_pass_the_identity_suite() {
    identity::run_all(&Secrets::new()).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// An unknown agent's error says so.
    TellsUnknownAgents,
    /// A replayed assertion gets the principal of its first use back.
    AcceptsReplays,
    /// Empty input panics.
    PanicsOnEmpty,
    /// One-time ids and lockouts kept in its own memory, not in the store it is given.
    IgnoresTheStore,
    /// An invalid credential's detail quotes it.
    EchoesTheCredential,
    /// The principal's issuer is not the provider's name.
    OtherIssuer,
    /// Accepts every kind of credential.
    AcceptsEveryKind,
}

/// The static provider with one fault.
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn IdentityProvider>,
    fault: Fault,
    seen: Mutex<HashMap<String, Arc<Principal>>>,
}

fn text(credential: &Credential) -> String {
    match credential {
        Credential::AgentAssertion(s) | Credential::Bearer(s) => s.expose_secret().to_owned(),
        Credential::Password { password, .. } => password.expose_secret().to_owned(),
        _ => String::new(),
    }
}

#[async_trait]
impl IdentityProvider for Faulty {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn accepts(&self, credential: &Credential) -> bool {
        self.fault == Fault::AcceptsEveryKind || self.inner.accepts(credential)
    }
    fn declares(&self, credential: &Credential) -> bool {
        self.inner.declares(credential)
    }
    fn declared_agents(&self) -> Vec<AgentId> {
        self.inner.declared_agents()
    }
    async fn authenticate(&self, credential: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        if self.fault == Fault::PanicsOnEmpty && credential.is_empty() {
            panic!("index out of bounds: the len is 0 but the index is 0");
        }
        let result = self.inner.authenticate(credential).await;
        match (self.fault, result) {
            (Fault::TellsUnknownAgents, Err(AuthError::Invalid { .. }))
                if !self.inner.declares(credential) =>
            {
                Err(AuthError::invalid("unknown agent"))
            }
            (Fault::AcceptsReplays, Err(AuthError::Replayed)) => {
                Ok(self.seen.lock().unwrap().get(&text(credential)).cloned().unwrap())
            }
            (Fault::AcceptsReplays, Ok(principal)) => {
                self.seen.lock().unwrap().insert(text(credential), principal.clone());
                Ok(principal)
            }
            (Fault::EchoesTheCredential, Err(AuthError::Invalid { detail })) => {
                Err(AuthError::invalid(format!("{detail}: `{}`", text(credential))))
            }
            (Fault::OtherIssuer, Ok(principal)) => {
                let mut principal = Principal::clone(&principal);
                principal.issuer = "static-provider".into();
                Ok(Arc::new(principal))
            }
            (_, result) => result,
        }
    }
}

/// A fixture whose provider is the real fixture's with `fault`.
struct Broken<F> {
    real: F,
    fault: Fault,
}

#[async_trait]
impl<F: IdentityFixture> IdentityFixture for Broken<F> {
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider> {
        let state = match self.fault {
            Fault::IgnoresTheStore => Arc::new(MemoryStateStore::new()),
            _ => state,
        };
        Arc::new(Faulty { inner: self.real.provider(state), fault: self.fault, seen: Mutex::default() })
    }
    async fn valid(&self) -> Credential {
        self.real.valid().await
    }
    async fn wrong(&self) -> Credential {
        self.real.wrong().await
    }
    async fn unknown_agent(&self) -> Credential {
        self.real.unknown_agent().await
    }
    fn malformed(&self, text: &str) -> Credential {
        self.real.malformed(text)
    }
    fn unsupported(&self) -> Option<Credential> {
        self.real.unsupported()
    }
    fn one_time(&self) -> bool {
        self.real.one_time()
    }
    fn expected(&self) -> Expected {
        self.real.expected()
    }
    fn secrets(&self) -> Vec<String> {
        self.real.secrets()
    }
}

fn broken(fault: Fault) -> Broken<Assertions> {
    Broken { real: Assertions::new(), fault }
}

#[tokio::test]
#[should_panic(expected = "an unknown agent is refused differently from a wrong credential")]
async fn telling_unknown_agents_apart_fails() {
    identity::unknown_agent_fails_like_a_wrong_credential(&broken(Fault::TellsUnknownAgents)).await;
}

#[tokio::test]
#[should_panic(expected = "a one-time credential presented again was not refused as Replayed")]
async fn accepting_a_replay_fails() {
    identity::one_time_credentials_are_not_replayable(&broken(Fault::AcceptsReplays)).await;
}

#[tokio::test]
#[should_panic(expected = "the provider panicked on a `agent_assertion` credential instead of refusing it")]
async fn panicking_on_empty_input_fails() {
    identity::malformed_input_is_invalid(&broken(Fault::PanicsOnEmpty)).await;
}

#[tokio::test]
#[should_panic(expected = "the provider authenticated while its state store was failing (fail-open)")]
async fn a_provider_ignoring_its_store_fails_open_and_fails() {
    identity::fails_closed_on_store_errors(&broken(Fault::IgnoresTheStore)).await;
}

#[tokio::test]
#[should_panic(expected = "repeats a secret or the credential")]
async fn an_error_quoting_the_credential_fails() {
    identity::no_secret_in_debug_or_errors(&broken(Fault::EchoesTheCredential)).await;
}

#[tokio::test]
#[should_panic(expected = "repeats a secret or the credential")]
async fn an_error_quoting_a_secret_fails() {
    identity::no_secret_in_debug_or_errors(&Broken {
        real: Secrets::new(),
        fault: Fault::EchoesTheCredential,
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "the principal's issuer is neither the provider's name nor one of its issuers")]
async fn a_principal_with_another_issuer_fails() {
    identity::valid_credential_yields_the_principal(&broken(Fault::OtherIssuer)).await;
}

#[tokio::test]
#[should_panic(expected = "the provider accepts a `bearer` credential it does not take")]
async fn accepting_every_kind_fails() {
    identity::wrong_kind_is_unsupported(&broken(Fault::AcceptsEveryKind)).await;
}
