//! One local agent on stdio: the agent starts the gateway as its MCP server (`zta gateway
//! --stdio`), with its credential given once. The gateway logs the agent in with it, then
//! presents the session token on every request (each one verified and authorized on its own,
//! so a revocation or suspension stops the next request), refreshing it before it expires. A
//! bearer credential (a session token or an identity provider's token) is used as it is, and
//! the agent's requests stop being allowed when it expires.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;
use zta_core::{Credential, Denied, Guard};

/// Refresh this long before the access token expires.
const EARLY: Duration = Duration::from_secs(30);

pub(crate) struct LocalAgent {
    session: Mutex<Session>,
}

struct Session {
    access: SecretString,
    refresh: Option<SecretString>,
    expires: Option<Instant>,
}

impl LocalAgent {
    /// Logs in with `credential` (a bearer token is kept as it is).
    pub(crate) async fn login(guard: &Guard, credential: Credential) -> Result<Self, Denied> {
        let session = match credential {
            Credential::Bearer(token) => Session { access: token, refresh: None, expires: None },
            other => {
                let tokens = guard.login(&other).await?;
                Session {
                    access: tokens.access_token,
                    refresh: Some(tokens.refresh_token),
                    expires: Some(Instant::now() + tokens.expires_in),
                }
            }
        };
        Ok(Self { session: Mutex::new(session) })
    }

    /// The credential for the next request: the current access token, refreshed first when it
    /// is about to expire. A refresh that is refused leaves the old token, which the guard then
    /// refuses in turn.
    pub(crate) async fn credential(&self, guard: &Guard) -> Credential {
        let mut session = self.session.lock().await;
        let due = session.expires.is_some_and(|at| at.saturating_duration_since(Instant::now()) < EARLY);
        if due && let Some(refresh) = session.refresh.take() {
            match guard.refresh(&refresh).await {
                Ok(tokens) => {
                    session.access = tokens.access_token;
                    session.refresh = Some(tokens.refresh_token);
                    session.expires = Some(Instant::now() + tokens.expires_in);
                }
                Err(denied) => {
                    tracing::warn!(target: "zta_adapter_mcp", %denied, "the local agent's session could not be refreshed");
                }
            }
        }
        Credential::Bearer(session.access.clone())
    }
}
