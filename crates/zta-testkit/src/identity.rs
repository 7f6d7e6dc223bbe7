//! The [`IdentityProvider`] conformance suite.
//!
//! A suite cannot make valid credentials for an arbitrary provider, so the backend's test
//! implements [`IdentityFixture`]: how to build the provider over a given state store, how to
//! make a valid, a wrong and an unknown agent's credential, and which principal the valid one
//! must yield. A provider that takes several kinds of credential (the static provider's
//! assertions and secrets) runs the suite once per kind, with one fixture each.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, Credential, IdentityProvider, MAX_CREDENTIAL_LEN, Principal, StateStore};

use crate::{FailingStore, StateOp, must};

/// A text the malformed-input checks present, and that no error may echo back.
pub const MARKER: &str = "zta-testkit-marker-c2VjcmV0";

/// What the suite needs from a provider's test: the provider, and credentials for it.
#[async_trait]
pub trait IdentityFixture: Send + Sync {
    /// The provider under test, keeping its one-time ids and lockout counters in `state`. It
    /// declares the agent of [`expected`](Self::expected).
    fn provider(&self, state: Arc<dyn StateStore>) -> Arc<dyn IdentityProvider>;

    /// A new valid credential of the known agent (a fresh one per call, since one-time
    /// credentials work once).
    async fn valid(&self) -> Credential;

    /// A credential of the same kind for the known agent that must be refused: signed with
    /// another key, or a wrong secret.
    async fn wrong(&self) -> Credential;

    /// A credential of the same kind, made as a valid one is, for an agent the provider does
    /// not know.
    async fn unknown_agent(&self) -> Credential;

    /// A credential of the same kind carrying `text` where the provider expects its
    /// structured input (the JWT, the user name and secret), for the malformed-input checks.
    fn malformed(&self, text: &str) -> Credential;

    /// A kind of credential the provider does not take, if there is one.
    fn unsupported(&self) -> Option<Credential>;

    /// Whether [`valid`](Self::valid) credentials work once only (assertions), so presenting
    /// one again must be [`AuthError::Replayed`].
    fn one_time(&self) -> bool;

    /// The principal a valid credential must yield.
    fn expected(&self) -> Expected;

    /// Whether the provider can tell, without verifying, which agents it has (a configured
    /// list, an IdP's mapped apps). A directory cannot: it declares no agent, and the guard
    /// routes credentials of its kind to it when no other provider declares them. Default yes.
    fn declares_agents(&self) -> bool {
        true
    }

    /// Whether the provider may name an unknown agent in the audit detail of its refusal. Only
    /// a provider that looks the agent up after the credential's signature is verified (an
    /// identity provider's token for an app not mapped to an agent) may: its caller proved it
    /// holds a valid token, and learns nothing from the refusal, whose `Display` stays the same
    /// as a wrong credential's. The default is no: the refusals must not differ at all.
    fn audit_names_unknown_agents(&self) -> bool {
        false
    }

    /// Secrets the provider was configured with (private keys, client secrets, bind
    /// passwords), which must never appear in its `Debug` or in an error.
    fn secrets(&self) -> Vec<String>;
}

/// The principal fields a valid credential of the fixture's agent must yield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The agent the credential proves.
    pub agent: AgentId,
    /// Its roles, in the order configured.
    pub roles: Vec<String>,
    /// Its groups, in the order configured.
    pub groups: Vec<String>,
    /// Its segment.
    pub segment: Option<String>,
    /// Its tenant.
    pub tenant: Option<String>,
}

/// Runs every check of this module. A provider that keeps no state calls the other checks
/// one by one and leaves out [`fails_closed_on_store_errors`].
pub async fn run_all(fixture: &dyn IdentityFixture) {
    valid_credential_yields_the_principal(fixture).await;
    wrong_kind_is_unsupported(fixture).await;
    malformed_input_is_invalid(fixture).await;
    unknown_agent_fails_like_a_wrong_credential(fixture).await;
    one_time_credentials_are_not_replayable(fixture).await;
    fails_closed_on_store_errors(fixture).await;
    no_secret_in_debug_or_errors(fixture).await;
}

fn fresh(fixture: &dyn IdentityFixture) -> Arc<dyn IdentityProvider> {
    fixture.provider(Arc::new(zta_core::MemoryStateStore::new()))
}

/// Authenticates on a task of its own, so a panic in the provider is reported as a broken
/// contract instead of tearing down the check.
async fn authenticate(
    provider: &Arc<dyn IdentityProvider>,
    credential: &Credential,
) -> Result<Arc<Principal>, AuthError> {
    let kind = credential.kind();
    let (provider, credential) = (provider.clone(), credential.clone());
    match tokio::spawn(async move { provider.authenticate(&credential).await }).await {
        Ok(result) => result,
        Err(e) => panic!("the provider panicked on a `{kind}` credential instead of refusing it ({e})"),
    }
}

