//! The guard: the one path every agent interaction takes.
//!
//! authenticate → authorize → audit → [`Permit`] or [`Denied`]. Every error on the way denies,
//! and every denial is audited (best effort when the audit sink itself is what failed). A
//! `Permit` exists only once its audit record has been accepted by the sink.

use std::{
    fmt,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use foldhash::HashMap;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tracing::{Instrument, field::Empty};
use uuid::Uuid;

use crate::{
    Action, Actor, AgentId, AuditEvent, AuditRecord, AuditSink, AuthError, AuthMethod, AuthzRequest, Basis,
    Credential, Decision, Durability, Effect, IdentityProvider, MAX_CREDENTIAL_LEN, MemoryStateStore,
    Obligation, PolicyEngine, PolicyError, Principal, Request, RequestError, SessionTokens, StateError,
    StateStore, TokenAuthority,
};

/// Proof that one request was authenticated, authorized and audited. Only the guard creates
/// one; adapters require it before they run the protected operation.
#[must_use = "a Permit is the proof needed to run the operation it was checked for"]
#[derive(Debug)]
pub struct Permit {
    request_id: Uuid,
    request: AuthzRequest,
    decision: Decision,
}

impl Permit {
    /// The request id (also the audit record id).
    pub fn request_id(&self) -> Uuid {
        self.request_id
    }
    /// The verified principal.
    pub fn principal(&self) -> &Principal {
        self.request.principal()
    }
    /// The verified agent.
    pub fn agent_id(&self) -> &AgentId {
        &self.request.principal().agent_id
    }
    /// The request as authorized.
    pub fn request(&self) -> &AuthzRequest {
        &self.request
    }
    /// The allow decision.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
    /// Obligations the enforcement point must discharge (all of them are ones it declared it
    /// can discharge).
    pub fn obligations(&self) -> &[Obligation] {
        &self.decision.obligations
    }
    /// Whether this permit was issued for exactly `action` addressed to `target`. Adapters call
    /// this so that the operation run is the one that was checked.
    pub fn covers(&self, action: &Action, target: Option<&AgentId>) -> bool {
        self.request.action() == action && self.request.target().map(|t| &t.agent_id) == target
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The credential did not verify.
    Unauthenticated(AuthError),
    /// The request context tried to set a reserved attribute.
    ReservedAttribute(String),
    /// The request is malformed: a dotted attribute key, or a request that does not conform
    /// to the policy's schema. The detail is for the audit log.
    InvalidRequest(String),
    /// Policy denied (basis `ExplicitDeny`, `DefaultDeny` or `FailClosed`).
    Policy(Basis),
    /// An allow carried an obligation this enforcement point cannot discharge.
    Obligation(String),
    /// The audit sink did not take the record.
    AuditUnavailable,
}

impl DenyReason {
    /// A stable snake_case name of the kind of denial, written to the audit record as
    /// `detail.denial` (for queries, metrics and monitoring): the [`AuthError::code`] of an
    /// authentication failure, else `reserved_attribute`, `invalid_request`, `explicit_deny`,
    /// `default_deny`, `fail_closed`, `obligation` or `audit_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(e) => e.code(),
            Self::ReservedAttribute(_) => "reserved_attribute",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Policy(Basis::ExplicitDeny) => "explicit_deny",
            Self::Policy(Basis::DefaultDeny) => "default_deny",
            Self::Policy(Basis::FailClosed | Basis::Permitted) => "fail_closed",
            Self::Obligation(_) => "obligation",
            Self::AuditUnavailable => "audit_unavailable",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthenticated(e) => write!(f, "{e}"),
            Self::ReservedAttribute(k) => {
                write!(f, "request context may not set reserved attribute `{k}`")
            }
            Self::InvalidRequest(_) => f.write_str("invalid request"),
            Self::Policy(Basis::ExplicitDeny) => f.write_str("denied by policy"),
            Self::Policy(Basis::DefaultDeny) => f.write_str("no policy allows this"),
            Self::Policy(Basis::FailClosed | Basis::Permitted) => {
                f.write_str("policy could not be evaluated")
            }
            Self::Obligation(name) => write!(f, "obligation `{name}` cannot be met here"),
            Self::AuditUnavailable => f.write_str("audit log unavailable"),
        }
    }
}

/// A denial. `Display` is safe to show the calling agent: it names no rule, no other agent
/// and no internal detail; the full story is in the audit record with the same id.
#[derive(Debug, Clone)]
pub struct Denied {
    request_id: Uuid,
    reason: DenyReason,
    agent_id: Option<AgentId>,
    decision: Option<Decision>,
}

impl Denied {
    /// The request id (also the audit record id).
    pub fn request_id(&self) -> Uuid {
        self.request_id
    }
    /// Why.
    pub fn reason(&self) -> &DenyReason {
        &self.reason
    }
    /// The verified agent, if authentication succeeded.
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent_id.as_ref()
    }
    /// The policy decision, if policy was reached. For operators, not for the calling agent.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied: {} (request {})", self.reason, self.request_id)
    }
}

