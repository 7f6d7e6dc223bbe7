//! A bearer token from an identity provider goes to the one provider that lists its issuer,
//! never to one provider after another; two providers listing one issuer cannot be built.
#![allow(clippy::unwrap_used, clippy::panic)]
use crate::common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use secrecy::SecretString;
use time::OffsetDateTime;
use zta_core::*;

/// Accepts any bearer token whose issuer it lists and says who it is in the principal.
#[derive(Debug)]
struct IssuerProvider {
    name: &'static str,
    issuers: Vec<&'static str>,
    sessions: bool,
    calls: AtomicUsize,
}

impl IssuerProvider {
    fn new(name: &'static str, issuers: &[&'static str]) -> Arc<Self> {
        Arc::new(Self { name, issuers: issuers.to_vec(), sessions: true, calls: AtomicUsize::new(0) })
    }
}

#[async_trait]
impl IdentityProvider for IssuerProvider {
    fn name(&self) -> &str {
        self.name
    }
    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Bearer(_))
    }
    fn issuers(&self) -> Vec<String> {
        self.issuers.iter().map(|i| (*i).to_owned()).collect()
    }
    fn issues_session_tokens(&self) -> bool {
        self.sessions
    }
    async fn authenticate(&self, _: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = OffsetDateTime::now_utc();
        Ok(std::sync::Arc::new(
            Principal::new(
                AgentId::new("research_bot").unwrap(),
                self.name,
                AuthMethod::Oidc,
                now,
                now + time::Duration::minutes(5),
            )
            .with_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .with_claim("xms_par_app_azp", "blueprint-app"),
        ))
    }
}

/// Issues a fixed pair; recognises none of the bearer tokens used here as its own.
#[derive(Debug)]
struct FixedTokens;

#[async_trait]
impl TokenAuthority for FixedTokens {
    fn accepts(&self, _: &Credential) -> bool {
        false
    }
    async fn issue(&self, _: &Principal) -> Result<SessionTokens, TokenError> {
        Ok(SessionTokens {
            access_token: SecretString::from("access"),
            refresh_token: SecretString::from("refresh"),
            expires_in: std::time::Duration::from_secs(300),
        })
    }
    async fn verify(&self, _: &SecretString) -> Result<zta_core::VerifiedToken, AuthError> {
        Err(AuthError::invalid("not a session token"))
    }
    async fn refresh(&self, _: &SecretString) -> Result<(Principal, SessionTokens), AuthError> {
        Err(AuthError::invalid("not a session token"))
    }
    async fn revoke_token(&self, _: &SecretString) -> Result<(), TokenError> {
        Ok(())
    }
    async fn revoke_agent(&self, _: &AgentId) -> Result<(), TokenError> {
        Ok(())
    }
}

/// An unsigned compact JWS with this payload (the providers here verify nothing).
fn token(payload: &str) -> Credential {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#);
    Credential::bearer(format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload)))
}

fn guard_with(providers: &[Arc<IssuerProvider>], sink: Arc<MemorySink>) -> Guard {
    let mut builder = Guard::builder(Arc::new(allow_all()), sink).token_authority(Arc::new(FixedTokens));
    for p in providers {
        builder = builder.identity_provider(p.clone());
    }
    builder.build().unwrap()
}

fn invalid_detail(denied: &Denied) -> String {
    match denied.reason() {
        DenyReason::Unauthenticated(AuthError::Invalid { detail }) => detail.to_string(),
        other => panic!("expected an invalid credential, got {other:?}"),
    }
}

