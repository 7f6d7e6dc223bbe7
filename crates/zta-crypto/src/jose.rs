//! JOSE plumbing every JWT-handling crate shares: jsonwebtoken's crypto provider and its
//! start-up self-test, the compact-JWS split and protected-header read that happen before any
//! key is chosen, and the mapping of jsonwebtoken's errors to denials.
//!
//! jsonwebtoken 11 picks its provider from Cargo features and panics at the first use when
//! feature unification enables both backends or neither; ZTA installs the aws-lc-rs provider
//! itself, once per process, and proves it works before any token is trusted.

use std::{borrow::Cow, sync::OnceLock};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Validation,
    crypto::{CryptoProvider, aws_lc::DEFAULT_PROVIDER},
    errors::{Error as JwtError, ErrorKind},
};
use serde::{Deserialize, Deserializer};
use zta_core::AuthError;

/// Longest base64url protected header accepted (real headers are well under 300 bytes).
pub const MAX_HEADER_LEN: usize = 1024;
/// Longest `kid` accepted: it is only ever a map key.
pub const MAX_KID_LEN: usize = 128;
/// Longest piece of attacker-controlled text echoed into an audit detail.
const MAX_ECHO_LEN: usize = 120;

/// jsonwebtoken's crypto provider failed its start-up self-test: no token can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWT crypto provider failed its self-test: {0}")]
pub struct SelfTestError(String);

/// Installs jsonwebtoken's aws-lc-rs provider as the process default (keeping one installed
/// before, with a warning) and runs the self-test once per process: an RS256 known answer and
/// an EdDSA round trip must verify, and their tampered copies must not. Every crate that signs
/// or verifies JWTs calls this before its first token; later calls return the first result.
pub fn install_provider() -> Result<(), SelfTestError> {
    static RESULT: OnceLock<Result<(), SelfTestError>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            if let Err(existing) = DEFAULT_PROVIDER.install_default()
                && !std::ptr::eq::<CryptoProvider>(existing, &DEFAULT_PROVIDER)
            {
                tracing::warn!(
                    target: "zta_crypto",
                    "a different jsonwebtoken crypto provider is already installed; relying on the self-test"
                );
            }
            self_test()
        })
        .clone()
}

/// A token signed with RS256 by a throwaway key (only its public half is kept, below).
const RS256_KNOWN_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Inp0YS1zZWxmLXRlc3QifQ.eyJzdWIiOiJ6dGEtc2VsZi10ZXN0In0.eoltlozMIEbmrduxjm2v5Gn1g4HFc6Zcpe4EXADHnHKXT1nRUHwpqkjjq3PXoKomuWZIKhtyPEhUVLhbpWQ_fo4l5kIRv8fEBME8AkCh4n-8Atnng75ceMdbyDB5rBjJn-5Y5ZJ2bIwmmzim-0eU9mMhVOPkdG8bYb2sF7zWFkD9tVUK3urnF6P89GvhivKTtCXJxAxYFtSPNcA1mwW1ZWLrp7NhbeEQFzYcli01XhSXe3X4Tn8hewEB3MdKU1OcZQiWIaDQgGaMfI3dMud1T7jJlXpOvXihA6Jjc2LrdRAtA7Hd9x3ZUm7AXv0PA3otOE--qamsxYp50xelljVosg";
/// The modulus of that key (exponent 65537).
const RS256_KNOWN_N: &str = "vwIUuwunIMnhnZETfVvmJnxcw2mnQ5yT-ufP7Nh45p7iSj-atHYj1bvL81vrHOik7l2WQ8M_dtndZKz87qbJBwN_4NUv2aTgy99pvCCOgv5f59II2lT6o7RuKDozQoNFgLWMSp-ecqXp796M34K00DZQhwhnjojn4eoXzD1ZOaYAYe5jSFA4FAvd3Knviz4oqFHO6InwdtQcREG7Be1o1iyy55FRpmT21MhIeCZOAgGgOrbA7a87YTKtZxY5IuaYjBg1zxA_x5EA29RsfFLhXLvj4u3qAP5menQ5UNZWJWiqTihB--coq5-0SkAADLmlgaWa97VECtuz1gV5YQjCZQ";

