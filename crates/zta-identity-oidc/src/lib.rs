//! Agent identities from Microsoft Entra ID and any OpenID Connect issuer.
//!
//! * [`OidcProvider`] is the verifier: an [`IdentityProvider`](zta_core::IdentityProvider) for
//!   bearer access tokens, built from an [`EntraConfig`] (`type: entra`) or an [`OidcConfig`]
//!   (`type: oidc`). It reads the issuer's discovery document, keeps its signing keys in a cache
//!   of its own (background refresh, at most one fetch per `min_refetch` for unknown key ids,
//!   last known good keys while the issuer is down), and verifies every token with pinned
//!   algorithms, required `exp nbf iss aud sub`, an exact audience list and the profile's rules
//!   (Entra: tenant, version, app-only, app roles).
//! * [`AgentTokenClient`] is the agent side: it obtains the agent's own access token with the
//!   OAuth 2 client-credentials grant (a client secret, or a private-key JWT assertion), keeps
//!   it, and renews it before it expires.
//!
//! See `examples/entra-agents/` for a production setup.

mod client;
mod config;
mod error;
mod http;
mod jwks;
mod provider;

pub use client::{AgentTokenClient, ClientAuth, ClientConfig, ClientError};
pub use config::{ENTRA_AUTHORITY, ENTRA_V1_AUTHORITY, EntraConfig, JwksConfig, OidcConfig, TokenVersion};
pub use error::Error;
pub use provider::OidcProvider;
