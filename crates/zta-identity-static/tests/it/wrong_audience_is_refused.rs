//! Assertions addressed to another service are refused.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zta_core::IdentityProvider;

#[tokio::test]
async fn wrong_audience_is_refused() {
    let f = fixture();
    let credential = f.alice.assertion(&id("alice"), "https://other.test/", Duration::from_secs(30)).unwrap();
    let err = f.provider.authenticate(&credential).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    assert!(err.detail().contains("aud"), "{}", err.detail());
}

#[tokio::test]
async fn missing_audience_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c.as_object_mut().unwrap().remove("aud");
    assert!(is_invalid(&f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err()));
}

#[tokio::test]
async fn audience_list_without_us_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["aud"] = json!(["https://a.test/", "https://b.test/"]);
    assert!(is_invalid(&f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err()));
}
