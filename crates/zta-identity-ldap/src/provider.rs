//! [`LdapProvider`]: agents authenticated by a bind as their directory account.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    panic::AssertUnwindSafe,
    sync::Arc,
};

use async_trait::async_trait;
use ldap3::{Scope, SearchEntry, dn_escape, exop::WhoAmI, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, AuthMethod, Credential, IdentityProvider, Principal, StateStore};

use crate::{
    Error, GroupsVia, LdapConfig, TlsMode,
    cache::Expiring,
    conn::{Connector, Pool},
};

/// The provider name, also the `issuer` of every principal it makes.
const NAME: &str = "ldap";
/// How long a principal authenticated by a bind stays valid (a session re-checks the directory
/// at each refresh).
const PRINCIPAL_LIFETIME: time::Duration = time::Duration::minutes(5);
/// Longest user name accepted.
const MAX_USERNAME: usize = 256;
/// Longest password sent to the directory.
const MAX_PASSWORD: usize = 1024;
/// The same detail for a wrong password and an unknown user.
const BAD_CREDENTIALS: &str = "wrong password or unknown user";
/// Most groups an account may be in, nested ones included.
const MAX_GROUPS: usize = 1000;
/// Bound by the dummy bind an unknown user costs: no entry has it.
const NO_SUCH_USER: &str = "cn=zta-no-such-user";

/// Identity provider for agents that are directory accounts (name `ldap`).
///
/// Accepts [`Credential::Password`]: the agent's entry is searched as the service account (the
/// user name escaped into the filter; exactly one entry must match), then bound with the
/// password on a connection of its own, and the bound identity confirmed with WhoAmI. An
/// empty password is refused before any bind (servers treat it as an anonymous bind); an
/// unknown user costs a bind too and fails with the same error as a wrong password. Refused
/// passwords count per user name in the shared [`StateStore`] (each one, also when
/// concurrent); at the limit every attempt is [`AuthError::LockedOut`] until the window ends.
/// Groups map to roles and the segment.
///
/// What the service account found for a user name (the DN, the agent id, the groups, the
/// disabled flag, or that no account has the name) is reused for `group_cache`; the password
/// is checked by a bind every time, and a refresh reads the directory afresh. Any directory
/// failure denies.
pub struct LdapProvider {
    config: LdapConfig,
    service: Arc<Pool>,
    binds: Arc<Pool>,
    state: Arc<dyn StateStore>,
    /// Lower-cased user name -> its account, or `None` for no account.
    accounts: Expiring<Option<Arc<Entry>>>,
    /// Agent id -> its segment, for [`IdentityProvider::segment_of`].
    segments: Expiring<Option<String>>,
}

impl fmt::Debug for LdapProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapProvider")
            .field("urls", &self.config.urls)
            .field("bind_dn", &self.config.bind_dn)
            .field("user_base", &self.config.user_base)
            .finish_non_exhaustive()
    }
}

/// An agent's entry as the service account sees it: `groups` from `memberOf` as searched,
/// and, once [`LdapProvider::account`] resolved them, as configured and sorted.
struct Entry {
    dn: String,
    agent: String,
    groups: Vec<String>,
    disabled: bool,
}

impl LdapProvider {
    /// Checks `config`, reads the service account's password and the CA file, and builds the
    /// connection pools (no connection is opened until the first authentication).
    pub fn new(config: LdapConfig, state: Arc<dyn StateStore>) -> Result<Self, Error> {
        let urls = check(&config)?;
        let password = service_password(&config)?;
        let connector = Arc::new(Connector {
            urls,
            tls: config.tls,
            tls_config: crate::tls::client_config(config.ca_file.as_deref())?,
            connect: config.timeouts.connect,
            operation: config.timeouts.operation,
        });
        let size = config.pool.size;
        Ok(Self {
            service: Arc::new(Pool::new(connector.clone(), Some((config.bind_dn.clone(), password)), size)),
            binds: Arc::new(Pool::new(connector, None, size)),
            accounts: Expiring::new(config.group_cache),
            segments: Expiring::new(config.group_cache),
            config,
            state,
        })
    }

