//! When the revocation store fails, tokens are refused (`Unavailable`), cached or not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::sync::Arc;

use common::*;
use zta_core::{AgentId, AuthError, TokenAuthority};
use zta_testkit::{FailingStore, StateOp};
use zta_token::{Algorithm, SigningKey, TokenService};

#[tokio::test]
async fn store_outage_refuses_tokens() {
    let store = Arc::new(FailingStore::new());
    let service =
        TokenService::new(config(), SigningKey::generate(Algorithm::EdDSA).unwrap(), store.clone()).unwrap();
    let tokens = service.issue(&principal()).await.unwrap();
    let fresh = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &tokens.access_token).await.is_ok()); // cached

    store.fail(&StateOp::ALL);
    assert!(matches!(
        common::verify(&service, &tokens.access_token).await,
        Err(AuthError::StateUnavailable { .. })
    ));
    assert!(matches!(
        common::verify(&service, &fresh.access_token).await,
        Err(AuthError::StateUnavailable { .. })
    ));
    assert!(matches!(service.refresh(&tokens.refresh_token).await, Err(AuthError::StateUnavailable { .. })));
    assert!(service.revoke_token(&tokens.access_token).await.is_err());
    assert!(service.revoke_agent(&AgentId::new(AGENT).unwrap()).await.is_err());

    store.recover();
    assert!(common::verify(&service, &tokens.access_token).await.is_ok());
    assert!(service.refresh(&tokens.refresh_token).await.is_ok());
}
