//! If the state store fails, authentication fails closed with `Unavailable`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::sync::Arc;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider};
use zta_identity_static::{AgentKey, StaticProvider};
use zta_testkit::{FailingStore, StateOp};

fn provider(broken: &[StateOp]) -> (StaticProvider, AgentKey) {
    let alice = AgentKey::generate().unwrap();
    let bob = AgentKey::generate().unwrap();
    let state = Arc::new(FailingStore::new());
    state.fail(broken);
    (StaticProvider::new(config(&alice, &bob, &secret_hash()), state).unwrap(), alice)
}

fn is_unavailable(err: &AuthError) -> bool {
    matches!(err, AuthError::StateUnavailable { .. })
}

#[tokio::test]
async fn each_broken_lockout_operation_denies_secrets() {
    for op in [StateOp::Failures, StateOp::AddFailure, StateOp::ClearFailures] {
        let (p, alice) = provider(&[op]);
        let err = p.authenticate(&Credential::password("writer", SECRET)).await.unwrap_err();
        assert!(is_unavailable(&err), "{op:?}: {err:?}");
        // Assertions keep no lockout counters.
        p.authenticate(&assertion(&alice, "alice")).await.unwrap();
    }
}

#[tokio::test]
async fn broken_replay_store_denies_valid_assertions() {
    let (p, alice) = provider(&[StateOp::ClaimOnce]);
    let err = p.authenticate(&assertion(&alice, "alice")).await.unwrap_err();
    assert!(is_unavailable(&err), "{err:?}");
    // Secrets do not need the replay store.
    p.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
}

#[tokio::test]
async fn working_store_works() {
    let (p, alice) = provider(&[]);
    p.authenticate(&assertion(&alice, "alice")).await.unwrap();
}
