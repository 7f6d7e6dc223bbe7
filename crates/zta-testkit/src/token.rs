//! The [`TokenAuthority`] conformance suite.
//!
//! The backend's test implements [`TokenFixture`]: how to build the authority over a given
//! state store, reading the time from a [`ManualClock`] the suite moves (so expiry is checked
//! without sleeping), and how long its access tokens live.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, AuthMethod, Credential, Principal, StateStore, TokenAuthority};

use crate::{FailingStore, StateOp, must};

/// What the suite needs from an authority's test.
pub trait TokenFixture: Send + Sync {
    /// The authority under test, keeping revocations in `state` and reading the time from
    /// `clock` alone (also for `exp`/`nbf`).
    fn authority(&self, state: Arc<dyn StateStore>, clock: ManualClock) -> Arc<dyn TokenAuthority>;

    /// How long an access token lives, plus the clock-skew leeway the authority allows: past
    /// this a token must be expired.
    fn longest_validity(&self) -> Duration;

    /// The clock-skew leeway: a token seen more than this before it was issued must be not yet
    /// valid.
    fn leeway(&self) -> Duration;
}

/// A clock the suite sets by hand, in whole seconds, starting at the real time. Clones share
/// the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock at the real time now.
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(OffsetDateTime::now_utc().unix_timestamp())))
    }

    /// The clock's time.
    pub fn now(&self) -> OffsetDateTime {
        must("the manual clock", OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)))
    }

    /// Moves the clock forward (`secs` > 0) or back.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs every check of this module.
pub async fn run_all(fixture: &dyn TokenFixture) {
    issued_token_verifies_to_its_principal(fixture).await;
    tampered_tokens_are_refused(fixture).await;
    expired_and_early_tokens_are_refused(fixture).await;
    refresh_works_once_and_reuse_revokes_the_family(fixture).await;
    revocation_takes_effect(fixture).await;
    suspension_is_reported(fixture).await;
    accepts_only_tokens(fixture).await;
    fails_closed_on_store_errors(fixture).await;
}

/// The principal the suite logs in: every field set.
pub fn principal(agent: &str, clock: &ManualClock) -> Principal {
    let now = clock.now();
    Principal::new(
        must("AgentId::new", AgentId::new(agent)),
        "zta-testkit",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::hours(8),
    )
    .with_roles(["researcher", "reader"])
    .with_groups(["lab"])
    .with_segment("research")
    .with_tenant("tenant-1")
    .with_delegation(["user:alice", "planner"])
}

fn setup(fixture: &dyn TokenFixture) -> (Arc<dyn TokenAuthority>, ManualClock) {
    let clock = ManualClock::new();
    (fixture.authority(Arc::new(zta_core::MemoryStateStore::new()), clock.clone()), clock)
}