impl std::error::Error for Denied {}

/// A guard could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Neither an identity provider nor a token authority was given: nothing could ever
    /// authenticate.
    #[error("a guard needs at least one identity provider or a token authority")]
    NoIdentity,
    /// Two identity providers declare the same agent, so which one verifies it would depend on
    /// their order.
    #[error("agent `{agent}` is declared by two identity providers (`{first}` and `{second}`)")]
    AmbiguousAgent {
        /// The agent.
        agent: AgentId,
        /// The first provider declaring it.
        first: String,
        /// The second provider declaring it.
        second: String,
    },
    /// Two identity providers list the same token issuer, so which one verifies its tokens
    /// would depend on their order.
    #[error("issuer `{issuer}` is listed by two identity providers (`{first}` and `{second}`)")]
    AmbiguousIssuer {
        /// The issuer.
        issuer: String,
        /// The first provider listing it.
        first: String,
        /// The second provider listing it.
        second: String,
    },
}

/// Builds a [`Guard`].
#[derive(Debug)]
pub struct GuardBuilder {
    /// The guard's parts as given; the issuer routes are worked out by `build`.
    parts: Inner,
}

impl GuardBuilder {
    /// Adds an identity provider. A primary credential goes to exactly one provider, never to
    /// one after another: a bearer token to the provider listing its issuer (see
    /// [`IdentityProvider::issuers`]); anything else to the one that declares the agent it names
    /// (see [`IdentityProvider::declares`]), or if none does, to the first added that takes its
    /// kind, which refuses it at the same cost (so the routing reveals nothing about which
    /// agents exist). Two providers declaring one agent, or listing one issuer, is a build
    /// error.
    #[must_use]
    pub fn identity_provider(mut self, provider: Arc<dyn IdentityProvider>) -> Self {
        self.parts.providers.push(provider);
        self
    }

    /// Sets the session token authority (needed for `login`, `refresh` and session tokens).
    #[must_use]
    pub fn token_authority(mut self, tokens: Arc<dyn TokenAuthority>) -> Self {
        self.parts.tokens = Some(tokens);
        self
    }

    /// Sets the state store that holds suspensions (default: one in this process). Give every
    /// replica, and the token authority, the same shared store, so that a suspension made
    /// anywhere binds everywhere.
    #[must_use]
    pub fn state_store(mut self, state: Arc<dyn StateStore>) -> Self {
        self.parts.state = state;
        self
    }

    /// Waits for each permit's audit record to be durable before returning it
    /// (default: returns once the sink has queued it).
    #[must_use]
    pub fn durable_before_permit(mut self, durable: bool) -> Self {
        self.parts.durability = if durable { Durability::Flushed } else { Durability::Queued };
        self
    }

    /// Declares that the enforcement point can discharge obligation `name`. An allow with any
    /// other obligation is denied.
    #[must_use]
    pub fn discharges(mut self, name: impl Into<String>) -> Self {
        self.parts.discharged.push(name.into());
        self
    }

    /// Builds the guard.
    pub fn build(self) -> Result<Guard, GuardError> {
        let mut parts = self.parts;
        if parts.providers.is_empty() && parts.tokens.is_none() {
            return Err(GuardError::NoIdentity);
        }
        let mut declared: std::collections::HashMap<AgentId, &str> = std::collections::HashMap::new();
        for provider in &parts.providers {
            for agent in provider.declared_agents() {
                if let Some(first) = declared.insert(agent.clone(), provider.name()) {
                    return Err(GuardError::AmbiguousAgent {
                        agent,
                        first: first.to_owned(),
                        second: provider.name().to_owned(),
                    });
                }
            }
        }
        parts.issuers = route_issuers(&parts.providers)?;
        Ok(Guard { inner: Arc::new(parts) })
    }
}

/// The enforcement pipeline. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    providers: Vec<Arc<dyn IdentityProvider>>,
    issuers: IssuerRoutes,
    tokens: Option<Arc<dyn TokenAuthority>>,
    policy: Arc<dyn PolicyEngine>,
    audit: Arc<dyn AuditSink>,
    state: Arc<dyn StateStore>,
    durability: Durability,
    discharged: Vec<String>,
}

impl Guard {
    /// Starts building a guard around a policy engine and an audit sink.
    pub fn builder(policy: Arc<dyn PolicyEngine>, audit: Arc<dyn AuditSink>) -> GuardBuilder {
        GuardBuilder {
            parts: Inner {
                providers: Vec::new(),
                issuers: IssuerRoutes::None,
                tokens: None,
                policy,
                audit,
                state: Arc::new(MemoryStateStore::new()),
                durability: Durability::Queued,
                discharged: Vec::new(),
            },
        }
    }

    /// The audit sink (to flush it at shutdown).
    pub fn audit_sink(&self) -> &Arc<dyn AuditSink> {
        &self.inner.audit
    }

