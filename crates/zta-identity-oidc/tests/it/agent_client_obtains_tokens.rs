//! The agent side: the client-credentials grant with a secret or a private-key assertion, the
//! token kept until it is due for renewal, and the token accepted by the verifier.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::ExposeSecret;
use serde_json::json;
use zta_identity_oidc::{AgentTokenClient, ClientAuth, ClientConfig, ClientError};

use crate::support::*;

const SECRET: &str = "research-bot-client-secret-3f9a1c";

async fn token_requests(tenant: &Tenant) -> u64 {
    let url = format!("{}/__test/{}/stats", server(), tenant.id);
    let stats: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    stats["token_requests"].as_u64().unwrap()
}

#[tokio::test]
async fn a_client_secret_obtains_a_token_the_verifier_accepts_and_it_is_kept() {
    let tenant = Tenant::new().await;
    tenant
        .control(
            "clients",
            json!({"client_id": RESEARCH_APP, "client_secret": SECRET, "resource": API, "roles": ["Agent.Invoke"]}),
        )
        .await;
    let auth = ClientAuth::Secret(SECRET.to_owned().into());
    let client =
        AgentTokenClient::new(ClientConfig::entra(&server(), &tenant.id, RESEARCH_APP, auth, API)).unwrap();
    let token = client.token().await.unwrap();
    let again = client.token().await.unwrap();
    assert_eq!(token.expose_secret(), again.expose_secret());
    assert_eq!(token_requests(&tenant).await, 1, "the second call reuses the kept token");

    let provider = tenant.provider().await;
    let principal = verify(&provider, token.expose_secret()).await.unwrap();
    assert_eq!(principal.agent_id.as_str(), "research_bot");
    assert_eq!(principal.roles, ["Agent.Invoke"]);
    assert!(!format!("{client:?}").contains(SECRET));
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let tenant = Tenant::new().await;
    // A 2-second token: half its lifetime is the renewal margin, so the next call renews.
    tenant
        .control(
            "clients",
            json!({"client_id": RESEARCH_APP, "client_secret": SECRET, "resource": API, "roles": ["Agent.Invoke"], "lifetime": 2}),
        )
        .await;
    let auth = ClientAuth::Secret(SECRET.to_owned().into());
    let client =
        AgentTokenClient::new(ClientConfig::entra(&server(), &tenant.id, RESEARCH_APP, auth, API)).unwrap();
    client.token().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    client.token().await.unwrap();
    assert_eq!(token_requests(&tenant).await, 2);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_token_endpoint() {
    let tenant = Tenant::new().await;
    tenant
        .control("clients", json!({"client_id": RESEARCH_APP, "client_secret": SECRET, "resource": API}))
        .await;
    let auth = ClientAuth::Secret("not-the-secret".to_owned().into());
    let client =
        AgentTokenClient::new(ClientConfig::entra(&server(), &tenant.id, RESEARCH_APP, auth, API)).unwrap();
    match client.token().await {
        Err(ClientError::Refused(why)) => assert!(why.starts_with("invalid_client"), "{why}"),
        other => panic!("{other:?}"),
    }
    let unreachable = ClientConfig::entra(
        "http://127.0.0.1:9",
        &tenant.id,
        RESEARCH_APP,
        ClientAuth::Secret(SECRET.to_owned().into()),
        API,
    );
    assert!(matches!(
        AgentTokenClient::new(unreachable).unwrap().token().await,
        Err(ClientError::Unavailable(_))
    ));
    let plain = ClientConfig::new(
        "http://login.example.com/token",
        RESEARCH_APP,
        ClientAuth::Secret(SECRET.to_owned().into()),
    );
    assert!(matches!(AgentTokenClient::new(plain), Err(ClientError::Config { field: "token_url", .. })));
}

#[tokio::test]
async fn a_private_key_assertion_obtains_a_token() {
    let tenant = Tenant::new().await;
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref().to_vec();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public)});
    tenant
        .control(
            "clients",
            json!({"client_id": RESEARCH_APP, "public_jwk": jwk, "resource": API, "roles": ["Agent.Invoke"]}),
        )
        .await;
    let pem = zta_crypto::pem::encode("PRIVATE KEY", pkcs8.as_ref());
    let auth = ClientAuth::PrivateKey {
        pem: pem.as_str().to_owned().into(),
        algorithm: jsonwebtoken::Algorithm::EdDSA,
        kid: None,
        x5t: None,
    };
    let client =
        AgentTokenClient::new(ClientConfig::entra(&server(), &tenant.id, RESEARCH_APP, auth, API)).unwrap();
    let credential = client.credential().await.unwrap();
    let provider = tenant.provider().await;
    let principal = zta_core::IdentityProvider::authenticate(&provider, &credential).await.unwrap();
    assert_eq!(principal.agent_id.as_str(), "research_bot");
    assert_eq!(principal.claims["azp"], RESEARCH_APP);

    let bad = ClientAuth::PrivateKey {
        pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned().into(),
        algorithm: jsonwebtoken::Algorithm::EdDSA,
        kid: None,
        x5t: None,
    };
    let error = AgentTokenClient::new(ClientConfig::entra(&server(), &tenant.id, RESEARCH_APP, bad, API))
        .unwrap_err();
    assert!(matches!(error, ClientError::Config { field: "auth", .. }), "{error}");
}
