//! The checkpoint kept beside the log: the last committed seq and hash, signed when a key is
//! configured. Without it a log cut at the end would still verify.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::secrecy::zeroize::Zeroizing;
use zta_crypto::pem;

use crate::{
    format::{create_options, hex_string, segment_number, unhex32},
    verify::CheckpointProblem,
};

/// The checkpoint's file name.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.json";
/// Where a new checkpoint is written before it is renamed over the old one.
pub(crate) const CHECKPOINT_TMP: &str = "checkpoint.json.tmp";

const VERSION: u32 = 1;

/// The checkpoint as stored (and as published to an anchor, on one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stored {
    version: u32,
    pub(crate) seq: u64,
    hash: String,
    file: String,
    time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

impl Stored {
    /// The id of the key that signed it, if it is signed.
    pub(crate) fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The hash of the record at `seq`, hex.
    pub(crate) fn hash(&self) -> &str {
        &self.hash
    }
}

/// A parsed and checked checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) seq: u64,
    pub(crate) hash: [u8; 32],
    pub(crate) file: String,
    pub(crate) file_no: u64,
    pub(crate) time: String,
    pub(crate) key_id: Option<String>,
    signature: Option<Vec<u8>>,
}

/// The bytes a signature covers: every field but the signature, one per line, after a fixed tag.
fn signed_message(seq: u64, hash: &str, file: &str, time: &str, key_id: &str) -> Vec<u8> {
    format!(
        "zta-audit-jsonl checkpoint v{VERSION}\nseq={seq}\nhash={hash}\nfile={file}\ntime={time}\nkey_id={key_id}\n"
    )
    .into_bytes()
}

/// The id of an Ed25519 public key: the first 8 bytes of the SHA-256 of its raw 32 bytes, in hex.
pub(crate) fn key_id(raw_public_key: &[u8]) -> String {
    let digest = Sha256::digest(raw_public_key);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    /// Reads the checkpoint in `dir`; `Ok(None)` if there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, (PathBuf, CheckpointReadError)> {
        let path = dir.join(CHECKPOINT_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err((path, CheckpointReadError::Io(e))),
        };
        Self::parse(&bytes).map(Some).map_err(|p| (path, CheckpointReadError::Problem(p)))
    }

    /// Parses and checks a checkpoint's JSON (the file, or one anchor line).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, CheckpointProblem> {
        let bad = |m: String| CheckpointProblem::Malformed(m);
        let s: Stored = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if s.version != VERSION {
            return Err(bad(format!("unknown version `{}`", s.version)));
        }
        let hash =
            unhex32(s.hash.as_bytes()).ok_or_else(|| bad("`hash` is not 64 lowercase hex digits".into()))?;
        let file_no = segment_number(&s.file)
            .ok_or_else(|| bad(format!("`file` `{}` is not a segment name", s.file)))?;
        OffsetDateTime::parse(&s.time, &Rfc3339)
            .map_err(|e| bad(format!("`time` `{}` is not an RFC 3339 time: {e}", s.time)))?;
        let signature = match (&s.key_id, &s.signature) {
            (None, None) => None,
            (Some(id), Some(sig)) => {
                if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!("`key_id` `{id}` is not 16 hex digits")));
                }
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(sig)
                    .map_err(|e| bad(format!("`signature` is not base64: {e}")))?;
                Some(sig)
            }
            _ => return Err(bad("`key_id` and `signature` must come together".into())),
        };
        Ok(Self { seq: s.seq, hash, file: s.file, file_no, time: s.time, key_id: s.key_id, signature })
    }

    /// Whether it carries a signature.
    #[cfg(test)]
    pub(crate) fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Checks the signature with `public_key` (raw 32 bytes).
    pub(crate) fn verify_signature(&self, public_key: &[u8; 32]) -> Result<(), CheckpointProblem> {
        let (Some(id), Some(sig)) = (&self.key_id, &self.signature) else {
            return Err(CheckpointProblem::Unsigned);
        };
        let given = key_id(public_key);
        if *id != given {
            return Err(CheckpointProblem::WrongKey { signed_by: id.clone(), given });
        }
        let msg = signed_message(self.seq, &hex_string(&self.hash), &self.file, &self.time, id);
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&msg, sig)
            .map_err(|_| CheckpointProblem::BadSignature)
    }
}

/// Why the checkpoint could not be read.
#[derive(Debug)]
pub(crate) enum CheckpointReadError {
    Io(io::Error),
    Problem(CheckpointProblem),
}

/// The key that signs checkpoints.
pub(crate) struct Signer {
    key: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads an Ed25519 PKCS#8 private key from a PEM file.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| e.to_string())?);
        let der = pem::decode(&text, "PRIVATE KEY").map_err(|e| e.to_string())?;
        let key = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let key_id = key_id(key.public_key().as_ref());
        #[cfg(unix)]
        if let Ok(meta) = fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the checkpoint signing key is readable by others; restrict it to its owner (chmod 600)"
                );
            }
        }
        Ok(Self { key, key_id })
    }

    /// The id of the public half.
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// The raw 32-byte Ed25519 public key from raw bytes, SubjectPublicKeyInfo DER, a `PUBLIC KEY`
/// PEM, or (for convenience) a PKCS#8 `PRIVATE KEY` PEM whose public half is taken.
pub(crate) fn parse_public_key(bytes: &[u8]) -> Result<[u8; 32], String> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Ok(raw);
    }
    if let Ok(raw) = pem::ed25519_from_spki(bytes) {
        return Ok(raw);
    }
    let (label, der) = std::str::from_utf8(bytes).ok().and_then(|text| pem::decode_any(text).ok()).ok_or(
        "expected an Ed25519 public key: 32 raw bytes, SubjectPublicKeyInfo DER, or a `PUBLIC KEY` PEM",
    )?;
    match label.as_str() {
        "PUBLIC KEY" => pem::ed25519_from_spki(&der).map_err(|e| e.to_string()),
        "PRIVATE KEY" => {
            let key =
                Ed25519KeyPair::from_pkcs8(&der).map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
            <[u8; 32]>::try_from(key.public_key().as_ref())
                .map_err(|_| "unexpected public key length".to_owned())
        }
        other => Err(format!("expected a `PUBLIC KEY` PEM block, found `{other}`")),
    }
}

