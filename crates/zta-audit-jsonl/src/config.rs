//! Configuration of the JSON Lines sink.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Configuration of a [`JsonlSink`](crate::JsonlSink).
///
/// Only `dir` is required. Durations are strings: `"5ms"`, `"1s"`, `"250us"`, `"2m"`.
///
/// ```
/// let config: zta_audit_jsonl::JsonlConfig =
///     serde_json::from_str(r#"{ "dir": "/var/lib/zta/audit", "flush_interval": "10ms", "on_full": "deny" }"#)?;
/// assert_eq!(config.queue_capacity, 65_536);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JsonlConfig {
    /// The log directory; created if missing. Holds the segment files, the checkpoint and a lock
    /// file. One sink at a time may write to it.
    pub dir: PathBuf,
    /// A segment file is closed and the next one started before it would grow past this many
    /// bytes (a single record larger than this still gets a file of its own). Default 64 MiB.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Records that may wait for the writer. Default 65 536; at least 1.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Most records the writer takes from the queue for one write. Default 4096; at least 1.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest time a written record waits for its group commit (fsync plus checkpoint) while
    /// nobody asks for durability sooner. `"0s"` commits after every batch. Default `"5ms"`.
    #[serde(default = "default_flush_interval", with = "zta_core::duration::text")]
    pub flush_interval: Duration,
    /// What `append` does when the queue is full. Default `wait`.
    #[serde(default)]
    pub on_full: OnFull,
    /// An Ed25519 private key (PKCS#8, PEM) that signs the checkpoint. Without it the checkpoint
    /// is unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_key_file: Option<PathBuf>,
}

/// What `append` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnFull {
    /// Wait for room (backpressure).
    #[default]
    Wait,
    /// Refuse at once with `AuditError::QueueFull` (the guard then denies).
    Deny,
}

fn default_max_file_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_queue_capacity() -> usize {
    65_536
}
fn default_max_batch() -> usize {
    4096
}
fn default_flush_interval() -> Duration {
    Duration::from_millis(5)
}

/// Largest queue accepted: a queue this long already holds gigabytes of records.
pub(crate) const MAX_QUEUE_CAPACITY: usize = 1 << 24;

impl JsonlConfig {
    /// A configuration for `dir` with every other setting at its default.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_file_bytes: default_max_file_bytes(),
            queue_capacity: default_queue_capacity(),
            max_batch: default_max_batch(),
            flush_interval: default_flush_interval(),
            on_full: OnFull::default(),
            checkpoint_key_file: None,
        }
    }

    /// Checks the limits; the message says which setting is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.dir.as_os_str().is_empty() {
            return Err("`dir` is empty".into());
        }
        if self.max_file_bytes == 0 {
            return Err("`max_file_bytes` must be at least 1".into());
        }
        if self.queue_capacity == 0 || self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(format!(
                "`queue_capacity` must be between 1 and {MAX_QUEUE_CAPACITY}, not `{}`",
                self.queue_capacity
            ));
        }
        if self.max_batch == 0 {
            return Err("`max_batch` must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_parsing() {
        let c: JsonlConfig = serde_json::from_str(r#"{"dir":"/tmp/x"}"#).unwrap();
        assert_eq!(c, JsonlConfig::new("/tmp/x"));
        assert_eq!(c.max_file_bytes, 64 * 1024 * 1024);
        assert_eq!(c.flush_interval, Duration::from_millis(5));
        assert_eq!(c.on_full, OnFull::Wait);

        let c: JsonlConfig = serde_json::from_str(
            r#"{"dir":"d","max_file_bytes":10,"queue_capacity":2,"max_batch":3,"flush_interval":"1s",
                "on_full":"deny","checkpoint_key_file":"k.pem"}"#,
        )
        .unwrap();
        assert_eq!(c.flush_interval, Duration::from_secs(1));
        assert_eq!(c.on_full, OnFull::Deny);
        assert_eq!(c.checkpoint_key_file.as_deref(), Some(std::path::Path::new("k.pem")));
        let back: JsonlConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_durations() {
        assert!(serde_json::from_str::<JsonlConfig>(r#"{"dir":"d","colour":1}"#).is_err());
        assert!(serde_json::from_str::<JsonlConfig>(r#"{}"#).is_err());
        let err = serde_json::from_str::<JsonlConfig>(r#"{"dir":"d","flush_interval":"5"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration `5`"), "{err}");
        assert!(serde_json::from_str::<JsonlConfig>(r#"{"dir":"d","on_full":"drop"}"#).is_err());
    }

    #[test]
    fn validation() {
        let mut c = JsonlConfig::new("d");
        assert!(c.validate().is_ok());
        c.queue_capacity = 0;
        assert!(c.validate().unwrap_err().contains("queue_capacity"));
        c.queue_capacity = 1;
        c.max_batch = 0;
        assert!(c.validate().unwrap_err().contains("max_batch"));
    }
}
