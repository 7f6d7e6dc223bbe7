//! A successful authentication forgets earlier failures of that name.

mod common;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider, StateStore};

#[tokio::test]
async fn right_secret_clears_failures() {
    let f = fixture();
    for _ in 0..4 {
        f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
    }
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 4);
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 0);
    // A full allowance again: four more failures do not lock out.
    for _ in 0..4 {
        let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
        assert_ne!(err, AuthError::LockedOut);
    }
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
}

#[tokio::test]
async fn valid_assertion_clears_failures() {
    let f = fixture();
    for _ in 0..3 {
        f.provider.authenticate(&assertion(&f.bob, "alice")).await.unwrap_err();
    }
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 3);
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 0);
}

#[tokio::test]
async fn success_leaves_no_count_behind() {
    let f = fixture();
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 0);
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 0);
}