/// Writes checkpoints atomically: temp file, fsync, rename, fsync of the directory.
#[derive(Debug)]
pub(crate) struct CheckpointWriter {
    dir: PathBuf,
    dir_handle: File,
    signer: Option<Signer>,
}

impl CheckpointWriter {
    pub(crate) fn new(dir: &Path, dir_handle: File, signer: Option<Signer>) -> Self {
        Self { dir: dir.to_owned(), dir_handle, signer }
    }

    /// Replaces the checkpoint with one at `seq`/`hash` in segment `file`; returns what it wrote.
    pub(crate) fn write(&self, seq: u64, hash: &[u8; 32], file: &str) -> io::Result<Stored> {
        let time = OffsetDateTime::now_utc().format(&Rfc3339).map_err(io::Error::other)?;
        let hash = hex_string(hash);
        let (key_id, signature) = match &self.signer {
            None => (None, None),
            Some(s) => {
                let msg = signed_message(seq, &hash, file, &time, &s.key_id);
                let sig = s.key.try_sign(&msg).map_err(|_| io::Error::other("ed25519 signing failed"))?;
                (Some(s.key_id.clone()), Some(base64::engine::general_purpose::STANDARD.encode(sig.as_ref())))
            }
        };
        let stored = Stored { version: VERSION, seq, hash, file: file.to_owned(), time, key_id, signature };
        let mut bytes = serde_json::to_vec_pretty(&stored).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let mut f = create_options().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(CHECKPOINT_FILE))?;
        self.dir_handle.sync_all()?;
        Ok(stored)
    }
}

/// The checkpoint in `dir` as stored, if there is a readable one.
pub(crate) fn read_stored(dir: &Path) -> Option<Stored> {
    serde_json::from_slice(&fs::read(dir.join(CHECKPOINT_FILE)).ok()?).ok()
}

/// A new Ed25519 key for signing checkpoints, as PEM: the private half (PKCS#8 `PRIVATE KEY`,
/// for [`JsonlConfig::checkpoint_key_file`](crate::JsonlConfig::checkpoint_key_file); keep it
/// where the log's readers cannot write) and the public half (`PUBLIC KEY`, for
/// [`verify`](crate::verify)).
pub fn generate_checkpoint_key() -> Result<(Zeroizing<String>, String), crate::Error> {
    fn failed(e: impl std::error::Error + Send + Sync + 'static) -> crate::Error {
        crate::Error::KeyGeneration(Box::new(e))
    }
    use aws_lc_rs::encoding::AsDer as _;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).map_err(failed)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(failed)?;
    let spki = pair.public_key().as_der().map_err(failed)?;
    Ok((
        pem::encode("PRIVATE KEY", pkcs8.as_ref()),
        pem::encode("PUBLIC KEY", spki.as_ref()).as_str().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_text(label: &str, der: &[u8]) -> String {
        pem::encode(label, der).as_str().to_owned()
    }

    #[test]
    fn sign_and_verify_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let key_path = dir.path().join("k.pem");
        fs::write(&key_path, pem_text("PRIVATE KEY", pkcs8.as_ref())).unwrap();
        let signer = Signer::load(&key_path).unwrap();
        let public: [u8; 32] =
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap().public_key().as_ref().try_into().unwrap();
        assert_eq!(signer.key_id(), key_id(&public));

        let w = CheckpointWriter::new(dir.path(), File::open(dir.path()).unwrap(), Some(signer));
        w.write(7, &[1; 32], "audit-000002.jsonl").unwrap();
        let cp = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!((cp.seq, cp.hash, cp.file_no), (7, [1; 32], 2));
        assert!(cp.is_signed());
        cp.verify_signature(&public).unwrap();
        assert!(matches!(cp.verify_signature(&[9; 32]), Err(CheckpointProblem::WrongKey { .. })));
        let mut forged = cp.clone();
        forged.seq = 8;
        assert_eq!(forged.verify_signature(&public), Err(CheckpointProblem::BadSignature));

        // every accepted public key form gives the same key
        let spki = pem::ed25519_to_spki(&public);
        assert_eq!(parse_public_key(&public).unwrap(), public);
        assert_eq!(parse_public_key(&spki).unwrap(), public);
        assert_eq!(parse_public_key(pem_text("PUBLIC KEY", &spki).as_bytes()).unwrap(), public);
        assert_eq!(parse_public_key(pem_text("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap(), public);
        assert!(parse_public_key(b"nonsense").is_err());
        assert!(parse_public_key(pem_text("CERTIFICATE", b"xx").as_bytes()).is_err());
    }

    #[test]
    fn unsigned_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), None);
        let w = CheckpointWriter::new(dir.path(), File::open(dir.path()).unwrap(), None);
        w.write(0, &[0; 32], "audit-000001.jsonl").unwrap();
        let cp = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert!(!cp.is_signed());
        assert_eq!(cp.verify_signature(&[0; 32]), Err(CheckpointProblem::Unsigned));
        fs::write(dir.path().join(CHECKPOINT_FILE), b"{\"version\":1}").unwrap();
        assert!(matches!(
            Checkpoint::read(dir.path()),
            Err((_, CheckpointReadError::Problem(CheckpointProblem::Malformed(_))))
        ));
    }
}
