//! Configuration of the JSON Lines sink.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use zta_audit_chain::CheckpointAnchor;

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
    /// With `on_full: wait`, the longest an `append` waits for room before it is refused with
    /// `AuditError::QueueFull` (the guard then denies), so a writer stuck in a slow fsync
    /// cannot hold requests forever. `"0s"` refuses at once, like `deny`. Default `"1s"`.
    #[serde(default = "default_full_wait", with = "zta_core::duration::text")]
    pub full_wait: Duration,
    /// An Ed25519 private key (PKCS#8, PEM) that signs the checkpoint. Without it the checkpoint
    /// is unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Where each checkpoint is also published, outside the log directory, so that putting
    /// back an older checkpoint and cutting the log to match can be detected
    /// (`verify --anchor`). None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorConfig>,
}

/// An external anchor for the checkpoints: `{file: PATH}`, `{command: [argv...]}`, or a store
/// ([`with_store`](Self::with_store): a PostgreSQL table or a NATS JetStream stream, which the
/// `zta` facade configures as `{postgres: {...}, log_id: ID}` or `{nats: {...}, log_id: ID}`).
///
/// After a group commit the writer hands the new checkpoint to an anchor thread, which
/// publishes the newest one at most once per `interval`, and once more when the sink closes.
/// A checkpoint is published only after it is durable beside the log, so the anchor never gets
/// ahead of it. A failed publication is logged at error level and retried with the newest
/// checkpoint at the next interval; once publishing to a file or a command has failed for
/// `fail_after`, the sink fails closed (it takes no more records, so every request is denied)
/// after committing what it had accepted. A store never fails the sink: see
/// [`with_store`](Self::with_store).
///
/// ```
/// let config: zta_audit_jsonl::JsonlConfig = serde_json::from_str(
///     r#"{ "dir": "/var/lib/zta/audit", "anchor": { "file": "/mnt/anchor/zta-checkpoints.jsonl" } }"#,
/// )?;
/// assert!(config.anchor.is_some());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AnchorConfig {
    /// Append each published checkpoint as one JSON line (the fields of `checkpoint.json`) to
    /// this file, and fsync it. Meant to sit on another volume (or an append-only file) the
    /// log's writer cannot rewrite. One anchor file per log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Run this program (`[program, args...]`, no shell) with the checkpoint's JSON line on
    /// stdin; exit status 0 means published. Its stdout is discarded, its stderr inherited. A
    /// run that takes longer than `fail_after` (at least 1 s) is killed and counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// At most one publication per interval, plus one at close. Default `"1s"`.
    #[serde(default = "default_anchor_interval", with = "zta_core::duration::text")]
    pub interval: Duration,
    /// How long publishing to a file or a command may keep failing before the sink fails
    /// closed. `"0s"`: the first failure. Default `"10s"`. With a store it only bounds one
    /// attempt (at least 1 s).
    #[serde(default = "default_anchor_fail_after", with = "zta_core::duration::text")]
    pub fail_after: Duration,
    /// The log's name in a shared anchor store (letters, digits, `-` and `_`, at most 64
    /// bytes): required with a store, refused otherwise. Each log publishing to one store
    /// needs its own; with the checkpoint key's id it is what tells this log's entries from
    /// another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    /// The store, if the checkpoints go to one (set with [`with_store`](Self::with_store)).
    #[serde(skip)]
    store: Option<Store>,
}

/// The anchor store, compared by identity (a config is equal to its clones).
#[derive(Debug, Clone)]
pub(crate) struct Store(pub(crate) Arc<dyn CheckpointAnchor>);

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Store {}

impl AnchorConfig {
    /// Publish to an append-only file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::with(Some(path.into()), None)
    }

    /// Publish through a command: `argv[0]` is the program, the rest its arguments.
    pub fn command(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with(None, Some(argv.into_iter().map(Into::into).collect()))
    }

    /// Publish to an anchor store (a PostgreSQL table, a NATS JetStream stream) as the log
    /// `log_id`. Needs [`JsonlConfig::checkpoint_key_file`]: the store tells logs apart by
    /// `log_id` and the key's id, and the verifier checks every entry's signature.
    ///
    /// Unlike a file or a command, a store never fails the sink closed: it is a service
    /// elsewhere, and its outage must not deny requests. A failed publication is logged at
    /// error level (with how long publishing has failed and the newest seq not yet anchored)
    /// and retried with the newest checkpoint every `interval`; no local record is lost, and
    /// `verify` reports how far the anchor lags.
    pub fn store(log_id: impl Into<String>, store: Arc<dyn CheckpointAnchor>) -> Self {
        Self { log_id: Some(log_id.into()), ..Self::with(None, None) }.with_store(store)
    }

    /// The same anchor settings, publishing to `store` (this is how the `zta` facade adds the
    /// store of an `anchor: {postgres: ...}` or `{nats: ...}` section to the rest of it).
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn CheckpointAnchor>) -> Self {
        self.store = Some(Store(store));
        self
    }

    /// The store, if the checkpoints go to one.
    pub(crate) fn anchor_store(&self) -> Option<&Arc<dyn CheckpointAnchor>> {
        self.store.as_ref().map(|s| &s.0)
    }

    fn with(file: Option<PathBuf>, command: Option<Vec<String>>) -> Self {
        Self {
            file,
            command,
            interval: default_anchor_interval(),
            fail_after: default_anchor_fail_after(),
            log_id: None,
            store: None,
        }
    }
}

