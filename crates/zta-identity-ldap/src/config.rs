//! The `identity:` section for `type: ldap`.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;

/// The `identity` section for `type: ldap`: agents that are service accounts in a directory
/// (OpenLDAP, Active Directory).
///
/// ```yaml
/// urls: [ldap://127.0.0.1:3389, ldap://127.0.0.1:3390]   # failover in order
/// tls: starttls                                          # starttls | ldaps | none
/// ca_file: ldap-ca.pem
/// bind_dn: cn=zta-gateway,ou=services,dc=zta,dc=test
/// bind_password_file: ldap-bind.secret
/// user_base: ou=agents,dc=zta,dc=test
/// user_filter: (uid={username})
/// agent_attribute: uid
/// groups: {via: member_of}
/// roles: {"cn=tools-readers,ou=groups,dc=zta,dc=test": reader}
/// segments: {"cn=code-writers,ou=groups,dc=zta,dc=test": engineering}
/// disabled: {attribute: pwdAccountLockedTime}
/// pool: {size: 8}
/// timeouts: {connect: 2s, operation: 5s}
/// group_cache: 30s
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LdapConfig {
    /// Directory servers, tried in order.
    pub urls: Vec<String>,
    /// Transport security (default `starttls`).
    #[serde(default)]
    pub tls: TlsMode,
    /// Allows `tls: none` (passwords in clear text on the wire). Default false.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// PEM file of the CA(s) that issued the servers' certificates; without it, the system's
    /// roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches for agents and confirms them at refresh.
    pub bind_dn: String,
    /// A file holding the service account's password.
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// An environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Where agents are searched (subtree).
    pub user_base: String,
    /// The search filter; `{username}` is replaced by the escaped user name.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Direct bind instead of search-then-bind: the account's DN, `{username}` replaced by the
    /// DN-escaped user name (`uid={username},ou=agents,dc=zta,dc=test`). The entry is read by
    /// the service account after the bind.
    #[serde(default)]
    pub dn_template: Option<String>,
    /// The attribute holding the agent id (`uid`, `sAMAccountName`).
    #[serde(default = "default_agent_attribute")]
    pub agent_attribute: String,
    /// How group memberships are found.
    #[serde(default)]
    pub groups: Groups,
    /// Group DN -> role.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Group DN -> segment (an agent in several mapped groups is refused).
    #[serde(default)]
    pub segments: BTreeMap<String, String>,
    /// How a disabled account is recognised.
    #[serde(default)]
    pub disabled: Option<Disabled>,
    /// Connections kept per kind (searches as the service account, agent binds).
    #[serde(default)]
    pub pool: Pool,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// How long what the service account found is reused (default 30 s; 0 disables): a user
    /// name's account (DN, agent id, groups, disabled flag, or that there is none) at login,
    /// and an agent's segment for agent-to-agent checks. Passwords are never cached: every
    /// login binds. A refresh reads the directory afresh.
    #[serde(default = "default_group_cache", with = "zta_core::duration::text")]
    pub group_cache: Duration,
    /// Failed-attempt lockout per user name.
    #[serde(default)]
    pub lockout: Lockout,
    /// Whether `login` may open a ZTA session with directory credentials (default true).
    #[serde(default = "yes")]
    pub issue_session_token: bool,
}

/// Transport security.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// `ldap://` upgraded with StartTLS before anything else is sent.
    #[default]
    Starttls,
    /// `ldaps://`.
    Ldaps,
    /// Plain `ldap://`; needs `allow_plaintext: true`.
    None,
}

/// How group memberships are found: `{via: member_of}` (the agent entry's `memberOf`), or
/// `{via: search, base: ..., filter: "(member={dn})"}` (`{dn}` is replaced by the escaped agent
/// DN); `nested: N` adds the groups of those groups, N levels up, searched under `base`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Groups {
    /// `member_of` or `search`.
    pub via: GroupsVia,
    /// Where groups are searched (`via: search`).
    #[serde(default)]
    pub base: Option<String>,
    /// The group filter (default `(member={dn})`): for `via: search`, and for the groups of
    /// groups with `nested`.
    #[serde(default)]
    pub filter: Option<String>,
    /// How many levels of groups of groups count too (default 0, at most 10; needs `base`):
    /// an agent in `researchers`, itself a member of `crew`, is in `crew` with `nested: 1`.
    #[serde(default)]
    pub nested: u8,
}

/// See [`Groups`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupsVia {
    /// The agent entry's `memberOf` attribute.
    #[default]
    MemberOf,
    /// A search for groups naming the agent.
    Search,
}

/// A disabled account: `attribute` present (OpenLDAP `pwdAccountLockedTime`), or, with `bit`,
/// that bit set in the attribute's number (Active Directory `userAccountControl`, bit 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Disabled {
    /// The attribute.
    pub attribute: String,
    /// The bit (a mask) that marks the account disabled.
    #[serde(default)]
    pub bit: Option<u64>,
}

/// Connection pool size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Pool {
    /// Connections per kind (default 8).
    pub size: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Self { size: 8 }
    }
}

/// Time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Timeouts {
    /// Opening a connection, TLS included (default 2 s).
    #[serde(default = "default_connect", with = "zta_core::duration::text")]
    pub connect: Duration,
    /// Each operation (default 5 s).
    #[serde(default = "default_operation", with = "zta_core::duration::text")]
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: default_connect(), operation: default_operation() }
    }
}

/// Failed-attempt lockout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Lockout {
    /// Failures allowed per window (default 5).
    pub max_failures: u32,
    /// The window (default 5 min).
    #[serde(with = "zta_core::duration::text")]
    pub window: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self { max_failures: 5, window: Duration::from_secs(300) }
    }
}

fn default_user_filter() -> String {
    "(uid={username})".to_owned()
}
fn default_agent_attribute() -> String {
    "uid".to_owned()
}
fn default_group_cache() -> Duration {
    Duration::from_secs(30)
}
fn default_connect() -> Duration {
    Duration::from_secs(2)
}
fn default_operation() -> Duration {
    Duration::from_secs(5)
}
fn yes() -> bool {
    true
}