    /// The policy engine.
    pub fn policy_engine(&self) -> &Arc<dyn PolicyEngine> {
        &self.inner.policy
    }

    /// The state store (shared by every replica when it is Redis), for enforcement points
    /// that keep counts of their own, such as rate limits.
    pub fn state_store(&self) -> &Arc<dyn StateStore> {
        &self.inner.state
    }

    /// Authenticates, authorizes and audits one request.
    ///
    /// The acting agent is whoever `credential` proves; nothing in `request` can change that.
    // A plain fn returning the future: one async layer less to store and move on every call.
    pub fn check<'a>(
        &'a self,
        credential: &'a Credential,
        request: Request,
    ) -> impl Future<Output = Result<Permit, Denied>> + Send + 'a {
        let (request_id, time, span) = stamp(&request);
        self.check_inner(request_id, time, credential, None, None, request).instrument(span)
    }

    /// [`check`](Self::check) for a protocol whose request names its subject (AuthZEN's
    /// `subject.id`): also denied, and audited, unless the credential proves exactly `subject`.
    pub fn check_as<'a>(
        &'a self,
        credential: &'a Credential,
        subject: &'a AgentId,
        request: Request,
    ) -> impl Future<Output = Result<Permit, Denied>> + Send + 'a {
        let (request_id, time, span) = stamp(&request);
        self.check_inner(request_id, time, credential, Some(subject), None, request).instrument(span)
    }

    /// [`check`](Self::check) for `subject` as a trusted enforcement point vouches for it,
    /// without the subject's own credential (a gateway that authenticated the agent itself).
    /// `credential` is the enforcement point's own, and the agent it proves must be one of
    /// `trusted`; otherwise the request is denied, and audited naming that caller. The subject
    /// is decided with [`AuthMethod::Asserted`] (policies can tell), the caller as its issuer,
    /// no roles or groups (nothing verified them) and the segment its identity provider knows;
    /// a suspended subject is denied. The audit record names the caller in `asserted_by`.
    pub fn check_asserted<'a>(
        &'a self,
        credential: &'a Credential,
        trusted: &'a [AgentId],
        subject: &'a AgentId,
        request: Request,
    ) -> impl Future<Output = Result<Permit, Denied>> + Send + 'a {
        let (request_id, time, span) = stamp(&request);
        self.check_inner(request_id, time, credential, Some(subject), Some(trusted), request).instrument(span)
    }

    /// A check of `request` by whoever `credential` proves, or by `subject` when one is named;
    /// with `trusted`, `credential` is an enforcement point's, asserting `subject`.
    async fn check_inner(
        &self,
        request_id: Uuid,
        time: OffsetDateTime,
        credential: &Credential,
        subject: Option<&AgentId>,
        trusted: Option<&[AgentId]>,
        request: Request,
    ) -> Result<Permit, Denied> {
        let started = Instant::now();
        // The block ends what is moved inside it, so that none of it is stored across the
        // append: this future is moved on every call, and its size is what that costs.
        let (record, durability, verdict) = {
            let principal = match subject.zip(trusted) {
                // Boxed: its state would otherwise grow every check's future.
                Some((subject, trusted)) => Box::pin(self.asserted(credential, trusted, subject, time)).await,
                None => self.proven(credential, subject, time).await,
            };
            let target_segment = match (&principal, &request.target_agent) {
                (Ok(_), Some(target)) => self.segment_of(target).await,
                _ => None,
            };
            // Made after the awaits: a record held across them would grow the future.
            let mut record = AuditRecord::stamped(AuditEvent::Authorization, Effect::Deny, request_id, time);
            record.action = Some(request.action.clone());
            record.resource = request.resource.clone();
            record.target_agent = request.target_agent.clone();
            if trusted.is_some() {
                note_asserter(&mut record, &principal);
            }
            let source = request.source;
            let verdict = match principal {
                Ok(principal) => self.authorize(&mut record, principal, request, target_segment),
                Err((e, refused)) => {
                    match refused {
                        Some(principal) => record.note_principal(&principal),
                        None => note_claimed_agent(&mut record, credential),
                    }
                    Err(note_denial(&mut record, DenyReason::Unauthenticated(e), None))
                }
            };
            if verdict.is_err() {
                note_source(&mut record, source);
            }
            let durability = if verdict.is_ok() { self.inner.durability } else { Durability::Queued };
            record.latency_us = Some(micros(started.elapsed()));
            (record, durability, verdict)
        };
        let appended = self.inner.audit.append(record, durability).await;
        match (verdict, appended) {
            (Ok(permit), Ok(())) => {
                finish_span(Effect::Allow, permit.decision.basis, started);
                Ok(permit)
            }
            (Ok(permit), Err(e)) => {
                tracing::error!(error = %e, "audit sink refused a permit record; denying");
                finish_span(Effect::Deny, Basis::FailClosed, started);
                let Permit { request_id, request, decision } = permit;
                Err(Denied {
                    request_id,
                    reason: DenyReason::AuditUnavailable,
                    agent_id: Some(request.principal().agent_id.clone()),
                    decision: Some(Decision { effect: Effect::Deny, basis: Basis::FailClosed, ..decision }),
                })
            }
            (Err(denied), appended) => {
                if let Err(e) = appended {
                    tracing::error!(error = %e, "audit sink refused a denial record");
                }
                finish_span(
                    Effect::Deny,
                    denied.decision.as_ref().map_or(Basis::FailClosed, |d| d.basis),
                    started,
                );
                Err(denied)
            }
        }
    }

    /// Who `credential` proves, if it is not suspended and is `subject` when one is named. A
    /// refused agent's principal travels with the error, so the record names it.
    async fn proven(
        &self,
        credential: &Credential,
        subject: Option<&AgentId>,
        time: OffsetDateTime,
    ) -> Authenticated {
        let principal = self.authenticate_at(credential, time).await?;
        if subject.is_some_and(|s| *s != principal.agent_id) {
            return Err((
                AuthError::invalid("the request's subject is not the agent the credential proves"),
                Some(principal),
            ));
        }
        Ok(principal)
    }

    /// The principal of `subject` as the enforcement point that `credential` proves asserts it,
    /// if that caller is one of `trusted` and neither is suspended. A refusal carries the
    /// principal the record names: the caller when it may not assert, else the subject.
    async fn asserted(
        &self,
        credential: &Credential,
        trusted: &[AgentId],
        subject: &AgentId,
        time: OffsetDateTime,
    ) -> Authenticated {
        let caller = self.proven(credential, None, time).await?;
        if !trusted.contains(&caller.agent_id) {
            let detail = format!(
                "`{}` is not a trusted enforcement point and may not assert subject `{subject}`",
                caller.agent_id
            );
            return Err((AuthError::invalid(detail), Some(caller)));
        }
        let mut principal = Principal::new(
            subject.clone(),
            caller.agent_id.as_str(),
            AuthMethod::Asserted,
            time,
            caller.expires_at,
        );
        if let Some(segment) = self.segment_of(subject).await {
            principal = principal.with_segment(segment);
        }
        let principal = Arc::new(principal);
        match self.refuse_suspended(subject).await {
            Ok(()) => Ok(principal),
            Err(e) => Err((e, Some(principal))),
        }
    }

    /// The authorization half of a check: reserved attributes, policy and obligations. Notes
    /// the principal, the decision and any denial in `record`.
    #[expect(clippy::result_large_err, reason = "built once per check and moved straight out")]
    fn authorize(
        &self,
        record: &mut AuditRecord,
        principal: Arc<Principal>,
        request: Request,
        target_segment: Option<String>,
    ) -> Result<Permit, Denied> {
        tracing::Span::current().record("agent", principal.agent_id.as_str());
        record.note_principal(&principal);
        record.on_behalf_of = principal.delegation.clone();
        let request = match AuthzRequest::new(principal, request, target_segment) {
            Ok(request) => request,
            Err(RequestError::ReservedAttribute(key)) => {
                return Err(note_denial(record, DenyReason::ReservedAttribute(key), None));
            }
            Err(e) => return Err(note_denial(record, DenyReason::InvalidRequest(e.to_string()), None)),
        };
        let decision = match self.decide(&request) {
            Ok(decision) => decision,
            Err(detail) => return Err(note_denial(record, DenyReason::InvalidRequest(detail), None)),
        };
        record.note_decision(&decision);
        if !decision.is_allowed() {
            // For the monitor's count of distinct segments an agent was denied into; only on
            // denials, so a permit pays nothing.
            if let Some(segment) = request.target().and_then(|t| t.segment.as_deref()) {
                record.detail.insert("target_segment".to_owned(), segment.into());
            }
            return Err(note_denial(record, DenyReason::Policy(decision.basis), Some(decision)));
        }
        if let Some(o) = decision.obligations.iter().find(|o| !self.inner.discharged.contains(&o.name)) {
            let reason = DenyReason::Obligation(o.name.clone());
            let failed = Decision { effect: Effect::Deny, basis: Basis::FailClosed, ..decision };
            record.note_decision(&failed);
            return Err(note_denial(record, reason, Some(failed)));
        }
        Ok(Permit { request_id: record.id, request, decision })
    }

    /// Evaluates policy; any fault or inconsistent answer becomes a fail-closed deny. A
    /// request the policy's schema refuses is `Err` with the detail.
    fn decide(&self, request: &AuthzRequest) -> Result<Decision, String> {
        let policy = &self.inner.policy;
        Ok(match policy.evaluate(request) {
            Ok(d) if d.effect == d.basis.effect() => d,
            Ok(d) => {
                tracing::error!(effect = ?d.effect, basis = ?d.basis, "policy engine returned an inconsistent decision");
                Decision::fail_closed("inconsistent-decision", d.policy_digest)
            }
            Err(PolicyError::InvalidRequest(detail)) => return Err(detail),
            Err(e) => {
                tracing::error!(error = %e, "policy evaluation failed");
                Decision::fail_closed("policy-error", policy.digest())
            }
        })
    }

    /// Verifies a credential: session tokens go to the token authority, anything else to the
    /// one identity provider that routing chooses (see [`GuardBuilder::identity_provider`]).
    /// A suspended agent is refused.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Arc<Principal>, AuthError> {
        self.authenticate_at(credential, OffsetDateTime::now_utc()).await.map_err(|(e, _)| e)
    }

    /// Checked after every successful authentication, whatever the credential: a fresh
    /// assertion, a secret, an IdP token, a session token, a login or a refresh.
    async fn refuse_suspended(&self, agent: &AgentId) -> Result<(), AuthError> {
        match self.inner.state.is_suspended(agent).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(AuthError::Suspended),
            Err(e) => Err(e.into()),
        }
    }

    /// [`authenticate`](Self::authenticate), with the backstop expiry check at `now`. A refusal
    /// after the credential verified names its principal.
    async fn authenticate_at(&self, credential: &Credential, now: OffsetDateTime) -> Authenticated {
        refuse_oversized(credential).map_err(|e| (e, None))?;
        let (principal, suspension_checked) = match (&self.inner.tokens, credential) {
            // A session token's verification reads its agent's suspension along with its
            // revocation: one round trip to a shared store.
            (Some(tokens), Credential::Bearer(token)) if tokens.accepts(credential) => {
                let verified = tokens.verify(token).await.map_err(|e| (e, None))?;
                (verified.live().map_err(|(e, principal)| (e, Some(principal)))?, true)
            }
            _ => (self.authenticate_primary(credential).await.map_err(|e| (e, None))?, false),
        };
        // Providers check expiry themselves; this is the guard's own backstop.
        if principal.is_expired_at(now) {
            return Err((AuthError::Expired, None));
        }
        if !suspension_checked && let Err(e) = self.refuse_suspended(&principal.agent_id).await {
            return Err((e, Some(principal)));
        }
        Ok(principal)
    }

    async fn authenticate_primary(&self, credential: &Credential) -> Result<Arc<Principal>, AuthError> {
        self.route(credential)?.authenticate(credential).await
    }

    /// The one provider that verifies `credential` (see [`GuardBuilder::identity_provider`]).
    fn route(&self, credential: &Credential) -> Result<&Arc<dyn IdentityProvider>, AuthError> {
        if let Credential::Bearer(token) = credential {
            match &self.inner.issuers {
                IssuerRoutes::None => {}
                // The provider checks the issuer itself; no need to read it twice.
                IssuerRoutes::One(provider) => return Ok(provider),
                IssuerRoutes::Many(routes) => {
                    let issuer = unverified_issuer(token.expose_secret())
                        .ok_or_else(|| AuthError::invalid("bearer token without a readable `iss`"))?;
                    return routes.get(&issuer).ok_or_else(|| {
                        let shown: String = issuer.chars().take(MAX_SHOWN_ISSUER).collect();
                        AuthError::invalid(format!("no identity provider trusts issuer `{shown}`"))
                    });
                }
            }
        }
        let providers = &self.inner.providers;
        let declaring = providers.iter().find(|p| p.accepts(credential) && p.declares(credential));
        declaring
            .or_else(|| providers.iter().find(|p| p.accepts(credential)))
            .ok_or(AuthError::Unsupported(credential.kind()))
    }

    /// Asks the provider that verified a session's primary credential whether it still holds.
    /// A session whose provider is no longer configured cannot be refreshed.
    async fn revalidate(&self, principal: &Principal) -> Result<(), AuthError> {
        let Some(source) = principal.source_issuer.as_deref() else {
            return Ok(());
        };
        let provider = self
            .inner
            .providers
            .iter()
            .find(|p| p.name() == source || p.issuers().iter().any(|i| i == source))
            .ok_or_else(|| {
                AuthError::invalid(format!(
                    "the session's identity provider `{source}` is no longer configured"
                ))
            })?;
        provider.revalidate(principal).await
    }

    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        for provider in &self.inner.providers {
            if let Some(segment) = provider.segment_of(agent).await {
                return Some(segment);
            }
        }
        None
    }

    /// Logs in with a primary credential and issues session tokens. Session tokens cannot log
    /// in again: a session is always rooted in a primary credential.
    pub async fn login(&self, credential: &Credential) -> Result<SessionTokens, Denied> {
        self.login_from(credential, None).await
    }

    /// [`login`](Self::login) for a caller reached over a network: `source` is the address the
    /// credential came from (the TCP peer, never a value the client states), recorded on the
    /// login's audit record as `detail.source` so that failures from one address across many
    /// agent names can be counted.
    pub async fn login_from(
        &self,
        credential: &Credential,
        source: Option<IpAddr>,
    ) -> Result<SessionTokens, Denied> {
        let started = Instant::now();
        let mut record = AuditRecord::new(AuditEvent::Login, Effect::Deny);
        note_source(&mut record, source);
        let outcome = async {
            refuse_oversized(credential)?;
            let tokens = self.token_authority()?;
            let provider = self.route(credential)?;
            if !provider.issues_session_tokens() {
                return Err(AuthError::NoSession);
            }
            let principal = provider.authenticate(credential).await?;
            if let Err(e) = self.refuse_suspended(&principal.agent_id).await {
                record.note_principal(&principal);
                return Err(e);
            }
            Ok((tokens.issue(&principal).await?, principal))
        }
        .await
        .map(|(issued, principal)| {
            record.note_principal(&principal);
            issued
        });
        if outcome.is_err() && record.agent_id.is_none() {
            note_claimed_agent(&mut record, credential);
        }
        self.conclude(record, started, outcome).await
    }

    /// Exchanges a refresh token for a new session. A reused refresh token revokes its family
    /// and is audited as `token_reuse`. The identity provider that opened the session confirms
    /// it still holds (see [`IdentityProvider::revalidate`]); if not, the session ends.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<SessionTokens, Denied> {
        self.refresh_from(refresh_token, None).await
    }

    /// [`refresh`](Self::refresh) for a caller reached over a network; `source` as in
    /// [`login_from`](Self::login_from).
    pub async fn refresh_from(
        &self,
        refresh_token: &SecretString,
        source: Option<IpAddr>,
    ) -> Result<SessionTokens, Denied> {
        let started = Instant::now();
        let mut record = AuditRecord::new(AuditEvent::TokenRefresh, Effect::Deny);
        note_source(&mut record, source);
        let outcome = async {
            let (principal, issued) = self.token_authority()?.refresh(refresh_token).await?;
            record.note_principal(&principal);
            // The old refresh token is spent either way; the new pair is not handed out.
            self.refuse_suspended(&principal.agent_id).await?;
            self.revalidate(&principal).await?;
            Ok(issued)
        }
        .await;
        if outcome.as_ref().err() == Some(&AuthError::Replayed) {
            record.event = AuditEvent::TokenReuse;
        }
        self.conclude(record, started, outcome).await
    }

    /// Ends every current session of `agent` (its session tokens issued until now), audited
    /// with who did it and `reason`. It does not stop the agent from logging in again with its primary
    /// credential: to shut a compromised agent out, [`suspend_agent`](Self::suspend_agent).
    pub async fn revoke_agent(&self, agent: &AgentId, by: &Actor, reason: &str) -> Result<(), Denied> {
        let started = Instant::now();
        let mut record = AuditRecord::new(AuditEvent::Revocation, Effect::Deny)
            .with_reason(reason)
            .with_detail("by", by.to_string());
        record.agent_id = Some(agent.clone());
        let outcome = async { Ok(self.token_authority()?.revoke_agent(agent).await?) }.await;
        self.conclude(record, started, outcome).await
    }

    /// Suspends `agent`, audited with who did it and `reason`: until [`reinstate_agent`](Self::reinstate_agent),
    /// every credential of the agent (session tokens, fresh assertions, secrets, IdP tokens,
    /// logins and refreshes) is denied with [`AuthError::Suspended`], checked after the
    /// credential verified, so only its holder learns of the suspension.
    pub async fn suspend_agent(&self, agent: &AgentId, by: &Actor, reason: &str) -> Result<(), Denied> {
        let started = Instant::now();
        let mut record = AuditRecord::new(AuditEvent::Suspension, Effect::Deny)
            .with_reason(reason)
            .with_detail("by", by.to_string());
        record.agent_id = Some(agent.clone());
        let outcome = self.inner.state.suspend(agent).await.map_err(AuthError::from);
        self.conclude(record, started, outcome).await
    }

    /// Lifts a suspension of `agent`, audited with who did it and `reason`. Every session token issued until
    /// now is revoked first, so no session from before or during the suspension comes back:
    /// the agent logs in again. If that revocation fails, the agent stays suspended.
    pub async fn reinstate_agent(&self, agent: &AgentId, by: &Actor, reason: &str) -> Result<(), Denied> {
        let started = Instant::now();
        let mut record = AuditRecord::new(AuditEvent::Reinstatement, Effect::Deny)
            .with_reason(reason)
            .with_detail("by", by.to_string());
        record.agent_id = Some(agent.clone());
        let outcome = async {
            if let Some(tokens) = &self.inner.tokens {
                tokens.revoke_agent(agent).await?;
            }
            self.inner.state.reinstate(agent).await.map_err(AuthError::from)
        }
        .await;
        self.conclude(record, started, outcome).await
    }

    /// Whether `agent` is suspended, as the guard's state store says.
    pub async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        self.inner.state.is_suspended(agent).await
    }

    /// Revokes one bearer token, audited with who did it and `reason`: a ZTA session token through the token
    /// authority; any other (an identity provider's access token) by its
    /// [`bearer_revocation_key`](crate::bearer_revocation_key) in the state store, until the
    /// token's own expiry (read unverified, at most a day away; a day when it has none).
    pub async fn revoke_token(&self, token: &SecretString, by: &Actor, reason: &str) -> Result<(), Denied> {
        let started = Instant::now();
        let record = AuditRecord::new(AuditEvent::Revocation, Effect::Deny)
            .with_reason(reason)
            .with_detail("by", by.to_string());
        let outcome = async {
            let credential = Credential::Bearer(token.clone());
            match &self.inner.tokens {
                Some(tokens) if tokens.accepts(&credential) => Ok(tokens.revoke_token(token).await?),
                _ => {
                    let token = token.expose_secret();
                    refuse_oversized(&credential)?;
                    let now = OffsetDateTime::now_utc();
                    let latest = now + time::Duration::days(1);
                    let until = unverified_expiry(token)
                        .map_or(latest, |exp| (exp + time::Duration::minutes(10)).min(latest));
                    let key = crate::bearer_revocation_key(token);
                    self.inner.state.revoke(&key, until).await.map_err(AuthError::from)
                }
            }
        }
        .await;
        self.conclude(record, started, outcome).await
    }

    fn token_authority(&self) -> Result<&Arc<dyn TokenAuthority>, AuthError> {
        self.inner
            .tokens
            .as_ref()
            .ok_or_else(|| AuthError::unavailable("no session token authority configured"))
    }

    /// Audits the outcome of a non-request event (login, refresh, revocation). A success is
    /// returned only once its record is taken; a sink failure turns it into a denial.
    async fn conclude<T>(
        &self,
        mut record: AuditRecord,
        started: Instant,
        outcome: Result<T, AuthError>,
    ) -> Result<T, Denied> {
        let value = match outcome {
            Ok(value) => value,
            Err(e) => return Err(self.deny(record, started, DenyReason::Unauthenticated(e)).await),
        };
        record.effect = Effect::Allow;
        record.latency_us = Some(micros(started.elapsed()));
        let request_id = record.id;
        let agent_id = record.agent_id.clone();
        match self.inner.audit.append(record, self.inner.durability).await {
            Ok(()) => Ok(value),
            Err(e) => {
                tracing::error!(error = %e, "audit sink refused a record; denying");
                Err(Denied { request_id, reason: DenyReason::AuditUnavailable, agent_id, decision: None })
            }
        }
    }

    /// Audits a denial (best effort: the request is denied either way) and builds it.
    async fn deny(&self, mut record: AuditRecord, started: Instant, reason: DenyReason) -> Denied {
        let denied = note_denial(&mut record, reason, None);
        record.latency_us = Some(micros(started.elapsed()));
        if let Err(e) = self.inner.audit.append(record, Durability::Queued).await {
            tracing::error!(error = %e, "audit sink refused a denial record");
        }
        finish_span(Effect::Deny, Basis::FailClosed, started);
        denied
    }
}

