//! Agent keys: Ed25519 in PKCS#8 / SubjectPublicKeyInfo PEM, and the client side signer that
//! turns an agent's private key into a fresh assertion.

use std::{fmt, time::Duration};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;
use zta_core::{AgentId, Credential};

use crate::{Error, crypto};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (33 bytes, 0 unused bits) }, followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// Length of a raw Ed25519 public key.
pub(crate) const ED25519_KEY_LEN: usize = 32;
/// Largest PEM text we parse.
const MAX_PEM_LEN: usize = 16 * 1024;

/// Decodes one PEM block with `label`; nothing but whitespace may surround it.
fn pem_decode(text: &str, label: &str) -> Result<Vec<u8>, String> {
    if text.len() > MAX_PEM_LEN {
        return Err("PEM text is too long".into());
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .trim()
        .strip_prefix(begin.as_str())
        .and_then(|rest| rest.strip_suffix(end.as_str()))
        .ok_or_else(|| format!("expected one PEM `{label}` block"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(b64).map_err(|_| format!("the PEM `{label}` block is not valid base64"))
}

/// Encodes `der` as a PEM block with 64-character lines.
fn pem_encode(der: &[u8], label: &str) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Parses an Ed25519 public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`) into its raw
/// 32 bytes. Any other key type or encoding is refused.
pub(crate) fn parse_public_key_pem(text: &str) -> Result<[u8; ED25519_KEY_LEN], String> {
    let der = pem_decode(text, "PUBLIC KEY")?;
    let raw = der
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .ok_or("not an Ed25519 SubjectPublicKeyInfo (other key types are not accepted)")?;
    let raw: [u8; ED25519_KEY_LEN] = raw.try_into().map_err(|_| "wrong Ed25519 public key length")?;
    ParsedPublicKey::new(&ED25519, raw).map_err(|_| "the Ed25519 public key is not valid")?;
    Ok(raw)
}

/// Encodes a raw Ed25519 public key as SPKI PEM.
fn public_key_pem(raw: &[u8]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    pem_encode(&der, "PUBLIC KEY")
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
        let der = SecretBox::new(pem_decode(pem, "PRIVATE KEY").map_err(Error::Key)?.into_boxed_slice());
        Self::from_pkcs8_der(der.expose_secret())
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
        public_key_pem(&self.public)
    }

    /// The private key as PKCS#8 PEM, to store in a secret store.
    pub fn to_pkcs8_pem(&self) -> SecretString {
        SecretString::from(pem_encode(self.pkcs8.expose_secret(), "PRIVATE KEY"))
    }

    /// A fresh assertion: a JWT signed with EdDSA, `iss` = `sub` = `agent`, `aud` = `audience`,
    /// `iat` = now, `exp` = now + `lifetime`, and a random `jti`. Each one is good for one use.
    pub fn assertion(
        &self,
        agent: &AgentId,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Credential, Error> {
        crypto::ensure_provider();
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
