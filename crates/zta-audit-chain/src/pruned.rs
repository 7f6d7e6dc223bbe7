//! Retention: a writer's oldest rows deleted, and the signed "pruned up to" marker that lets
//! its chain still verify. The marker names the last deleted row (its seq and hash); it is
//! signed with the Ed25519 key that signs the JSON Lines sink's checkpoints, so that nobody
//! without that key can cut the start of a chain and hide it behind a marker.
//!
//! ```text
//! signed  "zta-audit pruned v1\ndomain=<store tag>\ntable=<table>\nwriter=<id>\nseq=<n>\n
//!          hash=<hex>\nkey_id=<hex>\n"
//! ```
//!
//! The store's domain tag and the table are signed too: a marker cannot be moved to another
//! store, table or writer.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use zta_core::secrecy::zeroize::Zeroizing;

use crate::{ChainBreak, GENESIS, VerifyReport, WriterReport, link_hash};

/// The `retention` setting of the SQL sinks: the running sink deletes, every `every`, the
/// records older than `older_than`, as `zta audit prune` does (each writer keeps its last row
/// and gets a marker signed with `key_file`).
///
/// ```yaml
/// retention: {older_than: 30d, key_file: /etc/zta/audit-checkpoint.pem, every: 1h}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Retention {
    /// Records recorded longer ago than this are deleted (`30d`, `12h`).
    #[serde(with = "zta_core::duration::text")]
    pub older_than: Duration,
    /// The audit checkpoint's Ed25519 private key (PEM, `zta keygen --checkpoint`) that signs
    /// the markers. Read when the sink opens; a missing or unusable key refuses the sink.
    pub key_file: PathBuf,
    /// How often the sink prunes (the first time right after it opens). Default 1h.
    #[serde(default = "default_every", with = "zta_core::duration::text")]
    pub every: Duration,
}

fn default_every() -> Duration {
    Duration::from_secs(3600)
}

impl Retention {
    /// Deleting what is older than `older_than`, signed with the key in `key_file`, hourly.
    pub fn new(older_than: Duration, key_file: impl Into<PathBuf>) -> Self {
        Self { older_than, key_file: key_file.into(), every: default_every() }
    }

    /// The same, every `every`.
    #[must_use]
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Refuses an `every` of zero.
    pub fn check(&self) -> Result<(), String> {
        if self.every.is_zero() {
            return Err("retention.every must be above zero".into());
        }
        Ok(())
    }
}

/// A writer's "pruned up to" marker as stored: the last deleted row's seq and hash, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneMarker {
    /// The writer whose rows up to `seq` were deleted.
    pub writer: String,
    /// The last deleted row's seq: the chain continues at `seq + 1`.
    pub seq: u64,
    /// The last deleted row's hash: the `prev_hash` of the row at `seq + 1`.
    pub hash: [u8; 32],
    /// The id of the signing key (16 hex digits, as the JSON Lines checkpoints name it).
    pub key_id: String,
    /// The Ed25519 signature over [`PruneMarker::message`].
    pub signature: Vec<u8>,
}

impl PruneMarker {
    /// A marker read back from a store; `seq` and `hash` as stored (refused when not a
    /// non-negative seq and 32 bytes, naming the writer).
    pub fn from_stored(
        writer: String,
        seq: i64,
        hash: Vec<u8>,
        key_id: String,
        signature: Vec<u8>,
    ) -> Result<Self, ChainBreak> {
        let broken = |reason: &str| ChainBreak { writer: writer.clone(), seq: 0, reason: reason.to_owned() };
        let seq = u64::try_from(seq).map_err(|_| broken("its pruned-up-to marker has a negative seq"))?;
        let hash = <[u8; 32]>::try_from(hash)
            .map_err(|_| broken("its pruned-up-to marker has a hash that is not 32 bytes"))?;
        Ok(Self { writer, seq, hash, key_id, signature })
    }

    /// The bytes the signature covers, for the store tagged `domain` and its `table`.
    pub fn message(
        domain: &[u8],
        table: &str,
        writer: &str,
        seq: u64,
        hash: &[u8; 32],
        key_id: &str,
    ) -> Vec<u8> {
        let domain = String::from_utf8_lossy(domain);
        format!(
            "zta-audit pruned v1\ndomain={}\ntable={table}\nwriter={writer}\nseq={seq}\nhash={}\nkey_id={key_id}\n",
            domain.trim_end(),
            hex::encode(hash)
        )
        .into_bytes()
    }