/// Who a check's credential proved, or why not (with the principal the record then names).
type Authenticated = Result<Arc<Principal>, (AuthError, Option<Arc<Principal>>)>;

/// Names in `record` the enforcement point that asserted its subject: the issuer of an
/// asserted principal, or the caller itself when it was refused before any subject was made.
fn note_asserter(record: &mut AuditRecord, principal: &Authenticated) {
    let (Ok(p) | Err((_, Some(p)))) = principal else { return };
    let caller = if p.auth_method == AuthMethod::Asserted { p.issuer.as_str() } else { p.agent_id.as_str() };
    record.detail.insert("asserted_by".to_owned(), caller.into());
}

/// Marks `record` as the denial it is (effect, reason, basis) and builds the [`Denied`].
fn note_denial(record: &mut AuditRecord, reason: DenyReason, decision: Option<Decision>) -> Denied {
    record.effect = Effect::Deny;
    record.detail.insert("denial".to_owned(), reason.code().into());
    record.reason = Some(match &reason {
        DenyReason::Unauthenticated(e) => e.detail().into_owned(),
        DenyReason::InvalidRequest(detail) => format!("invalid request: {detail}"),
        other => other.to_string(),
    });
    if record.basis.is_none() {
        record.basis = Some(decision.as_ref().map_or(Basis::FailClosed, |d| d.basis));
    }
    tracing::info!(reason = record.reason.as_deref().unwrap_or(""), "request denied");
    Denied { request_id: record.id, reason, agent_id: record.agent_id.clone(), decision }
}