/// A valid credential yields the configured principal: its agent id is the verified identity,
/// its issuer is the provider's name, it expires after it was authenticated and is not
/// expired now, and its roles, groups, segment and tenant are as configured. The provider
/// `accepts` and `declares` the credential, lists the agent if it lists any, and knows its
/// segment if it answers at all.
pub async fn valid_credential_yields_the_principal(fixture: &dyn IdentityFixture) {
    let provider = fresh(fixture);
    let expected = fixture.expected();
    let credential = fixture.valid().await;
    assert!(provider.accepts(&credential), "the provider does not accept its own kind of credential");
    assert!(
        provider.declares(&credential) || !fixture.declares_agents(),
        "the provider does not declare the agent of a valid credential"
    );
    let listed = provider.declared_agents();
    assert!(
        listed.is_empty() || listed.contains(&expected.agent),
        "the provider lists its agents but not `{}`",
        expected.agent
    );

    let before = OffsetDateTime::now_utc();
    let principal = match authenticate(&provider, &credential).await {
        Ok(principal) => principal,
        Err(e) => panic!("a valid credential was refused: {}", e.detail()),
    };
    assert_eq!(principal.agent_id, expected.agent, "the principal's agent id is not the verified identity");
    assert!(
        principal.issuer == provider.name() || provider.issuers().contains(&principal.issuer),
        "the principal's issuer is neither the provider's name nor one of its issuers"
    );
    assert!(
        principal.expires_at > principal.authenticated_at,
        "the principal expires before it was authenticated"
    );
    assert!(!principal.is_expired_at(before), "the principal is already expired when it is made");
    assert_eq!(principal.roles, expected.roles, "the principal's roles are not the configured ones");
    assert_eq!(principal.groups, expected.groups, "the principal's groups are not the configured ones");
    assert_eq!(principal.segment, expected.segment, "the principal's segment is not the configured one");
    assert_eq!(principal.tenant, expected.tenant, "the principal's tenant is not the configured one");

    let segment = provider.segment_of(&expected.agent).await;
    assert!(
        segment.is_none() || segment == expected.segment,
        "segment_of gives another segment than the principal's"
    );
}

/// A credential of a kind the provider does not take: `accepts` is false and `authenticate`
/// refuses it as [`AuthError::Unsupported`] naming that kind.
pub async fn wrong_kind_is_unsupported(fixture: &dyn IdentityFixture) {
    let Some(other) = fixture.unsupported() else {
        return;
    };
    let provider = fresh(fixture);
    assert!(
        !provider.accepts(&other),
        "the provider accepts a `{}` credential it does not take",
        other.kind()
    );
    assert!(
        !provider.declares(&other),
        "the provider declares the agent of a kind of credential it does not take"
    );
    assert_eq!(
        authenticate(&provider, &other).await.err(),
        Some(AuthError::Unsupported(other.kind())),
        "a credential of a kind the provider does not take is not refused as Unsupported"
    );
}