    async fn authenticate_password(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Principal, AuthError> {
        if password.expose_secret().is_empty() {
            // A bind with an empty password is an anonymous bind that servers answer "success".
            return Err(AuthError::invalid("empty password"));
        }
        let too_long = username.len() > MAX_USERNAME || password.expose_secret().len() > MAX_PASSWORD;
        if username.is_empty() || too_long || username.chars().any(char::is_control) {
            return Err(AuthError::invalid(BAD_CREDENTIALS));
        }
        let name = username.to_lowercase();
        let key = format!("ldap-lockout:{name}");
        self.gate(&key).await?;
        match self.bound_account(username, &name, password).await {
            Ok(account) if account.disabled => Err(AuthError::invalid("account disabled")),
            Ok(account) => self.principal(&account),
            // A wrong password or an unknown user: counted.
            Err(AuthError::Invalid { detail }) if detail == BAD_CREDENTIALS => Err(self.failed(&key).await),
            Err(e) => Err(e),
        }
    }

    /// The account `username` (lower-cased `name`) names, once `password` bound as it.
    async fn bound_account(
        &self,
        username: &str,
        name: &str,
        password: &SecretString,
    ) -> Result<Arc<Entry>, AuthError> {
        let cached = self.accounts.get(name);
        let account = match (&self.config.dn_template, cached) {
            (_, Some(cached)) => {
                let dn = cached.as_ref().map_or_else(|| self.no_such_user(), |a| a.dn.clone());
                if let Err(e) = self.bind(&dn, password).await {
                    // A renamed account's cached DN no longer binds: look it up again next time.
                    self.accounts.remove(name);
                    return Err(e);
                }
                cached
            }
            (Some(template), None) => {
                // Direct bind: an unknown user is a bind to a DN that does not exist, refused
                // alike. The entry is read beside the bind (used only if the bind succeeds).
                let dn = template.replace("{username}", &dn_escape(username));
                let (bound, entries) =
                    tokio::join!(self.bind(&dn, password), self.search(&dn, Scope::Base, "(objectClass=*)"));
                bound?;
                let mut entries = entries?;
                if entries.len() != 1 {
                    return Err(AuthError::invalid("the bound account cannot be read"));
                }
                let account = Some(Arc::new(self.account(entries.remove(0)).await?));
                self.accounts.put(name.to_owned(), account.clone());
                account
            }
            (None, None) => {
                let account = match self.find(username).await? {
                    Some(entry) => Some(Arc::new(self.account(entry).await?)),
                    None => None,
                };
                self.accounts.put(name.to_owned(), account.clone());
                // An unknown user costs the same bind as a wrong password, refused alike.
                let dn = account.as_ref().map_or_else(|| self.no_such_user(), |a| a.dn.clone());
                self.bind(&dn, password).await?;
                account
            }
        };
        account.ok_or_else(|| AuthError::invalid(BAD_CREDENTIALS))
    }

    /// The DN an unknown user's bind is refused for: no entry has it.
    fn no_such_user(&self) -> String {
        format!("{NO_SUCH_USER},{}", self.config.user_base)
    }

    /// Lockout: a name with `max_failures` failures in the window is refused without asking
    /// the directory.
    async fn gate(&self, key: &str) -> Result<(), AuthError> {
        let failures = self.state.failures(key).await?;
        if failures >= self.config.lockout.max_failures {
            return Err(AuthError::LockedOut);
        }
        Ok(())
    }

    /// Counts a refused password for the name (every one: concurrent attempts each count, in
    /// one atomic increment of the shared store). Successes are not counted, so parallel
    /// logins of a healthy agent never lock it out, and they do not reset the count either.
    async fn failed(&self, key: &str) -> AuthError {
        match self.state.add_failure(key, self.config.lockout.window).await {
            Ok(_) => AuthError::invalid(BAD_CREDENTIALS),
            Err(e) => e.into(),
        }
    }

    /// The one entry the user filter matches for `username`, searched as the service account.
    async fn find(&self, username: &str) -> Result<Option<Entry>, AuthError> {
        let filter = self.config.user_filter.replace("{username}", &ldap_escape(username));
        let entries = self.search(&self.config.user_base, Scope::Subtree, &filter).await?;
        match entries.len() {
            0 => Ok(None),
            1 => Ok(entries.into_iter().next()),
            n => {
                tracing::warn!(target: "zta_identity_ldap", matches = n, "the user filter matched several entries");
                Err(AuthError::invalid("the user filter matched several entries"))
            }
        }
    }

    /// The one account whose agent attribute is `agent`, searched as the service account.
    async fn find_agent(&self, agent: &AgentId) -> Result<Option<Entry>, AuthError> {
        let filter = format!("({}={})", self.config.agent_attribute, ldap_escape(agent.as_str()));
        let mut entries = self.search(&self.config.user_base, Scope::Subtree, &filter).await?;
        Ok(if entries.len() == 1 { entries.pop() } else { None })
    }

    async fn search(&self, base: &str, scope: Scope, filter: &str) -> Result<Vec<Entry>, AuthError> {
        let mut attributes = vec![self.config.agent_attribute.as_str(), "memberOf"];
        if let Some(disabled) = &self.config.disabled {
            attributes.push(disabled.attribute.as_str());
        }
        let timeout = self.service.operation_timeout();
        let mut retry = true;
        let (conn, found) = loop {
            let mut conn = self.service.get().await.map_err(unavailable)?;
            let found = conn.ldap.with_timeout(timeout).search(base, scope, filter, attributes.clone()).await;
            if retry && conn.reused && stale(&found) {
                retry = false;
                self.service.discard_idle();
                continue;
            }
            break (conn, found);
        };
        let (raw, _) = found
            .map_err(|e| unavailable(e.to_string()))?
            .non_error()
            .map_err(|e| AuthError::unavailable(format!("directory search failed: {e}")))?;
        conn.keep();
        let mut entries = Vec::with_capacity(raw.len());
        for raw in raw {
            // ldap3 panics on malformed BER from the server; a broken server denies instead.
            let entry = std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(raw)))
                .map_err(|_| AuthError::unavailable("the directory sent a malformed entry"))?;
            entries.push(self.entry(entry));
        }
        Ok(entries)
    }

    fn entry(&self, entry: SearchEntry) -> Entry {
        let first = |name: &str| {
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, values)| values.first().cloned())
        };
        let disabled = self.config.disabled.as_ref().is_some_and(|d| match (first(&d.attribute), d.bit) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(value), Some(bit)) => value.trim().parse::<u64>().map_or(true, |v| v & bit != 0),
        });
        let groups = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
            .map(|(_, values)| values.clone())
            .unwrap_or_default();
        Entry {
            agent: first(&self.config.agent_attribute).unwrap_or_default(),
            dn: entry.dn,
            groups,
            disabled,
        }
    }

    /// Binds as `dn` with `password` on a connection of the bind pool and confirms with WhoAmI
    /// that the server bound exactly that DN.
    ///
    /// The bind and the WhoAmI go out together: slapd holds requests that arrive during a bind
    /// until the bind is done (RFC 4511 asks clients to wait instead, which costs a round
    /// trip). The connection was anonymous before the bind, so a server that answered WhoAmI
    /// early names no one, and then WhoAmI is asked again now that the bind has answered.
    /// Afterwards the connection binds anonymously again, off the request path, before it is
    /// reused.
    async fn bind(&self, dn: &str, password: &SecretString) -> Result<(), AuthError> {
        let timeout = self.binds.operation_timeout();
        let mut retry = true;
        let (mut conn, bound, whoami) = loop {
            let mut conn = self.binds.get().await.map_err(unavailable)?;
            let mut ask = conn.ldap.clone();
            // Polled in this order, each sends its request before it first waits.
            let (bound, whoami) = tokio::join!(
                conn.ldap.with_timeout(timeout).simple_bind(dn, password.expose_secret()),
                ask.with_timeout(timeout).extended(WhoAmI),
            );
            if retry && conn.reused && stale(&bound) {
                retry = false;
                self.binds.discard_idle();
                continue;
            }
            break (conn, bound, whoami);
        };
        match bound.map_err(|e| unavailable(e.to_string()))?.rc {
            0 => {}
            // invalidCredentials, and what servers answer for locked or disabled accounts; a
            // failed bind leaves the connection anonymous.
            49 | 50 | 53 => {
                conn.keep();
                return Err(AuthError::invalid(BAD_CREDENTIALS));
            }
            rc => return Err(AuthError::unavailable(format!("bind answered result code {rc}"))),
        }
        let mut confirmed = same_authzid(whoami, dn);
        if !confirmed {
            confirmed = same_authzid(conn.ldap.with_timeout(timeout).extended(WhoAmI).await, dn);
        }
        tokio::spawn(async move {
            // A server that refuses anonymous binds keeps the agent bound: not reused then.
            if conn.ldap.with_timeout(timeout).simple_bind("", "").await.is_ok_and(|r| r.rc == 0) {
                conn.keep();
            }
        });
        if !confirmed {
            tracing::error!(target: "zta_identity_ldap", "the server bound another identity than the DN searched");
            return Err(AuthError::invalid("the bound identity is not the account searched"));
        }
        Ok(())
    }

    /// `entry` with its groups: its `memberOf`, or those a group search finds.
    async fn account(&self, mut entry: Entry) -> Result<Entry, AuthError> {
        let base = self.config.groups.base.as_deref().unwrap_or_default();
        let filter = |dn: &str| {
            self.config.groups.filter.as_deref().unwrap_or("(member={dn})").replace("{dn}", &ldap_escape(dn))
        };
        let mut groups = if self.config.groups.via == GroupsVia::MemberOf {
            std::mem::take(&mut entry.groups)
        } else {
            self.search(base, Scope::Subtree, &filter(&entry.dn)).await?.into_iter().map(|g| g.dn).collect()
        };
        // Groups of groups, level by level; a group met again (a cycle) is not followed twice.
        let mut seen: BTreeSet<String> = groups.iter().map(|g| normalized_dn(g)).collect();
        let mut level = groups.clone();
        for _ in 0..self.config.groups.nested {
            if level.is_empty() {
                break;
            }
            let any: String = level.iter().map(|g| filter(g)).collect();
            let found = self.search(base, Scope::Subtree, &format!("(|{any})")).await?;
            level = found.into_iter().map(|g| g.dn).filter(|g| seen.insert(normalized_dn(g))).collect();
            groups.extend(level.iter().cloned());
            if groups.len() > MAX_GROUPS {
                return Err(AuthError::invalid(format!("the account is in more than {MAX_GROUPS} groups")));
            }
        }
        groups.sort();
        entry.groups = groups;
        Ok(entry)
    }

    fn principal(&self, account: &Entry) -> Result<Principal, AuthError> {
        let (roles, segment) = self.mapped(&account.groups)?;
        let agent = AgentId::new(&account.agent)
            .map_err(|_| AuthError::invalid("the account's agent attribute is not a valid agent id"))?;
        let now = OffsetDateTime::now_utc();
        let mut principal = Principal::new(agent, NAME, AuthMethod::Ldap, now, now + PRINCIPAL_LIFETIME)
            .with_subject(account.dn.clone())
            .with_roles(roles)
            .with_groups(account.groups.clone())
            .with_claim("dn", account.dn.clone());
        if let Some(segment) = segment {
            principal = principal.with_segment(segment);
        }
        Ok(principal)
    }

    /// Roles and the segment of `groups` by the configured maps (DNs compared without case).
    fn mapped(&self, groups: &[String]) -> Result<(Vec<String>, Option<String>), AuthError> {
        let lookup = |map: &BTreeMap<String, String>| -> BTreeSet<String> {
            groups
                .iter()
                .filter_map(|g| map.iter().find(|(dn, _)| same_dn(dn, g)).map(|(_, v)| v.clone()))
                .collect()
        };
        let roles = lookup(&self.config.roles).into_iter().collect();
        let mut segments = lookup(&self.config.segments).into_iter();
        let segment = segments.next();
        if segments.next().is_some() {
            return Err(AuthError::invalid("the account is in groups of several segments"));
        }
        Ok((roles, segment))
    }
}

