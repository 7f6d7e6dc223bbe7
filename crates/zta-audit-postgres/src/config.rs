//! The sink's settings.

use std::{fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::Error;

/// Where and how the sink stores records.
///
/// ```yaml
/// url_env: ZTA_AUDIT_POSTGRES_URL   # or url: postgres://zta:PASSWORD@db.internal/zta
/// table: zta_audit                  # default
/// ```
///
/// Exactly one of `url` and `url_env` (the name of an environment variable holding the URL,
/// read when the sink opens, the schema is migrated or a table verified or queried).
///
/// Refused at [`PostgresSink::open`](crate::PostgresSink::open): both or neither of `url` and
/// `url_env`, an unset variable, a table or writer id that is not a plain name, a batch size,
/// queue capacity or pool size of 0.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The server, e.g. `postgres://zta:secret@db.example:5432/audit?sslmode=require`. The
    /// password never appears in `Debug` output, errors or logs.
    #[serde(default)]
    pub url: Option<SecretString>,
    /// The environment variable that holds the URL instead (so the password stays out of the
    /// config file).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The table: a plain SQL identifier (a lowercase letter or `_`, then lowercase letters,
    /// digits and `_`, at most 63 bytes). Default `zta_audit`.
    #[serde(default = "default_table")]
    pub table: String,
    /// This process's writer id (letters, digits, `-`, `_` and `.`, at most 128 bytes). Two live
    /// sinks must never share one: their chains would interleave and the second's inserts are
    /// refused. The default is new for every sink opened (`<hostname>-<pid>-<random>`), so a
    /// restarted process starts a new chain; set it (uniquely per process) to continue one.
    #[serde(default)]
    pub writer_id: Option<String>,
    /// Records inserted in one transaction at most.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How long the writer waits for more records to fill a batch when nobody waits for it
    /// (no `Flushed` append, no `flush`). Zero commits whatever is queued at once.
    #[serde(default = "default_delay", with = "zta_core::duration::text")]
    pub max_batch_delay: Duration,
    /// Records queued before `append` waits.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Connections in the sink's pool.
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// The `application_name` of the sink's connections (shows in `pg_stat_activity`).
    #[serde(default = "default_application_name")]
    pub application_name: String,
    /// Delete old records while running, as `zta audit prune` does (see
    /// [`Retention`](crate::Retention)); none by default.
    #[serde(default)]
    pub retention: Option<crate::Retention>,
}

fn default_table() -> String {
    "zta_audit".into()
}
fn default_batch() -> usize {
    4096
}
fn default_delay() -> Duration {
    Duration::from_millis(2)
}
fn default_queue() -> usize {
    65_536
}
fn default_pool() -> u32 {
    2
}
fn default_application_name() -> String {
    "zta-audit".into()
}

impl PostgresConfig {
    /// Storing into the table `zta_audit` of the database at `url`, with the defaults above.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Some(SecretString::from(url.into())),
            url_env: None,
            table: default_table(),
            writer_id: None,
            batch_size: default_batch(),
            max_batch_delay: default_delay(),
            queue_capacity: default_queue(),
            pool_size: default_pool(),
            application_name: default_application_name(),
            retention: None,
        }
    }

    /// Storing into the table `zta_audit` of the database whose URL the environment variable
    /// `var` holds, with the defaults above.
    pub fn from_env(var: impl Into<String>) -> Self {
        Self { url: None, url_env: Some(var.into()), ..Self::new(String::new()) }
    }

    /// The same, storing into `table`.
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The same, writing as `writer_id`.
    #[must_use]
    pub fn with_writer_id(mut self, writer_id: impl Into<String>) -> Self {
        self.writer_id = Some(writer_id.into());
        self
    }

    /// The URL without its password, for messages (the variable's name before it is read).
    pub(crate) fn safe_url(&self) -> String {
        match (&self.url, &self.url_env) {
            (Some(url), _) => safe_url(url.expose_secret()),
            (None, Some(var)) => format!("${var}"),
            (None, None) => "<no url>".to_owned(),
        }
    }

    /// The URL (empty before [`resolve`](Self::resolve) when it comes from `url_env`).
    pub(crate) fn url(&self) -> &str {
        self.url.as_ref().map_or("", |u| u.expose_secret())
    }

    /// The same config with `url` set: the `url` given, or the value of the variable `url_env`
    /// names. Refuses both or neither, and an unset (or empty, or not UTF-8) variable.
    pub(crate) fn resolve(&self) -> Result<Self, Error> {
        let url = match (&self.url, &self.url_env) {
            (Some(url), None) => url.clone(),
            (None, Some(var)) => match std::env::var(var) {
                Ok(url) if !url.trim().is_empty() => SecretString::from(url),
                _ => {
                    return Err(Error::Config(format!(
                        "url_env: environment variable `{}` is not set (or empty, or not UTF-8)",
                        var.escape_debug()
                    )));
                }
            },
            _ => return Err(Error::Config("give exactly one of `url` and `url_env`".into())),
        };
        Ok(Self { url: Some(url), url_env: None, ..self.clone() })
    }

    /// Checks the settings that [`PostgresSink::open`](crate::PostgresSink::open) relies on.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.url.is_some() == self.url_env.is_some() {
            return Err(Error::Config("give exactly one of `url` and `url_env`".into()));
        }
        check_table(&self.table)?;
        if let Some(id) = &self.writer_id {
            zta_audit_chain::check_writer_id(id).map_err(Error::Config)?;
        }
        if self.batch_size == 0 || self.queue_capacity == 0 || self.pool_size == 0 {
            return Err(Error::Config("batch_size, queue_capacity and pool_size must be at least 1".into()));
        }
        if self.batch_size > 32_768 {
            return Err(Error::Config(format!("batch_size {} is above 32768", self.batch_size)));
        }
        if let Some(retention) = &self.retention {
            retention.check().map_err(Error::Config)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url.as_ref().map(|u| safe_url(u.expose_secret())))
            .field("url_env", &self.url_env)
            .field("table", &self.table)
            .field("writer_id", &self.writer_id)
            .field("batch_size", &self.batch_size)
            .field("max_batch_delay", &self.max_batch_delay)
            .field("queue_capacity", &self.queue_capacity)
            .field("pool_size", &self.pool_size)
            .field("application_name", &self.application_name)
            .field("retention", &self.retention)
            .finish()
    }
}

