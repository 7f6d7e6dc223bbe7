//! The sink and its publisher, behind the group-commit writer of `zta-audit-chain`.

use std::{fmt, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{self, context::PublishAckFuture},
};
use async_trait::async_trait;
use serde::Deserialize;
use zta_audit_chain::{BatchStore, Batching, GroupCommit};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::chain_hash;

/// Where and how the sink publishes.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The NATS server (`nats://host:4222`; `tls://` for TLS). Credentials in the URL are never
    /// printed.
    pub url: String,
    /// The JetStream stream (created with the subjects `<subject_prefix>.>` if missing).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `<subject_prefix>.<writer id>`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// This process's writer id (letters, digits, `-` and `_`). Two live processes must not
    /// share one; the default is new for each sink opened.
    #[serde(default)]
    pub writer_id: Option<String>,
    /// Records queued before `append` waits.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Records published before their acknowledgements are awaited.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How long an unacknowledged batch is published again before the sink gives up.
    #[serde(default = "default_retry", with = "zta_core::duration::text")]
    pub retry_for: Duration,
}

fn default_stream() -> String {
    "ZTA_AUDIT".into()
}
fn default_prefix() -> String {
    "zta.audit".into()
}
fn default_queue() -> usize {
    65_536
}
fn default_batch() -> usize {
    1024
}
fn default_retry() -> Duration {
    Duration::from_secs(10)
}

impl NatsConfig {
    /// Publishing to `url` into the stream `ZTA_AUDIT`, subjects `zta.audit.<writer>`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: default_stream(),
            subject_prefix: default_prefix(),
            writer_id: None,
            queue_capacity: default_queue(),
            batch_size: default_batch(),
            retry_for: default_retry(),
        }
    }

    /// The URL without its user information.
    fn safe_url(&self) -> String {
        safe_url(&self.url)
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &self.safe_url())
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("writer_id", &self.writer_id)
            .finish_non_exhaustive()
    }
}

/// `url` without its user information.
pub(crate) fn safe_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Why the sink could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is not usable.
    #[error("invalid NATS audit config: {0}")]
    Config(String),
    /// The server or the stream could not be reached or made.
    #[error("NATS `{url}`: {reason}")]
    Connect {
        /// The server (without credentials).
        url: String,
        /// Why.
        reason: String,
    },
}

/// A name of letters, digits, `-` and `_` (usable in a subject and a stream name).
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Refuses a stream name or subject prefix that would not make plain subjects.
pub(crate) fn check_stream_and_prefix(stream: &str, subject_prefix: &str) -> Result<(), Error> {
    if !plain_name(stream) {
        return Err(Error::Config(format!("stream `{stream}`: letters, digits, `-` and `_` only")));
    }
    if subject_prefix.is_empty() || !subject_prefix.split('.').all(plain_name) {
        return Err(Error::Config(format!(
            "subject_prefix `{subject_prefix}`: dot-separated names of letters, digits, `-` and `_`"
        )));
    }
    Ok(())
}

/// An [`AuditSink`] that publishes to a JetStream stream.
pub struct NatsSink {
    writes: GroupCommit<Prepared>,
    writer: String,
    config: NatsConfig,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink").field("config", &self.config).field("writer", &self.writer).finish()
    }
}

impl NatsSink {
    /// Connects, makes the stream if it is missing, and starts publishing. Refuses a writer id,
    /// stream name or subject prefix that would not make plain subjects.
    pub async fn open(config: NatsConfig) -> Result<Self, Error> {
        check_stream_and_prefix(&config.stream, &config.subject_prefix)?;
        let writer = match &config.writer_id {
            Some(id) if plain_name(id) => id.clone(),
            Some(id) => {
                return Err(Error::Config(format!("writer_id `{id}`: letters, digits, `-` and `_` only")));
            }
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        if config.batch_size == 0 || config.queue_capacity == 0 {
            return Err(Error::Config("batch_size and queue_capacity must be at least 1".into()));
        }
        let connect = |reason: String| Error::Connect { url: config.safe_url(), reason };
        let client = async_nats::connect(config.url.as_str()).await.map_err(|e| connect(e.to_string()))?;
        let context = jetstream::new(client);
        let stream = context
            .get_or_create_stream(jetstream::stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| connect(format!("stream `{}`: {e}", config.stream)))?;
        let subject = format!("{}.{writer}", config.subject_prefix);
        // A writer id given again continues its chain.
        let (seq, prev) = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let entry: crate::verify::Entry = serde_json::from_slice(&message.payload).map_err(|e| {
                    connect(format!("the last message of `{subject}` is not an audit entry: {e}"))
                })?;
                (entry.seq, entry.hash_bytes().map_err(connect)?)
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => (0, [0; 32]),
            Err(e) => return Err(connect(format!("cannot read `{subject}`: {e}"))),
        };
        let publisher = Publisher {
            context,
            subject,
            writer: writer.clone(),
            seq,
            prev,
            config: config.clone(),
            stopped: false,
        };
        // A batch is published as soon as it is taken: acknowledgements already overlap.
        let batching = Batching {
            batch_size: config.batch_size,
            max_delay: Duration::ZERO,
            queue_capacity: config.queue_capacity,
        };
        let label = format!("stream `{}` (writer `{writer}`)", config.stream);
        let writes = GroupCommit::start(publisher, batching, label);
        Ok(Self { writes, writer, config })
    }

