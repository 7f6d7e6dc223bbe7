//! The `zta-testkit` identity conformance suite, against the Entra profile.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use zta_core::{Credential, IdentityProvider, StateStore};
use zta_identity_oidc::OidcProvider;
use zta_testkit::identity::{Expected, IdentityFixture};

use crate::support::*;

struct Entra {
    tenant: Tenant,
}

#[async_trait]
impl IdentityFixture for Entra {
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider> {
        let config = serde_json::from_value(self.tenant.entra()).unwrap();
        let build = OidcProvider::entra(config, state);
        Arc::new(tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(build)).unwrap())
    }

    async fn valid(&self) -> Credential {
        Credential::bearer(self.tenant.sign(self.tenant.v2_claims(), json!({})).await)
    }

    async fn wrong(&self) -> Credential {
        let token = self.tenant.sign(self.tenant.v2_claims(), json!({})).await;
        let (body, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        Credential::bearer(format!("{body}.{flipped}{}", &signature[1..]))
    }

    async fn unknown_agent(&self) -> Credential {
        let claims = with(self.tenant.v2_claims(), "azp", json!("00000000-1111-4222-8333-444444444444"));
        Credential::bearer(self.tenant.sign(claims, json!({})).await)
    }

    fn malformed(&self, text: &str) -> Credential {
        Credential::bearer(text)
    }

    fn unsupported(&self) -> Option<Credential> {
        Some(Credential::password("research_bot", "a-password"))
    }

    fn one_time(&self) -> bool {
        false
    }

    fn audit_names_unknown_agents(&self) -> bool {
        true
    }

    fn expected(&self) -> Expected {
        Expected {
            agent: zta_core::AgentId::new("research_bot").unwrap(),
            roles: vec!["Agent.Invoke".into(), "Research.Read".into()],
            groups: Vec::new(),
            segment: Some("research".into()),
            tenant: Some(self.tenant.id.clone()),
        }
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entra_profile_passes_the_identity_suite() {
    zta_testkit::identity::run_all(&Entra { tenant: Tenant::new().await }).await;
}