#[derive(Deserialize, serde::Serialize)]
struct SelfTestClaims {
    sub: String,
}

fn self_test() -> Result<(), SelfTestError> {
    let fail = |what: &str| Err(SelfTestError(what.to_owned()));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;

    let rsa = DecodingKey::from_rsa_components(RS256_KNOWN_N, "AQAB")
        .map_err(|e| SelfTestError(format!("the RS256 test key does not load: {e}")))?;
    if jsonwebtoken::decode::<SelfTestClaims>(RS256_KNOWN_TOKEN, &rsa, &validation).is_err() {
        return fail("a known-good RS256 token does not verify");
    }
    if refuses_signature(&tamper(RS256_KNOWN_TOKEN), &rsa, &validation) != Some(true) {
        return fail("a tampered RS256 signature is not refused");
    }

    let pair = aws_lc_rs::signature::Ed25519KeyPair::generate()
        .and_then(|pair| pair.to_pkcs8v1())
        .map_err(|_| SelfTestError("no Ed25519 test key could be made".to_owned()))?;
    let signing = EncodingKey::from_ed_der(pair.as_ref());
    let public = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pair.as_ref())
        .map(|k| aws_lc_rs::signature::KeyPair::public_key(&k).as_ref().to_vec())
        .map_err(|_| SelfTestError("the Ed25519 test key does not load".to_owned()))?;
    let verifying = DecodingKey::from_ed_der(&public);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::EdDSA),
        &SelfTestClaims { sub: "zta-self-test".to_owned() },
        &signing,
    )
    .map_err(|e| SelfTestError(format!("EdDSA signing failed: {e}")))?;
    validation.algorithms = vec![Algorithm::EdDSA];
    if jsonwebtoken::decode::<SelfTestClaims>(&token, &verifying, &validation).is_err() {
        return fail("a freshly signed EdDSA token does not verify");
    }
    if refuses_signature(&tamper(&token), &verifying, &validation) != Some(true) {
        return fail("a tampered EdDSA signature is not refused");
    }
    Ok(())
}

/// `Some(true)` when the token is refused for its signature, `Some(false)` when it verifies,
/// `None` when it is refused for another reason.
fn refuses_signature(token: &str, key: &DecodingKey, validation: &Validation) -> Option<bool> {
    match jsonwebtoken::decode::<SelfTestClaims>(token, key, validation) {
        Ok(_) => Some(false),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => Some(true),
        Err(_) => None,
    }
}

/// The token with the first byte of its signature changed (still valid base64url).
fn tamper(token: &str) -> String {
    let (body, signature) = token.rsplit_once('.').unwrap_or((token, ""));
    let mut chars = signature.chars();
    let first = match chars.next() {
        Some('A') => 'B',
        _ => 'A',
    };
    format!("{body}.{first}{}", chars.as_str())
}

/// A compact JWS split into its three base64url parts; nothing decoded or verified.
#[derive(Debug, Clone, Copy)]
pub struct CompactJws<'t> {
    /// The protected header, base64url.
    pub header: &'t str,
    /// The payload, base64url.
    pub payload: &'t str,
    /// The signature, base64url.
    pub signature: &'t str,
}

