//! [`AgentTokenClient`]: the agent side. Obtains the agent's own access token with the OAuth 2
//! client-credentials grant, keeps it, and renews it before it expires.

use std::{
    fmt,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::{
    AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponse},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use zta_core::Credential;

use crate::http;

/// The assertion type of RFC 7523 client authentication.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid.
const ASSERTION_LIFETIME: i64 = 300;
/// Assumed lifetime of a token whose response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How the agent proves itself to the token endpoint.
#[non_exhaustive]
pub enum ClientAuth {
    /// A client secret (sent with HTTP Basic authentication, as RFC 6749 prefers).
    Secret(SecretString),
    /// A JWT assertion signed with the agent's private key (RFC 7523; Entra's certificate
    /// credentials). `pem` is a PKCS#8 private key; `algorithm` one of RS256, PS256, ES256,
    /// EdDSA; `kid` and `x5t` (Entra: the certificate's base64url SHA-1 thumbprint) go into
    /// the assertion's header when given.
    PrivateKey {
        /// The PKCS#8 private key, PEM.
        pem: SecretString,
        /// The signature algorithm.
        algorithm: Algorithm,
        /// The key id, if the token endpoint wants one.
        kid: Option<String>,
        /// The certificate thumbprint, if the token endpoint wants one.
        x5t: Option<String>,
    },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::PrivateKey { algorithm, kid, .. } => f
                .debug_struct("PrivateKey")
                .field("algorithm", algorithm)
                .field("kid", kid)
                .finish_non_exhaustive(),
        }
    }
}

/// What an agent needs to obtain its token.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The token endpoint (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    pub token_url: String,
    /// The agent's client (application) id.
    pub client_id: String,
    /// How the agent authenticates.
    pub auth: ClientAuth,
    /// The scopes asked for (Entra: `api://{api}/.default`).
    pub scopes: Vec<String>,
    /// A token is renewed this long before it expires (default 5 min; at most half its
    /// lifetime).
    pub renew_before: Duration,
    /// Time limit of each request to the token endpoint (default 10 s).
    pub timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the default renewal margin and time limit.
    pub fn new(token_url: impl Into<String>, client_id: impl Into<String>, auth: ClientAuth) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            auth,
            scopes: Vec::new(),
            renew_before: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }

    /// The configuration of an Entra ID app: the v2 token endpoint of `tenant` at `authority`
    /// ([`ENTRA_AUTHORITY`](crate::ENTRA_AUTHORITY) in the public cloud) and the scope
    /// `{api}/.default`, where `api` is the called API's App ID URI or client id.
    pub fn entra(
        authority: &str,
        tenant: &str,
        client_id: impl Into<String>,
        auth: ClientAuth,
        api: &str,
    ) -> Self {
        let token_url = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
        Self::new(token_url, client_id, auth).with_scope(format!("{}/.default", api.trim_end_matches('/')))
    }

    /// Adds a scope.
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }
}

/// The token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration is wrong; `field` names the setting.
    #[error("`{field}`: {message}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The token endpoint refused (`invalid_client`, `invalid_scope`, ...).
    #[error("the token endpoint refused: {0}")]
    Refused(String),
    /// The token endpoint could not be reached or answered garbage.
    #[error("the token endpoint failed: {0}")]
    Unavailable(String),
}

struct Current {
    token: SecretString,
    renew_at: Instant,
}

/// Obtains and renews an agent's own access token. One instance per agent identity; clones of
/// the token it hands out are cheap. Concurrent callers share one token request.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use zta_identity_oidc::{AgentTokenClient, ClientAuth, ClientConfig, ENTRA_AUTHORITY};
/// let secret = std::env::var("AGENT_CLIENT_SECRET")?;
/// let client = AgentTokenClient::new(ClientConfig::entra(
///     ENTRA_AUTHORITY,
///     "0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b",
///     "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f",
///     ClientAuth::Secret(secret.into()),
///     "api://6e74172b-be56-4843-9ff4-e66a39bb12e3",
/// ))?;
/// let credential = client.credential().await?; // present it to a ZTA-protected peer
/// # let _ = credential; Ok(()) }
/// ```
pub struct AgentTokenClient {
    oauth: BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    http: reqwest::Client,
    config: ClientConfig,
    current: Mutex<Option<Current>>,
}

impl fmt::Debug for AgentTokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentTokenClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// An HTTP failure, for oauth2's client trait.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

