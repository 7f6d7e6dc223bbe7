//! [`RedisStateStore`]: the [`StateStore`] operations as single Redis commands, pipelines or
//! Lua scripts, one round trip each.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use arc_swap::ArcSwap;

use async_trait::async_trait;
use redis::{
    RedisResult, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zta_core::{AgentId, Standing, StateError, StateStore};

use crate::{Error, RedisConfig, config::redact};

/// Keeps the later of two revocation ends (milliseconds since the epoch, also the key's
/// expiry): revocations only grow. An end already past stores nothing.
const REVOKE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
return 1
";

/// Keeps the later of two agent revocation times, as whole seconds `s` and microseconds `us`
/// (each exact in Lua's doubles, which a microsecond count since the epoch is not for every
/// year `time` allows).
const REVOKE_AGENT: &str = r"
local cur = redis.call('HMGET', KEYS[1], 's', 'us')
local s, us = tonumber(ARGV[1]), tonumber(ARGV[2])
if cur[1] and cur[2] then
  local cs, cus = tonumber(cur[1]), tonumber(cur[2])
  if cs > s or (cs == s and cus >= us) then return 0 end
end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'us', ARGV[2])
return 1
";

/// Counts a failure; the first one of a window sets the window's end (a zero-length window
/// ends at once: the counter is deleted and the count is 1).
const ADD_FAILURE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// The longest failure window sent to Redis (100 years, in milliseconds): longer ones would
/// overflow its expiry arithmetic.
const MAX_WINDOW_MS: u128 = 100 * 365 * 86_400 * 1_000;

/// The [`StateStore`] on a Redis (or Valkey) server shared by every replica.
///
/// It keeps one multiplexed connection and reconnects on its own after an outage; while the
/// server is unreachable or slower than the configured timeout, every operation fails with a
/// [`StateError`] (so the request it serves is denied). See the [crate docs](crate) for the
/// key layout.
pub struct RedisStateStore {
    /// The connection in use; replaced by a fresh one after a failure the connection manager
    /// does not repair itself (see [`run`](Self::run)).
    connection: ArcSwap<ConnectionManager>,
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    prefix: String,
    timeout: Duration,
    /// The URL without its user information.
    target: String,
    /// The URL's password as written and as decoded, removed from every message.
    secrets: Vec<SecretString>,
    revoke: Script,
    revoke_agent: Script,
    add_failure: Script,
}

