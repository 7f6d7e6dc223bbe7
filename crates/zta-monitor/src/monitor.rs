//! [`Monitor`]: the detectors, their shared counters and their responses.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use serde_json::json;
use time::OffsetDateTime;
use zta_core::{
    Actor, AgentId, AuditEvent, AuditRecord, AuditSink, Durability, Effect, StateError, StateStore,
};

use crate::{
    ConfigError, Detect, DetectorConfig, MonitorConfig, Response, WebhookStats, rate::Rates, webhook::Webhook,
};

/// What a record tells the detectors, taken from it before it goes to the sink.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The agent the record is about: the verified one, or for a failed authentication the
    /// one its credential claimed.
    agent: Option<AgentId>,
    /// Whether `agent` was only claimed.
    claimed: bool,
    /// The patterns this record is an occurrence of.
    patterns: Vec<Detect>,
    /// What was asked for, for counting distinct targets.
    target: Option<String>,
    /// The segment of the target agent a policy denial was for, for counting distinct segments.
    segment: Option<String>,
    /// When it happened, as the guard stamped the record: the windows follow these times.
    time: OffsetDateTime,
    /// The network address it came from, where the adapter recorded one.
    source: Option<String>,
}

impl Observation {
    /// What `record` shows, or `None` when no detector could care (every permit: the warm
    /// path pays this one look at a few fields).
    pub(crate) fn of(record: &AuditRecord) -> Option<Self> {
        let signal = record.detail.get("signal").and_then(|v| v.as_str());
        if record.effect == Effect::Allow && record.event != AuditEvent::TokenReuse && signal.is_none() {
            return None;
        }
        let denial = record.detail.get("denial").and_then(|v| v.as_str());
        let mut patterns = Vec::new();
        match (record.event, denial) {
            (AuditEvent::TokenReuse, _) => patterns.push(Detect::TokenReuse),
            (AuditEvent::Authorization, Some("explicit_deny" | "default_deny")) => {
                patterns.extend([Detect::Denials, Detect::Scanning, Detect::SegmentScanning]);
            }
            (_, Some("reserved_attribute")) => patterns.push(Detect::ReservedAttribute),
            (_, Some("replayed")) => patterns.push(Detect::Replay),
            // A refresh token that does not verify is a failed authentication too (it claims no
            // agent, so only `source_failures` can count it).
            (
                AuditEvent::Authorization | AuditEvent::Login | AuditEvent::TokenRefresh,
                Some("invalid_credential" | "locked_out"),
            ) if record.agent_id.is_none() => {
                patterns.extend([Detect::AuthFailures, Detect::SourceFailures]);
            }
            _ => {}
        }
        if signal == Some("tool_definition_changed") {
            patterns.push(Detect::ToolChange);
        }
        if patterns.is_empty() {
            return None;
        }
        let claimed_agent =
            || record.detail.get("claimed_agent").and_then(|v| v.as_str()).and_then(|a| AgentId::new(a).ok());
        let (agent, claimed) = match &record.agent_id {
            Some(agent) => (Some(agent.clone()), false),
            None => (claimed_agent(), true),
        };
        let source = record.detail.get("source").and_then(|v| v.as_str()).map(str::to_owned);
        let segment = record.detail.get("target_segment").and_then(|v| v.as_str()).map(str::to_owned);
        Some(Self { agent, claimed, patterns, target: target(record), segment, time: record.time, source })
    }
}

/// What a request asked for, as one string: its action, resource, target agent.
fn target(record: &AuditRecord) -> Option<String> {
    let mut out = String::new();
    if let Some(action) = &record.action {
        out.push_str(&format!("{}:{}", action.kind().as_str(), action.name()));
    }
    if let Some(resource) = &record.resource {
        out.push_str(&format!("|{}:{}", resource.kind, resource.id));
    }
    if let Some(agent) = &record.target_agent {
        out.push_str(&format!("|agent:{agent}"));
    }
    (!out.is_empty()).then_some(out)
}

