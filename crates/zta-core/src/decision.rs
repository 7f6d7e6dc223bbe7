//! Policy decisions: what was decided, on what basis, by which rules.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request may proceed.
    Allow,
    /// The request must not proceed.
    Deny,
}

impl Effect {
    /// The name used in audit records and decision JSON (`allow`, `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// Why a decision came out the way it did. Exhaustive on purpose: callers match every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Basis {
    /// An allow rule decided and no deny in its tier matched.
    Permitted,
    /// A deny rule decided.
    ExplicitDeny,
    /// No rule matched.
    DefaultDeny,
    /// Something failed (evaluation, an obligation that cannot be discharged, a backend):
    /// the request is denied.
    FailClosed,
}

impl Basis {
    /// The name used in audit records and decision JSON (`Permitted`, `ExplicitDeny`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permitted => "Permitted",
            Self::ExplicitDeny => "ExplicitDeny",
            Self::DefaultDeny => "DefaultDeny",
            Self::FailClosed => "FailClosed",
        }
    }

    /// The effect this basis implies.
    pub fn effect(self) -> Effect {
        match self {
            Self::Permitted => Effect::Allow,
            Self::ExplicitDeny | Self::DefaultDeny | Self::FailClosed => Effect::Deny,
        }
    }
}

/// The name of a policy rule. Cheap to clone.
pub type RuleName = Arc<str>;

/// The rules that determined a decision, in order. Reads as a slice of [`RuleName`]s; held
/// inline up to four, so ordinary decisions do not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Determining(SmallVec<[RuleName; 4]>);

impl Determining {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule.
    pub fn push(&mut self, rule: RuleName) {
        self.0.push(rule);
    }

    /// Whether no rule is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Determining {
    type Target = [RuleName];
    fn deref(&self) -> &[RuleName] {
        &self.0
    }
}

impl FromIterator<RuleName> for Determining {
    fn from_iter<I: IntoIterator<Item = RuleName>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Determining {
    type Item = &'a RuleName;
    type IntoIter = std::slice::Iter<'a, RuleName>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The SHA-256 content hash of a policy set: which policy revision made a decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PolicyDigest(pub [u8; 32]);

impl PolicyDigest {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PolicyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PolicyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyDigest({})", self.to_hex())
    }
}

impl Serialize for PolicyDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PolicyDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

/// Something the enforcement point must do for an allow to stand (e.g. `require_approval`,
/// `rate_limit`). The guard turns an allow whose obligations it cannot discharge into a deny.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obligation {
    /// The obligation's name.
    pub name: String,
    /// Its parameters.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub params: serde_json::Value,
}

/// A policy decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow or deny; always equal to `basis.effect()`.
    pub effect: Effect,
    /// Why.
    pub basis: Basis,
    /// The matching rules of the winning effect in the deciding tier (empty for
    /// `DefaultDeny`; for `FailClosed`, what failed).
    pub determining: Determining,
    /// Obligations attached by the determining allow rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<Obligation>,
    /// The policy set that decided.
    pub policy_digest: PolicyDigest,
}

impl Decision {
    /// A decision on `basis` by `determining` rules, without obligations.
    pub fn new(basis: Basis, determining: Determining, policy_digest: PolicyDigest) -> Self {
        Self { effect: basis.effect(), basis, determining, obligations: Vec::new(), policy_digest }
    }

    /// A fail-closed deny naming what failed.
    pub fn fail_closed(what: impl Into<RuleName>, policy_digest: PolicyDigest) -> Self {
        let mut determining = Determining::new();
        determining.push(what.into());
        Self::new(Basis::FailClosed, determining, policy_digest)
    }

    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}