/// Names in `record`, as `detail.claimed_agent`, the agent a refused credential claimed to be
/// ([`Credential::claimed_agent`]), so repeated failures naming one agent can be counted.
fn note_claimed_agent(record: &mut AuditRecord, credential: &Credential) {
    if let Some(agent) = credential.claimed_agent() {
        record.detail.insert("claimed_agent".to_owned(), agent.as_str().into());
    }
}

/// Refuses credentials too large to parse safely, before any provider sees them.
fn refuse_oversized(credential: &Credential) -> Result<(), AuthError> {
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::invalid("credential larger than 8 KiB"));
    }
    Ok(())
}

fn finish_span(effect: Effect, basis: Basis, started: Instant) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("effect", tracing::field::debug(effect));
    span.record("basis", tracing::field::debug(basis));
    span.record("latency_us", micros(started.elapsed()));
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Longest issuer quoted back in an audit detail (it is unverified input).
const MAX_SHOWN_ISSUER: usize = 200;

/// Where bearer tokens from identity providers go, by issuer.
#[derive(Debug)]
enum IssuerRoutes {
    /// No provider lists issuers: bearer tokens route like any other credential.
    None,
    /// One provider lists every issuer.
    One(Arc<dyn IdentityProvider>),
    /// Several do: the token's `iss` chooses.
    Many(HashMap<String, Arc<dyn IdentityProvider>>),
}

