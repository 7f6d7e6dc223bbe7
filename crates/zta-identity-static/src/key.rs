//! Agent keys: Ed25519 in PKCS#8 / SubjectPublicKeyInfo PEM, and the client side signer that
//! turns an agent's private key into a fresh assertion.

use std::{fmt, time::Duration};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;
use zta_core::{AgentId, Credential};

use base64::Engine as _;
use zta_crypto::pem;

use crate::Error;

pub(crate) use zta_crypto::pem::ED25519_KEY_LEN;

/// Parses an Ed25519 public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`) into its raw
/// 32 bytes. Any other key type or encoding is refused.
pub(crate) fn parse_public_key_pem(text: &str) -> Result<[u8; ED25519_KEY_LEN], String> {
    let der = pem::decode(text, "PUBLIC KEY").map_err(|e| e.to_string())?;
    let raw = pem::ed25519_from_spki(&der).map_err(|e| e.to_string())?;
    ParsedPublicKey::new(&ED25519, raw).map_err(|_| "the Ed25519 public key is not valid")?;
    Ok(raw)
}

/// An agent's Ed25519 private key, used on the agent's side to sign assertions for
/// [`StaticProvider`](crate::StaticProvider). `Debug` shows only the public key.
pub struct AgentKey {
    pkcs8: SecretBox<[u8]>,
    signing: EncodingKey,
    public: [u8; ED25519_KEY_LEN],
}

impl AgentKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        let pair = Ed25519KeyPair::generate().map_err(|_| Error::Key("key generation failed".into()))?;
        let der = pair.to_pkcs8v1().map_err(|_| Error::Key("PKCS#8 encoding failed".into()))?;
        Self::from_pkcs8_der(der.as_ref())
    }

    /// Loads an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as written by
    /// `openssl genpkey -algorithm ed25519`). Other key types are refused.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let der = pem::decode(pem, "PRIVATE KEY").map_err(|e| Error::Key(e.to_string()))?;
        Self::from_pkcs8_der(&der)
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|e| Error::Key(format!("not an Ed25519 PKCS#8 private key ({e})")))?;
        let public: [u8; ED25519_KEY_LEN] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| Error::Key("unexpected public key length".into()))?;
        // Keep a canonical v1 encoding (what OpenSSL writes), whatever we were given.
        let v1 = pair.to_pkcs8v1().map_err(|_| Error::Key("PKCS#8 encoding failed".into()))?;
        Ok(Self {
            signing: EncodingKey::from_ed_der(v1.as_ref()),
            pkcs8: SecretBox::new(v1.as_ref().to_vec().into_boxed_slice()),
            public,
        })
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for `public_key` in the
    /// provider's configuration.
    pub fn public_key_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &pem::ed25519_to_spki(&self.public)).as_str().to_owned()
    }

    /// The private key as PKCS#8 PEM, to store in a secret store.
    pub fn to_pkcs8_pem(&self) -> SecretString {
        SecretString::from(pem::encode("PRIVATE KEY", self.pkcs8.expose_secret()).as_str().to_owned())
    }

    /// A fresh assertion: a JWT signed with EdDSA, `iss` = `sub` = `agent`, `aud` = `audience`,
    /// `iat` = now, `exp` = now + `lifetime`, and a random `jti`. Each one is good for one use.
    pub fn assertion(
        &self,
        agent: &AgentId,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Credential, Error> {
        zta_crypto::jose::install_provider()?;
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let lifetime =
            i64::try_from(lifetime.as_secs()).map_err(|_| Error::Sign("lifetime too long".into()))?;
        let claims = OutgoingClaims {
            iss: agent.as_str(),
            sub: agent.as_str(),
            aud: audience,
            iat,
            exp: iat.saturating_add(lifetime),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.signing)
            .map_err(|e| Error::Sign(e.to_string()))?;
        Ok(Credential::agent_assertion(jwt))
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("public_key", &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public))
            .field("private_key", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize)]
struct OutgoingClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem() {
        let key = AgentKey::generate().unwrap();
        let again = AgentKey::from_pkcs8_pem(key.to_pkcs8_pem().expose_secret()).unwrap();
        assert_eq!(key.public, again.public);
        assert_eq!(parse_public_key_pem(&key.public_key_pem()).unwrap(), key.public);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = AgentKey::generate().unwrap();
        let pem = key.to_pkcs8_pem();
        let body: String = pem.expose_secret().lines().filter(|l| !l.starts_with("-----")).collect();
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains(&body), "{shown}");
        assert!(!shown.contains(&body[20..40]), "{shown}");
    }

    #[test]
    fn refuses_other_pem_blocks() {
        let key = AgentKey::generate().unwrap();
        assert!(parse_public_key_pem(key.to_pkcs8_pem().expose_secret()).is_err());
        assert!(AgentKey::from_pkcs8_pem(&key.public_key_pem()).is_err());
        let two = format!("{}{}", key.public_key_pem(), key.public_key_pem());
        assert!(parse_public_key_pem(&two).is_err());
        assert!(parse_public_key_pem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").is_err());
    }
}
