//! PEM (RFC 7468) and the Ed25519 SubjectPublicKeyInfo, as ZTA's key files use them.
//!
//! Decoding is strict (one block, base64 without stray characters) and constant-time
//! (pem-rfc7468); decoded and encoded bytes live in buffers that are zeroed on drop, since they
//! may hold a private key.

use secrecy::zeroize::Zeroizing;

/// Largest PEM text decoded; key files are a few hundred bytes.
pub const MAX_PEM_LEN: usize = 64 * 1024;

/// Length of a raw Ed25519 public key.
pub const ED25519_KEY_LEN: usize = 32;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (33 bytes, 0 unused bits) }, followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A PEM text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The text is longer than [`MAX_PEM_LEN`].
    #[error("PEM text is longer than {MAX_PEM_LEN} bytes")]
    TooLong,
    /// The text is not one well-formed PEM block.
    #[error("not a PEM block: {0}")]
    Malformed(pem_rfc7468::Error),
    /// The block carries another label than the one expected.
    #[error("expected a PEM `{expected}` block, found `{found}`")]
    Label {
        /// The label wanted.
        expected: &'static str,
        /// The label found.
        found: String,
    },
    /// The `PUBLIC KEY` block holds another key type than Ed25519.
    #[error("not an Ed25519 SubjectPublicKeyInfo (other key types are not accepted)")]
    NotEd25519,
}

/// Decodes the one PEM block of `text`, whatever its label: the label and the DER bytes.
pub fn decode_any(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), PemError> {
    if text.len() > MAX_PEM_LEN {
        return Err(PemError::TooLong);
    }
    let mut decoder =
        pem_rfc7468::Decoder::new_detect_wrap(text.trim().as_bytes()).map_err(PemError::Malformed)?;
    let label = decoder.type_label().to_owned();
    let mut der = Zeroizing::new(vec![0; decoder.remaining_len()]);
    let len = decoder.decode(&mut der).map_err(PemError::Malformed)?.len();
    der.truncate(len);
    Ok((label, der))
}

/// Decodes the one PEM block of `text`, which must carry `label` (`PRIVATE KEY`, `PUBLIC KEY`).
pub fn decode(text: &str, label: &'static str) -> Result<Zeroizing<Vec<u8>>, PemError> {
    let (found, der) = decode_any(text)?;
    if found != label {
        return Err(PemError::Label { expected: label, found });
    }
    Ok(der)
}

/// Encodes `der` as one PEM block with 64-character lines and `\n` line ends.
pub fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let line_ending = pem_rfc7468::LineEnding::LF;
    // INVARIANT: labels are the constants of this workspace and DER lengths are small, so
    // neither sizing nor encoding can fail; a broken one yields an empty text, which every
    // reader refuses, and fails debug builds.
    let len = pem_rfc7468::encapsulated_len(label, line_ending, der.len()).unwrap_or(0);
    let mut buf = Zeroizing::new(vec![0u8; len]);
    let written = pem_rfc7468::encode(label, line_ending, der, &mut buf).map(str::len);
    debug_assert!(written.is_ok(), "PEM encoding of a `{label}` block failed");
    let text = buf.get(..written.unwrap_or(0)).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
    Zeroizing::new(text.to_owned())
}

/// The raw 32-byte Ed25519 public key of a SubjectPublicKeyInfo DER.
pub fn ed25519_from_spki(der: &[u8]) -> Result<[u8; ED25519_KEY_LEN], PemError> {
    der.strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|raw| <[u8; ED25519_KEY_LEN]>::try_from(raw).ok())
        .ok_or(PemError::NotEd25519)
}

/// The SubjectPublicKeyInfo DER of a raw Ed25519 public key.
pub fn ed25519_to_spki(raw: &[u8; ED25519_KEY_LEN]) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + ED25519_KEY_LEN);
    der.extend_from_slice(&ED25519_SPKI_PREFIX);
    der.extend_from_slice(raw);
    der
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn openssl_shaped_ed25519_key_round_trips() {
        // `openssl genpkey -algorithm ed25519 | openssl pkey -pubout` writes this shape.
        let pair = Ed25519KeyPair::generate().unwrap();
        let raw: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        let pem = encode("PUBLIC KEY", &ed25519_to_spki(&raw));
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"));
        let der = decode(&pem, "PUBLIC KEY").unwrap();
        assert_eq!(ed25519_from_spki(&der).unwrap(), raw);

        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let pem = encode("PRIVATE KEY", pkcs8.as_ref());
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(&*decode(&pem, "PRIVATE KEY").unwrap(), pkcs8.as_ref());
        // Explanatory text before the block (as `openssl x509 -text` writes) is allowed.
        assert_eq!(&*decode(&format!("key for ci\n{}", &*pem), "PRIVATE KEY").unwrap(), pkcs8.as_ref());
    }

    #[test]
    fn wrong_label_other_key_types_and_junk_are_refused() {
        let pem = encode("PUBLIC KEY", &ed25519_to_spki(&[7; 32]));
        assert_eq!(
            decode(&pem, "PRIVATE KEY").unwrap_err().to_string(),
            "expected a PEM `PRIVATE KEY` block, found `PUBLIC KEY`"
        );
        let p256_spki_start = [0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        assert_eq!(ed25519_from_spki(&p256_spki_start), Err(PemError::NotEd25519));
        assert_eq!(ed25519_from_spki(&ed25519_to_spki(&[7; 32])[..40]), Err(PemError::NotEd25519));
        for junk in ["", "hello", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"] {
            assert!(matches!(decode(junk, "PUBLIC KEY"), Err(PemError::Malformed(_))), "{junk:?}");
        }
        let mismatched = pem.replace("END PUBLIC", "END PRIVATE");
        assert!(matches!(decode(&mismatched, "PUBLIC KEY"), Err(PemError::Malformed(_))));
        assert_eq!(decode(&"A".repeat(MAX_PEM_LEN + 1), "PUBLIC KEY"), Err(PemError::TooLong));
    }

    proptest! {
        #[test]
        fn any_der_round_trips(der in proptest::collection::vec(any::<u8>(), 1..600)) {
            let pem = encode("PRIVATE KEY", &der);
            prop_assert_eq!(&*decode(&pem, "PRIVATE KEY").unwrap(), &der[..]);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = decode_any(&text);
        }
    }
}