#[tokio::test]
async fn each_token_reaches_the_provider_listing_its_issuer() {
    let a = IssuerProvider::new("entra", &["https://login.example/t1/v2.0", "https://sts.example/t1/"]);
    let b = IssuerProvider::new("keycloak", &["https://kc.example/realms/agents"]);
    let sink = Arc::new(MemorySink::default());
    let g = guard_with(&[a.clone(), b.clone()], sink.clone());

    let permit = g
        .check(
            &token(r#"{"iss":"https://kc.example/realms/agents","sub":"x"}"#),
            Request::new(Action::task("t")),
        )
        .await
        .unwrap();
    assert_eq!(permit.principal().issuer, "keycloak");
    let permit = g
        .check(&token(r#"{"iss":"https://sts.example/t1/"}"#), Request::new(Action::task("t")))
        .await
        .unwrap();
    assert_eq!(permit.principal().issuer, "entra");
    assert_eq!((a.calls.load(Ordering::SeqCst), b.calls.load(Ordering::SeqCst)), (1, 1));

    // The tenant and the claims the issuer vouched for are in the audit record.
    let record = sink.last();
    assert_eq!(record.tenant.as_deref(), Some("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    assert_eq!(record.claims.as_ref().unwrap()["xms_par_app_azp"], "blueprint-app");
}

#[tokio::test]
async fn unknown_missing_or_ambiguous_issuer_is_denied_without_asking_any_provider() {
    let a = IssuerProvider::new("entra", &["https://login.example/t1/v2.0"]);
    let b = IssuerProvider::new("keycloak", &["https://kc.example/realms/agents"]);
    let sink = Arc::new(MemorySink::default());
    let g = guard_with(&[a.clone(), b.clone()], sink.clone());

    let cases = [
        (
            token(r#"{"iss":"https://evil.example/"}"#),
            "no identity provider trusts issuer `https://evil.example/`",
        ),
        (token(r#"{"sub":"x"}"#), "bearer token without a readable `iss`"),
        (token(r#"{"iss":7}"#), "bearer token without a readable `iss`"),
        // Two `iss` members could route to one provider and be read by another: refused.
        (
            token(r#"{"iss":"https://kc.example/realms/agents","iss":"https://login.example/t1/v2.0"}"#),
            "bearer token without a readable `iss`",
        ),
        (Credential::bearer("not-a-jwt"), "bearer token without a readable `iss`"),
        (Credential::bearer("a.!!!.c"), "bearer token without a readable `iss`"),
        (Credential::bearer("a.e30.c.d"), "bearer token without a readable `iss`"),
    ];
    for (credential, expected) in cases {
        let denied = g.check(&credential, Request::new(Action::task("t"))).await.unwrap_err();
        assert_eq!(invalid_detail(&denied), expected);
        assert_eq!(sink.last().effect, Effect::Deny);
    }
    assert_eq!((a.calls.load(Ordering::SeqCst), b.calls.load(Ordering::SeqCst)), (0, 0));
}

#[tokio::test]
async fn a_single_issuer_provider_takes_every_bearer_token_and_checks_the_issuer_itself() {
    let a = IssuerProvider::new("entra", &["https://login.example/t1/v2.0"]);
    let g = guard_with(std::slice::from_ref(&a), Arc::new(MemorySink::default()));
    let _permit = g
        .check(&token(r#"{"iss":"https://other.example/"}"#), Request::new(Action::task("t")))
        .await
        .unwrap();
    assert_eq!(a.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn two_providers_listing_one_issuer_cannot_be_built() {
    let a = IssuerProvider::new("entra-a", &["https://login.example/t1/v2.0"]);
    let b = IssuerProvider::new("entra-b", &["https://other.example/", "https://login.example/t1/v2.0"]);
    let err = Guard::builder(Arc::new(allow_all()), Arc::new(MemorySink::default()))
        .identity_provider(a)
        .identity_provider(b)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "issuer `https://login.example/t1/v2.0` is listed by two identity providers (`entra-a` and `entra-b`)"
    );
}

#[tokio::test]
async fn login_exchanges_only_where_the_provider_allows_it() {
    let open = IssuerProvider::new("entra", &["https://login.example/t1/v2.0"]);
    let closed = Arc::new(IssuerProvider {
        name: "keycloak",
        issuers: vec!["https://kc.example/realms/agents"],
        sessions: false,
        calls: AtomicUsize::new(0),
    });
    let sink = Arc::new(MemorySink::default());
    let g = guard_with(&[open, closed.clone()], sink.clone());

    g.login(&token(r#"{"iss":"https://login.example/t1/v2.0"}"#)).await.unwrap();
    assert_eq!(sink.last().event, AuditEvent::Login);
    assert_eq!(sink.last().effect, Effect::Allow);

    let denied = g.login(&token(r#"{"iss":"https://kc.example/realms/agents"}"#)).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::NoSession));
    assert_eq!(sink.last().effect, Effect::Deny);
    // Refused before any verification: the token is still good for requests.
    assert_eq!(closed.calls.load(Ordering::SeqCst), 0);
    let _permit = g
        .check(&token(r#"{"iss":"https://kc.example/realms/agents"}"#), Request::new(Action::task("t")))
        .await
        .unwrap();
}
