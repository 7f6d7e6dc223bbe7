//! Signing keys for session tokens: generation, PKCS#8 PEM import/export, public PEM and JWK.
//!
//! Each key carries its algorithm; verification pins that algorithm to the key's `kid` and
//! never takes it from a token header.

use std::{fmt, path::Path, sync::Arc};

use aws_lc_rs::{
    digest,
    encoding::{AsDer, PublicKeyX509Der},
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
        RsaPublicKeyComponents,
    },
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use secrecy::{ExposeSecret, SecretSlice, SecretString, zeroize::Zeroizing};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest accepted key id, in bytes (also the cap applied to `kid` headers).
pub(crate) const MAX_KID_LEN: usize = 64;
/// Largest key file read by [`SigningKey::from_pkcs8_pem_file`].
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;
/// Smallest accepted RSA modulus, in bytes (2048 bits).
const MIN_RSA_MODULUS_LEN: usize = 256;

/// A token signature algorithm. Only these three are supported; HMAC and `none` never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// Ed25519 signatures (the default): small, fast, deterministic.
    #[default]
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys or larger.
    RS256,
}

impl Algorithm {
    /// The JOSE name (`EdDSA`, `ES256`, `RS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;

    /// Parses a JOSE name; refuses anything but `EdDSA`, `ES256` and `RS256`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::EdDSA, Self::ES256, Self::RS256]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::Config(format!("unknown algorithm `{s}`; use EdDSA, ES256 or RS256")))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private signing key with its algorithm and key id.
///
/// Made by [`SigningKey::generate`] or loaded from an unencrypted PKCS#8 PEM; refuses keys of
/// another algorithm than the one asked for and RSA keys under 2048 bits. Cloning shares the
/// key. `Debug` shows the algorithm and kid, never private material.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: Algorithm,
    kid: String,
    pair: Pair,
    pkcs8: SecretSlice<u8>,
    spki_der: Vec<u8>,
    public: Public,
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

#[derive(Clone)]
enum Public {
    /// Raw 32-byte Ed25519 public key.
    Ed(Vec<u8>),
    /// P-256 affine coordinates.
    Ec { x: Vec<u8>, y: Vec<u8> },
    /// RSA modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl SigningKey {
    /// Generates a fresh key: Ed25519, ECDSA P-256 or RSA 2048, with aws-lc-rs.
    pub fn generate(alg: Algorithm) -> Result<Self, Error> {
        let fail = |what: &str| Error::crypto(format!("cannot generate {alg} key: {what}"), None);
        let pkcs8: Vec<u8> = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| fail("key generation"))?;
                pair.to_pkcs8v1().map_err(|_| fail("pkcs8 export"))?.as_ref().to_vec()
            }
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| fail("key generation"))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| fail("key generation"))?;
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
                    .map_err(|_| fail("pkcs8 export"))?
                    .as_ref()
                    .to_vec()
            }
        };
        Self::from_pkcs8_der(alg, SecretSlice::from(pkcs8))
    }

    /// Loads an unencrypted PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`) for `alg`.
    ///
    /// Refuses other PEM kinds (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, encrypted keys), a key of
    /// another algorithm, P-256 is the only accepted curve, RSA needs 2048 bits or more.
    pub fn from_pkcs8_pem(alg: Algorithm, pem: &str) -> Result<Self, Error> {
        let der = decode_private_pem(alg, pem)?;
        Self::from_pkcs8_der(alg, der)
    }

    /// Reads a PKCS#8 PEM file (at most 64 KiB) and loads it like [`Self::from_pkcs8_pem`].
    pub fn from_pkcs8_pem_file(alg: Algorithm, path: impl AsRef<Path>) -> Result<Self, Error> {
        use std::io::Read;
        let path = path.as_ref();
        let io_err = |source| Error::KeyFile { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if file.metadata().map_err(io_err)?.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    target: "zta_token",
                    path = %path.display(),
                    "signing key file is readable by group or others; restrict it to the owner (chmod 600)"
                );
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_KEY_FILE_LEN + 1).read_to_string(&mut text).map_err(io_err)?;
        if text.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(Error::Key {
                alg,
                reason: format!("key file `{}` is larger than 64 KiB", path.display()),
            });
        }
        Self::from_pkcs8_pem(alg, &text)
    }

    fn from_pkcs8_der(alg: Algorithm, pkcs8: SecretSlice<u8>) -> Result<Self, Error> {
        let refuse = |reason: String| Error::Key { alg, reason };
        let der = pkcs8.expose_secret();
        let (pair, spki, public) = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|e| refuse(format!("not an Ed25519 PKCS#8 key ({e})")))?;
                let spki = spki(pair.public_key()).map_err(&refuse)?;
                let public = Public::Ed(pair.public_key().as_ref().to_vec());
                (Pair::Ed(pair), spki, public)
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| refuse(format!("not a P-256 PKCS#8 key ({e})")))?;
                let spki = spki(pair.public_key()).map_err(&refuse)?;
                let point = pair.public_key().as_ref();
                let (x, y) = match (point.first(), point.get(1..33), point.get(33..65), point.len()) {
                    (Some(4), Some(x), Some(y), 65) => (x.to_vec(), y.to_vec()),
                    _ => return Err(refuse("unexpected P-256 public key encoding".into())),
                };
                (Pair::Ec(pair), spki, Public::Ec { x, y })
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| refuse(format!("not an RSA PKCS#8 key ({e})")))?;
                if pair.public_modulus_len() < MIN_RSA_MODULUS_LEN {
                    return Err(refuse("RSA keys need at least 2048 bits".into()));
                }
                let spki = spki(pair.public_key()).map_err(&refuse)?;
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                (Pair::Rsa(pair), spki, Public::Rsa { n: parts.n, e: parts.e })
            }
        };
        let kid = default_kid(&spki);
        Ok(Self { inner: Arc::new(Inner { alg, kid, pair, pkcs8, spki_der: spki, public }) })
    }

    /// The same key under another key id: 1 to 64 characters from `A-Z a-z 0-9 - _ .`.
    /// By default the kid is derived from the public key (base64url of the first 12 bytes of
    /// the SHA-256 of its SubjectPublicKeyInfo).
    pub fn with_kid(self, kid: impl Into<String>) -> Result<Self, Error> {
        let kid = kid.into();
        validate_kid(&kid)?;
        let inner = &self.inner;
        let pair = match &inner.pair {
            Pair::Ed(_) => Ed25519KeyPair::from_pkcs8(inner.pkcs8.expose_secret()).map(Pair::Ed),
            Pair::Ec(_) => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, inner.pkcs8.expose_secret())
                    .map(Pair::Ec)
            }
            Pair::Rsa(_) => RsaKeyPair::from_pkcs8(inner.pkcs8.expose_secret()).map(Pair::Rsa),
        }
        .map_err(|e| Error::Key { alg: inner.alg, reason: e.to_string() })?;
        Ok(Self {
            inner: Arc::new(Inner {
                alg: inner.alg,
                kid,
                pair,
                pkcs8: SecretSlice::from(inner.pkcs8.expose_secret().to_vec()),
                spki_der: inner.spki_der.clone(),
                public: inner.public.clone(),
            }),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The key id put in the `kid` header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The public key as a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        zta_crypto::pem::encode("PUBLIC KEY", &self.inner.spki_der).as_str().to_owned()
    }

    /// The public key as a JWK (`kty`, curve or modulus, `kid`, `alg`, `use: sig`); never any
    /// private member.
    pub fn public_jwk(&self) -> serde_json::Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let (kid, alg) = (self.kid(), self.algorithm().as_str());
        match &self.inner.public {
            Public::Ed(x) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(x), "kid": kid, "alg": alg, "use": "sig",
            }),
            Public::Ec { x, y } => serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": kid, "alg": alg, "use": "sig",
            }),
            Public::Rsa { n, e } => serde_json::json!({
                "kty": "RSA", "n": b64(n), "e": b64(e), "kid": kid, "alg": alg, "use": "sig",
            }),
        }
    }

    /// The private key as an unencrypted PKCS#8 PEM, for `zta keygen` to write to a file with
    /// restrictive permissions. Handle with care: it is the signing secret.
    pub fn to_pkcs8_pem(&self) -> SecretString {
        SecretString::from(
            zta_crypto::pem::encode("PRIVATE KEY", self.inner.pkcs8.expose_secret()).as_str().to_owned(),
        )
    }

    /// The key jsonwebtoken verifies this key's signatures with.
    pub(crate) fn decoding_key(&self) -> DecodingKey {
        match &self.inner.public {
            Public::Ed(x) => DecodingKey::from_ed_der(x),
            Public::Ec { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            Public::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        }
    }

    /// Signs `message` (the JWS signing input) and returns the raw signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = || Error::crypto(format!("signing with key `{}` failed", self.kid()), None);
        match &self.inner.pair {
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Ec(pair) => {
                Ok(pair.sign(&SystemRandom::new(), message).map_err(|_| fail())?.as_ref().to_vec())
            }
            Pair::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig).map_err(|_| fail())?;
                Ok(sig)
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.inner.kid)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn spki(public: &impl AsDer<PublicKeyX509Der<'static>>) -> Result<Vec<u8>, String> {
    public.as_der().map(|d| d.as_ref().to_vec()).map_err(|_| "cannot encode the public key".to_owned())
}

