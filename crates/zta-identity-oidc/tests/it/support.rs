//! The local OIDC test server (`cargo xtask services` starts it): each test takes a tenant of
//! its own, so tests never share keys, clients or failure modes.

use std::sync::Arc;

use serde_json::{Value, json};
use zta_core::{AuthError, Credential, IdentityProvider, MemoryStateStore, Principal};
use zta_identity_oidc::{EntraConfig, OidcConfig, OidcProvider};

/// This API's client id: the audience of the tokens the tests make.
pub(crate) const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
/// The App ID URI of the same API.
pub(crate) const API_URI: &str = "api://6e74172b-be56-4843-9ff4-e66a39bb12e3";
/// The app id of the research agent.
pub(crate) const RESEARCH_APP: &str = "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f";

pub(crate) fn server() -> String {
    std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| "http://127.0.0.1:17080".to_owned())
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One tenant of the test server.
pub(crate) struct Tenant {
    pub(crate) id: String,
    http: reqwest::Client,
}

impl Tenant {
    /// A new tenant with a random id; fails with a clear message when the server is not up.
    pub(crate) async fn new() -> Self {
        Self::named(&uuid::Uuid::new_v4().to_string()).await
    }

    /// The tenant `id` (`organizations` for the multi-tenant key set).
    pub(crate) async fn named(id: &str) -> Self {
        let http = reqwest::Client::new();
        let health = http.get(format!("{}/__test/health", server())).send().await;
        assert!(
            health.is_ok_and(|r| r.status().is_success()),
            "the OIDC test server does not answer at {} (ZTA_TEST_OIDC_URL); start it with `cargo xtask services`",
            server()
        );
        Self { id: id.to_owned(), http }
    }

    pub(crate) fn v2_issuer(&self) -> String {
        format!("{}/{}/v2.0", server(), self.id)
    }

    pub(crate) fn v1_issuer(&self) -> String {
        format!("{}/sts/{}/", server(), self.id)
    }

    pub(crate) async fn control(&self, what: &str, body: Value) -> Value {
        let url = format!("{}/__test/{}/{what}", server(), self.id);
        let response = self.http.post(&url).json(&body).send().await.expect("the test server answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("the test server answers JSON");
        assert!(status.is_success(), "{url}: {status} {answer}");
        answer
    }

    /// A token over exactly `claims`, signed with the tenant's current key; `header` members
    /// are added (`null` removes one).
    pub(crate) async fn sign(&self, claims: Value, header: Value) -> String {
        let answer = self.control("sign", json!({"claims": claims, "header": header})).await;
        answer["token"].as_str().expect("a token").to_owned()
    }

    pub(crate) async fn sign_with(&self, kid: &str, claims: Value) -> String {
        let answer = self.control("sign", json!({"claims": claims, "key": kid})).await;
        answer["token"].as_str().expect("a token").to_owned()
    }

    pub(crate) async fn mode(&self, modes: Value) {
        self.control("mode", modes).await;
    }

    pub(crate) async fn rotate(&self, drop_old: bool) -> String {
        self.control("rotate", json!({"drop_old": drop_old})).await["kid"].as_str().expect("a kid").to_owned()
    }

    pub(crate) async fn remove_key(&self, kid: &str) {
        self.control("remove-key", json!({"kid": kid})).await;
    }

    pub(crate) async fn public_key(&self) -> Value {
        let url = format!("{}/__test/{}/public-key", server(), self.id);
        self.http.get(url).send().await.expect("answers").json().await.expect("JSON")
    }

    pub(crate) async fn jwks_fetches(&self) -> u64 {
        let url = format!("{}/__test/{}/stats", server(), self.id);
        let stats: Value = self.http.get(url).send().await.expect("answers").json().await.expect("JSON");
        stats["jwks_fetches"].as_u64().expect("a count")
    }

    /// The claims of a valid app-only v2 token of the research agent.
    pub(crate) fn v2_claims(&self) -> Value {
        let now = now();
        json!({
            "aud": API, "iss": self.v2_issuer(), "iat": now, "nbf": now, "exp": now + 3600,
            "tid": self.id, "oid": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b", "sub": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b",
            "azp": RESEARCH_APP, "azpacr": "1", "roles": ["Agent.Invoke", "Research.Read"], "idtyp": "app",
            "ver": "2.0", "uti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// The claims of a valid app-only v1 token of the research agent.
    pub(crate) fn v1_claims(&self) -> Value {
        let mut claims = self.v2_claims();
        let map = claims.as_object_mut().expect("an object");
        map.remove("azp");
        map.remove("azpacr");
        map.insert("appid".into(), json!(RESEARCH_APP));
        map.insert("appidacr".into(), json!("1"));
        map.insert("iss".into(), json!(self.v1_issuer()));
        map.insert("aud".into(), json!(API_URI));
        map.insert("ver".into(), json!("1.0"));
        claims
    }

    /// The Entra profile for this tenant: both versions, app-only, `Agent.Invoke` required, the
    /// research app mapped to `research_bot`, and 1 s between unknown-kid fetches.
    pub(crate) fn entra(&self) -> Value {
        json!({
            "authority": server(),
            "v1_authority": format!("{}/sts", server()),
            "tenant": self.id,
            "audiences": [API, API_URI],
            "versions": ["v1", "v2"],
            "app_only": true,
            "required_roles": ["Agent.Invoke"],
            "agents": {RESEARCH_APP: "research_bot"},
            "segment": "research",
            "jwks": {"min_refetch": "1s", "refresh": "1h"},
            "http_timeout": "2s",
        })
    }

    pub(crate) async fn provider(&self) -> OidcProvider {
        entra_provider(self.entra()).await.expect("the provider builds")
    }
}

pub(crate) async fn entra_provider(config: Value) -> Result<OidcProvider, zta_identity_oidc::Error> {
    let config: EntraConfig = serde_json::from_value(config).expect("a valid Entra section");
    OidcProvider::entra(config, Arc::new(MemoryStateStore::new())).await
}

pub(crate) async fn oidc_provider(config: Value) -> Result<OidcProvider, zta_identity_oidc::Error> {
    let config: OidcConfig = serde_json::from_value(config).expect("a valid OIDC section");
    OidcProvider::oidc(config, Arc::new(MemoryStateStore::new())).await
}

pub(crate) async fn verify(provider: &OidcProvider, token: &str) -> Result<Arc<Principal>, AuthError> {
    provider.authenticate(&Credential::bearer(token)).await
}

/// The audit detail of a refusal.
pub(crate) fn detail(result: Result<Arc<Principal>, AuthError>) -> String {
    match result {
        Ok(p) => panic!("accepted as {}", p.agent_id),
        Err(e) => e.detail().into_owned(),
    }
}

/// `claims` with `name` set to `value` (`null` removes it).
pub(crate) fn with(mut claims: Value, name: &str, value: Value) -> Value {
    let map = claims.as_object_mut().expect("an object");
    if value.is_null() {
        map.remove(name);
    } else {
        map.insert(name.to_owned(), value);
    }
    claims
}
