//! Configuration: where Redis is (one server, or a Redis Cluster), the key prefix, and how long
//! one operation may take.

use std::{fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The `state` section for `type: redis`: a Redis (or Valkey) server, or a Redis (or Valkey)
/// Cluster, shared by every replica.
///
/// ```yaml
/// url_env: ZTA_REDIS_URL          # or url: redis://zta:PASSWORD@redis.internal:6379/0
/// key_prefix: "zta:"              # default
/// timeout: 500ms                  # per operation, default
/// cluster: false                  # default; true: the URL is one node of a Redis Cluster
/// ```
///
/// Exactly one of `url` and `url_env` (the name of an environment variable holding the URL).
/// The URL is `redis://` or `rediss://` (TLS, certificates checked against the system's roots);
/// a password in it never shows in `Debug` output or error messages.
///
/// With `cluster: true` the URL names one node of the cluster, the seed: the store asks it for
/// the cluster's nodes and slots, connects to every primary with the URL's credentials and TLS
/// setting, and follows the cluster's redirections. Point it at a name that resolves to live
/// nodes (a Kubernetes Service over the cluster's pods, a DNS name with every node): the store
/// goes back to the seed when it has lost every node. With `rediss://` every node's certificate
/// must be valid for the address the cluster announces for it. A cluster has only database 0.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://...` for TLS.
    #[serde(default)]
    pub url: Option<SecretString>,
    /// The environment variable that holds the URL (read when the store is built).
    #[serde(default)]
    pub url_env: Option<String>,
    /// Put before every key, so several deployments can share one Redis. No `{` or `}`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Longest wait for one operation, connecting included (`"500ms"`, `"2s"`); past it the
    /// operation fails (and the request it serves is denied).
    #[serde(default = "default_timeout", with = "zta_core::duration::text")]
    pub timeout: Duration,
    /// The URL is one node (the seed) of a Redis Cluster rather than a single server (or a
    /// proxy in front of a cluster).
    #[serde(default)]
    pub cluster: bool,
}

impl RedisConfig {
    /// A configuration for the server at `url`, with the default prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Some(SecretString::from(url.into())),
            url_env: None,
            key_prefix: default_key_prefix(),
            timeout: default_timeout(),
            cluster: false,
        }
    }

    /// A configuration that reads the URL from the environment variable `var`.
    pub fn from_env(var: impl Into<String>) -> Self {
        Self { url: None, url_env: Some(var.into()), ..Self::new(String::new()) }
    }

    /// Sets the key prefix.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the per-operation timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets whether the URL is the seed node of a Redis Cluster (`cluster: true`).
    #[must_use]
    pub fn with_cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_ref().map(|u| redact(u.expose_secret())))
            .field("url_env", &self.url_env)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("cluster", &self.cluster)
            .finish()
    }
}

fn default_key_prefix() -> String {
    "zta:".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_millis(500)
}

/// `url` without its user information (`redis://***@host:6379/0`), for messages and `Debug`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***{}{tail}", authority.get(at..).unwrap_or_default()),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_user_information_only() {
        assert_eq!(redact("redis://u:p@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact("rediss://:p%40x@h"), "rediss://***@h");
        assert_eq!(redact("redis://a:b@c@h:1?x=1"), "redis://***@h:1?x=1");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact("h:1"), "<not a URL>");
    }

    #[test]
    fn defaults_and_duration_text() {
        let c: RedisConfig =
            zta_source::from_str("url: redis://h/\ntimeout: 2s", zta_source::Format::Yaml).unwrap();
        assert_eq!(c.key_prefix, "zta:");
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert!(!c.cluster, "a single server unless `cluster: true`");
        let c: RedisConfig =
            zta_source::from_str("url: redis://h:7000/\ncluster: true", zta_source::Format::Yaml).unwrap();
        assert!(c.cluster);
        assert!(
            zta_source::from_str::<RedisConfig>("url: redis://h/\npassword: x", zta_source::Format::Yaml)
                .is_err()
        );
    }
}
