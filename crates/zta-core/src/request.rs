//! Authorization requests: what the caller asks for, joined with the verified principal.
//!
//! The caller supplies a [`Request`] (action, resource, target agent, free-form context). The
//! guard joins it with the [`Principal`] it verified into an [`AuthzRequest`], the only input a
//! [`PolicyEngine`](crate::PolicyEngine) sees. Attributes that name the caller (`agent_id`,
//! `principal.*`, `source_agent`) come only from the principal; a context that tries to set
//! them, or any other attribute the request itself defines, is refused.

use std::{net::IpAddr, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Action, AgentId, Attribute, AttributePath, Principal, Resource};

/// Free-form request attributes (the original project's `context`), nested maps allowed.
pub type Context = serde_json::Map<String, Value>;

/// What a caller asks to do. It names no caller: who is asking comes from the credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The action.
    pub action: Action,
    /// The resource acted on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The agent the action is addressed to (message, handoff, delegation), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<AgentId>,
    /// Free-form attributes.
    #[serde(
        default,
        skip_serializing_if = "Context::is_empty",
        deserialize_with = "crate::strict_json::map"
    )]
    pub context: Context,
    /// The network address the request came from, as the adapter that received it saw it (the
    /// peer of its connection). Recorded on denials (`detail.source`) so that failures coming
    /// from one place can be counted; never read from a request body.
    #[serde(skip)]
    pub source: Option<IpAddr>,
}

impl Request {
    /// A request for `action` with nothing else set.
    pub fn new(action: Action) -> Self {
        Self { action, resource: None, target_agent: None, context: Context::new(), source: None }
    }
    /// Sets the address the request came from.
    #[must_use]
    pub fn with_source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }
    /// Sets the resource.
    #[must_use]
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }
    /// Sets the target agent.
    #[must_use]
    pub fn with_target(mut self, agent: AgentId) -> Self {
        self.target_agent = Some(agent);
        self
    }
    /// Adds a context attribute.
    #[must_use]
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }
}

/// The target agent of a request, with the segment the guard resolved for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The target agent.
    pub agent_id: AgentId,
    /// Its segment, if known.
    pub segment: Option<String>,
}

/// A request the guard refuses before policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A context key tried to set a reserved attribute.
    #[error("request context may not set reserved attribute `{0}`")]
    ReservedAttribute(String),
    /// A context or resource attribute key contains `.`. Policies address nested maps by
    /// dotted paths, so `{"message.type": ..}` would be a second spelling of `message.type`
    /// that path lookups do not see (and a deny rule on it would not fire).
    #[error("attribute key `{0}` contains `.`; nest maps instead")]
    DottedKey(String),
}

/// A request joined with its verified principal: the input of policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthzRequest {
    principal: Arc<Principal>,
    action: Action,
    resource: Option<Resource>,
    target: Option<Target>,
    context: Context,
}

impl AuthzRequest {
    /// Joins `request` with `principal`. `target_segment` is the segment of the request's
    /// target agent, as resolved by the caller (the guard) from configuration, never from the
    /// request. Refuses a context that sets a reserved attribute, and a context or resource
    /// attribute key, at any depth, that contains `.`.
    pub fn new(
        principal: impl Into<Arc<Principal>>,
        request: Request,
        target_segment: Option<String>,
    ) -> Result<Self, RequestError> {
        check_context(&request.context)?;
        if let Some(resource) = &request.resource {
            check_keys(&resource.attributes)?;
        }
        let target = request.target_agent.map(|agent_id| Target { agent_id, segment: target_segment });
        Ok(Self {
            principal: principal.into(),
            action: request.action,
            resource: request.resource,
            target,
            context: request.context,
        })
    }

    /// The verified principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    /// The action.
    pub fn action(&self) -> &Action {
        &self.action
    }
    /// The resource, if any.
    pub fn resource(&self) -> Option<&Resource> {
        self.resource.as_ref()
    }
    /// The target agent, if any.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }
    /// The free-form context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Looks up an attribute by dotted path, as policies name them (see [`AttributePath`]).
    ///
    /// | path | value |
    /// |---|---|
    /// | `agent_id`, `source_agent` | the verified agent id |
    /// | `principal.subject` `.issuer` `.tenant` `.segment` `.auth_method` | principal fields |
    /// | `principal.roles` `.groups` `.delegation` | lists |
    /// | `action_type`, `action.kind`, `action.name`, `tool_name` | see [`Action`] |
    /// | `target_agent`, `target.segment` | the target and its resolved segment |
    /// | `resource.type`, `resource.id`, `resource.<path>` | the resource |
    /// | another path under a reserved root | nothing |
    /// | anything else | a walk of the context's nested maps |
    pub fn attribute(&self, path: &str) -> Option<AttrValue<'_>> {
        match AttributePath::parse(path) {
            AttributePath::Reserved(attribute) => self.reserved(attribute),
            AttributePath::Resource(rest) => {
                walk(&self.resource.as_ref()?.attributes, rest).map(AttrValue::Json)
            }
            AttributePath::Unknown => None,
            AttributePath::Context(path) => walk(&self.context, path).map(AttrValue::Json),
        }
    }

    /// The value of a reserved attribute, if the request has one.
    #[inline]
    pub fn reserved(&self, attribute: Attribute) -> Option<AttrValue<'_>> {
        let p = &self.principal;
        Some(match attribute {
            Attribute::AgentId | Attribute::SourceAgent | Attribute::PrincipalAgentId => {
                AttrValue::Str(p.agent_id.as_str())
            }
            Attribute::Subject => AttrValue::Str(&p.subject),
            Attribute::Issuer => AttrValue::Str(&p.issuer),
            Attribute::Tenant => AttrValue::Str(p.tenant.as_deref()?),
            Attribute::Segment => AttrValue::Str(p.segment.as_deref()?),
            Attribute::AuthMethod => AttrValue::Str(p.auth_method.as_str()),
            Attribute::Roles => AttrValue::List(&p.roles),
            Attribute::Groups => AttrValue::List(&p.groups),
            Attribute::Delegation => AttrValue::List(&p.delegation),
            Attribute::ActionType => AttrValue::Str(self.action.action_type()),
            Attribute::ActionKind => AttrValue::Str(self.action.kind().as_str()),
            Attribute::ActionName => AttrValue::Str(self.action.name()),
            Attribute::ToolName => AttrValue::Str(self.action.tool_name()?),
            Attribute::TargetAgent => AttrValue::Str(self.target.as_ref()?.agent_id.as_str()),
            Attribute::TargetSegment => AttrValue::Str(self.target.as_ref()?.segment.as_deref()?),
            Attribute::ResourceType => AttrValue::Str(&self.resource.as_ref()?.kind),
            Attribute::ResourceId => AttrValue::Str(&self.resource.as_ref()?.id),
        })
    }
}

