//! ZTA's own session tokens: the short-lived credential an agent carries after its primary
//! login, checked by the [`Guard`](zta_core::Guard) on every request.
//!
//! [`TokenService`] implements [`zta_core::TokenAuthority`]: it issues an access/refresh pair
//! for a verified principal, verifies access tokens (signature, header, claims, expiry and
//! revocation on every request), rotates refresh tokens with reuse detection, revokes by
//! token, family or agent, rotates signing keys and publishes a JWKS. Tokens are signed with
//! an asymmetric key ([`SigningKey`]: EdDSA by default, ES256 or RS256) so verifiers cannot
//! mint them.
//!
//! ```text
//! header  {"alg":"EdDSA","typ":"zta-at+jwt"|"zta-rt+jwt","kid":"<16 chars>"}
//! claims  {"iss","aud","sub":<agent id>,"exp","nbf","iat","jti",
//!          "ztt":"access"|"refresh","fam":<family id>,
//!          "roles":[..],"groups":[..],"seg","tid","amr":[<original method>],"auth_time",
//!          "act":{"sub":<latest delegator>,"act":{..."sub":<original requester>}},
//!          "src_iss":<issuer of the primary identity>}
//! ```
//!
//! Revocation state lives in a [`zta_core::StateStore`] under `jti:<jti>`, `fam:<fam>`,
//! `rt:<jti>` (refresh tokens already used) and the store's agent-wide revocation time.

mod claims;
mod config;
mod error;
mod key;
mod provider;
mod service;

pub use config::TokenConfig;
pub use error::Error;
pub use key::{Algorithm, SigningKey};
pub use service::TokenService;
