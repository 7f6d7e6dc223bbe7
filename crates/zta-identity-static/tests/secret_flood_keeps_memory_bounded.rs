//! A flood of secret attempts with random names cannot exhaust memory: each argon2 run takes
//! 19 MiB, and only `hashing.max_concurrent` run at once; the rest wait briefly, then are
//! refused as unavailable. (Before the limit, 500 attempts ran on up to 512 blocking threads:
//! about 9.5 GiB.) This file is its own test binary, so the peak it reads is the flood's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use zta_core::{AuthError, Credential, IdentityProvider};

/// Peak resident memory of this process, in KiB (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_attempts_stay_under_200_mib() {
    const ATTEMPTS: usize = 500;
    let f = Arc::new(fixture_with(|mut c| {
        c.hashing.max_concurrent = 2;
        c
    }));
    let tasks: Vec<_> = (0..ATTEMPTS)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                let name = format!("ghost-{}", uuid_like().replace(['+', '/', '='], "x"));
                f.provider.authenticate(&Credential::password(&name, "guess")).await.unwrap_err()
            })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            AuthError::Invalid { .. } => {}
            AuthError::Unavailable { detail } => {
                assert!(detail.contains("too many secret verifications"), "{detail}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let peak_mib = peak_rss_kib() / 1024;
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB for {ATTEMPTS} concurrent attempts");
    // Every attempt was answered: verified and refused, or refused for lack of a slot.
    assert!(refused < ATTEMPTS, "no attempt was verified at all");
}
