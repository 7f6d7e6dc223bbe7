//! `tokens` section of the ZTA config. The config only says where the signing key is
//! (`signing_key_file` or `signing_key_env`); the facade loads it and passes the key to
//! [`TokenService::new`](crate::TokenService::new).

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{Algorithm, Error};

const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_ACCESS_TTL: Duration = Duration::from_secs(60 * 60);
const MAX_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const MAX_LEEWAY: Duration = Duration::from_secs(60);
const MAX_CACHE_CAPACITY: usize = 10_000_000;
const MAX_NAME_LEN: usize = 256;

/// Settings of the session token service.
///
/// Durations are written like `30s`, `5m`, `1h`, `7d` or `1h30m`. [`TokenConfig::validate`]
/// refuses zero lifetimes, an access lifetime over 1 hour, a refresh lifetime, session
/// lifetime or rotation overlap over 30 days or below the access lifetime, a leeway over 60
/// seconds, and an empty issuer or audience. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenConfig {
    /// The `iss` of every token; verification requires exactly this value.
    pub issuer: String,
    /// The `aud` of every token; verification requires exactly this value.
    pub audience: String,
    /// The algorithm new tokens are signed with (`EdDSA`, `ES256` or `RS256`); the signing key
    /// must match it.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Lifetime of access tokens (default 5 minutes, at most 1 hour).
    #[serde(default = "default_access_ttl", with = "zta_core::duration::text")]
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (default 1 hour, at most 30 days).
    #[serde(default = "default_refresh_ttl", with = "zta_core::duration::text")]
    pub refresh_ttl: Duration,
    /// Longest a session lasts, counted from the agent's authentication and across every
    /// refresh (default 12 hours, at most 30 days, at least the access lifetime). No token of a
    /// session expires later; after it, refresh fails and the agent must authenticate again.
    #[serde(default = "default_max_session", with = "zta_core::duration::text")]
    pub max_session: Duration,
    /// Clock skew tolerated on `exp` and `nbf` (default 5 seconds, at most 60).
    #[serde(default = "default_leeway", with = "zta_core::duration::text")]
    pub leeway: Duration,
    /// How many verified access tokens to remember so repeated requests skip the signature
    /// check (default 10 000; 0 disables the cache). Expiry and revocation are still checked on
    /// every request.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// How long a key replaced by [`TokenService::rotate`](crate::TokenService::rotate) still
    /// verifies tokens; `None` (the default) means the refresh lifetime.
    #[serde(default, with = "zta_core::duration::option_text", skip_serializing_if = "Option::is_none")]
    pub rotation_overlap: Option<Duration>,
    /// A PKCS#8 PEM file holding the signing key (`zta keygen` makes one). The service itself
    /// never reads this; whoever builds it loads the key from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the PKCS#8 PEM signing key, as an
    /// alternative to `signing_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_env: Option<String>,
}

fn default_access_ttl() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_refresh_ttl() -> Duration {
    Duration::from_secs(60 * 60)
}
fn default_max_session() -> Duration {
    Duration::from_secs(12 * 60 * 60)
}
fn default_leeway() -> Duration {
    Duration::from_secs(5)
}
fn default_cache_capacity() -> usize {
    10_000
}

impl TokenConfig {
    /// A config with the given issuer and audience and every other setting at its default.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithm: Algorithm::default(),
            access_ttl: default_access_ttl(),
            refresh_ttl: default_refresh_ttl(),
            max_session: default_max_session(),
            leeway: default_leeway(),
            cache_capacity: default_cache_capacity(),
            rotation_overlap: None,
            signing_key_file: None,
            signing_key_env: None,
        }
    }

    /// The effective rotation overlap (the refresh lifetime unless set).
    pub fn effective_rotation_overlap(&self) -> Duration {
        self.rotation_overlap.unwrap_or(self.refresh_ttl)
    }

    /// Checks every value's range and their consistency; [`TokenService::new`] calls this.
    ///
    /// [`TokenService::new`]: crate::TokenService::new
    pub fn validate(&self) -> Result<(), Error> {
        check_name("issuer", &self.issuer)?;
        check_name("audience", &self.audience)?;
        check_range("access_ttl", self.access_ttl, MIN_TTL, MAX_ACCESS_TTL)?;
        check_range("refresh_ttl", self.refresh_ttl, self.access_ttl, MAX_REFRESH_TTL)?;
        check_range("max_session", self.max_session, self.access_ttl, MAX_REFRESH_TTL)?;
        check_range("leeway", self.leeway, Duration::ZERO, MAX_LEEWAY)?;
        check_range("rotation_overlap", self.effective_rotation_overlap(), self.access_ttl, MAX_REFRESH_TTL)?;
        for (name, d) in [
            ("access_ttl", self.access_ttl),
            ("refresh_ttl", self.refresh_ttl),
            ("max_session", self.max_session),
            ("leeway", self.leeway),
            ("rotation_overlap", self.effective_rotation_overlap()),
        ] {
            if d.subsec_nanos() != 0 {
                return Err(Error::Config(format!("`{name}` must be a whole number of seconds")));
            }
        }
        if self.cache_capacity > MAX_CACHE_CAPACITY {
            return Err(Error::Config(format!(
                "`cache_capacity` must be at most {MAX_CACHE_CAPACITY}, got {}",
                self.cache_capacity
            )));
        }
        Ok(())
    }
}

fn check_name(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::Config(format!("`{field}` must not be empty")));
    }
    if value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(Error::Config(format!(
            "`{field}` must be at most {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_range(field: &str, value: Duration, min: Duration, max: Duration) -> Result<(), Error> {
    if value < min || value > max {
        return Err(Error::Config(format!(
            "`{field}` must be between {} and {}, got `{}`",
            zta_core::duration::format(min),
            zta_core::duration::format(max),
            zta_core::duration::format(value)
        )));
    }
    Ok(())
}
