//! [`RedisStateStore`]: the [`StateStore`] operations as single Redis commands, pipelines or
//! Lua scripts, one round trip each (on a Cluster, `standing` is one round trip to each node it
//! reads, sent together).

use std::{fmt, future::Future, sync::Arc, time::Duration};

use arc_swap::ArcSwap;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Script, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
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

/// Keeps the later of two agent revocation times, stored as `<seconds>:<microseconds>` since
/// the epoch (each part exact in Lua's doubles, which a microsecond count since the epoch is
/// not for every year `time` allows). A string, not a hash, so that `standing` reads it in the
/// same `MGET` as the other keys.
const REVOKE_AGENT: &str = r"
local cur = redis.call('GET', KEYS[1])
local s, us = tonumber(ARGV[1]), tonumber(ARGV[2])
if cur then
  local cs, cus = string.match(cur, '^(%-?%d+):(%d+)$')
  cs, cus = tonumber(cs), tonumber(cus)
  if cs and cus and (cs > s or (cs == s and cus >= us)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
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

/// How many times the cluster client retries one command (after a `MOVED` or `ASK`
/// redirection, a node lost, `TRYAGAIN`, `CLUSTERDOWN`), within the operation's timeout.
const CLUSTER_RETRIES: u32 = 5;

/// The [`StateStore`] on a Redis (or Valkey) server, or a Redis Cluster, shared by every replica.
///
/// It keeps one multiplexed connection (on a cluster, one per node) and reconnects on its own
/// after an outage; while the server is unreachable or slower than the configured timeout, every
/// operation fails with a [`StateError`] (so the request it serves is denied). See the
/// [crate docs](crate) for the key layout.
pub struct RedisStateStore {
    /// The connection in use; on one server, replaced by a fresh one after a failure the
    /// connection manager does not repair itself (see [`run`](Self::run)).
    connection: ArcSwap<Connection>,
    connector: Connector,
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

/// A connection to the server or the cluster: commands and pipelines go through it the same
/// way (a cluster routes each by the slot of its keys).
#[derive(Clone)]
enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(con) => con.req_packed_command(cmd),
            Self::Cluster(con) => con.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(con) => con.req_packed_commands(pipeline, offset, count),
            Self::Cluster(con) => con.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(con) => con.get_db(),
            Self::Cluster(con) => con.get_db(),
        }
    }
}

impl Connection {
    /// `PING` to the server. On a cluster, the slot ranges (`CLUSTER SLOTS` from any node,
    /// which must cover every slot): the answer of a node that is not in cluster mode, or of a
    /// cluster not fully set up, says what is wrong.
    async fn slot_ranges(&mut self) -> RedisResult<Vec<(u16, u16)>> {
        let cluster = match self {
            Self::Server(con) => return redis::cmd("PING").query_async::<()>(con).await.map(|()| Vec::new()),
            Self::Cluster(con) => con,
        };
        let answer = cluster
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").to_owned(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        slot_ranges(answer)
    }

    /// `PING` to the server. On a cluster, the slot ranges, then an `EXISTS` of one key in each
    /// range: a command without keys goes to any node the client is connected to (its fan-out
    /// `PING` leaves out nodes it has no connection to), a keyed one only to the primary
    /// serving the key, so each range's primary must answer.
    async fn ping(&mut self, prefix: &str) -> RedisResult<()> {
        let ranges = self.slot_ranges().await?;
        let Self::Cluster(cluster) = self else { return Ok(()) };
        let probes = probe_keys(prefix, &ranges)?;
        try_join_all(probes.into_iter().map(|key| {
            let mut con = cluster.clone();
            async move { redis::cmd("EXISTS").arg(key).query_async::<()>(&mut con).await }
        }))
        .await?;
        Ok(())
    }
}