/// Malformed input of the accepted kind (empty, garbage, three dots, control and replacement
/// characters, one byte over [`MAX_CREDENTIAL_LEN`], a megabyte) is refused as
/// [`AuthError::Invalid`], without panicking.
pub async fn malformed_input_is_invalid(fixture: &dyn IdentityFixture) {
    let provider = fresh(fixture);
    let inputs = [
        String::new(),
        MARKER.to_owned(),
        format!("{MARKER}.{MARKER}.{MARKER}"),
        "..".to_owned(),
        "\u{0}\u{fffd}\u{202e}\u{feff}\r\n\u{7f}".to_owned(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
        "a".repeat(MAX_CREDENTIAL_LEN + 1),
        "b".repeat(1 << 20),
    ];
    for input in inputs {
        let shown = input.chars().take(24).collect::<String>();
        match authenticate(&provider, &fixture.malformed(&input)).await {
            Err(AuthError::Invalid { .. }) => {}
            other => panic!(
                "malformed input ({} bytes, starting {shown:?}) is not refused as Invalid: {other:?}",
                input.len()
            ),
        }
    }
}

/// An unknown agent is refused exactly as a wrong credential of a known one is (same variant,
/// same detail), so errors cannot tell which agents exist; see
/// [`IdentityFixture::audit_names_unknown_agents`] for the one exception.
pub async fn unknown_agent_fails_like_a_wrong_credential(fixture: &dyn IdentityFixture) {
    let provider = fresh(fixture);
    let wrong = authenticate(&provider, &fixture.wrong().await).await;
    let unknown_credential = fixture.unknown_agent().await;
    let unknown = authenticate(&provider, &unknown_credential).await;
    assert!(wrong.is_err(), "a wrong credential of a known agent was accepted");
    assert!(unknown.is_err(), "a credential of an unknown agent was accepted");
    assert!(!provider.declares(&unknown_credential), "the provider declares an agent it does not know");
    let (wrong, unknown) = (wrong.err(), unknown.err());
    assert!(
        matches!(wrong, Some(AuthError::Invalid { .. })),
        "a wrong credential is not refused as Invalid: {wrong:?}"
    );
    if fixture.audit_names_unknown_agents() {
        assert!(
            matches!(unknown, Some(AuthError::Invalid { .. })),
            "an unknown agent is not refused as Invalid: {unknown:?}"
        );
        assert_eq!(
            wrong.as_ref().map(ToString::to_string),
            unknown.as_ref().map(ToString::to_string),
            "an unknown agent is refused differently from a wrong credential (the caller can tell)"
        );
        return;
    }
    assert_eq!(
        wrong.as_ref().map(AuthError::detail),
        unknown.as_ref().map(AuthError::detail),
        "an unknown agent is refused differently from a wrong credential (errors tell which agents exist)"
    );
}

/// A one-time credential works once: presented again (to the same provider, or to another one
/// over the same state store, as a replica would be) it is [`AuthError::Replayed`].
pub async fn one_time_credentials_are_not_replayable(fixture: &dyn IdentityFixture) {
    if !fixture.one_time() {
        return;
    }
    let state: Arc<dyn StateStore> = Arc::new(zta_core::MemoryStateStore::new());
    let (provider, replica) = (fixture.provider(state.clone()), fixture.provider(state));
    let credential = fixture.valid().await;
    must("the first use of a one-time credential", authenticate(&provider, &credential).await);
    assert_eq!(
        authenticate(&provider, &credential).await.err(),
        Some(AuthError::Replayed),
        "a one-time credential presented again was not refused as Replayed"
    );
    let other = fixture.valid().await;
    must("the first use of a one-time credential", authenticate(&provider, &other).await);
    assert_eq!(
        authenticate(&replica, &other).await.err(),
        Some(AuthError::Replayed),
        "a one-time credential replayed to a replica sharing the state store was not refused as Replayed"
    );
}

/// With every state-store operation failing, a valid credential is refused as
/// [`AuthError::StateUnavailable`] (never accepted, never blamed on the credential); once the
/// store recovers, a fresh valid credential works.
pub async fn fails_closed_on_store_errors(fixture: &dyn IdentityFixture) {
    let store = Arc::new(FailingStore::new());
    let provider = fixture.provider(store.clone());
    store.fail(&StateOp::ALL);
    match authenticate(&provider, &fixture.valid().await).await {
        Err(AuthError::StateUnavailable { .. }) => {}
        Ok(_) => panic!("the provider authenticated while its state store was failing (fail-open)"),
        Err(e) => panic!("a state-store failure is not reported as StateUnavailable: {e:?}"),
    }
    store.recover();
    let after = authenticate(&provider, &fixture.valid().await).await;
    assert!(after.is_ok(), "the provider does not recover with its state store: {after:?}");
}

/// No configured secret shows in the provider's `Debug`, and no error (its `Display` or its
/// audit detail) repeats a secret, the presented credential or [`MARKER`].
pub async fn no_secret_in_debug_or_errors(fixture: &dyn IdentityFixture) {
    let provider = fresh(fixture);
    let mut secrets = fixture.secrets();
    secrets.push(MARKER.to_owned());
    let debug = format!("{provider:?}");
    for secret in &secrets {
        assert!(!secret.is_empty(), "the fixture lists an empty secret");
        assert!(!debug.contains(secret.as_str()), "the provider's Debug shows a secret");
    }

    let used = fixture.valid().await;
    must("a valid credential", authenticate(&provider, &used).await);
    let mut presented =
        vec![fixture.wrong().await, fixture.unknown_agent().await, fixture.malformed(MARKER), used];
    presented.push(fixture.malformed(&format!("{MARKER}.{MARKER}.{MARKER}")));
    let failing = Arc::new(FailingStore::new());
    let down = fixture.provider(failing.clone());
    failing.fail(&StateOp::ALL);
    let outage = authenticate(&down, &fixture.valid().await).await.err();

    let mut errors: Vec<(String, AuthError)> = Vec::new();
    for credential in &presented {
        if let Err(e) = authenticate(&provider, credential).await {
            errors.push((format!("a {} credential", credential.kind()), e));
        }
        for part in secret_parts(credential) {
            secrets.push(part);
        }
    }
    errors.extend(outage.map(|e| ("a store outage".to_owned(), e)));
    assert!(errors.len() >= 3, "the provider refused too few of the bad credentials to check its errors");
    for (what, error) in errors {
        let shown = format!("{error} | {} | {error:?}", error.detail());
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "the error for {what} repeats a secret or the credential"
            );
        }
    }
}

/// The secret text of a credential, when long enough that finding it in an error is no
/// coincidence.
fn secret_parts(credential: &Credential) -> Vec<String> {
    let secret = match credential {
        Credential::Bearer(s) | Credential::AgentAssertion(s) => s.expose_secret().to_owned(),
        Credential::Password { password, .. } => password.expose_secret().to_owned(),
        _ => String::new(),
    };
    let mut parts = vec![secret.clone()];
    // A JWT's signature alone is secret enough to matter.
    parts.extend(secret.rsplit('.').next().map(str::to_owned));
    parts.retain(|p| p.len() >= 8);
    parts
}