impl<'t> CompactJws<'t> {
    /// Splits `token`, refusing one longer than `max_len` bytes (checked before anything
    /// else), one without exactly three non-empty parts, and a header over [`MAX_HEADER_LEN`].
    pub fn split(token: &'t str, max_len: usize) -> Result<Self, AuthError> {
        if token.len() > max_len {
            return Err(AuthError::invalid(format!("token longer than {max_len} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::invalid("malformed token: expected three dot-separated parts"));
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(AuthError::invalid("malformed token: empty part"));
        }
        if header.len() > MAX_HEADER_LEN {
            return Err(AuthError::invalid("malformed token: header too large"));
        }
        Ok(Self { header, payload, signature })
    }

    /// Reads the protected header into `buf` (reused across calls by hot paths). Refuses a
    /// header that is not a JSON object, lacks `alg`, has a `kid` over [`MAX_KID_LEN`], or
    /// carries a member that would let the token choose its own key (`jku`, `x5u`, `x5c`,
    /// `jwk`) or demand extensions (`crit`), whatever that member's value.
    pub fn read_header<'b>(&self, buf: &'b mut Vec<u8>) -> Result<Header<'b>, AuthError> {
        buf.clear();
        URL_SAFE_NO_PAD
            .decode_vec(self.header, buf)
            .map_err(|_| AuthError::invalid("malformed header: not base64url"))?;
        let raw: RawHeader<'b> = serde_json::from_slice(buf)
            .map_err(|e| AuthError::invalid(format!("malformed header: {}", echo(&e.to_string()))))?;
        if let Some(member) = raw.forbidden_member() {
            return Err(AuthError::invalid(format!("header member `{member}` is not accepted")));
        }
        if raw.kid.as_ref().is_some_and(|kid| kid.len() > MAX_KID_LEN) {
            return Err(AuthError::invalid(format!("header `kid` longer than {MAX_KID_LEN} bytes")));
        }
        Ok(Header { alg: raw.alg, typ: raw.typ, kid: raw.kid })
    }

    /// The payload's `iss`, read without verification: only to choose which issuer's keys and
    /// rules verify the token, never as proof. `None` when the payload is not base64url JSON
    /// with a string `iss`.
    pub fn unverified_issuer(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Issuer {
            iss: Option<String>,
        }
        self.unverified_payload::<Issuer>()?.iss
    }

    /// The payload's claims, read without verification: only to route a token, never as
    /// proof. `None` when the payload is not base64url JSON object.
    pub fn unverified_claims(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.unverified_payload()
    }

    fn unverified_payload<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let json = URL_SAFE_NO_PAD.decode(self.payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The protected header members ZTA reads. Everything else is ignored, except the refused
/// key-selecting and critical members (see [`CompactJws::read_header`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header<'b> {
    /// The algorithm the token claims; compare it with the one pinned for the key, never
    /// build a validation from it.
    pub alg: Cow<'b, str>,
    /// The media type, if any.
    pub typ: Option<Cow<'b, str>>,
    /// The key id, if any.
    pub kid: Option<Cow<'b, str>>,
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

impl RawHeader<'_> {
    fn forbidden_member(&self) -> Option<&'static str> {
        [(self.jku, "jku"), (self.x5u, "x5u"), (self.x5c, "x5c"), (self.jwk, "jwk"), (self.crit, "crit")]
            .into_iter()
            .find_map(|(present, name)| present.then_some(name))
    }
}

/// Present with any value, `null` included.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The denial a jsonwebtoken error stands for, with an audit detail that quotes no more than a
/// short, cut piece of the token's own text.
pub fn auth_error(e: &JwtError) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::invalid("bad signature"),
        ErrorKind::InvalidIssuer => AuthError::invalid("wrong issuer"),
        ErrorKind::InvalidAudience => AuthError::invalid("wrong audience"),
        ErrorKind::InvalidSubject => AuthError::invalid("wrong subject"),
        ErrorKind::MissingRequiredClaim(c) => {
            AuthError::invalid(format!("missing required claim `{}`", echo(c)))
        }
        ErrorKind::InvalidClaimFormat(c) => AuthError::invalid(format!("malformed claim `{}`", echo(c))),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::invalid("algorithm not allowed for this key")
        }
        ErrorKind::Base64(_) => AuthError::invalid("malformed token: not base64url"),
        ErrorKind::Json(e) => AuthError::invalid(format!("malformed claims: {}", echo(&e.to_string()))),
        ErrorKind::Utf8(_) => AuthError::invalid("malformed token: not UTF-8"),
        other => AuthError::invalid(format!("token refused: {}", echo(&format!("{other:?}")))),
    }
}