/// The slot ranges of a `CLUSTER SLOTS` answer, sorted; an error unless they cover every slot
/// (`0..=16383`) once.
fn slot_ranges(answer: Value) -> RedisResult<Vec<(u16, u16)>> {
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(answer)?;
    let mut bounds = ranges
        .into_iter()
        .map(|range| {
            let mut fields = range.into_iter();
            let first = fields.next().map(redis::from_redis_value::<u16>).transpose()?;
            let last = fields.next().map(redis::from_redis_value::<u16>).transpose()?;
            Ok(first.zip(last))
        })
        .collect::<RedisResult<Option<Vec<(u16, u16)>>>>()?
        .ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Parse, "a CLUSTER SLOTS range without bounds"))
        })?;
    bounds.sort_unstable();
    let mut next = 0_u32;
    for &(first, last) in &bounds {
        if u32::from(first) != next || last < first {
            break;
        }
        next = u32::from(last) + 1;
    }
    if next != u32::from(SLOTS) {
        return Err(redis::RedisError::from((
            redis::ErrorKind::ClusterConnectionNotFound,
            "the cluster does not serve every slot",
            format!("slot {next} has no primary"),
        )));
    }
    Ok(bounds)
}

/// The number of Redis Cluster hash slots.
const SLOTS: u16 = 16_384;

/// One key under `prefix` in each of `ranges` (`<prefix>ready:<n>`, the first `n` whose slot,
/// by [`slot_of`], is in the range).
fn probe_keys(prefix: &str, ranges: &[(u16, u16)]) -> RedisResult<Vec<String>> {
    let mut keys: Vec<Option<String>> = vec![None; ranges.len()];
    let mut missing = ranges.len();
    // A range of one slot is hit once in 16,384 keys on average; 64 times that is ample.
    for n in 0..u32::from(SLOTS) * 64 {
        if missing == 0 {
            break;
        }
        let key = format!("{prefix}ready:{n}");
        let Some(slot) = slot_of(&key) else { continue };
        if let Some(found) = ranges
            .iter()
            .zip(keys.iter_mut())
            .find_map(|(&(first, last), found)| (first..=last).contains(&slot).then_some(found))
            && found.is_none()
        {
            *found = Some(key);
            missing -= 1;
        }
    }
    keys.into_iter()
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "no probe key for a slot range")))
}

/// The hash slot of `key`, a key without a hash tag (no `{`): CRC16 (XMODEM) of the key,
/// modulo 16,384, as the Redis Cluster specification defines it.
fn slot_of(key: &str) -> Option<u16> {
    if key.contains('{') {
        return None;
    }
    let crc = key.bytes().fold(0_u16, |mut crc, byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 { crc << 1 } else { (crc << 1) ^ 0x1021 };
        }
        crc
    });
    Some(crc % SLOTS)
}

/// What makes a fresh [`Connection`], without waiting for it: the first command connects.
enum Connector {
    Server { client: redis::Client, config: ConnectionManagerConfig },
    Cluster { client: ClusterClient, config: ClusterConfig },
}

impl Connector {
    fn connection(&self) -> RedisResult<Connection> {
        match self {
            Self::Server { client, config } => {
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map(Connection::Server)
            }
            Self::Cluster { client, config } => {
                Ok(Connection::Cluster(client.get_pending_async_connection_with_config(config.clone())))
            }
        }
    }

    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }
}