impl fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("target", &self.target)
            .field("key_prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    /// Builds the store and checks that the server answers (`PING`) within the timeout.
    ///
    /// Refuses what [`new`](Self::new) refuses, and a server that cannot be reached or that
    /// refuses the credentials ([`Error::Connect`]).
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let store = Self::new(config)?;
        store
            .run("connect", |mut con| async move { redis::cmd("PING").query_async::<()>(&mut con).await })
            .await
            .map_err(|e| Error::Connect { target: store.target.clone(), reason: e.to_string() })?;
        Ok(store)
    }

    /// Builds the store without contacting the server: it connects on first use, and until it
    /// can, every operation fails. Must be called inside a Tokio runtime.
    ///
    /// Refuses a config with both or neither of `url` and `url_env`, an unset variable, a URL
    /// that is not `redis://` or `rediss://` (or asks to skip certificate checks), a key prefix
    /// with `{` or `}` (they would change the keys' hash slots), and a zero timeout.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        let url = resolve_url(&config)?;
        let url = url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::config("url", "must start with `redis://` or `rediss://` (TLS)"));
        }
        if url.contains('#') {
            return Err(Error::config(
                "url",
                "a fragment (`#insecure`) is not accepted: certificates are always checked",
            ));
        }
        if config.key_prefix.contains(['{', '}']) {
            return Err(Error::config("key_prefix", "must not contain `{` or `}` (Redis Cluster hash tags)"));
        }
        if config.timeout.is_zero() {
            return Err(Error::config("timeout", "must be longer than zero"));
        }
        let target = redact(url);
        let mut secrets: Vec<SecretString> = raw_password(url).into_iter().map(SecretString::from).collect();
        let client = redis::Client::open(url)
            .map_err(|e| Error::config("url", scrub(&secrets, format!("not a valid redis URL ({e})"))))?;
        if let Some(password) = client.get_connection_info().redis_settings().password() {
            secrets.push(SecretString::from(password));
        }
        if url.starts_with("rediss://") {
            // rustls uses the process's provider; unless the application chose one, make it
            // the workspace's aws-lc-rs (failing only because one is already installed).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Connect {
                target,
                reason: "the store must be built inside a Tokio runtime".into(),
            });
        }
        // One connection attempt at a time, no retry loop: while the server is down each call
        // fails with the reason (connection refused, authentication failed, ...) instead of
        // waiting out its timeout in a back-off, and starts a fresh attempt that the calls
        // after it share.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
            .map_err(|e| Error::Connect { target: target.clone(), reason: scrub(&secrets, e.to_string()) })?;
        Ok(Self {
            connection: ArcSwap::from_pointee(manager),
            client,
            manager_config,
            prefix: config.key_prefix,
            timeout: config.timeout,
            target,
            secrets,
            revoke: Script::new(REVOKE),
            revoke_agent: Script::new(REVOKE_AGENT),
            add_failure: Script::new(ADD_FAILURE),
        })
    }

    /// Runs one Redis exchange on the current connection within the timeout; any error or a
    /// timeout is a [`StateError`].
    ///
    /// The connection manager reconnects by itself only when a connection drops. After any other
    /// failure the next call starts on a fresh connection: a wedged connection (a timeout) or a
    /// reconnection the server refused (a failed login, a server still loading its data) would
    /// otherwise fail for good, and a server that turned replica (`READONLY`) is looked up again.
    async fn run<T, F, Fut>(&self, op: &str, exchange: F) -> Result<T, StateError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let used = self.connection.load_full();
        let message = match tokio::time::timeout(self.timeout, exchange((*used).clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if e.is_connection_dropped() => return Err(self.error(op, &e)),
            Ok(Err(e)) => self.error(op, &e),
            Err(_) => StateError::unavailable(format!(
                "redis {op}: no answer within {}",
                zta_core::duration::format(self.timeout)
            )),
        };
        if let Ok(fresh) =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config.clone())
        {
            // Only the first of several calls that failed on `used` replaces it.
            self.connection.compare_and_swap(&used, Arc::new(fresh));
        }
        Err(message)
    }

    /// The error as a `StateError`: its text scrubbed of credentials, and not kept as the
    /// source (Redis errors can quote the URL, password included).
    fn error(&self, op: &str, e: &redis::RedisError) -> StateError {
        let detail = scrub(&self.secrets, format!("redis {op}: {e}"));
        if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout() {
            StateError::unavailable(detail)
        } else {
            StateError::failed(detail)
        }
    }

    fn key(&self, space: &str, name: &str) -> String {
        format!("{}{space}:{name}", self.prefix)
    }

    /// A key of `agent`'s, hash-tagged by the agent id so all of them share one Cluster slot.
    fn agent_key(&self, agent: &AgentId, what: &str) -> String {
        format!("{}agent:{{{}}}:{what}", self.prefix, agent.as_str())
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        let mut call = self.revoke.key(self.key("revoked", key));
        call.arg(ceil_millis(until));
        self.run("revoke", |mut con| async move { call.invoke_async::<i64>(&mut con).await }).await?;
        Ok(())
    }

    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        let (s, us) = ceil_micros(at);
        let mut call = self.revoke_agent.key(self.agent_key(agent, "revoked"));
        call.arg(s).arg(us);
        self.run("revoke_agent", |mut con| async move { call.invoke_async::<i64>(&mut con).await }).await?;
        Ok(())
    }

    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError> {
        let cmd = redis::cmd("SET").arg(self.agent_key(agent, "suspended")).arg(1).to_owned();
        self.run("suspend", |mut con| async move { cmd.query_async::<()>(&mut con).await }).await
    }

    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError> {
        let cmd = redis::cmd("DEL").arg(self.agent_key(agent, "suspended")).to_owned();
        self.run("reinstate", |mut con| async move { cmd.query_async::<()>(&mut con).await }).await
    }

    /// `PING`, within the timeout: on a failure the next call starts on a fresh connection, as
    /// every other operation does.
    async fn ready(&self) -> Result<(), StateError> {
        self.run("ping", |mut con| async move { redis::cmd("PING").query_async::<()>(&mut con).await }).await
    }

    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        let cmd = redis::cmd("EXISTS").arg(self.agent_key(agent, "suspended")).to_owned();
        self.run("is_suspended", |mut con| async move { cmd.query_async::<bool>(&mut con).await }).await
    }

    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        // One pipeline: the agent's revocation time, its suspension, and how many of the keys
        // are revoked.
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.agent_key(agent, "revoked")).arg("s").arg("us");
        pipe.cmd("EXISTS").arg(self.agent_key(agent, "suspended"));
        if !keys.is_empty() {
            let exists = pipe.cmd("EXISTS");
            for key in keys {
                exists.arg(self.key("revoked", key));
            }
        }
        let (s, us, suspended, revoked_keys) = if keys.is_empty() {
            let ((s, us), suspended) = self
                .run("standing", |mut con| async move {
                    pipe.query_async::<((Option<i64>, Option<i64>), bool)>(&mut con).await
                })
                .await?;
            (s, us, suspended, 0)
        } else {
            let ((s, us), suspended, revoked_keys) = self
                .run("standing", |mut con| async move {
                    pipe.query_async::<((Option<i64>, Option<i64>), bool, u64)>(&mut con).await
                })
                .await?;
            (s, us, suspended, revoked_keys)
        };
        let agent_revoked = match (s, us) {
            (Some(s), Some(us)) => {
                issued_at.unix_timestamp_nanos() <= i128::from(s) * 1_000_000_000 + i128::from(us) * 1_000
            }
            _ => false,
        };
        Ok(Standing { revoked: agent_revoked || revoked_keys > 0, suspended })
    }

    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        let window_ms = window.as_nanos().div_ceil(1_000_000).min(MAX_WINDOW_MS);
        let mut call = self.add_failure.key(self.key("failures", key));
        call.arg(u64::try_from(window_ms).unwrap_or(u64::MAX));
        let count = self
            .run("add_failure", |mut con| async move { call.invoke_async::<i64>(&mut con).await })
            .await?;
        Ok(count_u32(count))
    }

    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        let cmd = redis::cmd("GET").arg(self.key("failures", key)).to_owned();
        let count = self
            .run("failures", |mut con| async move { cmd.query_async::<Option<i64>>(&mut con).await })
            .await?;
        Ok(count.map_or(0, count_u32))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        let cmd = redis::cmd("DEL").arg(self.key("failures", key)).to_owned();
        self.run("clear_failures", |mut con| async move { cmd.query_async::<()>(&mut con).await }).await
    }

    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        // NX: only the first claim sets the key. An `until` already past sets nothing and
        // answers OK (Redis deletes the key at once), like the memory store's lapsed claims.
        let cmd = redis::cmd("SET")
            .arg(self.key("claimed", id))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(ceil_millis(until))
            .to_owned();
        let reply = self
            .run("claim_once", |mut con| async move { cmd.query_async::<Option<String>>(&mut con).await })
            .await?;
        Ok(reply.is_some())
    }
}