/// Counts of what the monitor did, for `/metrics`.
#[derive(Debug, Default)]
pub struct MonitorStats {
    alerts: AtomicU64,
    responses: AtomicU64,
    errors: AtomicU64,
}

impl MonitorStats {
    /// Alerts raised (dry-run detectors included).
    pub fn alerts(&self) -> u64 {
        self.alerts.load(Relaxed)
    }
    /// Responses carried out (revocations and suspensions).
    pub fn responses(&self) -> u64 {
        self.responses.load(Relaxed)
    }
    /// State-store or audit failures while detecting or responding.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

/// The detectors of a `monitor:` section, counting in the shared state store and responding
/// through it (see ADR 7). [`MonitoredSink`](crate::MonitoredSink) feeds it.
pub struct Monitor {
    detectors: Vec<DetectorConfig>,
    /// The `rate` detectors' baselines, with their detectors' positions.
    rates: Vec<(usize, Rates)>,
    webhook: Option<Webhook>,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    stats: MonitorStats,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor").field("detectors", &self.detectors).finish_non_exhaustive()
    }
}

impl Monitor {
    /// The monitor of `config`, counting in `state` and writing its alerts and responses to
    /// `audit` (the sink it watches, so they are not watched again).
    pub fn new(
        config: MonitorConfig,
        state: Arc<dyn StateStore>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let webhook = match &config.webhook {
            Some(hook) => {
                Some(Webhook::start(hook).map_err(|message| ConfigError { detector: None, message })?)
            }
            None => None,
        };
        let rates = (config.detectors.iter().enumerate())
            .filter(|(_, d)| d.detect == Detect::Rate)
            .map(|(i, d)| (i, Rates::new(d.window, d.threshold, d.factor)))
            .collect();
        Ok(Self { detectors: config.detectors, rates, webhook, state, audit, stats: MonitorStats::default() })
    }

    /// What it has done.
    pub fn stats(&self) -> &MonitorStats {
        &self.stats
    }

    /// What the webhook has delivered, when there is one.
    pub fn webhook_stats(&self) -> Option<&WebhookStats> {
        self.webhook.as_ref().map(Webhook::stats)
    }

    /// Counts one request of `agent` at `time` (the record's) for the `rate` detectors,
    /// without waiting on anything: this runs for every request. Answers the detectors it made
    /// fire, with the window's count.
    pub(crate) fn count_request(&self, agent: &AgentId, time: OffsetDateTime) -> Option<Vec<(usize, u32)>> {
        if self.rates.is_empty() {
            return None;
        }
        let now_ms = time.unix_timestamp_nanos() / 1_000_000;
        let mut fired = None;
        for (detector, rates) in &self.rates {
            if let Some((count, _)) = rates.count(agent, now_ms) {
                fired.get_or_insert_with(Vec::new).push((*detector, count));
            }
        }
        fired
    }

    /// Alerts and responds for the `rate` detectors `count_request` made fire.
    pub(crate) async fn fire_rates(&self, agent: &AgentId, fired: Vec<(usize, u32)>) {
        for (detector, count) in fired {
            let Some(d) = self.detectors.get(detector) else { continue };
            if let Err(e) = self.fire(d, Some(agent), false, u64::from(count)).await {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::error!(target: "zta_monitor", detector = %d.name, error = %e, "monitor could not respond");
            }
        }
    }

    /// Runs every detector the observation concerns; a failure is logged and counted, never
    /// raised (the record it watched is already stored).
    pub(crate) async fn observe(&self, seen: &Observation) {
        for detector in self.detectors.iter().filter(|d| seen.patterns.contains(&d.detect)) {
            if let Err(e) = self.run(detector, seen).await {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::error!(target: "zta_monitor", detector = %detector.name, error = %e, "monitor could not run a detector");
            }
        }
    }

