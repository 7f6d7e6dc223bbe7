//! The `zta-testkit` identity conformance suite, against the directory.

use std::sync::Arc;

use async_trait::async_trait;
use zta_core::{Credential, IdentityProvider, StateStore};
use zta_testkit::identity::{Expected, IdentityFixture};

use crate::support::*;

struct Directory {
    scratch: tempfile::TempDir,
}

#[async_trait]
impl IdentityFixture for Directory {
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider> {
        Arc::new(provider_with(config(&self.scratch), state).unwrap())
    }
    async fn valid(&self) -> Credential {
        Credential::password("research_bot", "research-secret")
    }
    async fn wrong(&self) -> Credential {
        Credential::password("research_bot", "not-the-secret")
    }
    async fn unknown_agent(&self) -> Credential {
        Credential::password("ghost_bot", "not-the-secret")
    }
    fn malformed(&self, text: &str) -> Credential {
        Credential::password(text, text)
    }
    fn unsupported(&self) -> Option<Credential> {
        Some(Credential::bearer("a.b.c"))
    }
    fn one_time(&self) -> bool {
        false
    }
    fn declares_agents(&self) -> bool {
        false
    }
    fn expected(&self) -> Expected {
        Expected {
            agent: zta_core::AgentId::new("research_bot").unwrap(),
            roles: vec!["reader".into(), "researcher".into()],
            groups: vec![
                "cn=researchers,ou=groups,dc=zta,dc=test".into(),
                "cn=tools-readers,ou=groups,dc=zta,dc=test".into(),
            ],
            segment: Some("research".into()),
            tenant: None,
        }
    }
    fn secrets(&self) -> Vec<String> {
        vec![GATEWAY_SECRET.to_owned(), "research-secret".to_owned()]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_passes_the_identity_suite() {
    zta_testkit::identity::run_all(&Directory { scratch: tempfile::tempdir().unwrap() }).await;
}