/// Maps each listed issuer to its provider; an issuer listed twice is an error.
fn route_issuers(providers: &[Arc<dyn IdentityProvider>]) -> Result<IssuerRoutes, GuardError> {
    let mut routes: HashMap<String, Arc<dyn IdentityProvider>> = HashMap::default();
    let mut listing = Vec::new();
    for provider in providers {
        let issuers = provider.issuers();
        if !issuers.is_empty() {
            listing.push(Arc::clone(provider));
        }
        for issuer in issuers {
            if let Some(first) = routes.get(&issuer) {
                return Err(GuardError::AmbiguousIssuer {
                    issuer,
                    first: first.name().to_owned(),
                    second: provider.name().to_owned(),
                });
            }
            routes.insert(issuer, Arc::clone(provider));
        }
    }
    Ok(match listing.len() {
        0 => IssuerRoutes::None,
        1 => listing.pop().map_or(IssuerRoutes::None, IssuerRoutes::One),
        _ => IssuerRoutes::Many(routes),
    })
}

/// The payload of a compact JWS read as `T`, WITHOUT verifying anything: only to route a
/// token or to bound how long its revocation is kept. A token that is not three dot-separated
/// parts with a base64url JSON payload of that shape yields `None`.
pub(crate) fn unverified_payload<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    use base64::Engine as _;

    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&json).ok()
}

