//! The [`StateStore`] conformance suite.
//!
//! Every check takes a fresh store and uses keys, ids and agent ids under a random prefix, so a
//! store shared by several runs (one Redis for a CI job) gives the same answers as a fresh one.
//! Times are whole microseconds, so a backend that keeps microseconds (PostgreSQL) must give
//! them back exactly.

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;
use tokio::sync::Barrier;
use uuid::Uuid;
use zta_core::{AgentId, StateStore};

use crate::{assert_multi_thread, must, now_micros};

/// Racing `add_failure` calls in [`concurrent_failures`].
pub const RACING_FAILURES: u32 = 40;

/// Racing `claim_once` calls per id in [`concurrent_claims`].
pub const RACING_CLAIMS: usize = 32;

/// Runs every check of this module, each on a store of its own from `make`.
///
/// Needs a multi-thread runtime (see the [crate docs](crate)).
pub async fn run_all(make: impl Fn() -> Arc<dyn StateStore>) {
    revocation(make()).await;
    agent_revocation(make()).await;
    suspension(make()).await;
    token_revocation(make()).await;
    lockout_counters(make()).await;
    lockout_window_restarts(make()).await;
    concurrent_failures(make()).await;
    one_time_ids(make()).await;
    concurrent_claims(make()).await;
    separate_key_spaces(make()).await;
}

/// Unique names for one check: keys, ids and agent ids under a random prefix.
struct Names(String);

impl Names {
    fn new(check: &str) -> Self {
        Self(format!("zta-testkit:{check}:{}", Uuid::new_v4().simple()))
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.0)
    }

    fn agent(&self, name: &str) -> AgentId {
        must("AgentId::new", AgentId::new(self.key(name)))
    }
}

/// `standing` asked about keys alone: for an agent never revoked.
async fn keys_revoked(store: &Arc<dyn StateStore>, n: &Names, keys: &[&str]) -> bool {
    must("standing", store.standing(keys, &n.agent("never-revoked"), now_micros()).await).revoked
}

/// `standing` asked about an agent alone: a token issued at `issued_at`, no keys.
async fn agent_revoked(store: &Arc<dyn StateStore>, agent: &AgentId, issued_at: OffsetDateTime) -> bool {
    must("standing", store.standing(&[], agent, issued_at).await).revoked
}

/// `revoke` / `standing`: a key is revoked exactly while its `until` is in the future.
///
/// * an unknown key is not revoked;
/// * `until` in the future revokes; `until` in the past (already expired) does not;
/// * keys are compared exactly: revoking `k` revokes neither `k1` nor a key that merely shares a
///   prefix, and keys with `:`, spaces and non-ASCII text work;
/// * revocations only grow: a later `revoke` with an earlier `until` does not shorten (or lift)
///   one in force, and a later `revoke` with a future `until` revives an expired one.
pub async fn revocation(store: Arc<dyn StateStore>) {
    let n = Names::new("revocation");
    let now = now_micros();
    let hour = time::Duration::hours(1);

    let unknown = n.key("never-revoked");
    assert!(!keys_revoked(&store, &n, &[&unknown]).await, "an unknown key is revoked");
    assert!(!keys_revoked(&store, &n, &[]).await, "no keys and an agent never revoked is revoked");

    let live = n.key("live");
    must("revoke", store.revoke(&live, now + hour).await);
    assert!(keys_revoked(&store, &n, &[&live]).await, "a key revoked until the future is not revoked");

    let expired = n.key("expired");
    must("revoke", store.revoke(&expired, now - time::Duration::seconds(1)).await);
    assert!(
        !keys_revoked(&store, &n, &[&expired]).await,
        "a key revoked until a time already past is still revoked"
    );

    for near in [n.key("live1"), n.key("liv"), n.key("LIVE"), format!(" {live}")] {
        assert!(
            !keys_revoked(&store, &n, &[&near]).await,
            "revoking `{live}` also revoked the different key `{near}`"
        );
    }

    let odd = n.key("family: ünïcødé ✓ \"quoted\" \\ 漢字");
    must("revoke", store.revoke(&odd, now + hour).await);
    assert!(
        keys_revoked(&store, &n, &[&odd]).await,
        "a key with `:`, spaces and non-ASCII text is not revoked"
    );

    // A later, shorter revocation must not lift one in force.
    let shortened = n.key("shortened");
    must("revoke", store.revoke(&shortened, now + hour).await);
    must("revoke", store.revoke(&shortened, now - time::Duration::seconds(1)).await);
    assert!(
        keys_revoked(&store, &n, &[&shortened]).await,
        "a second revoke with an `until` in the past lifted a revocation still in force"
    );

    // A later revocation revives an expired one.
    let revived = n.key("revived");
    must("revoke", store.revoke(&revived, now - time::Duration::seconds(1)).await);
    must("revoke", store.revoke(&revived, now + hour).await);
    assert!(
        keys_revoked(&store, &n, &[&revived]).await,
        "revoking again until the future did not revoke a key whose earlier revocation had expired"
    );
}