/// `authority.verify`, refusing a suspended agent as the guard does.
async fn verify(
    authority: &Arc<dyn TokenAuthority>,
    token: &SecretString,
) -> Result<Arc<Principal>, AuthError> {
    authority.verify(token).await?.live().map_err(|(e, _)| e)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn text(s: &SecretString) -> &str {
    s.expose_secret()
}

/// An issued access token verifies (twice, so also from any cache) to the principal it was
/// issued for: the same agent, roles, groups, segment, tenant, delegation chain and
/// authentication time (to the second), expiring no later than the principal it came from.
/// A refresh token is no access token.
pub async fn issued_token_verifies_to_its_principal(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let login = principal("research_bot", &clock);
    let pair = must("issue", authority.issue(&login).await);
    assert!(
        authority.accepts(&Credential::Bearer(pair.access_token.clone())),
        "an issued token is not accepted"
    );
    for round in ["first", "second"] {
        let got = match verify(&authority, &pair.access_token).await {
            Ok(p) => p,
            Err(e) => panic!("an issued token was refused ({round} verification): {}", e.detail()),
        };
        assert_eq!(got.agent_id, login.agent_id, "the verified principal names another agent");
        assert_eq!(
            (&got.roles, &got.groups, &got.segment, &got.tenant, &got.delegation),
            (&login.roles, &login.groups, &login.segment, &login.tenant, &login.delegation),
            "the verified principal's roles, groups, segment, tenant or delegation differ from the issued one"
        );
        assert_eq!(
            got.authenticated_at.unix_timestamp(),
            login.authenticated_at.unix_timestamp(),
            "the verified principal's authentication time differs from the issued one"
        );
        assert!(got.expires_at <= login.expires_at, "the token outlives the principal it was issued for");
    }
    assert!(
        verify(&authority, &pair.refresh_token).await.is_err(),
        "a refresh token verified as an access token"
    );
}

/// A token changed in any part (one character of its header, claims or signature; or another
/// token's claims under its own signature) is refused as [`AuthError::Invalid`], also after
/// the real token was verified (and perhaps cached).
pub async fn tampered_tokens_are_refused(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let pair = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let other = must("issue", authority.issue(&principal("admin_bot", &clock)).await);
    must("verify", verify(&authority, &pair.access_token).await);
    let token = text(&pair.access_token);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "the suite expects a compact JWS (three parts)");
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let other_claims = text(&other.access_token).split('.').nth(1).unwrap_or_default();

    let forgeries = [
        ("a header character", format!("{}.{}.{}", flip(part(0)), part(1), part(2))),
        ("a claims character", format!("{}.{}.{}", part(0), flip(part(1)), part(2))),
        ("a signature character", format!("{}.{}.{}", part(0), part(1), flip(part(2)))),
        ("another token's claims", format!("{}.{other_claims}.{}", part(0), part(2))),
        ("no signature", format!("{}.{}.", part(0), part(1))),
    ];
    for (what, forged) in forgeries {
        match verify(&authority, &SecretString::from(forged)).await {
            Err(AuthError::Invalid { .. }) => {}
            Ok(p) => panic!("a token with {what} changed verified (as `{}`)", p.agent_id),
            Err(e) => panic!("a token with {what} changed is not refused as Invalid: {e:?}"),
        }
    }
}

