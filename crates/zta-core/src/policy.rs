//! Policy engines: decide an [`AuthzRequest`] to a [`Decision`].

use std::fmt::Debug;

use crate::{AuthzRequest, Decision, Permissible, PolicyDigest, Principal};

/// Why a policy engine gave no decision. The guard denies either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The request does not conform to the policy's declared schema (a required attribute is
    /// missing, or one has the wrong type). Denied as an invalid request before any rule runs.
    #[error("request does not conform to the policy schema: {0}")]
    InvalidRequest(String),
    /// A fault during evaluation; the guard turns it into a `FailClosed` deny.
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
}

/// Decides requests. Synchronous and pure: every attribute it needs is already in the request,
/// so a decision never waits on I/O.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait PolicyEngine: Send + Sync + Debug + 'static {
    /// Decides `request`.
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError>;

    /// The digest of the policy set now in force.
    fn digest(&self) -> PolicyDigest;

    /// Whether the engine can decide now: a cheap probe for readiness checks, never on the
    /// request path. The default can (an engine that is built has a policy in force).
    fn ready(&self) -> Result<(), PolicyError> {
        Ok(())
    }

    /// What some allow rule may permit `principal`, if this engine can tell: the action
    /// types, tools and target agents of the requests it could allow. Wider than the truth
    /// when the policy's conditions leave it open, never narrower. Not on the request path
    /// and not a decision: callers use it to choose what to offer or try, and decide each
    /// request in full. The default is `None`, "cannot tell": callers then decide every
    /// candidate they have.
    fn permissible(&self, principal: &Principal) -> Option<Permissible> {
        let _ = principal;
        None
    }
}
