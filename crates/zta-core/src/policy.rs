//! Policy engines: decide an [`AuthzRequest`] to a [`Decision`].

use std::fmt::Debug;

use crate::{AuthzRequest, Decision, PolicyDigest};

/// A fault during evaluation. The guard turns it into a `FailClosed` deny.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy evaluation failed: {0}")]
pub struct PolicyError(pub String);

/// Decides requests. Synchronous and pure: every attribute it needs is already in the request,
/// so a decision never waits on I/O.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait PolicyEngine: Send + Sync + Debug + 'static {
    /// Decides `request`.
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError>;

    /// The digest of the policy set now in force.
    fn digest(&self) -> PolicyDigest;
}