impl AgentTokenClient {
    /// Checks the configuration (an https token URL, or http on loopback; a loadable key) and
    /// builds the client. No request is made until the first [`token`](Self::token).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        http::issuer_url("token_url", &config.token_url)
            .map_err(|e| ClientError::Config { field: "token_url", message: e.to_string() })?;
        if config.client_id.trim().is_empty() {
            return Err(ClientError::Config { field: "client_id", message: "empty".to_owned() });
        }
        if let ClientAuth::PrivateKey { pem, algorithm, .. } = &config.auth {
            encoding_key(pem, *algorithm)?;
            zta_crypto::jose::install_provider()
                .map_err(|e| ClientError::Config { field: "auth", message: e.to_string() })?;
        }
        let token_url = TokenUrl::new(config.token_url.clone())
            .map_err(|e| ClientError::Config { field: "token_url", message: e.to_string() })?;
        let mut oauth = BasicClient::new(ClientId::new(config.client_id.clone())).set_token_uri(token_url);
        oauth = match &config.auth {
            ClientAuth::Secret(secret) => {
                oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
            }
            ClientAuth::PrivateKey { .. } => oauth.set_auth_type(AuthType::RequestBody),
        };
        let http = http::client(config.timeout)
            .map_err(|e| ClientError::Config { field: "timeout", message: e.to_string() })?;
        Ok(Self { oauth, http, config, current: Mutex::new(None) })
    }

    /// The agent's access token: the kept one while it is not due for renewal, else a new one.
    pub async fn token(&self) -> Result<SecretString, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.request().await?;
        let margin = self.config.renew_before.min(lifetime / 2);
        *current = Some(Current { token: token.clone(), renew_at: Instant::now() + lifetime - margin });
        Ok(token)
    }

    /// The token as a ZTA credential.
    pub async fn credential(&self) -> Result<Credential, ClientError> {
        Ok(Credential::Bearer(self.token().await?))
    }

    async fn request(&self) -> Result<(SecretString, Duration), ClientError> {
        let mut request = self.oauth.exchange_client_credentials();
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let assertion;
        if let ClientAuth::PrivateKey { pem, algorithm, kid, x5t } = &self.config.auth {
            assertion = self.assertion(pem, *algorithm, kid.clone(), x5t.clone())?;
            request = request
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", assertion.as_str());
        }
        let send = |request: oauth2::HttpRequest| self.send(request);
        let response = request.request_async(&send).await.map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => ClientError::Refused(describe(&r)),
            oauth2::RequestTokenError::Request(e) => ClientError::Unavailable(e.0),
            oauth2::RequestTokenError::Parse(e, _) => {
                ClientError::Unavailable(format!("unreadable answer: {e}"))
            }
            oauth2::RequestTokenError::Other(e) => ClientError::Unavailable(e),
        })?;
        let lifetime = response.expires_in().unwrap_or(DEFAULT_LIFETIME);
        Ok((SecretString::from(response.access_token().secret().clone()), lifetime))
    }

    fn assertion(
        &self,
        pem: &SecretString,
        algorithm: Algorithm,
        kid: Option<String>,
        x5t: Option<String>,
    ) -> Result<String, ClientError> {
        #[derive(serde::Serialize)]
        struct Assertion<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            iat: i64,
            nbf: i64,
            exp: i64,
            jti: String,
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = Header::new(algorithm);
        header.kid = kid;
        header.x5t = x5t;
        let claims = Assertion {
            iss: &self.config.client_id,
            sub: &self.config.client_id,
            aud: &self.config.token_url,
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&header, &claims, &encoding_key(pem, algorithm)?).map_err(|e| {
            ClientError::Config { field: "auth", message: format!("the assertion cannot be signed: {e}") }
        })
    }

    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
        let mut response = self.http.execute(request).await.map_err(|e| HttpError(e.to_string()))?;
        let mut answer = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(e.to_string()))? {
            if body.len() + chunk.len() > http::MAX_BODY {
                return Err(HttpError(format!("answer larger than {} bytes", http::MAX_BODY)));
            }
            body.extend_from_slice(&chunk);
        }
        answer.body(body).map_err(|e| HttpError(e.to_string()))
    }
}

fn encoding_key(pem: &SecretString, algorithm: Algorithm) -> Result<EncodingKey, ClientError> {
    let pem = pem.expose_secret().as_bytes();
    let key = match algorithm {
        Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        other => {
            return Err(ClientError::Config {
                field: "auth",
                message: format!("{other:?} is not accepted; use RS256, PS256, ES256 or EdDSA"),
            });
        }
    };
    key.map_err(|e| ClientError::Config {
        field: "auth",
        message: format!("the private key does not load: {e}"),
    })
}

fn describe(response: &BasicErrorResponse) -> String {
    let mut text = response.error().to_string();
    if let Some(description) = response.error_description() {
        text.push_str(": ");
        text.push_str(zta_crypto::jose::echo(description));
    }
    text
}