#[async_trait]
impl IdentityProvider for LdapProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Password { .. })
    }

    fn issues_session_tokens(&self) -> bool {
        self.config.issue_session_token
    }

    /// At a refresh: the account still exists (searched by its agent attribute as the service
    /// account), is not disabled, and its groups still give the session's roles and segment.
    async fn revalidate(&self, principal: &Principal) -> Result<(), AuthError> {
        // By the agent attribute: a session's principal carries the agent id, and the DN may
        // have changed (a rename keeps the account).
        let entry = self
            .find_agent(&principal.agent_id)
            .await?
            .ok_or_else(|| AuthError::invalid("the account no longer exists"))?;
        let account = self.account(entry).await?;
        if account.disabled {
            return Err(AuthError::invalid("the account is disabled"));
        }
        let (roles, segment) = self.mapped(&account.groups)?;
        let mut before = principal.roles.clone();
        before.sort();
        if roles != before || segment != principal.segment {
            return Err(AuthError::invalid("the account's groups changed"));
        }
        Ok(())
    }

    /// The segment of a directory agent (the target of an agent-to-agent action), from its
    /// groups, looked up as the service account and reused for `group_cache`. `None` when the
    /// directory does not know the agent, maps it to no segment, or cannot be asked.
    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        if let Some(segment) = self.segments.get(agent.as_str()) {
            return segment;
        }
        let found = async {
            let Some(entry) = self.find_agent(agent).await? else { return Ok(None) };
            let account = self.account(entry).await?;
            Ok::<_, AuthError>(self.mapped(&account.groups)?.1)
        };
        // A failed lookup is not remembered: the next check asks again.
        let segment = found.await.ok()?;
        self.segments.put(agent.as_str().to_owned(), segment.clone());
        segment
    }

    async fn authenticate(&self, credential: &Credential) -> Result<Arc<Principal>, AuthError> {
        match credential {
            Credential::Password { username, password } => {
                self.authenticate_password(username, password).await.map(Arc::new)
            }
            other => Err(AuthError::Unsupported(other.kind())),
        }
    }
}