/// Flips one base64url character in the middle of `part` (the middle, so the change is in
/// the decoded bytes and not only in padding bits).
fn flip(part: &str) -> String {
    let mut chars: Vec<char> = part.chars().collect();
    let middle = chars.len() / 2;
    if let Some(c) = chars.get_mut(middle) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// A token seen after its lifetime and leeway is [`AuthError::Expired`], also when it was
/// verified (and perhaps cached) while valid; a token seen well before it was issued is
/// [`AuthError::NotYetValid`]. The suite moves the clock, it never sleeps.
pub async fn expired_and_early_tokens_are_refused(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let cached = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let fresh = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    must("verify", verify(&authority, &cached.access_token).await);

    clock.advance(secs(fixture.longest_validity()) + 2);
    assert_eq!(
        verify(&authority, &fresh.access_token).await.err(),
        Some(AuthError::Expired),
        "a token past its lifetime and leeway is not refused as Expired"
    );
    assert_eq!(
        verify(&authority, &cached.access_token).await.err(),
        Some(AuthError::Expired),
        "a token verified while valid still verifies after it expired (a cache outlives the token)"
    );

    let (authority, clock) = setup(fixture);
    let early = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    clock.advance(-(secs(fixture.leeway()) + 60));
    assert_eq!(
        verify(&authority, &early.access_token).await.err(),
        Some(AuthError::NotYetValid),
        "a token seen before it was issued (beyond the leeway) is not refused as NotYetValid"
    );
}

/// A refresh token gives a new pair for the same agent once. Presented again it is refused
/// as [`AuthError::Replayed`], and the whole family is revoked: the pair it gave, and the
/// original access token. Another login of the agent is not affected.
pub async fn refresh_works_once_and_reuse_revokes_the_family(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let login = principal("research_bot", &clock);
    let first = must("issue", authority.issue(&login).await);
    let bystander = must("issue", authority.issue(&login).await);
    let (refreshed, second) = match authority.refresh(&first.refresh_token).await {
        Ok(pair) => pair,
        Err(e) => panic!("a fresh refresh token was refused: {}", e.detail()),
    };
    assert_eq!(refreshed.agent_id, login.agent_id, "a refresh gave a pair for another agent");
    assert_ne!(text(&second.access_token), text(&first.access_token), "a refresh gave the same access token");
    assert_ne!(
        text(&second.refresh_token),
        text(&first.refresh_token),
        "a refresh gave the same refresh token"
    );
    let verified = must("verify of a refreshed token", verify(&authority, &second.access_token).await);
    assert_eq!(verified.agent_id, login.agent_id, "a refreshed token verifies as another agent");

    assert_eq!(
        authority.refresh(&first.refresh_token).await.err(),
        Some(AuthError::Replayed),
        "a used refresh token is not refused as Replayed"
    );
    assert!(
        verify(&authority, &second.access_token).await.is_err(),
        "reusing a refresh token did not revoke the access token of the pair it gave"
    );
    assert!(
        authority.refresh(&second.refresh_token).await.is_err(),
        "reusing a refresh token did not revoke the refresh token of the pair it gave"
    );
    assert!(
        verify(&authority, &first.access_token).await.is_err(),
        "reusing a refresh token did not revoke the family's original access token"
    );
    assert!(
        verify(&authority, &bystander.access_token).await.is_ok(),
        "reusing a refresh token revoked another login's tokens"
    );
}

/// `revoke_token` refuses that token from then on (also after it was verified and perhaps
/// cached), and only that token; `revoke_agent` refuses every earlier token of the agent,
/// no other agent's, and not the agent's tokens issued later.
pub async fn revocation_takes_effect(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let pair = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let sibling = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    must("verify", verify(&authority, &pair.access_token).await);
    must("revoke_token", authority.revoke_token(&pair.access_token).await);
    assert_eq!(
        verify(&authority, &pair.access_token).await.err(),
        Some(AuthError::Revoked),
        "a revoked token (verified before) is not refused as Revoked"
    );
    assert!(verify(&authority, &sibling.access_token).await.is_ok(), "revoke_token revoked another token");
    must("revoke_token", authority.revoke_token(&sibling.refresh_token).await);
    assert!(
        authority.refresh(&sibling.refresh_token).await.is_err(),
        "a revoked refresh token still refreshes"
    );

    let agent = must("AgentId::new", AgentId::new("research_bot"));
    let a = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let b = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let other = must("issue", authority.issue(&principal("writer_bot", &clock)).await);
    must("verify", verify(&authority, &a.access_token).await);
    must("revoke_agent", authority.revoke_agent(&agent).await);
    for (what, token) in [("verified before", &a.access_token), ("never verified", &b.access_token)] {
        assert_eq!(
            verify(&authority, token).await.err(),
            Some(AuthError::Revoked),
            "after revoke_agent a token of the agent ({what}) is not refused as Revoked"
        );
    }
    assert!(
        authority.refresh(&b.refresh_token).await.is_err(),
        "after revoke_agent the agent's refresh token works"
    );
    assert!(
        verify(&authority, &other.access_token).await.is_ok(),
        "revoke_agent revoked another agent's token"
    );
    clock.advance(2);
    let later = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    assert!(
        verify(&authority, &later.access_token).await.is_ok(),
        "revoke_agent also revoked a token issued after it"
    );
}

/// A verification reports the agent's suspension from the store it reads revocations from,
/// cached or not: the principal does not come out while the agent is suspended, and does again
/// once it is reinstated; another agent is untouched.
pub async fn suspension_is_reported(fixture: &dyn TokenFixture) {
    let state: Arc<dyn StateStore> = Arc::new(zta_core::MemoryStateStore::new());
    let clock = ManualClock::new();
    let authority = fixture.authority(state.clone(), clock.clone());
    let pair = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let other = must("issue", authority.issue(&principal("writer_bot", &clock)).await);
    must("verify", verify(&authority, &pair.access_token).await);
    let agent = must("AgentId::new", AgentId::new("research_bot"));
    must("suspend", state.suspend(&agent).await);
    for round in ["first", "second"] {
        match authority.verify(&pair.access_token).await.map(zta_core::VerifiedToken::live) {
            Ok(Err((AuthError::Suspended, p))) => {
                assert_eq!(p.agent_id, agent, "the suspension refusal names another agent");
            }
            Ok(Ok(_)) => panic!("a suspended agent's token gave its principal ({round} verification)"),
            Ok(Err((e, _))) | Err(e) => {
                panic!("a suspended agent's token was refused as {e:?}, not Suspended ({round} verification)")
            }
        }
    }
    assert!(
        verify(&authority, &other.access_token).await.is_ok(),
        "suspending one agent refused another agent's token"
    );
    must("reinstate", state.reinstate(&agent).await);
    assert!(
        verify(&authority, &pair.access_token).await.is_ok(),
        "a reinstated agent's token is still refused"
    );
}

/// `accepts` is false for what is no access token of this authority: other kinds of
/// credential, empty or garbage bearer text, an oversized one; and a forged token is refused
/// even if accepted.
pub async fn accepts_only_tokens(fixture: &dyn TokenFixture) {
    let (authority, clock) = setup(fixture);
    let pair = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let access = text(&pair.access_token);
    let not_tokens = [
        Credential::bearer(""),
        Credential::bearer("garbage"),
        Credential::bearer("not.a.token"),
        Credential::bearer("\u{0}\u{fffd}.\u{202e}.\u{feff}"),
        Credential::bearer(format!("{access}.{}", "a".repeat(zta_core::MAX_CREDENTIAL_LEN))),
        Credential::password("research_bot", access),
        Credential::agent_assertion(access),
    ];
    for credential in not_tokens {
        assert!(
            !authority.accepts(&credential),
            "the authority accepts a `{}` credential that is none of its access tokens ({} bytes)",
            credential.kind(),
            credential.len()
        );
    }
    for garbage in ["", "garbage", "not.a.token", "a.b.c.d"] {
        match verify(&authority, &SecretString::from(garbage)).await {
            Err(AuthError::Invalid { .. }) => {}
            other => panic!("verifying the garbage `{garbage}` is not refused as Invalid: {other:?}"),
        }
    }
}

/// With every state-store operation failing, verification (cached or not), refresh and both
/// revocations fail: tokens are refused as [`AuthError::StateUnavailable`], never accepted. Once
/// the store recovers, they work again.
pub async fn fails_closed_on_store_errors(fixture: &dyn TokenFixture) {
    let clock = ManualClock::new();
    let store = Arc::new(FailingStore::new());
    let authority = fixture.authority(store.clone(), clock.clone());
    let cached = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    let fresh = must("issue", authority.issue(&principal("research_bot", &clock)).await);
    must("verify", verify(&authority, &cached.access_token).await);

    store.fail(&StateOp::ALL);
    for (what, token) in [("verified before", &cached.access_token), ("never verified", &fresh.access_token)]
    {
        match verify(&authority, token).await {
            Err(AuthError::StateUnavailable { .. }) => {}
            Ok(_) => panic!("a token ({what}) verified while the state store was failing (fail-open)"),
            Err(e) => {
                panic!("a store failure is not reported as StateUnavailable for a token ({what}): {e:?}")
            }
        }
    }
    assert!(
        matches!(authority.refresh(&fresh.refresh_token).await, Err(AuthError::StateUnavailable { .. })),
        "a refresh while the state store was failing is not refused as StateUnavailable"
    );
    assert!(
        authority.revoke_token(&fresh.access_token).await.is_err(),
        "revoke_token reported success while the state store was failing"
    );
    let agent = must("AgentId::new", AgentId::new("research_bot"));
    assert!(
        authority.revoke_agent(&agent).await.is_err(),
        "revoke_agent reported success while the state store was failing"
    );

    store.recover();
    assert!(
        verify(&authority, &cached.access_token).await.is_ok(),
        "the authority does not recover with its store"
    );
    assert!(authority.refresh(&fresh.refresh_token).await.is_ok(), "refresh does not recover with the store");
}