/// `revoke_agent`: a token of the agent issued at or before the latest agent-wide revocation
/// time is revoked, a later one is not.
///
/// * an agent never revoked has no revoked tokens;
/// * the boundary is exact to the microsecond: issued at the revocation time is revoked, one
///   microsecond later is not;
/// * an earlier time does not replace a later one; a later one does;
/// * agents are independent, also agents whose ids share a prefix.
pub async fn agent_revocation(store: Arc<dyn StateStore>) {
    let n = Names::new("agent-revocation");
    let t1 = now_micros();
    let micro = time::Duration::microseconds(1);
    let earlier = t1 - time::Duration::minutes(5);
    let later = t1 + time::Duration::minutes(5) + time::Duration::microseconds(7);
    let alice = n.agent("alice");
    let alice2 = n.agent("alice2");

    assert!(!agent_revoked(&store, &alice, t1).await, "an agent never revoked has revoked tokens");

    must("revoke_agent", store.revoke_agent(&alice, t1).await);
    assert!(
        agent_revoked(&store, &alice, t1).await && agent_revoked(&store, &alice, earlier).await,
        "a token issued at or before the agent's revocation time is not revoked"
    );
    assert!(
        !agent_revoked(&store, &alice, t1 + micro).await,
        "a token issued one microsecond after the agent's revocation time is revoked \
         (the time did not come back exactly)"
    );

    must("revoke_agent", store.revoke_agent(&alice, earlier).await);
    assert!(
        agent_revoked(&store, &alice, t1).await,
        "an earlier revoke_agent replaced the latest revocation time"
    );

    must("revoke_agent", store.revoke_agent(&alice, later).await);
    assert!(
        agent_revoked(&store, &alice, later).await && !agent_revoked(&store, &alice, later + micro).await,
        "a later revoke_agent did not move the revocation time forward"
    );

    assert!(
        !agent_revoked(&store, &alice2, earlier).await,
        "revoking one agent revoked another whose id shares its prefix"
    );
}

/// `suspend` / `reinstate` / `is_suspended` / `standing`: a suspension lasts until it is lifted.
///
/// * an agent never suspended is not suspended;
/// * `standing` reports the suspension as `is_suspended` does, whether or not it is asked
///   about keys too;
/// * a suspension holds until `reinstate`, and suspending twice is one suspension (one
///   `reinstate` lifts it);
/// * it is exact: suspending `alice` suspends neither `alice2` nor `ALICE`;
/// * it is separate from revocation: a suspended agent's tokens are not thereby revoked, and a
///   revoked agent is not thereby suspended;
/// * reinstating an agent never suspended is no error.
pub async fn suspension(store: Arc<dyn StateStore>) {
    let n = Names::new("suspension");
    let alice = n.agent("alice");
    let alice2 = n.agent("alice2");
    let upper = must("AgentId::new", AgentId::new(alice.as_str().to_uppercase()));
    let key = n.key("token");
    let suspended = |agent: AgentId| {
        let store = store.clone();
        let key = key.clone();
        async move {
            let answer = must("is_suspended", store.is_suspended(&agent).await);
            let now = now_micros();
            for keys in [&[][..], &[key.as_str()][..]] {
                let standing = must("standing", store.standing(keys, &agent, now).await);
                assert_eq!(
                    standing.suspended,
                    answer,
                    "`standing` (asked about {} keys) and `is_suspended` disagree on whether {agent} is suspended",
                    keys.len()
                );
            }
            answer
        }
    };

    assert!(!suspended(alice.clone()).await, "an agent never suspended is suspended");
    must("reinstate", store.reinstate(&alice).await);
    assert!(!suspended(alice.clone()).await, "reinstating an agent never suspended suspended it");

    must("suspend", store.suspend(&alice).await);
    must("suspend", store.suspend(&alice).await);
    assert!(suspended(alice.clone()).await, "a suspended agent is not suspended");
    assert!(
        !suspended(alice2.clone()).await && !suspended(upper).await,
        "suspending one agent suspended another whose id shares its prefix or differs in case"
    );
    assert!(
        !agent_revoked(&store, &alice, now_micros()).await,
        "suspending an agent revoked its tokens in the store (suspension and revocation are separate)"
    );

    must("reinstate", store.reinstate(&alice).await);
    assert!(!suspended(alice.clone()).await, "a reinstated agent is still suspended");

    must("revoke_agent", store.revoke_agent(&alice2, now_micros()).await);
    assert!(!suspended(alice2).await, "revoking an agent suspended it");
}