/// The `url` or the variable `url_env` names, whichever of the two is given.
fn resolve_url(config: &RedisConfig) -> Result<SecretString, Error> {
    match (&config.url, &config.url_env) {
        (Some(url), None) => Ok(url.clone()),
        (None, Some(var)) => std::env::var(var)
            .map(SecretString::from)
            .map_err(|_| Error::config("url_env", format!("environment variable `{var}` is not set"))),
        _ => Err(Error::config("url", "give exactly one of `url` and `url_env`")),
    }
}

/// The password part of the URL's user information, as written (maybe percent-encoded).
fn raw_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// `message` with every secret replaced by `***`.
fn scrub(secrets: &[SecretString], mut message: String) -> String {
    for secret in secrets {
        let secret = secret.expose_secret();
        if !secret.is_empty() && message.contains(secret) {
            message = message.replace(secret, "***");
        }
    }
    message
}

/// `t` in milliseconds since the epoch, rounded up (a claim or revocation lasts at least until
/// `t`), and at least 1: Redis refuses expiry times before 1970.
fn ceil_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(ceil_div(t.unix_timestamp_nanos(), 1_000_000)).unwrap_or(i64::MAX).max(1)
}

/// `t` rounded up to the microsecond, as whole seconds since the epoch and microseconds
/// (`0..1_000_000`). Rounding up keeps every token issued at or before `t` revoked.
fn ceil_micros(t: OffsetDateTime) -> (i64, i64) {
    let micros = ceil_div(t.unix_timestamp_nanos(), 1_000);
    let seconds = i64::try_from(micros.div_euclid(1_000_000)).unwrap_or(i64::MAX);
    let sub = i64::try_from(micros.rem_euclid(1_000_000)).unwrap_or(0);
    (seconds, sub)
}

fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    if n.rem_euclid(d) == 0 { q } else { q + 1 }
}

fn count_u32(count: i64) -> u32 {
    u32::try_from(count.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_round_up() {
        assert_eq!(ceil_millis(datetime!(1970-01-01 00:00:01.000 UTC)), 1_000);
        assert_eq!(ceil_millis(datetime!(1970-01-01 00:00:01.000_000_1 UTC)), 1_001);
        assert_eq!(ceil_millis(datetime!(1969-01-01 00:00 UTC)), 1, "before 1970 is clamped to 1 ms");
        assert_eq!(ceil_micros(datetime!(2025-01-01 00:00:00.000_001 UTC)), (1_735_689_600, 1));
        assert_eq!(ceil_micros(datetime!(2025-01-01 00:00:00.999_999_5 UTC)), (1_735_689_601, 0));
        assert_eq!(ceil_micros(datetime!(1969-12-31 23:59:59.5 UTC)), (-1, 500_000));
    }

    #[test]
    fn raw_password_is_found_in_the_user_information() {
        assert_eq!(raw_password("redis://u:p%40ss@h:1/0").as_deref(), Some("p%40ss"));
        assert_eq!(raw_password("redis://:pw@h").as_deref(), Some("pw"));
        assert_eq!(raw_password("redis://h:1/0"), None);
        assert_eq!(raw_password("redis://u@h"), None, "a user name alone is no password");
    }

    #[test]
    fn scrub_replaces_every_secret() {
        let secrets = [SecretString::from("p%40ss"), SecretString::from("p@ss")];
        assert_eq!(scrub(&secrets, "a p@ss b p%40ss".into()), "a *** b ***");
    }
}