fn default_kid(spki_der: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, spki_der);
    // INVARIANT: a SHA-256 digest has 32 bytes.
    debug_assert_eq!(hash.as_ref().len(), 32);
    URL_SAFE_NO_PAD.encode(hash.as_ref().get(..12).unwrap_or(hash.as_ref()))
}

fn validate_kid(kid: &str) -> Result<(), Error> {
    let refuse = |reason| Err(Error::KeyId { kid: kid.to_owned(), reason });
    if kid.is_empty() {
        return refuse("it is empty");
    }
    if kid.len() > MAX_KID_LEN {
        return refuse("it is longer than 64 bytes");
    }
    if !kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return refuse("allowed are letters, digits and `- _ .`");
    }
    Ok(())
}

/// The DER of the single `PRIVATE KEY` (PKCS#8) block of `pem`, with a hint for the key
/// kinds people commonly have instead.
fn decode_private_pem(alg: Algorithm, pem: &str) -> Result<SecretSlice<u8>, Error> {
    let refuse = |reason: String| Error::Key { alg, reason };
    match zta_crypto::pem::decode(pem, "PRIVATE KEY") {
        Ok(der) => Ok(SecretSlice::from(der.to_vec())),
        Err(zta_crypto::pem::PemError::Label { found, .. }) => {
            let hint = match found.as_str() {
                "ENCRYPTED PRIVATE KEY" => "encrypted keys are not supported; decrypt it first",
                "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    "convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
                }
                _ => "expected `PRIVATE KEY`",
            };
            Err(refuse(format!("PEM block `{found}` is not a PKCS#8 private key: {hint}")))
        }
        Err(e) => Err(refuse(format!("expected exactly one complete `PRIVATE KEY` PEM block: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_are_short_and_stable() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert_eq!(key.kid().len(), 16);
        let again = SigningKey::from_pkcs8_pem(Algorithm::EdDSA, key.to_pkcs8_pem().expose_secret()).unwrap();
        assert_eq!(again.kid(), key.kid());
    }

    #[test]
    fn kid_validation() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert!(key.clone().with_kid("2026-11.a_b").is_ok());
        assert!(key.clone().with_kid("").is_err());
        assert!(key.clone().with_kid("a b").is_err());
        assert!(key.with_kid("k".repeat(65)).is_err());
    }

    #[test]
    fn pem_lines_are_64_wide() {
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        for pem in [key.public_key_pem(), key.to_pkcs8_pem().expose_secret().to_owned()] {
            assert!(pem.lines().all(|l| l.len() <= 64));
            assert!(pem.starts_with("-----BEGIN "));
            assert!(pem.ends_with("KEY-----\n"));
        }
    }

    #[test]
    fn refuses_non_pkcs8_pem() {
        let err = decode_private_pem(
            Algorithm::RS256,
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8"), "{err}");
        assert!(decode_private_pem(Algorithm::EdDSA, "garbage").is_err());
    }
}