/// `standing` answers for a whole token in one call: revoked when any of its keys is, or
/// when its agent is, and only then.
pub async fn token_revocation(store: Arc<dyn StateStore>) {
    let n = Names::new("token-revocation");
    let now = now_micros();
    let until = now + time::Duration::hours(1);
    let (jti, fam) = (n.key("jti"), n.key("fam"));
    let agent = n.agent("agent");

    assert!(
        !must("standing", store.standing(&[&jti, &fam], &agent, now).await).revoked,
        "a token with no revoked key and an agent never revoked is revoked"
    );
    must("revoke", store.revoke(&fam, until).await);
    assert!(
        must("standing", store.standing(&[&jti, &fam], &agent, now).await).revoked,
        "a token whose second key (its family) is revoked is not revoked"
    );
    let other = n.agent("other");
    must("revoke_agent", store.revoke_agent(&other, now).await);
    assert!(
        must("standing", store.standing(&[&jti], &other, now).await).revoked,
        "a token whose keys are not revoked but whose agent is, is not revoked"
    );
}

/// `add_failure` / `failures` / `clear_failures` within a window that has not ended.
///
/// * an unknown key has 0 failures; `clear_failures` of an unknown key succeeds;
/// * `add_failure` returns 1, 2, 3, ... and `failures` agrees;
/// * keys count independently;
/// * `clear_failures` resets to 0, and counting starts again at 1.
pub async fn lockout_counters(store: Arc<dyn StateStore>) {
    let n = Names::new("lockout-counters");
    let window = Duration::from_secs(3600);
    let key = n.key("agent-a");
    let other = n.key("agent-b");

    assert_eq!(must("failures", store.failures(&key).await), 0, "an unknown key has failures");
    must("clear_failures", store.clear_failures(&key).await);
    assert_eq!(must("failures", store.failures(&key).await), 0, "clearing an unknown key made failures");

    for expected in 1..=3 {
        assert_eq!(
            must("add_failure", store.add_failure(&key, window).await),
            expected,
            "add_failure did not return the count of failures in the window"
        );
    }
    assert_eq!(must("failures", store.failures(&key).await), 3, "failures disagrees with add_failure");

    assert_eq!(
        must("add_failure", store.add_failure(&other, window).await),
        1,
        "a second key started counting from another key's failures"
    );
    assert_eq!(must("failures", store.failures(&key).await), 3, "another key's failure counted for this one");

    must("clear_failures", store.clear_failures(&key).await);
    assert_eq!(must("failures", store.failures(&key).await), 0, "clear_failures left failures");
    assert_eq!(must("failures", store.failures(&other).await), 1, "clearing one key cleared another");
    assert_eq!(
        must("add_failure", store.add_failure(&key, window).await),
        1,
        "counting after clear_failures did not start again at 1"
    );
}

/// A window that has ended restarts the count at 1.
///
/// Uses a zero-length window rather than waiting: a zero-length window has ended as soon as it
/// starts, so every failure in one starts a new window, `add_failure` returns 1 each time and
/// `failures` is 0. A failure with a longer window after that starts a window that counts.
pub async fn lockout_window_restarts(store: Arc<dyn StateStore>) {
    let n = Names::new("lockout-window");
    let key = n.key("agent");

    for _ in 0..3 {
        assert_eq!(
            must("add_failure", store.add_failure(&key, Duration::ZERO).await),
            1,
            "a failure after its window had ended (zero-length window) did not restart the count at 1"
        );
    }
    assert_eq!(
        must("failures", store.failures(&key).await),
        0,
        "failures counts a window that has already ended (zero-length window)"
    );

    let hour = Duration::from_secs(3600);
    assert_eq!(
        must("add_failure", store.add_failure(&key, hour).await),
        1,
        "the first failure after an ended window did not start a new window at 1"
    );
    assert_eq!(must("add_failure", store.add_failure(&key, hour).await), 2, "the new window does not count");
    assert_eq!(must("failures", store.failures(&key).await), 2, "failures disagrees with add_failure");
}

/// [`RACING_FAILURES`] concurrent `add_failure` calls on one key each count: together they
/// return exactly `1..=40`, and `failures` is 40 afterwards. Needs a multi-thread runtime.
pub async fn concurrent_failures(store: Arc<dyn StateStore>) {
    assert_multi_thread("concurrent_failures");
    let n = Names::new("concurrent-failures");
    let key = Arc::<str>::from(n.key("agent"));
    let start = Arc::new(Barrier::new(RACING_FAILURES as usize));
    let tasks: Vec<_> = (0..RACING_FAILURES)
        .map(|_| {
            let (store, key, start) = (store.clone(), key.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.add_failure(&key, Duration::from_secs(3600)).await
            })
        })
        .collect();
    let mut seen = Vec::with_capacity(tasks.len());
    for task in tasks {
        seen.push(must("add_failure", must("add_failure task", task.await)));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=RACING_FAILURES).collect::<Vec<_>>(),
        "racing add_failure calls did not each count once (a lost update, or a count returned twice)"
    );
    assert_eq!(
        must("failures", store.failures(&key).await),
        RACING_FAILURES,
        "failures after racing add_failure calls"
    );
}

