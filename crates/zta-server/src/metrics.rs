//! `GET /metrics` in the Prometheus text format (0.0.4), written here: a few counters and one
//! histogram of atomics, so counting costs each evaluation a few relaxed adds and no lock, and
//! the gauges the guard's parts report when scraped ([`Readings`]).

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use zta_core::{AuthError, Basis, Denied, DenyReason, KeyFetches, Permit};

/// How an evaluation ended, as `zta_decisions_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Permitted,
    Unauthenticated,
    Revoked,
    Suspended,
    LockedOut,
    IdentityUnavailable,
    StateStoreUnavailable,
    ReservedAttribute,
    InvalidRequest,
    ExplicitDeny,
    DefaultDeny,
    FailClosed,
    Obligation,
    AuditUnavailable,
    Other,
}

impl Outcome {
    const ALL: [Self; 15] = [
        Self::Permitted,
        Self::Unauthenticated,
        Self::Revoked,
        Self::Suspended,
        Self::LockedOut,
        Self::IdentityUnavailable,
        Self::StateStoreUnavailable,
        Self::ReservedAttribute,
        Self::InvalidRequest,
        Self::ExplicitDeny,
        Self::DefaultDeny,
        Self::FailClosed,
        Self::Obligation,
        Self::AuditUnavailable,
        Self::Other,
    ];

    /// The outcome of a guard's answer.
    pub(crate) fn of(answer: &Result<Permit, Denied>) -> Self {
        let Err(denied) = answer else { return Self::Permitted };
        match denied.reason() {
            DenyReason::Unauthenticated(AuthError::Revoked) => Self::Revoked,
            DenyReason::Unauthenticated(AuthError::Suspended) => Self::Suspended,
            DenyReason::Unauthenticated(AuthError::LockedOut) => Self::LockedOut,
            DenyReason::Unauthenticated(AuthError::StateUnavailable { .. }) => Self::StateStoreUnavailable,
            DenyReason::Unauthenticated(AuthError::Unavailable { .. }) => Self::IdentityUnavailable,
            DenyReason::Unauthenticated(_) => Self::Unauthenticated,
            DenyReason::ReservedAttribute(_) => Self::ReservedAttribute,
            DenyReason::InvalidRequest(_) => Self::InvalidRequest,
            DenyReason::Policy(Basis::ExplicitDeny) => Self::ExplicitDeny,
            DenyReason::Policy(Basis::DefaultDeny) => Self::DefaultDeny,
            DenyReason::Policy(_) => Self::FailClosed,
            DenyReason::Obligation(_) => Self::Obligation,
            DenyReason::AuditUnavailable => Self::AuditUnavailable,
            _ => Self::Other,
        }
    }

    /// The `effect` and `reason` labels.
    fn labels(self) -> (&'static str, &'static str) {
        let reason = match self {
            Self::Permitted => return ("allow", "permitted"),
            Self::Unauthenticated => "unauthenticated",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::LockedOut => "locked_out",
            Self::IdentityUnavailable => "identity_unavailable",
            Self::StateStoreUnavailable => "state_store_unavailable",
            Self::ReservedAttribute => "reserved_attribute",
            Self::InvalidRequest => "invalid_request",
            Self::ExplicitDeny => "explicit_deny",
            Self::DefaultDeny => "default_deny",
            Self::FailClosed => "fail_closed",
            Self::Obligation => "obligation",
            Self::AuditUnavailable => "audit_unavailable",
            Self::Other => "other",
        };
        ("deny", reason)
    }
}

/// Upper bounds of the latency buckets, in microseconds (100 µs to 2.5 s).
const BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// The service's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    decisions: [AtomicU64; Outcome::ALL.len()],
    /// Evaluations per bucket (not cumulative; the exposition sums them), the last past all.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    latency_us: AtomicU64,
    state_errors: AtomicU64,
}

