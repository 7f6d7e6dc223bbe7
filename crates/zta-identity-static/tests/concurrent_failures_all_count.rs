//! Concurrent wrong attempts are each counted exactly once, and concurrency cannot be used to
//! get more guesses than the lockout allows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider, StateStore};

async fn hammer(f: &Arc<Fixture>, n: usize) -> Vec<AuthError> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                f.provider
                    .authenticate(&Credential::password("writer", format!("wrong-{i}")))
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    let mut errors = Vec::with_capacity(n);
    for task in tasks {
        errors.push(task.await.unwrap());
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_wrong_secrets_count_forty() {
    let f = Arc::new(fixture_with(|mut c| {
        c.lockout.max_failures = 100;
        c
    }));
    let errors = hammer(&f, 40).await;
    assert!(errors.iter().all(is_invalid), "{errors:?}");
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_cannot_exceed_the_limit() {
    let f = Arc::new(fixture()); // max_failures = 5
    let errors = hammer(&f, 40).await;
    let verified = errors.iter().filter(|e| is_invalid(e)).count();
    let locked = errors.iter().filter(|e| **e == AuthError::LockedOut).count();
    assert_eq!(verified + locked, 40, "{errors:?}");
    // Exactly the allowed number of guesses reached argon2; all others were refused up front.
    assert_eq!(verified, 5, "{errors:?}");
    assert!(f.state.failures("lockout:writer").await.unwrap() >= 5);
    let err = f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap_err();
    assert_eq!(err, AuthError::LockedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_bad_assertions_count_forty() {
    let f = Arc::new(fixture_with(|mut c| {
        c.lockout.max_failures = 100;
        c
    }));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(
                async move { f.provider.authenticate(&assertion(&f.bob, "alice")).await.unwrap_err() },
            )
        })
        .collect();
    for task in tasks {
        assert!(is_invalid(&task.await.unwrap()));
    }
    assert_eq!(f.state.failures("lockout:alice").await.unwrap(), 40);
}