/// At most the first 120 bytes of `text` (cut at a character boundary): enough to say what
/// was wrong, too little to fill an audit log with attacker input.
pub fn echo(text: &str) -> &str {
    let mut end = text.len().min(MAX_ECHO_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn detail(e: AuthError) -> String {
        match e {
            AuthError::Invalid { detail } => detail.into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_provider_passes_its_self_test_and_catches_tampering() {
        install_provider().unwrap();
        assert_eq!(install_provider(), Ok(()));
        assert_ne!(tamper(RS256_KNOWN_TOKEN), RS256_KNOWN_TOKEN);
        assert!(tamper(RS256_KNOWN_TOKEN).starts_with(RS256_KNOWN_TOKEN.rsplit_once('.').unwrap().0));
    }

    #[test]
    fn key_choosing_and_critical_members_are_refused_whatever_their_value() {
        for member in ["jku", "x5u", "x5c", "jwk", "crit"] {
            for value in ["null", "\"https://evil.example/keys\"", "[]", "{}"] {
                let token = format!("{}.e30.c2ln", b64(&format!(r#"{{"alg":"RS256","{member}":{value}}}"#)));
                let jws = CompactJws::split(&token, 8192).unwrap();
                let err = jws.read_header(&mut Vec::new()).unwrap_err();
                assert_eq!(detail(err), format!("header member `{member}` is not accepted"));
            }
        }
    }

    #[test]
    fn the_header_is_read_and_bounded() {
        let token = format!("{}.e30.c2ln", b64(r#"{"alg":"RS256","typ":"JWT","kid":"k1","x5t":"abc"}"#));
        let jws = CompactJws::split(&token, 8192).unwrap();
        let mut buf = Vec::new();
        let header = jws.read_header(&mut buf).unwrap();
        assert_eq!(
            (&*header.alg, header.typ.as_deref(), header.kid.as_deref()),
            ("RS256", Some("JWT"), Some("k1"))
        );

        let long_kid =
            format!("{}.e30.c2ln", b64(&format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(129))));
        let err = CompactJws::split(&long_kid, 8192).unwrap().read_header(&mut buf).unwrap_err();
        assert_eq!(detail(err), "header `kid` longer than 128 bytes");

        let cases = [
            ("a.b", "malformed token: expected three dot-separated parts"),
            ("a.b.c.d", "malformed token: expected three dot-separated parts"),
            ("a..c", "malformed token: empty part"),
        ];
        for (token, expected) in cases {
            assert_eq!(detail(CompactJws::split(token, 8192).unwrap_err()), expected);
        }
        assert_eq!(detail(CompactJws::split("a.b.c", 4).unwrap_err()), "token longer than 4 bytes");
        let huge = format!("{}.e30.c2ln", "a".repeat(MAX_HEADER_LEN + 1));
        assert_eq!(detail(CompactJws::split(&huge, 8192).unwrap_err()), "malformed token: header too large");
        let not_b64 = CompactJws::split("!!.e30.c2ln", 8192).unwrap();
        assert_eq!(detail(not_b64.read_header(&mut buf).unwrap_err()), "malformed header: not base64url");
        let no_alg = format!("{}.e30.c2ln", b64(r#"{"typ":"JWT"}"#));
        let err = CompactJws::split(&no_alg, 8192).unwrap().read_header(&mut buf).unwrap_err();
        assert!(detail(err).starts_with("malformed header: missing field `alg`"));
    }

    #[test]
    fn echo_cuts_at_a_character_boundary() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(100);
        assert!(echo(&long).len() <= MAX_ECHO_LEN);
        assert!(echo(&long).chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_panic(token in "[A-Za-z0-9_.\\-]{0,400}") {
            if let Ok(jws) = CompactJws::split(&token, 8192) {
                let _ = jws.read_header(&mut Vec::new());
            }
        }
    }
}
