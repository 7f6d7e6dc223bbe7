//! The `monitor:` section of `zta.yaml`.

use std::time::Duration;

use serde::Deserialize;

/// What a deployment monitors and how it responds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// The detectors, each watching the audit stream for one pattern.
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
    /// Where every alert is also POSTed, signed (none by default).
    #[serde(default)]
    pub webhook: Option<crate::WebhookConfig>,
}

/// One detector: what it counts, over which window, how many make it fire, what it then does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// Unique among the detectors; audit records name it (`monitor:<name>`).
    pub name: String,
    /// The pattern.
    pub detect: Detect,
    /// How far back a count reaches (counted patterns only). Default 5 minutes.
    #[serde(default = "default_window", with = "zta_core::duration::text")]
    pub window: Duration,
    /// How many within the window make it fire (counted patterns only; immediate signals
    /// fire on the first; for `rate`, the fewest requests in one window that can fire).
    /// Default 10.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// For `rate`: how many times its own recent baseline an agent's requests in one window
    /// must be to fire. Default 5.
    #[serde(default = "default_factor")]
    pub factor: u32,
    /// What it does besides alerting, which every firing does. Default: alert only.
    #[serde(default)]
    pub respond: Vec<Response>,
    /// Only alert, saying what the responses would have been. Default false.
    #[serde(default)]
    pub dry_run: bool,
}

/// The patterns a detector can look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detect {
    /// Policy denials of one agent's requests (explicit or by default).
    Denials,
    /// One agent's requests in a window far above its own recent baseline (an exponentially
    /// weighted average of its earlier windows, kept by each replica).
    Rate,
    /// Failed authentications naming one agent (the agent the credential claimed). Alert only:
    /// anyone can present a wrong secret in another agent's name.
    AuthFailures,
    /// Failed authentications coming from one network address (`detail.source`, recorded
    /// where the adapter saw the peer: the MCP gateway, the tower layer). Alert only: there is
    /// no agent to act on.
    SourceFailures,
    /// One agent denied on many distinct targets (tools, resources, agents): the threshold
    /// counts distinct targets.
    Scanning,
    /// One agent denied into many distinct segments (the target agent's segment, as the guard
    /// records it on a policy denial): the threshold counts distinct segments.
    SegmentScanning,
    /// A refresh token used twice (immediate).
    TokenReuse,
    /// A one-time credential presented again (immediate).
    Replay,
    /// A request that tried to set a reserved identity attribute (immediate).
    ReservedAttribute,
    /// A tool definition changed behind the MCP gateway (immediate; alert only, no agent).
    ToolChange,
}

impl Detect {
    /// Whether the first occurrence fires (no window, no threshold).
    pub fn is_immediate(self) -> bool {
        matches!(self, Self::TokenReuse | Self::Replay | Self::ReservedAttribute | Self::ToolChange)
    }

    /// Whether responses may act on the agent the pattern names: not when that agent is only
    /// claimed by whoever failed to authenticate, or when there is none.
    pub fn may_act(self) -> bool {
        !matches!(self, Self::AuthFailures | Self::SourceFailures | Self::ToolChange)
    }

    /// The name used in config and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denials => "denials",
            Self::Rate => "rate",
            Self::AuthFailures => "auth_failures",
            Self::SourceFailures => "source_failures",
            Self::Scanning => "scanning",
            Self::SegmentScanning => "segment_scanning",
            Self::TokenReuse => "token_reuse",
            Self::Replay => "replay",
            Self::ReservedAttribute => "reserved_attribute",
            Self::ToolChange => "tool_change",
        }
    }
}

/// What a detector does to the agent when it fires, besides alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Alert only (every firing alerts; listing it changes nothing).
    Alert,
    /// End the agent's sessions: every token issued to it until now is refused.
    Revoke,
    /// Shut the agent out until an operator reinstates it.
    Suspend,
    /// Make the agent authenticate with its primary credential again before it acts: its
    /// sessions end (as `revoke`), and the alert says that a fresh login is expected.
    StepUp,
}

impl Response {
    /// The name used in config and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Revoke => "revoke",
            Self::Suspend => "suspend",
            Self::StepUp => "step_up",
        }
    }
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}

fn default_threshold() -> u32 {
    10
}

fn default_factor() -> u32 {
    5
}

/// A `monitor:` section that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The detector it is about, if one.
    pub detector: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detector {
            Some(name) => write!(f, "monitor detector `{name}`: {}", self.message),
            None => write!(f, "monitor: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The longest detector name: it goes into state-store keys and audit records.
const MAX_NAME_LEN: usize = 64;

impl MonitorConfig {
    /// Checks what serde cannot: names unique and plain, windows and thresholds usable,
    /// responses that may act only where the pattern names the agent it would act on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for d in &self.detectors {
            let fail = |message: String| ConfigError { detector: Some(d.name.clone()), message };
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            if d.name.is_empty() || d.name.len() > MAX_NAME_LEN || !d.name.chars().all(plain) {
                return Err(fail(format!("a name is 1 to {MAX_NAME_LEN} letters, digits, `_`, `-` or `.`")));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(fail("two detectors have this name".to_owned()));
            }
            if !d.detect.is_immediate() {
                if d.threshold == 0 {
                    return Err(fail("`threshold` must be at least 1".to_owned()));
                }
                if d.window < Duration::from_secs(1) {
                    return Err(fail("`window` must be at least 1s".to_owned()));
                }
            }
            if d.detect == Detect::Rate && d.factor < 2 {
                return Err(fail("`factor` must be at least 2".to_owned()));
            }
            if !d.detect.may_act()
                && let Some(r) = d.respond.iter().find(|r| **r != Response::Alert)
            {
                let why = match d.detect {
                    Detect::AuthFailures => {
                        "failed authentications only claim an agent, and acting on the claim would let anyone shut an agent out"
                    }
                    _ => "the pattern names no agent to act on",
                };
                return Err(fail(format!(
                    "`{}` cannot respond with `{}`: {why}; use `alert`",
                    d.detect.as_str(),
                    r.as_str()
                )));
            }
        }
        Ok(())
    }
}