    async fn run(&self, d: &DetectorConfig, seen: &Observation) -> Result<(), Failure> {
        let now = seen.time;
        if d.detect.is_immediate() {
            return self.fire(d, seen.agent.as_ref(), seen.claimed, 1).await;
        }
        // What is counted: the network address for `source_failures`, else the agent.
        let counted = if d.detect == Detect::SourceFailures {
            seen.source.as_deref()
        } else {
            seen.agent.as_ref().map(AgentId::as_str)
        };
        let Some(counted) = counted else { return Ok(()) };
        let window = Window::at(d.window, now);
        let base = format!("monitor:{}:{counted}", d.name);
        let key = |bucket: i64| format!("{base}:{bucket}");
        // Keys name their bucket by the records' times; the store forgets them by its own
        // after two windows (the current bucket and the one before it are read).
        let keep = d.window.saturating_mul(2);
        let until = OffsetDateTime::now_utc() + keep;
        // Scanning counts what is new in this bucket: a target, or a segment.
        let distinct = match d.detect {
            Detect::Scanning => Some(&seen.target),
            Detect::SegmentScanning => Some(&seen.segment),
            _ => None,
        };
        if let Some(distinct) = distinct {
            let Some(target) = distinct else { return Ok(()) };
            if !self.state.claim_once(&format!("{base}:{}:seen:{target}", window.bucket), until).await? {
                return Ok(()); // not a new target in this bucket
            }
        }
        let current = self.state.add_failure(&key(window.bucket), keep).await?;
        let previous = self.state.failures(&key(window.bucket - 1)).await?;
        let count = window.estimate(current, previous);
        if count < f64::from(d.threshold) {
            return Ok(());
        }
        // Once per agent (or address) and bucket: what comes after the threshold does not
        // alert again.
        let fired = format!("{base}:{}:fired", window.bucket);
        if !self.state.claim_once(&fired, until).await? {
            return Ok(());
        }
        if d.detect == Detect::SourceFailures {
            return self.fire_at(d, None, seen.claimed, count.floor() as u64, Some(counted)).await;
        }
        self.fire(d, seen.agent.as_ref(), seen.claimed, count.floor() as u64).await
    }

    /// Alerts, then carries out the responses (a dry run only alerts).
    async fn fire(
        &self,
        d: &DetectorConfig,
        agent: Option<&AgentId>,
        claimed: bool,
        count: u64,
    ) -> Result<(), Failure> {
        self.fire_at(d, agent, claimed, count, None).await
    }

    /// [`fire`](Self::fire), the alert naming the network address it counted, if any.
    async fn fire_at(
        &self,
        d: &DetectorConfig,
        agent: Option<&AgentId>,
        claimed: bool,
        count: u64,
        source: Option<&str>,
    ) -> Result<(), Failure> {
        let acting: Vec<Response> = d.respond.iter().copied().filter(|r| *r != Response::Alert).collect();
        let what = if d.detect.is_immediate() {
            d.detect.as_str().replace('_', " ")
        } else if d.detect == Detect::Rate {
            format!(
                "{count} requests within {}, over {} times the agent's baseline",
                zta_core::duration::format(d.window),
                d.factor
            )
        } else {
            format!(
                "{count} {} within {} (threshold {})",
                d.detect.as_str().replace('_', " "),
                zta_core::duration::format(d.window),
                d.threshold
            )
        };
        let what = match source {
            Some(source) => format!("{what} from {source}"),
            None => what,
        };
        let mut alert = AuditRecord::new(AuditEvent::Alert, Effect::Allow)
            .with_reason(format!("{}: {what}", d.name))
            .with_detail("detector", d.name.clone())
            .with_detail("detect", d.detect.as_str())
            .with_detail("by", Actor::Monitor(d.name.clone()).to_string())
            .with_detail("responses", json!(acting.iter().map(|r| r.as_str()).collect::<Vec<_>>()));
        if d.dry_run {
            alert = alert.with_detail("dry_run", true);
        }
        if let Some(source) = source {
            alert = alert.with_detail("source", source);
        }
        match (agent, claimed) {
            (Some(agent), false) => alert.agent_id = Some(agent.clone()),
            (Some(agent), true) => alert = alert.with_detail("claimed_agent", agent.as_str()),
            (None, _) => {}
        }
        self.stats.alerts.fetch_add(1, Relaxed);
        tracing::warn!(target: "zta_monitor", detector = %d.name, agent = ?agent.map(AgentId::as_str), dry_run = d.dry_run, "{}", alert.reason.as_deref().unwrap_or_default());
        if let Some(webhook) = &self.webhook {
            match serde_json::to_string(&alert) {
                Ok(body) => webhook.send(body),
                Err(e) => {
                    tracing::error!(target: "zta_monitor", error = %e, "an alert could not be encoded for the webhook")
                }
            }
        }
        self.audit.append(alert, Durability::Queued).await?;
        let (Some(agent), false, false) = (agent, claimed, d.dry_run) else { return Ok(()) };
        for response in acting {
            self.respond(d, agent, response).await?;
        }
        Ok(())
    }

