//! Arbitrary bytes, and every one-character change of a valid token, are refused without a
//! panic.

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::json;

use crate::support::*;

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

#[test]
fn arbitrary_and_mutated_tokens_never_pass() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = runtime.block_on(Tenant::new());
    let provider = runtime.block_on(tenant.provider());
    let valid = runtime.block_on(tenant.sign(tenant.v2_claims(), json!({})));
    runtime.block_on(verify(&provider, &valid)).unwrap();

    let mut runner = TestRunner::new(ProptestConfig { cases: 512, ..ProptestConfig::default() });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(runtime.block_on(verify(&provider, &text)).is_err());
            Ok(())
        })
        .unwrap();
    runner
        .run(&(0..valid.len(), 0..BASE64URL.len()), |(at, with)| {
            let mut bytes = valid.clone().into_bytes();
            prop_assume!(bytes[at] != BASE64URL[with]);
            bytes[at] = BASE64URL[with];
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(
                runtime.block_on(verify(&provider, &mutated)).is_err(),
                "a changed token passed: {at}"
            );
            Ok(())
        })
        .unwrap();
}