/// `url` with the password of its user information and any `password=` parameter hidden.
pub(crate) fn safe_url(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => format!("{scheme}://{userinfo}@{host}"),
            },
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    match query {
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => base,
    }
}

/// A plain, unquoted PostgreSQL identifier: safe to put into SQL text as is.
pub(crate) fn check_table(table: &str) -> Result<(), Error> {
    let mut bytes = table.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if first_ok
        && table.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "table `{}`: a lowercase letter or `_`, then lowercase letters, digits and `_`, at most 63 bytes",
            table.escape_debug()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(safe_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(safe_url("postgres://u@h:5432/db"), "postgres://u@h:5432/db", "no password to hide");
        assert_eq!(safe_url("postgres://h/db?user=u&password=pw"), "postgres://h/db?user=u&password=***");
        let debug = format!("{:?}", PostgresConfig::new("postgres://u:hunter2@h/db"));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn config_reads_with_defaults_and_refuses_unknown_fields() {
        let config: PostgresConfig =
            serde_json::from_str(r#"{"url": "postgres://u:pw@h/db", "max_batch_delay": "5ms"}"#).unwrap();
        assert_eq!(config.table, "zta_audit");
        assert_eq!(config.max_batch_delay, Duration::from_millis(5));
        assert!(config.check().is_ok());
        let unknown = serde_json::from_str::<PostgresConfig>(r#"{"url": "postgres://h/db", "tabel": "x"}"#);
        assert!(unknown.is_err());
        let bad = PostgresConfig::new("postgres://h/db").with_table("x; drop table y");
        assert!(bad.check().is_err());
    }

    #[test]
    fn exactly_one_of_url_and_url_env() {
        let both: PostgresConfig =
            serde_json::from_str(r#"{"url": "postgres://h/db", "url_env": "X"}"#).unwrap();
        assert!(both.check().unwrap_err().to_string().contains("exactly one of `url` and `url_env`"));
        let neither: PostgresConfig = serde_json::from_str(r#"{"table": "t"}"#).unwrap();
        assert!(neither.check().is_err());
        assert!(neither.resolve().is_err());
        let env: PostgresConfig =
            serde_json::from_str(r#"{"url_env": "ZTA_TEST_SURELY_UNSET_PG_URL"}"#).unwrap();
        assert!(env.check().is_ok());
        let unset = env.resolve().unwrap_err().to_string();
        assert!(unset.contains("`ZTA_TEST_SURELY_UNSET_PG_URL` is not set"), "{unset}");
        assert_eq!(env.safe_url(), "$ZTA_TEST_SURELY_UNSET_PG_URL");
    }

    #[test]
    fn a_resolved_url_keeps_its_password_hidden() {
        let config = PostgresConfig::new("postgres://u:hunter2@h/db").resolve().unwrap();
        assert_eq!(config.url(), "postgres://u:hunter2@h/db");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(config.safe_url(), "postgres://u:***@h/db");
    }

    #[test]
    fn tables_must_be_plain_identifiers() {
        assert!(check_table("zta_audit").is_ok());
        assert!(check_table("_a1").is_ok());
        for bad in ["", "1a", "A", "a-b", "a\"; drop table x; --", "a.b", &"a".repeat(64)] {
            assert!(check_table(bad).is_err(), "{bad}");
        }
    }
}
