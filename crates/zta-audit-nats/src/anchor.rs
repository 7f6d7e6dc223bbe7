//! A JetStream stream as the anchor of the JSON Lines sink's checkpoints: each published
//! checkpoint is one acknowledged message on the log's own subject (see
//! `zta_audit_chain::CheckpointAnchor`).
//!
//! ```text
//! subject  <subject_prefix>.<key id>.<log id>
//! payload  {"log_id":"...","key_id":"...","seq":N,"hash":"<64 hex>","checkpoint":"<the checkpoint's JSON>"}
//! ```

use std::{fmt, time::Duration};

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use zta_audit_chain::{AnchorEntry, AnchorError, CheckpointAnchor};

use crate::sink::{Error, check_stream_and_prefix, plain_name, safe_url};

/// `anchor: {nats: {...}}` of a JSON Lines sink: where its checkpoints are published.
///
/// ```yaml
/// url_env: ZTA_ANCHOR_NATS_URL   # or url: nats://127.0.0.1:4222
/// stream: ZTA_AUDIT_ANCHOR       # default
/// subject_prefix: zta.anchor     # default
/// ```
///
/// Exactly one of `url` and `url_env` (read when the anchor is first used). The stream is
/// made (with `allow_direct`, which reading it needs) if it is missing.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsAnchorConfig {
    /// The NATS server (`nats://host:4222`; `tls://` for TLS). Credentials are never printed.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable that holds the URL instead.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The stream. Default `ZTA_AUDIT_ANCHOR`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `<subject_prefix>.<key id>.<log id>`. Default `zta.anchor`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
}

fn default_stream() -> String {
    "ZTA_AUDIT_ANCHOR".into()
}
fn default_prefix() -> String {
    "zta.anchor".into()
}

impl NatsAnchorConfig {
    /// The stream `ZTA_AUDIT_ANCHOR` on the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            url_env: None,
            stream: default_stream(),
            subject_prefix: default_prefix(),
        }
    }

    /// The stream `ZTA_AUDIT_ANCHOR` on the server whose URL the variable `var` holds.
    pub fn from_env(var: impl Into<String>) -> Self {
        Self { url: None, url_env: Some(var.into()), ..Self::new(String::new()) }
    }

    /// The same, in the stream `stream`.
    #[must_use]
    pub fn with_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = stream.into();
        self
    }

    /// How messages name the server.
    fn safe_url(&self) -> String {
        match (&self.url, &self.url_env) {
            (Some(url), _) => safe_url(url),
            (None, Some(var)) => format!("${var}"),
            (None, None) => "<no url>".into(),
        }
    }

    /// The URL: `url`, or the value of the variable `url_env` names.
    fn resolve(&self) -> Result<String, AnchorError> {
        match (&self.url, &self.url_env) {
            (Some(url), None) => Ok(url.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(url) if !url.trim().is_empty() => Ok(url),
                _ => Err(AnchorError::new(format!(
                    "url_env: environment variable `{}` is not set (or empty, or not UTF-8)",
                    var.escape_debug()
                ))),
            },
            _ => Err(AnchorError::new("give exactly one of `url` and `url_env`")),
        }
    }
}

impl fmt::Debug for NatsAnchorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAnchorConfig")
            .field("url", &self.safe_url())
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

/// The message payload.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    log_id: String,
    key_id: String,
    seq: u64,
    hash: String,
    checkpoint: String,
}

/// A [`CheckpointAnchor`] on a JetStream stream: each log (log id and key id) publishes on a
/// subject of its own, so several logs share the stream and reading one never sees another's.
///
/// It connects on first use, on the caller's runtime, and again after a failure.
pub struct NatsAnchor {
    config: NatsAnchorConfig,
    context: Mutex<Option<jetstream::Context>>,
}