/// `claim_once`: `true` the first time, `false` on every later claim before `until`.
///
/// * a second and third claim are replays, also with a different `until`;
/// * ids are independent, also ids that share a prefix.
pub async fn one_time_ids(store: Arc<dyn StateStore>) {
    let n = Names::new("one-time-ids");
    let until = now_micros() + time::Duration::hours(1);
    let id = n.key("jti-1");

    assert!(must("claim_once", store.claim_once(&id, until).await), "the first claim of an id was refused");
    assert!(
        !must("claim_once", store.claim_once(&id, until).await),
        "a second claim of an id succeeded (a replay)"
    );
    assert!(
        !must("claim_once", store.claim_once(&id, until + time::Duration::hours(1)).await),
        "a claim with a different `until` succeeded (a replay)"
    );

    for other in [n.key("jti-2"), n.key("jti-10"), n.key("jti-1 "), n.key("JTI-1")] {
        assert!(
            must("claim_once", store.claim_once(&other, until).await),
            "claiming `{id}` made the different id `{other}` count as claimed"
        );
    }
    assert!(!must("claim_once", store.claim_once(&id, until).await), "a replay succeeded after other claims");
}

/// [`RACING_CLAIMS`] concurrent claims of one id: exactly one is `true`. Repeated for several
/// ids to give a race a fair chance to show. Needs a multi-thread runtime.
pub async fn concurrent_claims(store: Arc<dyn StateStore>) {
    assert_multi_thread("concurrent_claims");
    let n = Names::new("concurrent-claims");
    let until = now_micros() + time::Duration::hours(1);
    for round in 0..8 {
        let id = Arc::<str>::from(n.key(&format!("jti-{round}")));
        let start = Arc::new(Barrier::new(RACING_CLAIMS));
        let tasks: Vec<_> = (0..RACING_CLAIMS)
            .map(|_| {
                let (store, id, start) = (store.clone(), id.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    store.claim_once(&id, until).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            if must("claim_once", must("claim_once task", task.await)) {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{RACING_CLAIMS} racing claims of one id: {won} succeeded, exactly one must");
    }
}

/// Revocations, failure counters, one-time ids and agent revocations are separate: the same
/// string used in each does not leak from one to another.
pub async fn separate_key_spaces(store: Arc<dyn StateStore>) {
    let n = Names::new("key-spaces");
    let until = now_micros() + time::Duration::hours(1);
    let window = Duration::from_secs(3600);

    // Revoked key: not a claimed id, no failures.
    let revoked = n.key("a");
    must("revoke", store.revoke(&revoked, until).await);
    assert!(
        must("claim_once", store.claim_once(&revoked, until).await),
        "a revoked key counts as a claimed one-time id"
    );
    assert_eq!(must("failures", store.failures(&revoked).await), 0, "a revoked key has failures");
    assert_eq!(
        must("add_failure", store.add_failure(&revoked, window).await),
        1,
        "a revoked key starts with failures"
    );
    must("clear_failures", store.clear_failures(&revoked).await);
    assert!(keys_revoked(&store, &n, &[&revoked]).await, "clear_failures lifted a revocation");

    // Claimed id: not revoked.
    let claimed = n.key("b");
    assert!(
        must("claim_once", store.claim_once(&claimed, until).await),
        "the first claim of an id was refused"
    );
    assert!(!keys_revoked(&store, &n, &[&claimed]).await, "claiming a one-time id revoked that key");

    // Failures: neither revoked nor claimed.
    let failing = n.key("c");
    must("add_failure", store.add_failure(&failing, window).await);
    assert!(!keys_revoked(&store, &n, &[&failing]).await, "a failure revoked the key");
    assert!(
        must("claim_once", store.claim_once(&failing, until).await),
        "a key with failures counts as a claimed id"
    );

    // Agent revocation: the agent id as a plain key is not revoked, and vice versa.
    let agent = n.agent("d");
    must("revoke_agent", store.revoke_agent(&agent, until).await);
    assert!(!keys_revoked(&store, &n, &[agent.as_str()]).await, "revoke_agent revoked the agent id as a key");
    let keyed = n.agent("e");
    must("revoke", store.revoke(keyed.as_str(), until).await);
    assert!(!agent_revoked(&store, &keyed, until).await, "revoking a key revoked the agent of that id");
}
