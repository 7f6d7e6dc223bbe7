//! [`MonitoredSink`]: the audit sink the guard writes to when monitoring is on.

use std::{future::Future, pin::Pin, sync::Arc};

use async_trait::async_trait;
use zta_core::{AuditError, AuditEvent, AuditRecord, AuditSink, Durability, StateStore};

use crate::{ConfigError, Monitor, MonitorConfig, monitor::Observation};

/// Writes every record to the sink it wraps, and shows the ones a detector may care about to
/// the [`Monitor`] once they are stored, before `append` returns: a response is in the state
/// store before the guard answers the request that fired it, so it holds for the agent's next
/// request (ADR 7). A permit costs one look at a few of its fields.
#[derive(Debug)]
pub struct MonitoredSink {
    inner: Arc<dyn AuditSink>,
    monitor: Arc<Monitor>,
}

impl MonitoredSink {
    /// `inner`, watched by the detectors of `config`, which count and respond in `state` and
    /// write their alerts and responses to `inner`.
    pub fn new(
        inner: Arc<dyn AuditSink>,
        config: MonitorConfig,
        state: Arc<dyn StateStore>,
    ) -> Result<Self, ConfigError> {
        let monitor = Monitor::new(config, state, inner.clone())?;
        Ok(Self::with_monitor(inner, Arc::new(monitor)))
    }

    /// `inner` watched by `monitor` (which should write to `inner` too).
    pub fn with_monitor(inner: Arc<dyn AuditSink>, monitor: Arc<Monitor>) -> Self {
        Self { inner, monitor }
    }

    /// The monitor, for its statistics.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }
}

#[async_trait]
impl AuditSink for MonitoredSink {
    // Written out rather than `async fn`: a record no detector cares about (every permit)
    // gets the inner sink's future itself, without a second boxed future around it.
    fn append<'life0, 'async_trait>(
        &'life0 self,
        record: AuditRecord,
        durability: Durability,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let rate_fired = match (&record.agent_id, record.event) {
            (Some(agent), AuditEvent::Authorization) => {
                self.monitor.count_request(agent, record.time).map(|fired| (agent.clone(), fired))
            }
            _ => None,
        };
        let seen = Observation::of(&record);
        if seen.is_none() && rate_fired.is_none() {
            return self.inner.append(record, durability);
        }
        Box::pin(async move {
            // A record the sink did not take is not acted on.
            self.inner.append(record, durability).await?;
            if let Some(seen) = seen {
                self.monitor.observe(&seen).await;
            }
            if let Some((agent, fired)) = rate_fired {
                self.monitor.fire_rates(&agent, fired).await;
            }
            Ok(())
        })
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.inner.flush().await
    }

    async fn ready(&self) -> Result<(), AuditError> {
        self.inner.ready().await
    }

    fn queued(&self) -> Option<u64> {
        self.inner.queued()
    }
}
