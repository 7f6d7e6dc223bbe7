//! Every denial record says what kind of denial it was in `detail.denial`, a stable code that
//! queries and monitoring read instead of the reason text; a failed authentication names the
//! agent its credential claimed in `detail.claimed_agent` (unverified), and nothing when the
//! claim is no agent id.
#![allow(clippy::unwrap_used, clippy::panic)]
use crate::common;

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use zta_core::*;

fn detail<'r>(record: &'r AuditRecord, key: &str) -> Option<&'r str> {
    record.detail.get(key).and_then(|v| v.as_str())
}

#[tokio::test]
async fn each_kind_of_denial_is_coded() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(
        FnPolicy(Box::new(|r: &AuthzRequest| {
            Ok(match r.action().name() {
                "open" => decision(Basis::Permitted, "allow-open"),
                "forbidden" => decision(Basis::ExplicitDeny, "deny-forbidden"),
                _ => decision(Basis::DefaultDeny, "default"),
            })
        })),
        sink.clone(),
    );
    let task = |name: &str| Request::new(Action::task(name));
    let cases: [(Credential, Request, &str); 4] = [
        (research(), task("forbidden"), "explicit_deny"),
        (research(), task("unlisted"), "default_deny"),
        (research(), task("open").with_context("principal.roles", "admin"), "reserved_attribute"),
        (Credential::password("research_bot", "wrong"), task("open"), "invalid_credential"),
    ];
    for (credential, request, code) in cases {
        let denied = g.check(&credential, request).await.unwrap_err();
        assert_eq!(denied.reason().code(), code);
        assert_eq!(detail(&sink.last(), "denial"), Some(code), "{:?}", sink.last());
    }
    let _permit = g.check(&research(), task("open")).await.unwrap();
    assert_eq!(detail(&sink.last(), "denial"), None, "a permit carries a denial code");
}

#[tokio::test]
async fn a_failed_authentication_names_the_agent_it_claimed() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let task = || Request::new(Action::task("t"));

    let _denied = g.check(&Credential::password("writer_bot", "wrong"), task()).await.unwrap_err();
    let record = sink.last();
    assert_eq!(record.agent_id, None, "an unverified claim became the record's agent");
    assert_eq!(detail(&record, "claimed_agent"), Some("writer_bot"));

    // A JWT-shaped credential claims its unverified `sub` (else `iss`).
    let jwt = |payload: &str| {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    };
    let _denied = g
        .check(&Credential::agent_assertion(jwt(r#"{"iss":"x","sub":"planner"}"#)), task())
        .await
        .unwrap_err();
    assert_eq!(detail(&sink.last(), "claimed_agent"), Some("planner"));

    // A claim that is no agent id is not recorded.
    let _denied = g.check(&Credential::password("bad id!\n", "wrong"), task()).await.unwrap_err();
    assert_eq!(detail(&sink.last(), "claimed_agent"), None);
    assert_eq!(detail(&sink.last(), "denial"), Some("invalid_credential"));
}

#[tokio::test]
async fn a_refused_login_names_the_agent_it_claimed() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    // No token authority here: the login is refused, after the claim was read.
    let _denied = g.login(&Credential::password("writer_bot", "wrong")).await.unwrap_err();
    let record = sink.last();
    assert_eq!(record.event, AuditEvent::Login);
    assert_eq!(record.agent_id, None);
    assert_eq!(detail(&record, "claimed_agent"), Some("writer_bot"));
    assert!(detail(&record, "denial").is_some(), "{record:?}");
}

#[tokio::test]
async fn a_denial_says_where_the_request_came_from_and_a_permit_does_not() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let from = std::net::IpAddr::from([10, 0, 0, 7]);
    let task = || Request::new(Action::task("t")).with_source(from);
    let _denied = g.check(&Credential::password("writer_bot", "wrong"), task()).await.unwrap_err();
    assert_eq!(detail(&sink.last(), "source"), Some("10.0.0.7"));
    let _permit = g.check(&research(), task()).await.unwrap();
    assert_eq!(detail(&sink.last(), "source"), None, "a permit carries the source");
}

#[tokio::test]
async fn a_refused_login_or_refresh_says_where_it_came_from() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let from = std::net::IpAddr::from([10, 0, 0, 9]);
    let _denied = g.login_from(&Credential::password("writer_bot", "wrong"), Some(from)).await.unwrap_err();
    assert_eq!(sink.last().event, AuditEvent::Login);
    assert_eq!(detail(&sink.last(), "source"), Some("10.0.0.9"));
    let _denied = g.refresh_from(&secrecy::SecretString::from("r"), Some(from)).await.unwrap_err();
    assert_eq!(sink.last().event, AuditEvent::TokenRefresh);
    assert_eq!(detail(&sink.last(), "source"), Some("10.0.0.9"));
    // Without a network peer there is nothing to record.
    let _denied = g.login(&Credential::password("writer_bot", "wrong")).await.unwrap_err();
    assert_eq!(detail(&sink.last(), "source"), None);
}

#[tokio::test]
async fn a_policy_denial_names_the_target_agents_segment_and_a_permit_does_not() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(
        FnPolicy(Box::new(|r: &AuthzRequest| {
            Ok(match r.action().name() {
                "open" => decision(Basis::Permitted, "allow-open"),
                _ => decision(Basis::DefaultDeny, "default"),
            })
        })),
        sink.clone(),
    );
    let to_writer =
        |name: &str| Request::new(Action::task(name)).with_target(AgentId::new("writer_bot").unwrap());
    let _denied = g.check(&research(), to_writer("closed")).await.unwrap_err();
    assert_eq!(detail(&sink.last(), "target_segment"), Some("writing"));
    let _permit = g.check(&research(), to_writer("open")).await.unwrap();
    assert_eq!(detail(&sink.last(), "target_segment"), None, "a permit carries the segment");
}