/// What `append` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnFull {
    /// Wait for room (backpressure), at most [`JsonlConfig::full_wait`]; then refuse with
    /// `AuditError::QueueFull` (the guard then denies).
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
fn default_full_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_anchor_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_anchor_fail_after() -> Duration {
    Duration::from_secs(10)
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
            full_wait: default_full_wait(),
            checkpoint_key_file: None,
            anchor: None,
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
        if let Some(anchor) = &self.anchor {
            match (&anchor.file, &anchor.command, &anchor.store) {
                (Some(file), None, None) if !file.as_os_str().is_empty() => {}
                (None, Some(argv), None) if argv.first().is_some_and(|p| !p.is_empty()) => {}
                (None, None, Some(_)) => {}
                (None, None, None) => {
                    return Err("`anchor` needs one of `file`, `command`, `postgres` or `nats`".into());
                }
                (Some(_), None, None) | (None, Some(_), None) => {
                    return Err("`anchor` has an empty `file` or `command`".into());
                }
                _ => {
                    return Err(
                        "`anchor` takes one of `file`, `command`, `postgres` or `nats`, not several".into()
                    );
                }
            }
            match (&anchor.store, &anchor.log_id) {
                (Some(_), None) => {
                    return Err("`anchor` needs a `log_id` with `postgres` or `nats`: the log's name in the shared store".into());
                }
                (Some(_), Some(id)) => {
                    zta_audit_chain::check_log_id(id).map_err(|e| format!("`anchor`: {e}"))?
                }
                (None, Some(_)) => {
                    return Err("`anchor.log_id` names the log in a `postgres` or `nats` anchor store; a `file` or `command` anchor takes none".into());
                }
                (None, None) => {}
            }
            if anchor.store.is_some() && self.checkpoint_key_file.is_none() {
                return Err("a `postgres` or `nats` anchor needs `checkpoint_key_file`: the store's entries are told apart and checked by the checkpoint's signature".into());
            }
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
        assert_eq!(c.full_wait, Duration::from_secs(1));
        assert_eq!(c.anchor, None);

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
    fn anchors() {
        let c: JsonlConfig = serde_json::from_str(
            r#"{"dir":"d","full_wait":"250ms","anchor":{"command":["logger","-t","zta"],"fail_after":"0s"}}"#,
        )
        .unwrap();
        assert_eq!(c.full_wait, Duration::from_millis(250));
        let a = c.anchor.as_ref().unwrap();
        assert_eq!(a.command.as_deref(), Some(&["logger".to_owned(), "-t".into(), "zta".into()][..]));
        assert_eq!((a.interval, a.fail_after), (Duration::from_secs(1), Duration::ZERO));
        assert!(c.validate().is_ok());
        let c: JsonlConfig = serde_json::from_str(r#"{"dir":"d","anchor":{"file":"/mnt/a.jsonl"}}"#).unwrap();
        assert_eq!(c.anchor, Some(AnchorConfig::file("/mnt/a.jsonl")));
        assert_eq!(c.anchor.as_ref().unwrap().fail_after, Duration::from_secs(10));

        for (anchor, wrong) in [
            (r#"{}"#, "needs one of `file`, `command`"),
            (r#"{"file":"a","command":["b"]}"#, "not several"),
            (r#"{"file":"a","log_id":"b"}"#, "takes none"),
            (r#"{"command":[]}"#, "empty"),
            (r#"{"file":""}"#, "empty"),
        ] {
            let c: JsonlConfig =
                serde_json::from_str(&format!(r#"{{"dir":"d","anchor":{anchor}}}"#)).unwrap();
            assert!(c.validate().unwrap_err().contains(wrong), "{anchor}");
        }
        assert!(serde_json::from_str::<JsonlConfig>(r#"{"dir":"d","anchor":{"url":"x"}}"#).is_err());
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
