//! After `max_failures` failed attempts a name is locked out, even for the right credential.

use crate::common;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider, StateStore};

#[tokio::test]
async fn secret_lockout_after_max_failures() {
    let f = fixture();
    for attempt in 1..=5 {
        let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
        assert!(is_invalid(&err), "attempt {attempt}: {err:?}");
        assert_eq!(f.state.failures("lockout:writer").await.unwrap(), attempt);
    }
    let err = f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap_err();
    assert_eq!(err, AuthError::LockedOut);
    let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
    assert_eq!(err, AuthError::LockedOut);
    // Locked-out attempts do no verification and are not counted.
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 5);
    // Other agents are unaffected.
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
}

/// A key cannot be guessed, and the name in an unverified assertion is the sender's choice:
/// if junk assertions counted against the name, anyone could lock any agent out.
#[tokio::test]
async fn junk_assertions_naming_an_agent_do_not_lock_it_out() {
    let f = fixture_with(|mut c| {
        c.lockout.max_failures = 3;
        c
    });
    for _ in 0..10 {
        // Bob's key, Alice's name.
        let err = f.provider.authenticate(&assertion(&f.bob, "alice")).await.unwrap_err();
        assert!(is_invalid(&err), "{err:?}");
    }
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 0);
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
}

#[tokio::test]
async fn each_lockout_is_remembered_for_the_backoff() {
    let f = fixture_with(|mut c| {
        c.lockout.max_failures = 2;
        c
    });
    for round in 1..=3 {
        for _ in 0..2 {
            let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
            assert!(is_invalid(&err), "round {round}: {err:?}");
        }
        let err = f.provider.authenticate(&Credential::password("writer", "wrong")).await.unwrap_err();
        assert_eq!(err, AuthError::LockedOut, "round {round}");
        assert_eq!(f.state.failures("lockout-backoff:writer").await.unwrap(), round);
        // End the window, as time would.
        f.state.clear_failures("lockout:writer").await.unwrap();
    }
}

#[tokio::test]
async fn unknown_names_lock_out_the_same_way() {
    let f = fixture_with(|mut c| {
        c.lockout.max_failures = 2;
        c
    });
    for name in ["writer", "ghost"] {
        for _ in 0..2 {
            let err = f.provider.authenticate(&Credential::password(name, "wrong")).await.unwrap_err();
            assert!(is_invalid(&err));
        }
        let err = f.provider.authenticate(&Credential::password(name, "wrong")).await.unwrap_err();
        assert_eq!(err, AuthError::LockedOut, "{name}");
    }
}

#[tokio::test]
async fn failures_expire_with_the_window() {
    let f = fixture();
    // Simulate five failures from a window that has already ended.
    for _ in 0..5 {
        f.state.add_failure("lockout:writer", std::time::Duration::ZERO).await.unwrap();
    }
    f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
}