    /// Checks the signature with `public_key` (raw 32 bytes): the marker must be signed by
    /// that key, for this store and table.
    pub fn check(&self, domain: &[u8], table: &str, public_key: &[u8; 32]) -> Result<(), ChainBreak> {
        let broken = |reason: String| ChainBreak { writer: self.writer.clone(), seq: self.seq, reason };
        let given = key_id(public_key);
        if self.key_id != given {
            return Err(broken(format!(
                "its pruned-up-to marker is signed by key {}, not by the key given ({given})",
                self.key_id.escape_debug()
            )));
        }
        let message = Self::message(domain, table, &self.writer, self.seq, &self.hash, &self.key_id);
        UnparsedPublicKey::new(&ED25519, public_key).verify(&message, &self.signature).map_err(|_| {
            broken("its pruned-up-to marker's signature does not verify (forged or changed)".into())
        })
    }
}

/// The id of an Ed25519 public key: the first 8 bytes of the SHA-256 of its raw 32 bytes, in
/// hex (the JSON Lines checkpoints' `key_id`).
pub fn key_id(raw_public_key: &[u8]) -> String {
    Sha256::digest(raw_public_key).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The key that signs markers: the Ed25519 PKCS#8 key of the JSON Lines checkpoints.
pub struct MarkerSigner {
    key: Ed25519KeyPair,
    key_id: String,
}

impl fmt::Debug for MarkerSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarkerSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl MarkerSigner {
    /// Loads an Ed25519 PKCS#8 `PRIVATE KEY` PEM file (what `zta keygen --checkpoint` writes).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
        );
        let der = match pem_block(&text) {
            Some((label, der)) if label == "PRIVATE KEY" => der,
            _ => return Err(format!("`{}` is not a `PRIVATE KEY` PEM file", path.display())),
        };
        let key = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|e| format!("`{}` is not an Ed25519 PKCS#8 key: {e}", path.display()))?;
        let key_id = key_id(key.public_key().as_ref());
        Ok(Self { key, key_id })
    }

    /// A new random key (for tests; deployments load the checkpoint key with [`load`](Self::load)).
    pub fn generate() -> Result<Self, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| format!("cannot make a key: {e}"))?;
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| format!("cannot make a key: {e}"))?;
        let key_id = key_id(key.public_key().as_ref());
        Ok(Self { key, key_id })
    }

    /// A new random key as a PKCS#8 `PRIVATE KEY` PEM text (for tests and tools; deployments
    /// use `zta keygen --checkpoint`).
    pub fn generate_pem() -> Result<Zeroizing<String>, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| format!("cannot make a key: {e}"))?;
        let der = doc.as_ref();
        let line_ending = pem_rfc7468::LineEnding::LF;
        let len = pem_rfc7468::encapsulated_len("PRIVATE KEY", line_ending, der.len())
            .map_err(|e| e.to_string())?;
        let mut buf = Zeroizing::new(vec![0u8; len]);
        let text =
            pem_rfc7468::encode("PRIVATE KEY", line_ending, der, &mut buf).map_err(|e| e.to_string())?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    /// The id of the public half.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw public half.
    pub fn public_key(&self) -> [u8; 32] {
        let mut raw = [0; 32];
        let public = self.key.public_key().as_ref();
        if public.len() == raw.len() {
            raw.copy_from_slice(public);
        }
        raw
    }

    /// A marker for `writer` pruned up to `seq` (whose row has `hash`) in `table` of the store
    /// tagged `domain`.
    pub fn sign(&self, domain: &[u8], table: &str, writer: &str, seq: u64, hash: [u8; 32]) -> PruneMarker {
        let message = PruneMarker::message(domain, table, writer, seq, &hash, &self.key_id);
        PruneMarker {
            writer: writer.to_owned(),
            seq,
            hash,
            key_id: self.key_id.clone(),
            signature: self.key.sign(&message).as_ref().to_vec(),
        }
    }
}