impl fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("target", &self.target)
            .field("cluster", &self.connector.is_cluster())
            .field("key_prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    /// Builds the store and checks that the server answers (`PING`) within the timeout; a
    /// cluster, that a node answers with slot ranges covering every slot (`CLUSTER SLOTS`).
    ///
    /// Refuses what [`new`](Self::new) refuses, and a server that cannot be reached or that
    /// refuses the credentials ([`Error::Connect`]).
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let store = Self::new(config)?;
        store
            .run("connect", |mut con| async move { con.slot_ranges().await.map(drop) })
            .await
            .map_err(|e| Error::Connect { target: store.target.clone(), reason: e.to_string() })?;
        Ok(store)
    }

    /// Builds the store without contacting the server: it connects on first use, and until it
    /// can, every operation fails. Must be called inside a Tokio runtime.
    ///
    /// Refuses a config with both or neither of `url` and `url_env`, an unset variable, a URL
    /// that is not `redis://` or `rediss://` (or asks to skip certificate checks), a key prefix
    /// with `{` or `}` (they would change the keys' hash slots), a zero timeout, and for a
    /// cluster a database other than 0.
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
        if config.cluster && client.get_connection_info().redis_settings().db() != 0 {
            return Err(Error::config("url", "a Redis Cluster has only database 0"));
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
        let connector = if config.cluster {
            // The cluster client follows redirections and reconnects to lost nodes itself (a
            // few quick retries, each bounded by the timeout); the operation's timeout bounds
            // them all.
            let client = ClusterClient::builder([url])
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .overall_response_timeout(None)
                .build()
                .map_err(|e| {
                    Error::config("url", scrub(&secrets, format!("not a valid cluster URL ({e})")))
                })?;
            let config = ClusterConfig::new()
                .set_connection_timeout(config.timeout)
                .set_response_timeout(config.timeout);
            Connector::Cluster { client, config }
        } else {
            // One connection attempt at a time, no retry loop: while the server is down each
            // call fails with the reason (connection refused, authentication failed, ...)
            // instead of waiting out its timeout in a back-off, and starts a fresh attempt that
            // the calls after it share.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_number_of_retries(0);
            Connector::Server { client, config }
        };
        let connection = connector
            .connection()
            .map_err(|e| Error::Connect { target: target.clone(), reason: scrub(&secrets, e.to_string()) })?;
        Ok(Self {
            connection: ArcSwap::from_pointee(connection),
            connector,
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
    ///
    /// A cluster connection is kept: it repairs itself (it reconnects to each node it lost,
    /// retrying refused logins too, follows redirections, reloads the slots after a failover,
    /// and goes back to the seed when it lost every node), and a fresh one would know only the
    /// seed, so a stopped seed would stop the whole store.
    async fn run<T, F, Fut>(&self, op: &str, exchange: F) -> Result<T, StateError>
    where
        F: FnOnce(Connection) -> Fut,
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
        if self.connector.is_cluster() {
            return Err(message);
        }
        if let Ok(fresh) = self.connector.connection() {
            // Only the first of several calls that failed on `used` replaces it.
            self.connection.compare_and_swap(&used, Arc::new(fresh));
        }
        Err(message)
    }

    /// The error as a `StateError`: its text scrubbed of credentials, and not kept as the
    /// source (Redis errors can quote the URL, password included).
    fn error(&self, op: &str, e: &redis::RedisError) -> StateError {
        let detail = scrub(&self.secrets, format!("redis {op}: {e}"));
        // A cluster that lost a slot's node, is failing over or moving slots is unavailable
        // for now, as an unreachable server is.
        let cluster_unavailable = e.is_cluster_error()
            || matches!(
                e.kind(),
                redis::ErrorKind::ClusterConnectionNotFound
                    | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
            );
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || cluster_unavailable
        {
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

    /// `standing`'s reads on one server: one `MGET` of the agent's revocation time, its
    /// suspension, and the token's keys (one command: a pipeline of three cost Redis and the
    /// client a third more per check under load).
    async fn standing_on_server(&self, keys: &[&str], agent: &AgentId) -> Result<StandingReads, StateError> {
        // One command: the agent's revocation time and suspension, and the token's keys.
        let mut mget = redis::cmd("MGET");
        mget.arg(self.agent_key(agent, "revoked_at")).arg(self.agent_key(agent, "suspended"));
        for key in keys {
            mget.arg(self.key("revoked", key));
        }
        let values = self
            .run("standing", |mut con| async move { mget.query_async::<Vec<Option<String>>>(&mut con).await })
            .await?;
        let mut values = values.into_iter();
        let (revoked_at, suspended) = (values.next().flatten(), values.next().flatten().is_some());
        let revoked_keys = values.filter(Option::is_some).count();
        Ok((revoked_at, suspended, u64::try_from(revoked_keys).unwrap_or(u64::MAX)))
    }

    /// `standing`'s reads on a cluster, where the agent's keys share a slot (its hash tag) and
    /// each token key has a slot of its own: one `MGET` of the agent's two keys and one
    /// `EXISTS` per token key, all sent at once. A command whose keys span slots is refused
    /// by the cluster (`CROSSSLOT`), and the cluster client routes a pipeline as a whole to
    /// the node of its first keyed command, so neither the single-server pipeline nor one
    /// `EXISTS` of every key would do. (The client can split a lone multi-key `EXISTS` by slot,
    /// but it leaves out slots it has no node for, which would read as "not revoked".)
    async fn standing_in_cluster(&self, keys: &[&str], agent: &AgentId) -> Result<StandingReads, StateError> {
        let mut agent_reads = redis::cmd("MGET");
        agent_reads.arg(self.agent_key(agent, "revoked_at")).arg(self.agent_key(agent, "suspended"));
        let exists: Vec<Cmd> =
            keys.iter().map(|key| redis::cmd("EXISTS").arg(self.key("revoked", key)).to_owned()).collect();
        self.run("standing", |con| async move {
            let mut agent_con = con.clone();
            let agent_reads = async move {
                agent_reads.query_async::<(Option<String>, Option<String>)>(&mut agent_con).await
            };
            let key_reads = try_join_all(exists.into_iter().map(|cmd| {
                let mut con = con.clone();
                async move { cmd.query_async::<u64>(&mut con).await }
            }));
            let ((revoked_at, suspended), revoked) =
                futures_util::future::try_join(agent_reads, key_reads).await?;
            Ok((revoked_at, suspended.is_some(), revoked.iter().sum()))
        })
        .await
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
        let mut call = self.revoke_agent.key(self.agent_key(agent, "revoked_at"));
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

    /// `PING` (on a cluster: a read from the primary of every slot range, which must cover
    /// every slot), within the timeout; a failure is handled as every other operation's is.
    async fn ready(&self) -> Result<(), StateError> {
        self.run("ping", |mut con| async move { con.ping(&self.prefix).await }).await
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
        let (revoked_at, suspended, revoked_keys) = if self.connector.is_cluster() {
            self.standing_in_cluster(keys, agent).await?
        } else {
            self.standing_on_server(keys, agent).await?
        };
        let agent_revoked = match revoked_at.as_deref().map(revocation_nanos) {
            Some(Some(at)) => issued_at.unix_timestamp_nanos() <= at,
            // A value this store did not write: refuse rather than guess.
            Some(None) => {
                return Err(StateError::failed(format!(
                    "redis standing: agent `{agent}`'s revocation time is not `<seconds>:<microseconds>`"
                )));
            }
            None => false,
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

/// What `standing` reads: the agent's revocation time as stored, whether it is suspended, and
/// how many of the token's keys are revoked.
type StandingReads = (Option<String>, bool, u64);

/// An agent revocation time as `REVOKE_AGENT` stores it, in nanoseconds since the epoch.
fn revocation_nanos(stored: &str) -> Option<i128> {
    let (s, us) = stored.split_once(':')?;
    let (s, us) = (s.parse::<i64>().ok()?, us.parse::<i64>().ok()?);
    (0..1_000_000).contains(&us).then(|| i128::from(s) * 1_000_000_000 + i128::from(us) * 1_000)
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
    fn slots_are_those_of_the_cluster_specification() {
        // CRC16/XMODEM's check value, and the example of Redis's CLUSTER KEYSLOT docs.
        assert_eq!(slot_of("123456789"), Some(0x31C3 % SLOTS));
        assert_eq!(slot_of("somekey"), Some(11_058));
        assert_eq!(slot_of("{tag}x"), None);
        let ranges = [(0, 41), (42, 42), (43, 10_922), (10_923, 16_383)];
        let keys = probe_keys("zta:", &ranges).unwrap();
        for (key, (first, last)) in keys.iter().zip(ranges) {
            assert!((first..=last).contains(&slot_of(key).unwrap()), "{key}");
        }
    }

    #[test]
    fn slot_ranges_must_cover_every_slot() {
        let range =
            |first: i64, last: i64| Value::Array(vec![Value::Int(first), Value::Int(last), Value::Nil]);
        let answer = Value::Array(vec![range(5461, 16_383), range(0, 5460)]);
        assert_eq!(slot_ranges(answer).unwrap(), vec![(0, 5460), (5461, 16_383)]);
        let gap = Value::Array(vec![range(0, 5460), range(5462, 16_383)]);
        assert!(slot_ranges(gap).unwrap_err().to_string().contains("slot 5461 has no primary"));
        assert!(slot_ranges(Value::Array(vec![])).is_err());
    }

    #[test]
    fn revocation_times_are_read_as_stored() {
        assert_eq!(revocation_nanos("1735689600:1"), Some(1_735_689_600_000_001_000));
        assert_eq!(revocation_nanos("-1:500000"), Some(-500_000_000));
        for bad in ["", "1", "1:", ":1", "1:1000000", "1:-1", "a:1", "1:2:3"] {
            assert_eq!(revocation_nanos(bad), None, "{bad}");
        }
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