impl Metrics {
    /// Counts one evaluation: how it ended and how long it took.
    pub(crate) fn decided(&self, outcome: Outcome, took: Duration) {
        if let Some(counter) = self.decisions.get(outcome as usize) {
            counter.fetch_add(1, Relaxed);
        }
        if outcome == Outcome::StateStoreUnavailable {
            self.state_errors.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(BUCKETS_US.len());
        if let Some(counter) = self.buckets.get(bucket) {
            counter.fetch_add(1, Relaxed);
        }
        self.latency_us.fetch_add(us, Relaxed);
    }

    /// Counts a state-store failure seen off the request path (a failed readiness probe).
    pub(crate) fn state_error(&self) {
        self.state_errors.fetch_add(1, Relaxed);
    }

    /// The exposition, with what the guard's parts report now.
    pub(crate) fn render(&self, readings: &Readings) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP zta_decisions_total Evaluations decided, by effect and reason.\n");
        out.push_str("# TYPE zta_decisions_total counter\n");
        for (outcome, count) in Outcome::ALL.into_iter().zip(&self.decisions) {
            let (effect, reason) = outcome.labels();
            let _ = writeln!(
                out,
                "zta_decisions_total{{effect=\"{effect}\",reason=\"{reason}\"}} {}",
                count.load(Relaxed)
            );
        }
        out.push_str("# HELP zta_decision_duration_seconds Time to decide one evaluation: authentication, policy and audit.\n");
        out.push_str("# TYPE zta_decision_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            match BUCKETS_US.get(i) {
                Some(&bound) => {
                    let le = Duration::from_micros(bound).as_secs_f64();
                    let _ = writeln!(out, "zta_decision_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "zta_decision_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = Duration::from_micros(self.latency_us.load(Relaxed)).as_secs_f64();
        let _ = writeln!(out, "zta_decision_duration_seconds_sum {sum}");
        let _ = writeln!(out, "zta_decision_duration_seconds_count {cumulative}");
        out.push_str("# HELP zta_state_store_errors_total State-store failures: evaluations denied because the store failed, and failed readiness probes.\n");
        out.push_str("# TYPE zta_state_store_errors_total counter\n");
        let _ = writeln!(out, "zta_state_store_errors_total {}", self.state_errors.load(Relaxed));
        if let Some(queued) = readings.audit_queued {
            out.push_str(
                "# HELP zta_audit_queue_depth Audit records accepted by the sink and not yet durable.\n",
            );
            out.push_str("# TYPE zta_audit_queue_depth gauge\n");
            let _ = writeln!(out, "zta_audit_queue_depth {queued}");
        }
        if let Some(fetches) = readings.key_fetches {
            out.push_str("# HELP zta_jwks_fetches_total Fetches of the identity providers' signing keys (JWKS), by result.\n");
            out.push_str("# TYPE zta_jwks_fetches_total counter\n");
            let _ = writeln!(out, "zta_jwks_fetches_total{{result=\"ok\"}} {}", fetches.ok);
            let _ = writeln!(out, "zta_jwks_fetches_total{{result=\"failed\"}} {}", fetches.failed);
        }
        if let Some(m) = readings.monitor {
            let counters = [
                (
                    "zta_monitor_alerts_total",
                    "Alerts monitoring raised (dry-run detectors included).",
                    m.alerts,
                ),
                (
                    "zta_monitor_responses_total",
                    "Suspensions and revocations monitoring carried out.",
                    m.responses,
                ),
                ("zta_monitor_errors_total", "Failures while detecting or responding.", m.errors),
            ];
            for (name, help, value) in counters {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
            }
            if let Some((delivered, failed)) = m.webhook {
                out.push_str("# HELP zta_monitor_webhook_total Alerts sent to the webhook, by result.\n");
                out.push_str("# TYPE zta_monitor_webhook_total counter\n");
                let _ = writeln!(out, "zta_monitor_webhook_total{{result=\"delivered\"}} {delivered}");
                let _ = writeln!(out, "zta_monitor_webhook_total{{result=\"failed\"}} {failed}");
            }
        }
        out
    }
}

/// What the guard's parts report when scraped; `None` for a part that keeps no such count
/// (its series is left out rather than shown as zero).
#[derive(Debug, Default)]
pub(crate) struct Readings {
    /// The audit sink's records not yet durable ([`zta_core::AuditSink::queued`]).
    pub(crate) audit_queued: Option<u64>,
    /// The identity providers' key fetches, summed ([`zta_core::IdentityProvider::key_fetches`]).
    pub(crate) key_fetches: Option<KeyFetches>,
    /// Monitoring's counts ([`crate::ServerConfig::monitor`]).
    pub(crate) monitor: Option<crate::MonitorCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_counts_in_its_own_place() {
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, i, "{outcome:?}");
        }
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_everything() {
        let metrics = Metrics::default();
        metrics.decided(Outcome::Permitted, Duration::from_micros(50));
        metrics.decided(Outcome::DefaultDeny, Duration::from_micros(300));
        metrics.decided(Outcome::StateStoreUnavailable, Duration::from_secs(10));
        let text = metrics.render(&Readings::default());
        assert!(!text.contains("zta_audit_queue_depth"), "no sink queue, no series:\n{text}");
        assert!(!text.contains("zta_jwks_fetches_total"), "no key fetches, no series:\n{text}");
        for line in [
            "zta_decisions_total{effect=\"allow\",reason=\"permitted\"} 1",
            "zta_decisions_total{effect=\"deny\",reason=\"default_deny\"} 1",
            "zta_decision_duration_seconds_bucket{le=\"0.0001\"} 1",
            "zta_decision_duration_seconds_bucket{le=\"0.0005\"} 2",
            "zta_decision_duration_seconds_bucket{le=\"2.5\"} 2",
            "zta_decision_duration_seconds_bucket{le=\"+Inf\"} 3",
            "zta_decision_duration_seconds_sum 10.00035",
            "zta_decision_duration_seconds_count 3",
            "zta_state_store_errors_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn the_audit_queue_is_a_gauge() {
        let text = Metrics::default().render(&Readings { audit_queued: Some(7), ..Readings::default() });
        let lines: Vec<&str> = text.lines().skip_while(|l| !l.contains("zta_audit_queue_depth")).collect();
        assert_eq!(
            lines,
            [
                "# HELP zta_audit_queue_depth Audit records accepted by the sink and not yet durable.",
                "# TYPE zta_audit_queue_depth gauge",
                "zta_audit_queue_depth 7",
            ]
        );
    }

    #[test]
    fn key_fetches_are_one_counter_by_result() {
        let readings = Readings { key_fetches: Some(KeyFetches { ok: 3, failed: 1 }), ..Readings::default() };
        let text = Metrics::default().render(&readings);
        let lines: Vec<&str> = text.lines().skip_while(|l| !l.contains("zta_jwks_fetches_total")).collect();
        assert_eq!(
            lines,
            [
                "# HELP zta_jwks_fetches_total Fetches of the identity providers' signing keys (JWKS), by result.",
                "# TYPE zta_jwks_fetches_total counter",
                "zta_jwks_fetches_total{result=\"ok\"} 3",
                "zta_jwks_fetches_total{result=\"failed\"} 1",
            ]
        );
    }

    #[test]
    fn monitoring_counts_are_counters_and_the_webhook_is_shown_when_there_is_one() {
        let counts = crate::MonitorCounts { alerts: 4, responses: 2, errors: 1, webhook: Some((3, 1)) };
        let text = Metrics::default().render(&Readings { monitor: Some(counts), ..Readings::default() });
        let values: Vec<&str> = text.lines().filter(|l| l.starts_with("zta_monitor_")).collect();
        assert_eq!(
            values,
            [
                "zta_monitor_alerts_total 4",
                "zta_monitor_responses_total 2",
                "zta_monitor_errors_total 1",
                "zta_monitor_webhook_total{result=\"delivered\"} 3",
                "zta_monitor_webhook_total{result=\"failed\"} 1",
            ]
        );
        assert!(text.contains("# TYPE zta_monitor_alerts_total counter"));
        let without = Metrics::default().render(&Readings {
            monitor: Some(crate::MonitorCounts { webhook: None, ..counts }),
            ..Readings::default()
        });
        assert!(!without.contains("zta_monitor_webhook_total"), "{without}");
        assert!(!Metrics::default().render(&Readings::default()).contains("zta_monitor_"));
    }
}