/// The raw Ed25519 public key in `bytes`: a `PUBLIC KEY` PEM (or SubjectPublicKeyInfo DER), or
/// a `PRIVATE KEY` PEM whose public half is taken.
pub fn public_key(bytes: &[u8]) -> Result<[u8; 32], String> {
    if let Some(raw) = from_spki(bytes) {
        return Ok(raw);
    }
    let (label, der) = std::str::from_utf8(bytes)
        .ok()
        .and_then(pem_block)
        .ok_or("expected an Ed25519 `PUBLIC KEY` PEM (or the `PRIVATE KEY` PEM it belongs to)")?;
    match label.as_str() {
        "PUBLIC KEY" => from_spki(&der).ok_or_else(|| "not an Ed25519 public key".to_owned()),
        "PRIVATE KEY" => {
            let key =
                Ed25519KeyPair::from_pkcs8(&der).map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
            <[u8; 32]>::try_from(key.public_key().as_ref())
                .map_err(|_| "unexpected public key length".to_owned())
        }
        other => Err(format!("expected a `PUBLIC KEY` PEM block, found `{other}`")),
    }
}

/// The SubjectPublicKeyInfo DER of an Ed25519 key, before its 32 raw bytes.
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The raw key of an Ed25519 SubjectPublicKeyInfo DER.
fn from_spki(der: &[u8]) -> Option<[u8; 32]> {
    der.strip_prefix(&ED25519_SPKI_PREFIX[..]).and_then(|raw| <[u8; 32]>::try_from(raw).ok())
}

/// The label and DER bytes of the one PEM block of `text` (at most 64 KiB).
fn pem_block(text: &str) -> Option<(String, Zeroizing<Vec<u8>>)> {
    if text.len() > 64 * 1024 {
        return None;
    }
    let mut decoder = pem_rfc7468::Decoder::new_detect_wrap(text.trim().as_bytes()).ok()?;
    let label = decoder.type_label().to_owned();
    let mut der = Zeroizing::new(vec![0; decoder.remaining_len()]);
    let len = decoder.decode(&mut der).ok()?.len();
    der.truncate(len);
    Some((label, der))
}

/// How a verification treated the pruned-up-to markers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarkerReport {
    /// Writer -> the seq its chain was pruned up to, for the markers whose signature was
    /// checked.
    pub checked: BTreeMap<String, u64>,
    /// The same for markers taken on trust: no public key was given to check them. Whoever
    /// can write the store could have cut the start of these chains.
    pub unchecked: BTreeMap<String, u64>,
}

/// [`OrderedChainCheck`](crate::OrderedChainCheck) for stores with pruned writers: a writer
/// with a marker starts at the marker's `seq + 1` after its `hash`; one without starts at seq 1
/// after [`GENESIS`]. Markers are checked (signature, store, table) when made with a public
/// key; a writer whose rows start after seq 1 with no marker is a break, as is a marker whose
/// writer has no rows left (the sinks never prune a writer's last row).
#[derive(Debug)]
pub struct MarkedChainCheck {
    domain: &'static [u8],
    markers: BTreeMap<String, PruneMarker>,
    report: VerifyReport,
    marker_report: MarkerReport,
    head: Option<(String, u64, [u8; 32])>,
}

impl MarkedChainCheck {
    /// A check of chains hashed with `domain` in `table`, with these markers, their
    /// signatures checked with `public_key` when given.
    pub fn new(
        domain: &'static [u8],
        table: &str,
        markers: Vec<PruneMarker>,
        public_key: Option<&[u8; 32]>,
    ) -> Result<Self, ChainBreak> {
        let mut marker_report = MarkerReport::default();
        let mut by_writer = BTreeMap::new();
        for marker in markers {
            match public_key {
                Some(key) => {
                    marker.check(domain, table, key)?;
                    marker_report.checked.insert(marker.writer.clone(), marker.seq);
                }
                None => {
                    marker_report.unchecked.insert(marker.writer.clone(), marker.seq);
                }
            }
            by_writer.insert(marker.writer.clone(), marker);
        }
        Ok(Self { domain, markers: by_writer, report: VerifyReport::default(), marker_report, head: None })
    }

