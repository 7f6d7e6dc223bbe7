//! The alert webhook: every alert POSTed as JSON, signed like the gateway's approval webhook
//! (`x-zta-signature: sha256=<hex HMAC-SHA256 of the body>`), retried with back-off from a
//! task of its own, so the request path never waits for it.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use serde::Deserialize;
use tokio::sync::mpsc;

/// Where alerts are POSTed and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST: `https://`, or `http://` to a loopback address.
    pub url: String,
    /// The environment variable holding the HMAC key the receiver checks the signature with.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding that key (instead of `secret_env`).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How long one delivery may take (default 10 s).
    #[serde(default = "default_timeout", with = "zta_core::duration::text")]
    pub timeout: Duration,
    /// Further attempts after a failed delivery (a transport error or a status other than
    /// 2xx), each after twice the previous wait (default 5).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The wait before the first retry (default 1 s).
    #[serde(default = "default_backoff", with = "zta_core::duration::text")]
    pub backoff: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_retries() -> u32 {
    5
}

fn default_backoff() -> Duration {
    Duration::from_secs(1)
}

/// Alerts waiting for delivery beyond which new ones are dropped (and counted).
const QUEUE: usize = 1024;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Counts of deliveries, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

impl WebhookStats {
    /// Alerts the receiver took (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }
    /// Attempts that failed and were tried again.
    pub fn retried(&self) -> u64 {
        self.retried.load(Relaxed)
    }
    /// Alerts given up on: every attempt failed, or the queue was full.
    pub fn failed(&self) -> u64 {
        self.failed.load(Relaxed)
    }
}

/// The sending side; a task delivers in order.
#[derive(Debug)]
pub(crate) struct Webhook {
    queue: mpsc::Sender<String>,
    stats: Arc<WebhookStats>,
}

impl Webhook {
    /// Checks the config, reads the key and starts the delivery task (inside a Tokio runtime).
    pub(crate) fn start(config: &WebhookConfig) -> Result<Self, String> {
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
        let url = &config.url;
        let at_loopback = loopback
            .iter()
            .any(|l| url.strip_prefix(l).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
        if !url.starts_with("https://") && !at_loopback {
            return Err("`webhook.url` must be `https://` (or `http://` to a loopback address)".into());
        }
        let secret =
            zta_core::secret_source::read(config.secret_env.as_deref(), config.secret_file.as_deref())
                .map_err(|e| match e.setting() {
                    Some(setting) => format!("`webhook.{setting}`: {e}"),
                    None => format!("`webhook`: {e}"),
                })?;
        if secret.len() < 16 {
            return Err("`webhook`: the HMAC key must be at least 16 bytes".into());
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("`webhook`: {e}"))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "`webhook`: the monitor must be built inside a Tokio runtime".to_owned())?;
        let (queue, mut waiting) = mpsc::channel::<String>(QUEUE);
        let stats = Arc::new(WebhookStats::default());
        let delivery = Delivery {
            url: url.clone(),
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
            client,
            retries: config.retries,
            backoff: config.backoff,
            stats: stats.clone(),
        };
        runtime.spawn(async move {
            while let Some(body) = waiting.recv().await {
                delivery.deliver(body).await;
            }
        });
        Ok(Self { queue, stats })
    }

    /// Queues one alert; a full queue drops it (counted as failed, and logged).
    pub(crate) fn send(&self, body: String) {
        if self.queue.try_send(body).is_err() {
            self.stats.failed.fetch_add(1, Relaxed);
            tracing::error!(target: "zta_monitor", "alert webhook queue full: an alert was not sent");
        }
    }

    pub(crate) fn stats(&self) -> &WebhookStats {
        &self.stats
    }
}

struct Delivery {
    url: String,
    key: aws_lc_rs::hmac::Key,
    client: reqwest::Client,
    retries: u32,
    backoff: Duration,
    stats: Arc<WebhookStats>,
}

impl Delivery {
    async fn deliver(&self, body: String) {
        let signature = format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&self.key, body.as_bytes())));
        let mut wait = self.backoff;
        for attempt in 0..=self.retries {
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-zta-signature", &signature)
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(answer) if answer.status().is_success() => {
                    self.stats.delivered.fetch_add(1, Relaxed);
                    return;
                }
                Ok(answer) => format!("answered {}", answer.status()),
                Err(e) => e.without_url().to_string(),
            };
            if attempt == self.retries {
                self.stats.failed.fetch_add(1, Relaxed);
                tracing::error!(target: "zta_monitor", error = %failure, attempts = attempt + 1, "alert webhook: giving up on an alert");
                return;
            }
            self.stats.retried.fetch_add(1, Relaxed);
            tracing::warn!(target: "zta_monitor", error = %failure, retry_in = ?wait, "alert webhook failed; retrying");
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2).min(MAX_BACKOFF);
        }
    }
}