/// The `iss` of a compact JWS, unverified: only to choose the provider that will verify the
/// token. A payload with more than one `iss`, or a non-string one, yields `None`.
fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    unverified_payload::<Issuer>(token)?.iss
}

/// A bearer token's `exp`, unverified (only to bound how long a revocation is kept).
fn unverified_expiry(token: &str) -> Option<OffsetDateTime> {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: Option<i64>,
    }
    OffsetDateTime::from_unix_timestamp(unverified_payload::<Expiry>(token)?.exp?).ok()
}

/// One clock read stamps a request: the record's time, and a time-ordered id made without
/// `now_v7`'s process-wide counter (ids need not sort within a millisecond; the audit sequence
/// orders records); and the span its check runs in. This runs on every request.
fn stamp(request: &Request) -> (Uuid, OffsetDateTime, tracing::Span) {
    let time = OffsetDateTime::now_utc();
    let since_epoch = time - OffsetDateTime::UNIX_EPOCH;
    let request_id = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(since_epoch.whole_seconds()).unwrap_or_default(),
        since_epoch.subsec_nanoseconds().unsigned_abs(),
    ));
    let span = tracing::info_span!(
        "zta.check",
        %request_id,
        action = %request.action.action_type(),
        agent = Empty,
        effect = Empty,
        basis = Empty,
        latency_us = Empty,
    );
    (request_id, time, span)
}

