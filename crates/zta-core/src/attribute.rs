//! The request vocabulary: the attribute paths a policy may name, defined once.
//!
//! The reserved attributes ([`Attribute`]) come from the verified principal or from the request's
//! own fields; a request context may not set them. Every other path
//! ([`AttributePath::parse`]) is a resource attribute (`resource.<path>`) or a walk of the
//! context. [`AuthzRequest::attribute`](crate::AuthzRequest::attribute), the policy engine's
//! compiled conditions, its load checks and its schema all read the namespace from here.

/// A reserved request attribute: one that the verified principal or the request's own fields
/// define, and that a request context may not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `agent_id`: the verified agent.
    AgentId,
    /// `source_agent`: the verified agent (the original project's name for the sender).
    SourceAgent,
    /// `principal.agent_id`: the verified agent.
    PrincipalAgentId,
    /// `principal.subject`.
    Subject,
    /// `principal.issuer`.
    Issuer,
    /// `principal.tenant`, if the principal has one.
    Tenant,
    /// `principal.segment`, if the principal has one.
    Segment,
    /// `principal.auth_method`.
    AuthMethod,
    /// `principal.roles` (a list).
    Roles,
    /// `principal.groups` (a list).
    Groups,
    /// `principal.delegation` (a list).
    Delegation,
    /// `action_type`: the verb (see [`Action::action_type`](crate::Action::action_type)).
    ActionType,
    /// `action.kind` (see [`ActionKind::as_str`](crate::ActionKind::as_str)).
    ActionKind,
    /// `action.name`.
    ActionName,
    /// `tool_name`, for tool calls.
    ToolName,
    /// `target_agent`, if the request has a target.
    TargetAgent,
    /// `target.segment`: the target's segment as the guard resolved it, if known.
    TargetSegment,
    /// `resource.type`, if the request has a resource.
    ResourceType,
    /// `resource.id`, if the request has a resource.
    ResourceId,
}

impl Attribute {
    /// Every reserved attribute, in the order policy error messages list them.
    pub const ALL: [Self; 19] = [
        Self::AgentId,
        Self::SourceAgent,
        Self::PrincipalAgentId,
        Self::Subject,
        Self::Issuer,
        Self::Tenant,
        Self::Segment,
        Self::AuthMethod,
        Self::Roles,
        Self::Groups,
        Self::Delegation,
        Self::ActionType,
        Self::ActionKind,
        Self::ActionName,
        Self::ToolName,
        Self::TargetAgent,
        Self::TargetSegment,
        Self::ResourceType,
        Self::ResourceId,
    ];

    /// The dotted path policies name the attribute by.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AgentId => "agent_id",
            Self::SourceAgent => "source_agent",
            Self::PrincipalAgentId => "principal.agent_id",
            Self::Subject => "principal.subject",
            Self::Issuer => "principal.issuer",
            Self::Tenant => "principal.tenant",
            Self::Segment => "principal.segment",
            Self::AuthMethod => "principal.auth_method",
            Self::Roles => "principal.roles",
            Self::Groups => "principal.groups",
            Self::Delegation => "principal.delegation",
            Self::ActionType => "action_type",
            Self::ActionKind => "action.kind",
            Self::ActionName => "action.name",
            Self::ToolName => "tool_name",
            Self::TargetAgent => "target_agent",
            Self::TargetSegment => "target.segment",
            Self::ResourceType => "resource.type",
            Self::ResourceId => "resource.id",
        }
    }

    /// The attribute named exactly `path`; `None` for any other path (no case folding).
    pub fn parse(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == path)
    }

    /// The first segment of the name (`principal` for `principal.roles`).
    pub fn root(self) -> &'static str {
        let name = self.name();
        name.split_once('.').map_or(name, |(root, _)| root)
    }

    /// Whether `path`'s first segment is the root of a reserved attribute (`principal.rolez`
    /// is; `message.type` is not), or `context`, which names the request context itself. A
    /// request context may not set such a key.
    pub fn is_reserved_root(path: &str) -> bool {
        let root = path.split_once('.').map_or(path, |(root, _)| root);
        root == CONTEXT_ROOT || Self::ALL.into_iter().any(|a| a.root() == root)
    }
}

/// The root that names the request context itself (`context.message.type`).
const CONTEXT_ROOT: &str = "context";

/// What a dotted attribute path names, as policies write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributePath<'a> {
    /// A reserved attribute.
    Reserved(Attribute),
    /// `resource.<path>` other than `resource.type` and `resource.id`: the path into the
    /// resource's attributes.
    Resource(&'a str),
    /// Under a reserved root but naming no reserved attribute (`principal.rolez`, `resource`,
    /// `tool_name.x`): it never has a value, and policies refuse it at load.
    Unknown,
    /// Anything else: the path into the request context.
    Context(&'a str),
}

impl<'a> AttributePath<'a> {
    /// Classifies `path`. `context.<path>` is another spelling of `<path>` in the request
    /// context (`context.arguments.path` is `arguments.path`).
    pub fn parse(path: &'a str) -> Self {
        if let Some(attribute) = Attribute::parse(path) {
            return Self::Reserved(attribute);
        }
        if let Some(rest) = path.strip_prefix("resource.") {
            return Self::Resource(rest);
        }
        if let Some(rest) = path.strip_prefix("context.") {
            return Self::Context(rest);
        }
        if Attribute::is_reserved_root(path) {
            return Self::Unknown;
        }
        Self::Context(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_distinct() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::parse(a.name()), Some(a), "{a:?}");
        }
        let mut names: Vec<_> = Attribute::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Attribute::ALL.len());
    }

    #[test]
    fn reserved_roots_are_the_roots_of_the_attributes() {
        let mut roots: Vec<_> = Attribute::ALL.iter().map(|a| a.root()).collect();
        roots.sort_unstable();
        roots.dedup();
        assert_eq!(
            roots,
            [
                "action",
                "action_type",
                "agent_id",
                "principal",
                "resource",
                "source_agent",
                "target",
                "target_agent",
                "tool_name"
            ]
        );
        for root in roots {
            assert!(Attribute::is_reserved_root(root), "{root}");
            assert!(Attribute::is_reserved_root(&format!("{root}.x")), "{root}");
        }
        assert!(!Attribute::is_reserved_root("principals"));
        assert!(!Attribute::is_reserved_root("message.type"));
    }

    #[test]
    fn context_names_the_request_context() {
        assert_eq!(AttributePath::parse("context.arguments.path"), AttributePath::Context("arguments.path"));
        assert_eq!(AttributePath::parse("arguments.path"), AttributePath::Context("arguments.path"));
        assert_eq!(AttributePath::parse("context"), AttributePath::Unknown);
        // A request may not set a context key `context` (it would shadow nothing, but confuse).
        assert!(Attribute::is_reserved_root("context"));
        assert!(Attribute::is_reserved_root("context.x"));
    }

    #[test]
    fn paths_are_classified() {
        assert_eq!(AttributePath::parse("principal.roles"), AttributePath::Reserved(Attribute::Roles));
        assert_eq!(AttributePath::parse("resource.type"), AttributePath::Reserved(Attribute::ResourceType));
        assert_eq!(AttributePath::parse("resource.owner.id"), AttributePath::Resource("owner.id"));
        for unknown in ["principal.rolez", "principal", "resource", "tool_name.x", "action"] {
            assert_eq!(AttributePath::parse(unknown), AttributePath::Unknown, "{unknown}");
        }
        assert_eq!(AttributePath::parse("message.type"), AttributePath::Context("message.type"));
    }
}