fn unavailable(why: impl fmt::Display) -> AuthError {
    AuthError::unavailable(format!("directory: {why}"))
}

/// An operation on a reused connection failed in a way a fresh connection may not: anything
/// but a time-out (a server that restarted closed the idle connections).
fn stale<T>(result: &ldap3::result::Result<T>) -> bool {
    matches!(result, Err(e) if !matches!(e, ldap3::LdapError::Timeout { .. }))
}

/// WhoAmI answered `dn:` and `dn`.
fn same_authzid(whoami: ldap3::result::Result<ldap3::result::ExopResult>, dn: &str) -> bool {
    let Ok(ldap3::result::ExopResult(exop, result)) = whoami else { return false };
    let authzid = exop.val.filter(|_| result.rc == 0).and_then(|a| String::from_utf8(a).ok());
    authzid.and_then(|a| a.strip_prefix("dn:").map(|bound| same_dn(bound, dn))).unwrap_or(false)
}

/// Two DNs are the same name: compared without case and without spaces around separators.
fn same_dn(a: &str, b: &str) -> bool {
    normalized_dn(a) == normalized_dn(b)
}

fn normalized_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_lowercase().replace(" = ", "=")).collect::<Vec<_>>().join(",")
}

/// Checks the settings; returns the parsed URLs.
fn check(config: &LdapConfig) -> Result<Vec<url::Url>, Error> {
    if config.urls.is_empty() {
        return Err(Error::config("urls", "name at least one directory server"));
    }
    if config.tls == TlsMode::None && !config.allow_plaintext {
        return Err(Error::config(
            "tls",
            "`none` sends passwords in clear text; use starttls or ldaps, or set `allow_plaintext: true` to accept that",
        ));
    }
    let scheme = if config.tls == TlsMode::Ldaps { "ldaps" } else { "ldap" };
    let mut urls = Vec::new();
    for text in &config.urls {
        let url = url::Url::parse(text).map_err(|e| Error::config("urls", format!("`{text}`: {e}")))?;
        if url.scheme() != scheme || url.host_str().is_none() {
            return Err(Error::config(
                "urls",
                format!("`{text}`: with `tls: {}` every URL is {scheme}://host:port", tls_name(config.tls)),
            ));
        }
        urls.push(url);
    }
    if !config.user_filter.contains("{username}") {
        return Err(Error::config("user_filter", "must contain `{username}`"));
    }
    if config.dn_template.as_ref().is_some_and(|t| !t.contains("{username}")) {
        return Err(Error::config("dn_template", "must contain `{username}`"));
    }
    if config.pool.size == 0 || config.pool.size > 256 {
        return Err(Error::config("pool.size", "between 1 and 256"));
    }
    if config.lockout.max_failures == 0 || config.lockout.window.is_zero() {
        return Err(Error::config("lockout", "`max_failures` and `window` must be more than zero"));
    }
    if (config.groups.via == GroupsVia::Search || config.groups.nested > 0) && config.groups.base.is_none() {
        return Err(Error::config("groups.base", "a group search (`via: search`, or `nested`) needs a base"));
    }
    if config.groups.filter.as_ref().is_some_and(|f| !f.contains("{dn}")) {
        return Err(Error::config("groups.filter", "must contain `{dn}`"));
    }
    if config.groups.nested > 10 {
        return Err(Error::config("groups.nested", "at most 10 levels"));
    }
    Ok(urls)
}

fn tls_name(tls: TlsMode) -> &'static str {
    match tls {
        TlsMode::Starttls => "starttls",
        TlsMode::Ldaps => "ldaps",
        TlsMode::None => "none",
    }
}

fn service_password(config: &LdapConfig) -> Result<SecretString, Error> {
    let password = match (&config.bind_password_file, &config.bind_password_env) {
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| Error::config("bind_password_file", format!("{}: {e}", path.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            Error::config("bind_password_env", format!("the environment variable `{var}` is not set"))
        })?,
        _ => {
            return Err(Error::config(
                "bind_password_file",
                "name exactly one of `bind_password_file` and `bind_password_env`",
            ));
        }
    };
    if password.is_empty() {
        return Err(Error::config("bind_password_file", "the service account's password is empty"));
    }
    Ok(SecretString::from(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert!(same_dn(
            "uid=Research_Bot, ou=agents,dc=zta,dc=test",
            "uid=research_bot,ou=agents,dc=zta,dc=test"
        ));
        assert!(!same_dn(
            "uid=research_bot,ou=agents,dc=zta,dc=test",
            "uid=writer_bot,ou=agents,dc=zta,dc=test"
        ));
    }
}