    /// This sink's writer id.
    pub fn writer_id(&self) -> &str {
        &self.writer
    }

    /// Publishes everything taken, waits for its acknowledgements, and stops. Later appends
    /// fail.
    pub async fn close(&self) -> Result<(), AuditError> {
        self.writes.close().await
    }
}

#[async_trait]
impl AuditSink for NatsSink {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        if self.writes.is_closed() {
            return Err(AuditError::Closed);
        }
        // Serialized here, on the appender's task, so that the publisher only hashes and sends.
        let mut json = Vec::with_capacity(512);
        record.write_json(&mut json)?;
        self.writes.append(Prepared { id: record.id, json }, durability).await
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.writes.flush().await
    }

    /// Records in the group-commit queue or batch, not yet stored.
    fn queued(&self) -> Option<u64> {
        Some(self.writes.queued())
    }
}

/// A record serialized, waiting for its place in the chain.
struct Prepared {
    id: uuid::Uuid,
    json: Vec<u8>,
}

/// One message of a batch, kept until it is acknowledged.
struct Pending {
    id: String,
    payload: bytes::Bytes,
}

/// The publishing task's state: the chain's head.
struct Publisher {
    context: jetstream::Context,
    subject: String,
    writer: String,
    seq: u64,
    prev: [u8; 32],
    config: NatsConfig,
    /// A batch was not acknowledged.
    stopped: bool,
}

#[async_trait]
impl BatchStore for Publisher {
    type Row = Prepared;

    fn record_id(row: &Prepared) -> uuid::Uuid {
        row.id
    }

    async fn commit(&mut self, rows: Vec<Prepared>) -> Result<(), AuditError> {
        let batch: Vec<Pending> = rows.iter().map(|row| self.entry(row)).collect();
        let result = self.publish(&batch).await;
        self.stopped = result.is_err();
        result
    }

    /// A batch not acknowledged within `retry_for` stops the sink: the chain has moved past
    /// records the stream may not hold, so every later append fails.
    fn stopped(&self) -> bool {
        self.stopped
    }

    async fn close(self) {}
}

impl Publisher {
    /// The next chain entry for `row`.
    fn entry(&mut self, row: &Prepared) -> Pending {
        let json = &row.json;
        let seq = self.seq + 1;
        let hash = chain_hash(&self.writer, seq, &self.prev, json);
        let mut payload = Vec::with_capacity(json.len() + 256);
        payload.extend_from_slice(b"{\"writer\":\"");
        payload.extend_from_slice(self.writer.as_bytes());
        payload.extend_from_slice(format!("\",\"seq\":{seq},\"prev_hash\":\"").as_bytes());
        payload.extend_from_slice(hex::encode(self.prev).as_bytes());
        payload.extend_from_slice(b"\",\"hash\":\"");
        payload.extend_from_slice(hex::encode(hash).as_bytes());
        payload.extend_from_slice(b"\",\"record\":");
        payload.extend_from_slice(json);
        payload.push(b'}');
        self.seq = seq;
        self.prev = hash;
        Pending { id: row.id.to_string(), payload: payload.into() }
    }

    /// Publishes `batch` and waits for every acknowledgement, publishing it again (the same
    /// message ids) until [`NatsConfig::retry_for`] has passed.
    async fn publish(&self, batch: &[Pending]) -> Result<(), AuditError> {
        let deadline = tokio::time::Instant::now() + self.config.retry_for;
        let mut wait = Duration::from_millis(50);
        loop {
            match self.publish_once(batch).await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(target: "zta_audit_nats", writer = %self.writer, error = %e, "audit batch not acknowledged; publishing it again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish_once(&self, batch: &[Pending]) -> Result<(), AuditError> {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(batch.len());
        for pending in batch {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", pending.id.as_str());
            let message =
                jetstream::message::PublishMessage::build().payload(pending.payload.clone()).headers(headers);
            let ack =
                self.context.send_publish(self.subject.clone(), message).await.map_err(AuditError::write)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(AuditError::write)?;
        }
        Ok(())
    }
}
