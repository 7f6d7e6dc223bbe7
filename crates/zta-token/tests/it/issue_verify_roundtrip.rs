//! An issued access token verifies back to the principal it was issued for, and the token
//! has the documented shape.

use crate::common;

use common::*;
use serde_json::json;
use time::OffsetDateTime;
use zta_core::{AuthMethod, Credential, TokenAuthority};
use zta_token::{Algorithm, SigningKey};

#[tokio::test]
async fn issued_token_verifies_to_the_same_principal() {
    let f = fixture();
    let original = principal().with_claim("oid", "5f1c0b7e").with_claim("xms_par_app_azp", "blueprint");
    let tokens = f.service.issue(&original).await.unwrap();
    assert_eq!(tokens.expires_in, std::time::Duration::from_secs(300));

    let p = common::verify(&f.service, &tokens.access_token).await.unwrap();
    assert_eq!(p.agent_id, original.agent_id);
    assert_eq!(p.subject, AGENT);
    assert_eq!(p.roles, original.roles);
    assert_eq!(p.groups, original.groups);
    assert_eq!(p.segment.as_deref(), Some("research"));
    assert_eq!(p.tenant.as_deref(), Some("tenant-1"));
    // The claims the primary issuer vouched for carry over into the session (and its audit).
    assert_eq!(p.claims, original.claims);
    assert_eq!(p.delegation, vec!["user:alice".to_owned(), "planner".to_owned()]);
    assert_eq!(p.authenticated_at.unix_timestamp(), original.authenticated_at.unix_timestamp());
    // Documented choice: the session principal names the session token and its issuer.
    assert_eq!(p.auth_method, AuthMethod::SessionToken);
    assert_eq!(p.issuer, ISSUER);
    // ...and the issuer of the primary identity, whose provider confirms it at each refresh.
    assert_eq!(p.source_issuer.as_deref(), Some("static"));
    let exp = segment(access(&tokens), 1)["exp"].as_i64().unwrap();
    assert_eq!(p.expires_at.unix_timestamp(), exp);
    assert!((exp - now() - 300).abs() <= 2);

    // Verified twice (second time from the cache): same answer.
    assert_eq!(common::verify(&f.service, &tokens.access_token).await.unwrap(), p);
}

#[tokio::test]
async fn tokens_have_the_documented_shape() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let (ah, ac) = (segment(access(&tokens), 0), segment(access(&tokens), 1));
    let (rh, rc) = (segment(refresh(&tokens), 0), segment(refresh(&tokens), 1));

    assert_eq!(ah, json!({ "alg": "EdDSA", "typ": "zta-at+jwt", "kid": f.key.kid() }));
    assert_eq!(rh["typ"], "zta-rt+jwt");
    assert_eq!(ac["ztt"], "access");
    assert_eq!(rc["ztt"], "refresh");
    assert_eq!(ac["fam"], rc["fam"]);
    assert_ne!(ac["jti"], rc["jti"]);
    assert_eq!(ac["iss"], ISSUER);
    assert_eq!(ac["aud"], AUDIENCE);
    assert_eq!(ac["sub"], AGENT);
    assert_eq!(ac["nbf"], ac["iat"]);
    assert_eq!(ac["amr"], json!(["agent_key"]));
    assert_eq!(ac["src_iss"], "static");
    assert_eq!(ac["seg"], "research");
    assert_eq!(ac["tid"], "tenant-1");
    assert_eq!(ac["roles"], json!(["researcher", "reader"]));
    // RFC 8693: the least recent party (the original requester) is the most deeply nested.
    assert_eq!(ac["act"], json!({ "sub": "planner", "act": { "sub": "user:alice" } }));
    let refresh_life = rc["exp"].as_i64().unwrap() - rc["iat"].as_i64().unwrap();
    assert_eq!(refresh_life, 3600);
}

#[tokio::test]
async fn accepts_only_our_access_tokens() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    assert!(f.service.accepts(&Credential::bearer(access(&tokens))));
    assert!(!f.service.accepts(&Credential::bearer(refresh(&tokens))));
    assert!(!f.service.accepts(&Credential::bearer("not.a.token")));
    assert!(!f.service.accepts(&Credential::bearer("")));
    let oidc_like = format!("{}.{}.sig", b64(&json!({"alg":"RS256","typ":"JWT"})), b64(&json!({})));
    assert!(!f.service.accepts(&Credential::bearer(oidc_like)));
    let huge = format!("{}.{}", b64(&json!({"typ":"zta-at+jwt"})), "a".repeat(9000));
    assert!(!f.service.accepts(&Credential::bearer(huge)));
    assert!(!f.service.accepts(&Credential::password(AGENT, access(&tokens))));
    assert!(!f.service.accepts(&Credential::agent_assertion(access(&tokens))));
}

#[tokio::test]
async fn a_correctly_crafted_token_verifies() {
    // The control for the forged-token tests: the raw signer and claims are right, so when
    // those tests mutate one thing, that one thing is what gets the token refused.
    let f = fixture();
    let token = sign_raw(&f.key, &access_header(&f.key), &access_claims());
    let p = common::verify(&f.service, &secret(&token)).await.unwrap();
    assert_eq!(p.agent_id.as_str(), AGENT);
    assert_eq!(p.roles, vec!["researcher".to_owned()]);
}

#[tokio::test]
async fn issue_refuses_session_and_expired_principals() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let session_principal = common::verify(&f.service, &tokens.access_token).await.unwrap();
    assert!(f.service.issue(&session_principal).await.is_err());

    let past = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let expired = zta_core::Principal::new(
        zta_core::AgentId::new(AGENT).unwrap(),
        "static",
        AuthMethod::AgentKey,
        past,
        past + time::Duration::hours(1),
    );
    assert!(f.service.issue(&expired).await.is_err());
}

#[tokio::test]
async fn es256_and_rs256_keys_work_end_to_end() {
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let mut config = config();
        config.algorithm = alg;
        let f = fixture_with(config, SigningKey::generate(alg).unwrap());
        let tokens = f.service.issue(&principal()).await.unwrap();
        assert_eq!(segment(access(&tokens), 0)["alg"], alg.as_str());
        let p = common::verify(&f.service, &tokens.access_token).await.unwrap();
        assert_eq!(p.agent_id.as_str(), AGENT);
        let (p2, _) = f.service.refresh(&tokens.refresh_token).await.unwrap();
        assert_eq!(p2.roles, p.roles);
    }
}