// Asking the policy engine before deciding (the AuthZEN action search): whom the checks would
// act for. Apart from the check path above, which it reuses and does not change.
impl Guard {
    /// The principal that [`check_as`](Self::check_as) (`trusted` is `None`; `subject`
    /// optional, as in [`check`](Self::check)) or [`check_asserted`](Self::check_asserted)
    /// (`trusted` and `subject` given) would decide for, verified and refused as those checks
    /// do (a suspended agent, a caller not in `trusted`, a credential proving another agent
    /// than `subject`), but neither decided nor audited: for an enforcement point that asks the
    /// policy engine what the principal may be permitted ([`PolicyEngine::permissible`])
    /// before deciding each candidate with one of those checks, which audit. The credential is
    /// verified, so a single-use one is spent.
    pub async fn principal_for(
        &self,
        credential: &Credential,
        subject: Option<&AgentId>,
        trusted: Option<&[AgentId]>,
    ) -> Result<Arc<Principal>, AuthError> {
        let now = OffsetDateTime::now_utc();
        let principal = match subject.zip(trusted) {
            Some((subject, trusted)) => Box::pin(self.asserted(credential, trusted, subject, now)).await,
            None => self.proven(credential, subject, now).await,
        };
        principal.map_err(|(e, _)| e)
    }
}

/// Records where a request, login or refresh came from (see [`Guard::login_from`]).
fn note_source(record: &mut AuditRecord, source: Option<IpAddr>) {
    if let Some(source) = source {
        record.detail.insert("source".to_owned(), source.to_string().into());
    }
}