impl fmt::Debug for NatsAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAnchor").field("config", &self.config).finish_non_exhaustive()
    }
}

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl NatsAnchor {
    /// The anchor `config` names. Refuses (here, before any connection) both or neither of
    /// `url` and `url_env`, and a stream name or subject prefix that would not make plain
    /// subjects; an unset `url_env` is refused when the anchor is used.
    pub fn new(config: &NatsAnchorConfig) -> Result<Self, Error> {
        if config.url.is_some() == config.url_env.is_some() {
            return Err(Error::Config("anchor: give exactly one of `url` and `url_env`".into()));
        }
        check_stream_and_prefix(&config.stream, &config.subject_prefix)?;
        Ok(Self { config: config.clone(), context: Mutex::new(None) })
    }

    fn subject(&self, log_id: &str, key_id: &str) -> Result<String, AnchorError> {
        if !plain_name(log_id) || !plain_name(key_id) {
            return Err(AnchorError::new(format!(
                "log `{log_id}` with key `{key_id}` make no plain subject"
            )));
        }
        Ok(format!("{}.{key_id}.{log_id}", self.config.subject_prefix))
    }

    fn failed(&self, what: &str, e: impl fmt::Display) -> AnchorError {
        AnchorError::new(format!(
            "NATS `{}` stream `{}`: {what}: {e}",
            self.config.safe_url(),
            self.config.stream
        ))
    }

    /// The stream, connecting (and making it, when `make`) if there is no connection yet.
    async fn stream(
        &self,
        make: bool,
    ) -> Result<(jetstream::Context, jetstream::stream::Stream), AnchorError> {
        // Taken out: a call that fails or is given up on never puts it back (see `keep`).
        let kept = self.context.lock().await.take();
        let context = match kept {
            Some(context) => context,
            None => {
                let url = self.config.resolve()?;
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(REQUEST_TIMEOUT)
                    .request_timeout(Some(REQUEST_TIMEOUT))
                    .connect(url.as_str())
                    .await
                    .map_err(|e| self.failed("cannot connect", e))?;
                jetstream::new(client)
            }
        };
        let stream = if make {
            context
                .get_or_create_stream(jetstream::stream::Config {
                    name: self.config.stream.clone(),
                    subjects: vec![format!("{}.>", self.config.subject_prefix)],
                    allow_direct: true,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.failed("cannot make or open it", e))
        } else {
            context.get_stream(&self.config.stream).await.map_err(|e| self.failed("cannot open it", e))
        };
        stream.map(|stream| (context, stream))
    }

    /// Keeps the connection of a call that succeeded for the next one.
    async fn keep(&self, context: jetstream::Context) {
        *self.context.lock().await = Some(context);
    }
}

#[async_trait]
impl CheckpointAnchor for NatsAnchor {
    fn describe(&self) -> String {
        format!("NATS stream `{}` at `{}`", self.config.stream, self.config.safe_url())
    }

    async fn publish(&self, entry: &AnchorEntry) -> Result<(), AnchorError> {
        let subject = self.subject(&entry.log_id, &entry.key_id)?;
        let payload = serde_json::to_vec(&Payload {
            log_id: entry.log_id.clone(),
            key_id: entry.key_id.clone(),
            seq: entry.seq,
            hash: entry.hash.clone(),
            checkpoint: entry.checkpoint.clone(),
        })
        .map_err(|e| AnchorError::new(format!("cannot encode the entry: {e}")))?;
        let payload = bytes::Bytes::from(payload);
        // A kept connection may have died (a restarted server); a new one is tried once.
        let mut kept = self.context.lock().await.is_some();
        loop {
            let acked = match self.stream(true).await {
                Ok((context, _)) => {
                    match async { context.publish(subject.clone(), payload.clone()).await?.await }.await {
                        Ok(_) => Ok(context),
                        Err(e) => Err(self.failed("not acknowledged", e)),
                    }
                }
                Err(e) => Err(e),
            };
            match acked {
                Ok(context) => {
                    self.keep(context).await;
                    return Ok(());
                }
                Err(e) if !std::mem::take(&mut kept) => return Err(e),
                Err(_) => {}
            }
        }
    }

    async fn entries(&self, log_id: &str, key_id: &str) -> Result<Vec<AnchorEntry>, AnchorError> {
        let kept = self.context.lock().await.is_some();
        match self.read(log_id, key_id).await {
            // A kept connection may have died (a restarted server); a new one is tried once.
            Err(_) if kept => self.read(log_id, key_id).await,
            read => read,
        }
    }
}

impl NatsAnchor {
    /// Every entry on the subject of the log, in stream order.
    async fn read(&self, log_id: &str, key_id: &str) -> Result<Vec<AnchorEntry>, AnchorError> {
        let subject = self.subject(log_id, key_id)?;
        let (context, stream) = self.stream(false).await?;
        let mut entries = Vec::new();
        let mut from = 1;
        loop {
            let message = match stream.direct_get_next_for_subject(subject.as_str(), Some(from)).await {
                Ok(message) => message,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                    self.keep(context).await;
                    return Ok(entries);
                }
                Err(e) => return Err(self.failed(&format!("cannot read message {from} on `{subject}`"), e)),
            };
            let sequence = message.sequence;
            let p: Payload = serde_json::from_slice(&message.payload).map_err(|e| {
                self.failed(&format!("message {sequence}"), format!("not an anchor entry: {e}"))
            })?;
            if p.log_id != log_id || p.key_id != key_id {
                return Err(self.failed(
                    &format!("message {sequence}"),
                    format!("holds log `{}` key `{}` on the subject of another log", p.log_id, p.key_id),
                ));
            }
            entries.push(AnchorEntry::new(p.log_id, p.key_id, p.seq, p.hash, p.checkpoint));
            from = sequence.saturating_add(1);
        }
    }
}