    /// Carries out one response and audits it as the detector's doing.
    async fn respond(&self, d: &DetectorConfig, agent: &AgentId, response: Response) -> Result<(), Failure> {
        let (event, reason) = match response {
            Response::Alert => return Ok(()),
            Response::Revoke => {
                self.state.revoke_agent(agent, OffsetDateTime::now_utc()).await?;
                (AuditEvent::Revocation, format!("sessions revoked by detector `{}`", d.name))
            }
            Response::StepUp => {
                self.state.revoke_agent(agent, OffsetDateTime::now_utc()).await?;
                (AuditEvent::Revocation, format!("step-up required by detector `{}`: log in again", d.name))
            }
            Response::Suspend => {
                self.state.suspend(agent).await?;
                (AuditEvent::Suspension, format!("suspended by detector `{}`", d.name))
            }
        };
        self.stats.responses.fetch_add(1, Relaxed);
        let mut record = AuditRecord::new(event, Effect::Allow)
            .with_reason(reason)
            .with_detail("by", Actor::Monitor(d.name.clone()).to_string())
            .with_detail("response", response.as_str());
        record.agent_id = Some(agent.clone());
        self.audit.append(record, Durability::Queued).await?;
        Ok(())
    }
}

/// A fixed bucket of the window's length, aligned to the epoch, and where `now` is in it.
struct Window {
    bucket: i64,
    /// How much of the previous bucket still lies within one window of `now` (1 at the
    /// bucket's start, 0 at its end).
    overlap: f64,
}

impl Window {
    fn at(length: Duration, now: OffsetDateTime) -> Self {
        let length_ms = i128::try_from(length.as_millis()).unwrap_or(i128::MAX).max(1);
        let now_ms = now.unix_timestamp_nanos() / 1_000_000;
        let bucket = now_ms.div_euclid(length_ms);
        let into = now_ms.rem_euclid(length_ms);
        #[expect(clippy::cast_precision_loss, reason = "a fraction of one window")]
        let overlap = 1.0 - into as f64 / length_ms as f64;
        Self { bucket: i64::try_from(bucket).unwrap_or(i64::MAX), overlap }
    }

    /// The count over the last window: this bucket's, and the previous one's weighted by how
    /// much of it the window still covers.
    fn estimate(&self, current: u32, previous: u32) -> f64 {
        f64::from(current) + f64::from(previous) * self.overlap
    }
}

/// Why a detector could not run or respond.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Audit(#[from] zta_core::AuditError),
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn windows_are_buckets_aligned_to_the_epoch() {
        let w = Window::at(Duration::from_secs(60), datetime!(2026-01-01 00:01:00 UTC));
        assert_eq!(w.bucket, 29_453_761);
        assert!((w.overlap - 1.0).abs() < 1e-9, "at a bucket's start the previous one counts fully");
        let w = Window::at(Duration::from_secs(60), datetime!(2026-01-01 00:01:45 UTC));
        assert!((w.overlap - 0.25).abs() < 1e-9);
        assert!((w.estimate(3, 4) - 4.0).abs() < 1e-9);
    }
}