    /// Checks the next row (rows in `(writer, seq)` order); the first break is an error.
    pub fn row(
        &mut self,
        writer: String,
        seq: i64,
        prev_hash: &[u8],
        hash: &[u8],
        record: &str,
    ) -> Result<(), ChainBreak> {
        let broken = |seq: u64, reason: String| ChainBreak { writer: writer.clone(), seq, reason };
        let seq = u64::try_from(seq).map_err(|_| broken(0, format!("negative seq {seq}")))?;
        let (want_seq, want_prev) = match &self.head {
            Some((w, s, h)) if *w == writer => (s + 1, *h),
            _ => match self.markers.get(&writer) {
                Some(marker) => (marker.seq + 1, marker.hash),
                None => (1, GENESIS),
            },
        };
        if seq != want_seq {
            let what = match (&self.head, self.markers.get(&writer)) {
                (Some((w, _, _)), _) if *w == writer => {
                    format!("seq {seq} follows {}: rows are missing", want_seq - 1)
                }
                (_, Some(m)) => format!(
                    "the chain is pruned up to seq {}, but its next row is seq {seq}: rows are missing",
                    m.seq
                ),
                (_, None) => format!(
                    "the chain starts at seq {seq}, not 1, and no pruned-up-to marker covers the rows before it"
                ),
            };
            return Err(broken(want_seq, what));
        }
        if prev_hash != want_prev.as_slice() {
            let what = if want_seq > 1 && !matches!(&self.head, Some((w, _, _)) if *w == writer) {
                "prev_hash is not the hash in the pruned-up-to marker"
            } else {
                "prev_hash is not the hash of the row before it"
            };
            return Err(broken(seq, what.into()));
        }
        let computed = link_hash(self.domain, &writer, seq, &want_prev, record.as_bytes());
        if hash != computed.as_slice() {
            return Err(broken(
                seq,
                "the record does not match its hash (changed after it was written)".into(),
            ));
        }
        if let Err(e) = serde_json::from_str::<zta_core::AuditRecord>(record) {
            return Err(broken(seq, format!("not an audit record: {e}")));
        }
        let entry = self
            .report
            .writers
            .entry(writer.clone())
            .or_insert_with(|| WriterReport { rows: 0, head: String::new() });
        entry.rows += 1;
        entry.head = hex::encode(computed);
        self.head = Some((writer, seq, computed));
        Ok(())
    }

    /// What the rows checked make, and the markers; a marker whose writer has no rows is a
    /// break (its rows were all deleted after it, or it was put there).
    pub fn finish(self) -> Result<(VerifyReport, MarkerReport), ChainBreak> {
        if let Some(marker) = self.markers.values().find(|m| !self.report.writers.contains_key(&m.writer)) {
            return Err(ChainBreak {
                writer: marker.writer.clone(),
                seq: marker.seq + 1,
                reason: format!("the chain is pruned up to seq {}, but no rows follow it", marker.seq),
            });
        }
        Ok((self.report, self.marker_report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> MarkerSigner {
        MarkerSigner::generate().unwrap()
    }

    #[test]
    fn a_generated_pem_loads_and_its_public_half_parses() {
        let dir = std::env::temp_dir().join(format!("zta-marker-key-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&dir, MarkerSigner::generate_pem().unwrap().as_bytes()).unwrap();
        let signer = MarkerSigner::load(&dir).unwrap();
        let from_private = public_key(&std::fs::read(&dir).unwrap()).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(from_private, signer.public_key());
        assert_eq!(key_id(&from_private), signer.key_id());
        assert!(public_key(b"not a key").is_err());
    }

    #[test]
    fn retention_reads_with_a_default_interval() {
        let r: Retention = serde_json::from_str(r#"{"older_than": "30d", "key_file": "k.pem"}"#).unwrap();
        assert_eq!((r.older_than, r.every), (Duration::from_secs(30 * 86_400), Duration::from_secs(3600)));
        assert!(serde_json::from_str::<Retention>(r#"{"older_than": "30d", "key": "k.pem"}"#).is_err());
        assert!(Retention::new(Duration::from_secs(1), "k").every(Duration::ZERO).check().is_err());
    }

    #[test]
    fn a_marker_verifies_only_for_its_store_table_writer_and_values() {
        let s = signer();
        let marker = s.sign(b"zta-audit-sqlite/v1\n", "zta_audit", "w1", 7, [3; 32]);
        let key = s.public_key();
        assert!(marker.check(b"zta-audit-sqlite/v1\n", "zta_audit", &key).is_ok());
        assert!(marker.check(b"zta-audit-postgres/v1\n", "zta_audit", &key).is_err());
        assert!(marker.check(b"zta-audit-sqlite/v1\n", "other", &key).is_err());
        for forged in [
            PruneMarker { seq: 8, ..marker.clone() },
            PruneMarker { hash: [4; 32], ..marker.clone() },
            PruneMarker { writer: "w2".into(), ..marker.clone() },
        ] {
            assert!(forged.check(b"zta-audit-sqlite/v1\n", "zta_audit", &key).is_err(), "{forged:?}");
        }
        assert!(marker.check(b"zta-audit-sqlite/v1\n", "zta_audit", &signer().public_key()).is_err());
    }
}
