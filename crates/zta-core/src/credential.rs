//! What an agent presents to prove who it is. Secrets never print.

use secrecy::{ExposeSecret, SecretString};

use crate::AgentId;

/// Longest credential accepted anywhere on the request path, in bytes. Larger input is refused
/// before any parsing, so hostile input cannot make the guard allocate or hash megabytes.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// A credential as presented. `Debug` shows the kind, never the secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A bearer token: a ZTA session token or an access token from an OIDC issuer.
    Bearer(SecretString),
    /// A user name and password (LDAP bind, or an agent's configured secret).
    Password {
        /// The name to authenticate as.
        username: String,
        /// The password or secret.
        password: SecretString,
    },
    /// A short-lived JWT the agent signed with its own key (RFC 7523 style).
    AgentAssertion(SecretString),
}

impl Credential {
    /// A bearer token credential.
    pub fn bearer(token: impl Into<String>) -> Self {
        Self::Bearer(SecretString::from(token.into()))
    }

    /// The agent this credential claims to be, unverified, when that is a valid agent id: a
    /// secret's user name, a JWT's `sub` (else `iss`). For audit records of refused
    /// credentials (`detail.claimed_agent`), never for a decision: nothing verified it.
    pub fn claimed_agent(&self) -> Option<AgentId> {
        #[derive(serde::Deserialize)]
        struct Claimed {
            sub: Option<String>,
            iss: Option<String>,
        }
        if self.len() > MAX_CREDENTIAL_LEN {
            return None;
        }
        let claimed = match self {
            Self::Password { username, .. } => Some(username.clone()),
            Self::Bearer(token) | Self::AgentAssertion(token) => {
                crate::guard::unverified_payload::<Claimed>(token.expose_secret())
                    .and_then(|c| c.sub.or(c.iss))
            }
        };
        claimed.and_then(|c| AgentId::new(c).ok())
    }

    /// The credential of an HTTP `Authorization` header's value, `Bearer <token>` (the scheme
    /// in any case); `None` for another scheme, no token, a value that is not text, or one
    /// longer than a credential may be.
    pub fn from_authorization(value: &[u8]) -> Option<Self> {
        if value.len() > MAX_CREDENTIAL_LEN + 7 {
            return None;
        }
        let (scheme, token) = std::str::from_utf8(value).ok()?.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Self::bearer(token))
    }

    /// A user name and password credential.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password { username: username.into(), password: SecretString::from(password.into()) }
    }

    /// A signed agent assertion credential.
    pub fn agent_assertion(jwt: impl Into<String>) -> Self {
        Self::AgentAssertion(SecretString::from(jwt.into()))
    }

    /// The kind of credential, for logs and audit records.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "bearer",
            Self::Password { .. } => "password",
            Self::AgentAssertion(_) => "agent_assertion",
        }
    }

    /// Total size of the secret parts, in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Bearer(s) | Self::AgentAssertion(s) => s.expose_secret().len(),
            Self::Password { username, password } => username.len() + password.expose_secret().len(),
        }
    }

    /// Whether the secret part is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The JSON shape of a credential, as `zta authorize` files and `zta serve` requests carry it:
/// `{"bearer": "..."}`, `{"assertion": "..."}` or `{"username": "...", "password": "..."}`.
/// Anything else, an extra member included, is refused; the error never echoes the secret.
impl<'de> serde::Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Shape {
            bearer: Option<String>,
            assertion: Option<String>,
            username: Option<String>,
            password: Option<String>,
        }
        let shape = Shape::deserialize(deserializer)?;
        match (shape.bearer, shape.assertion, shape.username, shape.password) {
            (Some(token), None, None, None) => Ok(Self::bearer(token.trim())),
            (None, Some(jwt), None, None) => Ok(Self::agent_assertion(jwt.trim())),
            (None, None, Some(username), Some(password)) => Ok(Self::password(username, password)),
            _ => Err(serde::de::Error::custom(
                "a credential is {\"bearer\": ...}, {\"assertion\": ...} or {\"username\": ..., \"password\": ...}",
            )),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            other => write!(f, "{}([redacted])", other.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_read_from_their_json_shapes_only() {
        let read = |json: &str| serde_json::from_str::<Credential>(json);
        assert_eq!(read(r#"{"bearer": " t.o.k "}"#).unwrap().kind(), "bearer");
        assert_eq!(read(r#"{"assertion": "a.b.c"}"#).unwrap().kind(), "agent_assertion");
        assert_eq!(read(r#"{"username": "u", "password": "p"}"#).unwrap().kind(), "password");
        for bad in [
            r#"{}"#,
            r#"{"bearer": "x", "assertion": "y"}"#,
            r#"{"username": "u"}"#,
            r#"{"bearer": "x", "role": "admin"}"#,
            r#""x""#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let err = read(r#"{"bearer": "s3cr3t", "assertion": "s3cr3t"}"#).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = [
            Credential::bearer("eyJhbGciOi.secret-token"),
            Credential::password("agent", "hunter2-secret"),
            Credential::agent_assertion("eyJ.assertion-secret"),
        ];
        for c in creds {
            let shown = format!("{c:?}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn authorization_headers_give_bearer_credentials_only() {
        use secrecy::ExposeSecret;
        let token = |value: &[u8]| match Credential::from_authorization(value) {
            Some(Credential::Bearer(t)) => Some(t.expose_secret().to_owned()),
            _ => None,
        };
        assert_eq!(token(b"Bearer abc.def").as_deref(), Some("abc.def"));
        assert_eq!(token(b"bearer  abc ").as_deref(), Some("abc"));
        for refused in [&b"Basic dXNlcjpwdw=="[..], b"Bearer", b"Bearer ", b"abc", b"Bearer \xff\xfe"] {
            assert_eq!(token(refused), None, "{refused:?}");
        }
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(token(long.as_bytes()), None);
    }
}
