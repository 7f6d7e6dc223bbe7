//! [`LdapProvider`]: agents authenticated by a bind as their directory account.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Instant,
};

use async_trait::async_trait;
use ldap3::{Scope, SearchEntry, controls::RawControl, dn_escape, exop::WhoAmI, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, AuthMethod, Credential, IdentityProvider, Principal, StateStore};

use crate::{
    Error, GroupsVia, LdapConfig, TlsMode,
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
/// The authorization identity request and response controls (RFC 3829).
const AUTHZID_REQUEST: &str = "2.16.840.1.113730.3.4.16";
const AUTHZID_RESPONSE: &str = "2.16.840.1.113730.3.4.15";
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
/// concurrent); at the limit every attempt is [`AuthError::LockedOut`] until the window ends. Groups map to roles and the segment.
/// Password checks are never cached. Any directory failure denies.
pub struct LdapProvider {
    config: LdapConfig,
    service: Pool,
    binds: Pool,
    state: Arc<dyn StateStore>,
    group_cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
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

/// An agent's entry as the service account sees it.
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
            service: Pool::new(connector.clone(), Some((config.bind_dn.clone(), password)), size),
            binds: Pool::new(connector, None, size),
            config,
            state,
            group_cache: Mutex::new(HashMap::new()),
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
        let key = format!("ldap-lockout:{}", username.to_lowercase());
        self.gate(&key).await?;
        if let Some(template) = &self.config.dn_template {
            // Direct bind: an unknown user is a bind to a DN that does not exist, refused alike.
            let dn = template.replace("{username}", &dn_escape(username));
            // The entry is read beside the bind (its result is used only if the bind succeeds).
            let (bound, entries) =
                tokio::join!(self.bind(&dn, password), self.search(&dn, Scope::Base, "(objectClass=*)"));
            match bound {
                Ok(()) => {}
                Err(AuthError::Invalid { .. }) => return Err(self.failed(&key).await),
                Err(e) => return Err(e),
            }
            let mut entries = entries?;
            if entries.len() != 1 {
                return Err(AuthError::invalid("the bound account cannot be read"));
            }
            let entry = entries.remove(0);
            if entry.disabled {
                return Err(AuthError::invalid("account disabled"));
            }
            return self.principal(entry).await;
        }
        let Some(entry) = self.find(username).await? else {
            // The same work as a wrong password: one bind, refused, counted.
            let dummy = format!("{NO_SUCH_USER},{}", self.config.user_base);
            let _ = self.bind(&dummy, password).await;
            return Err(self.failed(&key).await);
        };
        match self.bind(&entry.dn, password).await {
            Ok(()) => {}
            Err(AuthError::Invalid { .. }) => return Err(self.failed(&key).await),
            Err(e) => return Err(e),
        }
        if entry.disabled {
            return Err(AuthError::invalid("account disabled"));
        }
        self.principal(entry).await
    }

    /// Lockout: a name with `max_failures` failures in the window is refused without asking
    /// the directory.
    async fn gate(&self, key: &str) -> Result<(), AuthError> {
        let failures = self.state.failures(key).await.map_err(|e| AuthError::unavailable(e.to_string()))?;
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
            Err(e) => AuthError::unavailable(e.to_string()),
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
        let mut conn = self.service.get().await.map_err(unavailable)?;
        let timeout = self.service.operation_timeout();
        let found = conn.ldap.with_timeout(timeout).search(base, scope, filter, attributes).await;
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

    /// Binds as `dn` with `password` on a connection of the bind pool and confirms that the
    /// server bound exactly that DN: from the authorization identity the bind answers with
    /// (RFC 3829, asked for on the bind itself), or with WhoAmI when the server sends none.
    async fn bind(&self, dn: &str, password: &SecretString) -> Result<(), AuthError> {
        let mut conn = self.binds.get().await.map_err(unavailable)?;
        let timeout = self.binds.operation_timeout();
        let ask_identity = RawControl { ctype: AUTHZID_REQUEST.to_owned(), crit: false, val: None };
        let result = conn
            .ldap
            .with_timeout(timeout)
            .with_controls(vec![ask_identity])
            .simple_bind(dn, password.expose_secret())
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match result.rc {
            0 => {}
            // invalidCredentials, and what servers answer for locked or disabled accounts.
            49 | 50 | 53 => {
                conn.keep();
                return Err(AuthError::invalid(BAD_CREDENTIALS));
            }
            rc => return Err(AuthError::unavailable(format!("bind answered result code {rc}"))),
        }
        let answered = result
            .ctrls
            .iter()
            .find(|ldap3::controls::Control(_, raw)| raw.ctype == AUTHZID_RESPONSE)
            .map(|ldap3::controls::Control(_, raw)| raw.val.clone().unwrap_or_default());
        let authzid = match answered {
            Some(value) => value,
            None => {
                let whoami = conn
                    .ldap
                    .with_timeout(timeout)
                    .extended(WhoAmI)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                let ldap3::result::ExopResult(exop, result) = whoami;
                if result.rc != 0 {
                    return Err(AuthError::unavailable(format!("WhoAmI answered result code {}", result.rc)));
                }
                exop.val.unwrap_or_default()
            }
        };
        let authzid = String::from_utf8(authzid).unwrap_or_default();
        let bound = authzid.strip_prefix("dn:").unwrap_or_default();
        if !same_dn(bound, dn) {
            tracing::error!(target: "zta_identity_ldap", "the server bound another identity than the DN searched");
            return Err(AuthError::invalid("the bound identity is not the account searched"));
        }
        conn.keep();
        Ok(())
    }

    /// The groups of `entry`: its `memberOf`, or a (cached) group search.
    async fn groups(&self, entry: &Entry) -> Result<Vec<String>, AuthError> {
        if self.config.groups.via == GroupsVia::MemberOf {
            return Ok(entry.groups.clone());
        }
        let ttl = self.config.group_cache;
        if let Ok(cache) = self.group_cache.lock()
            && let Some((at, groups)) = cache.get(&entry.dn)
            && at.elapsed() < ttl
        {
            return Ok(groups.clone());
        }
        let base = self.config.groups.base.as_deref().unwrap_or_default();
        let filter = self.config.groups.filter.as_deref().unwrap_or("(member={dn})");
        let filter = filter.replace("{dn}", &ldap_escape(entry.dn.as_str()));
        let groups: Vec<String> =
            self.search(base, Scope::Subtree, &filter).await?.into_iter().map(|g| g.dn).collect();
        if !ttl.is_zero()
            && let Ok(mut cache) = self.group_cache.lock()
        {
            cache.insert(entry.dn.clone(), (Instant::now(), groups.clone()));
        }
        Ok(groups)
    }

    async fn principal(&self, entry: Entry) -> Result<Principal, AuthError> {
        let mut groups = self.groups(&entry).await?;
        groups.sort();
        let (roles, segment) = self.mapped(&groups)?;
        let agent = AgentId::new(&entry.agent)
            .map_err(|_| AuthError::invalid("the account's agent attribute is not a valid agent id"))?;
        let now = OffsetDateTime::now_utc();
        let mut principal = Principal::new(agent, NAME, AuthMethod::Ldap, now, now + PRINCIPAL_LIFETIME)
            .with_subject(entry.dn.clone())
            .with_roles(roles)
            .with_groups(groups)
            .with_claim("dn", entry.dn);
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
        if entry.disabled {
            return Err(AuthError::invalid("the account is disabled"));
        }
        let groups = self.groups(&entry).await?;
        let (roles, segment) = self.mapped(&groups)?;
        let mut before = principal.roles.clone();
        before.sort();
        if roles != before || segment != principal.segment {
            return Err(AuthError::invalid("the account's groups changed"));
        }
        Ok(())
    }

    /// The segment of a directory agent (the target of an agent-to-agent action), from its
    /// groups, looked up as the service account. `None` when the directory does not know the
    /// agent, maps it to no segment, or cannot be asked.
    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        let entry = self.find_agent(agent).await.ok()??;
        let groups = self.groups(&entry).await.ok()?;
        self.mapped(&groups).ok()?.1
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

/// Two DNs are the same name: compared without case and without spaces around separators.
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |dn: &str| {
        dn.split(',').map(|rdn| rdn.trim().to_lowercase().replace(" = ", "=")).collect::<Vec<_>>().join(",")
    };
    norm(a) == norm(b)
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
    if config.groups.via == GroupsVia::Search && config.groups.base.is_none() {
        return Err(Error::config("groups.base", "a group search needs a base"));
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
