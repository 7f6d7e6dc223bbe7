//! Monitoring that acts: detectors over the stream of audit records that alert, revoke or
//! suspend on their own (ADR 7, `docs/monitoring.md`).
//!
//! [`MonitoredSink`] wraps the audit sink the guard writes to. Every record a detector may
//! care about (a denial, a failed authentication, a refresh-token reuse, a replay, a
//! reserved-attribute attempt, a changed tool definition) is shown to the [`Monitor`] after
//! the inner sink took it and before the guard answers, so a response (a suspension, the
//! agent's sessions revoked) is in the [`StateStore`](zta_core::StateStore) before the agent's
//! next request, which the guard checks against it. Counters live in the state store too: with
//! the Redis store, every replica counts into one window and sees every response.
//!
//! Counted patterns (`denials`, `auth_failures`, `scanning`) fire when the count over the
//! last `window` reaches `threshold`, once per agent and window bucket; windows are buckets
//! aligned to the epoch (following the times the guard stamped on the records), the previous
//! bucket counting in proportion to how much of it the
//! window still covers. Immediate signals fire on each occurrence. Every firing is an audit
//! record (`event: alert`) and a `WARN` tracing event, and is POSTed to the `webhook` if one
//! is configured (signed, retried off the request path); a dry-run detector stops there.

mod config;
mod monitor;
mod rate;
mod sink;
mod webhook;

pub use config::{ConfigError, Detect, DetectorConfig, MonitorConfig, Response};
pub use monitor::{Monitor, MonitorStats};
pub use sink::MonitoredSink;
pub use webhook::{WebhookConfig, WebhookStats};