/// An attribute value, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// A string.
    Str(&'a str),
    /// A list of strings (roles, groups, delegation chain).
    List(&'a [String]),
    /// A JSON value from the context or resource attributes.
    Json(&'a Value),
}

fn walk<'a>(map: &'a Context, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = map.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn check_context(context: &Context) -> Result<(), RequestError> {
    // A flat key such as `principal.roles` is refused as reserved: some tools flatten paths.
    if let Some(key) = context.keys().find(|k| Attribute::is_reserved_root(k)) {
        return Err(RequestError::ReservedAttribute(key.clone()));
    }
    check_keys(context)
}

/// Refuses a key containing `.` in `map` or any map nested in it (through maps only: paths
/// do not walk into lists).
fn check_keys(map: &Context) -> Result<(), RequestError> {
    for (key, value) in map {
        if key.contains('.') {
            return Err(RequestError::DottedKey(key.clone()));
        }
        if let Value::Object(inner) = value {
            check_keys(inner)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::AuthMethod;

    fn principal() -> Principal {
        let now = OffsetDateTime::now_utc();
        Principal::new(
            AgentId::new("research_bot").unwrap(),
            "static",
            AuthMethod::AgentKey,
            now,
            now + time::Duration::minutes(5),
        )
        .with_roles(["researcher"])
        .with_segment("research")
    }

    #[test]
    fn context_cannot_set_reserved_attributes() {
        for key in ["agent_id", "principal", "principal.roles", "source_agent", "action_type", "target_agent"]
        {
            let req = Request::new(Action::task("t")).with_context(key, "admin");
            assert_eq!(
                AuthzRequest::new(principal(), req, None).unwrap_err(),
                RequestError::ReservedAttribute(key.to_owned()),
                "{key}"
            );
        }
    }

    #[test]
    fn dotted_keys_are_refused_at_any_depth() {
        let flat = Request::new(Action::message("chat")).with_context("message.type", "system");
        assert_eq!(
            AuthzRequest::new(principal(), flat, None).unwrap_err(),
            RequestError::DottedKey("message.type".into())
        );
        let nested = Request::new(Action::message("chat"))
            .with_context("message", serde_json::json!({"meta": {"a.b": 1}}));
        assert_eq!(
            AuthzRequest::new(principal(), nested, None).unwrap_err(),
            RequestError::DottedKey("a.b".into())
        );
        let resource = Request::new(Action::task("t"))
            .with_resource(Resource::new("doc", "1").with_attribute("owner.id", "ana"));
        assert_eq!(
            AuthzRequest::new(principal(), resource, None).unwrap_err(),
            RequestError::DottedKey("owner.id".into())
        );
        let in_list = Request::new(Action::task("t")).with_context("items", serde_json::json!([{"a.b": 1}]));
        assert!(AuthzRequest::new(principal(), in_list, None).is_ok(), "lists are not addressed by paths");
    }

    #[test]
    fn attributes_resolve_from_their_sources() {
        let req = Request::new(Action::tool_call("web_search"))
            .with_resource(Resource::new("dataset", "d1").with_attribute("owner", "ana"))
            .with_target(AgentId::new("writer").unwrap())
            .with_context("message", serde_json::json!({"type": "system"}));
        let r = AuthzRequest::new(principal(), req, Some("writing".into())).unwrap();
        assert_eq!(r.attribute("agent_id"), Some(AttrValue::Str("research_bot")));
        assert_eq!(r.attribute("action_type"), Some(AttrValue::Str("call_tool")));
        assert_eq!(r.attribute("tool_name"), Some(AttrValue::Str("web_search")));
        assert_eq!(r.attribute("principal.segment"), Some(AttrValue::Str("research")));
        assert_eq!(r.attribute("target.segment"), Some(AttrValue::Str("writing")));
        assert_eq!(r.attribute("resource.type"), Some(AttrValue::Str("dataset")));
        assert_eq!(r.attribute("resource.owner"), Some(AttrValue::Json(&"ana".into())));
        assert_eq!(r.attribute("message.type"), Some(AttrValue::Json(&"system".into())));
        assert_eq!(r.attribute("message.missing"), None);
        assert_eq!(r.attribute("principal.unknown"), None);
        assert_eq!(r.attribute("principal.tenant"), None);
    }
}
