//! The sink's settings.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::Error;

/// Where and how the sink stores records.
///
/// Refused at [`SqliteSink::open`](crate::SqliteSink::open): a writer id that is not a plain
/// name, a batch size or queue capacity of 0, a batch size above 32768.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file (made if missing, with its table). Every process that shares it must
    /// reach it on a local file system: SQLite's locks do not hold over network file systems.
    pub path: PathBuf,
    /// This process's writer id (letters, digits, `-`, `_` and `.`, at most 128 bytes). Each
    /// process sharing the file should have its own, so that its rows say who wrote them. The
    /// default is new for every sink opened (`<hostname>-<pid>-<random>`), so a restarted
    /// process starts a new chain; set it (uniquely per process) to continue one.
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
    /// How long a batch waits for another process's write transaction on the file before it
    /// fails.
    #[serde(default = "default_busy_timeout", with = "zta_core::duration::text")]
    pub busy_timeout: Duration,
    /// Delete old records while running, as `zta audit prune` does (see
    /// [`Retention`](crate::Retention)); none by default.
    #[serde(default)]
    pub retention: Option<crate::Retention>,
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
fn default_busy_timeout() -> Duration {
    Duration::from_secs(5)
}

impl SqliteConfig {
    /// Storing into the file at `path`, with the defaults above.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writer_id: None,
            batch_size: default_batch(),
            max_batch_delay: default_delay(),
            queue_capacity: default_queue(),
            busy_timeout: default_busy_timeout(),
            retention: None,
        }
    }

    /// The same, writing as `writer_id`.
    #[must_use]
    pub fn with_writer_id(mut self, writer_id: impl Into<String>) -> Self {
        self.writer_id = Some(writer_id.into());
        self
    }

    /// The file, for messages.
    pub(crate) fn shown_path(&self) -> String {
        self.path.display().to_string()
    }

    /// Checks the settings that [`SqliteSink::open`](crate::SqliteSink::open) relies on.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Some(id) = &self.writer_id {
            zta_audit_chain::check_writer_id(id).map_err(Error::Config)?;
        }
        if self.batch_size == 0 || self.queue_capacity == 0 {
            return Err(Error::Config("batch_size and queue_capacity must be at least 1".into()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_with_defaults_and_refuses_unknown_fields() {
        let config: SqliteConfig =
            serde_json::from_str(r#"{"path": "audit.db", "max_batch_delay": "5ms"}"#).unwrap();
        assert_eq!(config.path, PathBuf::from("audit.db"));
        assert_eq!(config.max_batch_delay, Duration::from_millis(5));
        assert_eq!(config.busy_timeout, Duration::from_secs(5));
        assert!(config.check().is_ok());
        assert!(serde_json::from_str::<SqliteConfig>(r#"{"path": "a.db", "pth": "x"}"#).is_err());
        assert!(SqliteConfig::new("a.db").with_writer_id("a b").check().is_err());
        let mut zero = SqliteConfig::new("a.db");
        zero.batch_size = 0;
        assert!(zero.check().is_err());
    }
}
