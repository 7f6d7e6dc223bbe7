//! A success forgets the count only when nobody else is failing: the owner's successes must not
//! hand a guesser a fresh allowance.

use crate::common;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider, StateStore};

#[tokio::test]
async fn a_success_does_not_reset_an_ongoing_guessing_attack() {
    let f = fixture();
    for _ in 0..3 {
        f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
    }
    // The owner logs in between the guesses (its attempt counts, as every attempt does).
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 4);
    let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    // Five attempts in the window: the guesser is locked out, not given five more.
    let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
    assert_eq!(err, AuthError::LockedOut);
}

#[tokio::test]
async fn success_leaves_no_count_behind() {
    let f = fixture();
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 0);
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 0);
}
