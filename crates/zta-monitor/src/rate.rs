//! The `rate` detector's baselines: for each agent, an exponentially weighted average of its
//! requests per window over the windows it made requests in, kept in this process (a
//! statistic, not a shared count: see ADR 7).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use zta_core::AgentId;

/// The weight of the window just closed in the baseline.
const ALPHA: f64 = 0.3;

/// Windows an agent must have made requests in before its rate can fire: a new agent has no
/// baseline yet.
const WARM_UP: u32 = 5;

/// Agents followed per detector; beyond this, agents not yet followed are not (a flood of
/// identities must not grow the map without bound).
const MAX_AGENTS: usize = 100_000;

/// Locks, so that concurrent requests of different agents rarely wait on each other.
const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Rate {
    bucket: i64,
    count: u32,
    baseline: f64,
    windows: u32,
    fired: Option<i64>,
}

/// One `rate` detector's agents.
#[derive(Debug)]
pub(crate) struct Rates {
    window_ms: i128,
    threshold: u32,
    factor: f64,
    shards: Vec<Mutex<HashMap<AgentId, Rate, foldhash::quality::RandomState>>>,
}

impl Rates {
    pub(crate) fn new(window: Duration, threshold: u32, factor: u32) -> Self {
        Self {
            window_ms: i128::try_from(window.as_millis()).unwrap_or(i128::MAX).max(1),
            threshold,
            factor: f64::from(factor),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Counts one request of `agent` at `now_ms` (milliseconds since the epoch). Answers the
    /// window's count and the baseline when this request makes the count fire: at least the
    /// threshold, more than `factor` times the baseline (at least 1), after the warm-up, once
    /// per window.
    pub(crate) fn count(&self, agent: &AgentId, now_ms: i128) -> Option<(u32, f64)> {
        let bucket = i64::try_from(now_ms.div_euclid(self.window_ms)).unwrap_or(i64::MAX);
        // The shard only spreads the locks: a cheap mix of the id, so the map hashes it once.
        let id = agent.as_str().as_bytes();
        let mix = id.len()
            ^ usize::from(id.first().copied().unwrap_or(0))
            ^ usize::from(id.last().copied().unwrap_or(0));
        let shard = mix % SHARDS;
        let mut agents = self.shards.get(shard)?.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !agents.contains_key(agent) {
            if agents.len() >= MAX_AGENTS / SHARDS {
                return None;
            }
            agents.insert(agent.clone(), Rate { bucket, ..Rate::default() });
        }
        let rate = agents.get_mut(agent)?;
        if bucket > rate.bucket {
            // Close the window that ended. Windows without requests do not count: the baseline
            // is the agent's rate while it works, so resuming work after a pause is no anomaly.
            rate.baseline = if rate.windows == 0 {
                f64::from(rate.count)
            } else {
                ALPHA * f64::from(rate.count) + (1.0 - ALPHA) * rate.baseline
            };
            rate.windows = rate.windows.saturating_add(1);
            rate.bucket = bucket;
            rate.count = 0;
        } else if bucket < rate.bucket {
            return None; // a record from a window already closed
        }
        rate.count = rate.count.saturating_add(1);
        let fires = rate.windows >= WARM_UP
            && rate.count >= self.threshold
            && f64::from(rate.count) > self.factor * rate.baseline.max(1.0)
            && rate.fired != Some(bucket);
        if fires {
            rate.fired = Some(bucket);
        }
        fires.then_some((rate.count, rate.baseline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentId {
        AgentId::new("research_bot").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Counts `n` requests in window `w` (of one second).
    fn burst(rates: &Rates, w: i128, n: u32) -> Option<(u32, f64)> {
        (0..n).fold(None, |fired, _| rates.count(&agent(), w * 1_000).or(fired))
    }

    #[test]
    fn a_burst_over_the_baseline_fires_once_after_the_warm_up() {
        let rates = Rates::new(Duration::from_secs(1), 10, 5);
        for w in 0..=6 {
            assert_eq!(burst(&rates, w, 4), None, "a steady rate fired in window {w}");
        }
        let (count, baseline) = burst(&rates, 7, 30).unwrap_or_else(|| panic!("a burst did not fire"));
        assert_eq!(count, 21, "fired at another request than the first above 5 times the baseline");
        assert!((baseline - 4.0).abs() < 1e-9, "{baseline}");
        assert_eq!(burst(&rates, 7, 30), None, "fired twice in one window");
    }

    #[test]
    fn a_new_agent_is_not_judged_before_the_warm_up() {
        let rates = Rates::new(Duration::from_secs(1), 10, 5);
        let last = i128::from(WARM_UP) - 1;
        for w in 0..last {
            assert_eq!(burst(&rates, w, 1), None);
        }
        assert_eq!(burst(&rates, last, 100), None, "a burst was judged before the warm-up");
        // The judged burst must beat the baseline the first one raised (about 31).
        assert!(burst(&rates, last + 1, 200).is_some(), "a burst after the warm-up did not fire");
    }

    #[test]
    fn below_the_threshold_nothing_fires() {
        let rates = Rates::new(Duration::from_secs(1), 50, 5);
        for w in 0..6 {
            let _ = burst(&rates, w, 1);
        }
        assert_eq!(burst(&rates, 6, 49), None, "fired below the threshold");
        assert!(burst(&rates, 6, 1).is_some(), "did not fire at the threshold");
    }
}
