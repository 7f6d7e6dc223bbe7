//! The verifier: walks every segment and the checkpoint and names the first thing that is wrong.

use std::{
    fmt, io,
    path::{Path, PathBuf},
};

use crate::{
    checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointReadError, parse_public_key},
    format::{Entry, GENESIS, LineReader, chain_hash, check_json, hex_string, list_segments, parse_line},
};

/// What is wrong at one place in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordProblem {
    /// The line has no trailing newline: a write was cut short (a crash, or a cut).
    #[error("torn line (no trailing newline): a write was cut short")]
    Torn,
    /// The line is not in the layout the writer produces.
    #[error("malformed line: {0}")]
    Malformed(String),
    /// The stored hash is not the hash of the entry: it was edited.
    #[error("hash mismatch: the entry was edited")]
    HashMismatch,
    /// A later seq than expected: records were deleted (or moved).
    #[error("found seq {found}: records were deleted or reordered")]
    SeqGap {
        /// The seq found on the line.
        found: u64,
    },
    /// An earlier seq than expected: a record was inserted, duplicated or moved.
    #[error("found seq {found} again or out of order: a record was inserted, duplicated or reordered")]
    SeqBackwards {
        /// The seq found on the line.
        found: u64,
    },
    /// `prev_hash` is not the previous record's hash.
    #[error("prev_hash does not match the previous record's hash: the chain is broken")]
    BrokenLink,
    /// The record is not well-formed JSON.
    #[error("record is not valid JSON: {0}")]
    BadJson(String),
    /// The log ends before the seq the checkpoint names: its tail was cut.
    #[error(
        "missing: the checkpoint says the log reaches seq {checkpoint_seq} in `{checkpoint_file}`, \
         so records were cut from the end"
    )]
    MissingTail {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The segment the checkpoint names.
        checkpoint_file: String,
    },
    /// The record at the checkpoint's seq has another hash: the log was rewritten.
    #[error("hash differs from the checkpoint's: the log was rewritten")]
    CheckpointMismatch,
    /// The record at the checkpoint's seq is in another file than the checkpoint names.
    #[error("the checkpoint puts this record in `{checkpoint_file}`")]
    CheckpointWrongFile {
        /// The segment the checkpoint names.
        checkpoint_file: String,
    },
}

/// What is wrong with the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// There is none, though the log has records.
    #[error("is missing")]
    Missing,
    /// It cannot be parsed.
    #[error("is malformed: {0}")]
    Malformed(String),
    /// A public key was given but the checkpoint carries no signature.
    #[error("is not signed, but a public key was given")]
    Unsigned,
    /// It was signed with another key.
    #[error("was signed by key `{signed_by}`, not by the given key `{given}`")]
    WrongKey {
        /// Id of the key named in the checkpoint.
        signed_by: String,
        /// Id of the key given to the verifier.
        given: String,
    },
    /// The signature does not verify.
    #[error("has a signature that does not verify: the checkpoint was edited or forged")]
    BadSignature,
}

/// Why a log failed verification (or could not be verified). `Display` is a one-line
/// explanation naming the first bad place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The directory holds neither segments nor a checkpoint.
    #[error("`{}` holds no audit log (no `audit-NNNNNN.jsonl` files and no checkpoint)", dir.display())]
    NoLog {
        /// The directory.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read `{}`: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The public key given to the verifier is unusable.
    #[error("invalid checkpoint public key: {0}")]
    BadKey(String),
    /// A record (or a place where a record should be) is wrong.
    #[error("audit log broken at `{file}` line {line} (seq {seq}): {problem}")]
    Record {
        /// The segment file name.
        file: String,
        /// 1-based line number in that file.
        line: u64,
        /// The seq that belongs at this place.
        seq: u64,
        /// What is wrong.
        problem: RecordProblem,
    },
    /// The checkpoint is wrong.
    #[error("audit checkpoint `{}` {problem}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        problem: CheckpointProblem,
    },
}

/// How the checkpoint's signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureStatus {
    /// The checkpoint is unsigned and no key was given.
    Unsigned,
    /// The checkpoint is signed but no key was given, so the signature was not checked.
    NotChecked {
        /// Id of the signing key named in the checkpoint.
        key_id: String,
    },
    /// The signature verified with the given key.
    Verified {
        /// Id of the key.
        key_id: String,
    },
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The segment files, in order.
    pub files: Vec<String>,
    /// Records in the log.
    pub records: u64,
    /// Seq of the last record (0 when empty).
    pub last_seq: u64,
    /// Hash of the last record, hex (64 zeros when empty).
    pub last_hash: String,
    /// The seq the checkpoint vouches for; records after it are intact but not yet anchored.
    pub checkpoint_seq: u64,
    /// When the checkpoint was written (RFC 3339).
    pub checkpoint_time: String,
    /// How the checkpoint's signature was checked.
    pub signature: SignatureStatus,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok: {} records in {} files, last seq {} (hash {}); checkpoint at seq {} ({})",
            self.records,
            self.files.len(),
            self.last_seq,
            self.last_hash,
            self.checkpoint_seq,
            self.checkpoint_time
        )?;
        if self.last_seq > self.checkpoint_seq {
            write!(f, ", {} records after it", self.last_seq - self.checkpoint_seq)?;
        }
        match &self.signature {
            SignatureStatus::Unsigned => f.write_str(", unsigned"),
            SignatureStatus::NotChecked { key_id } => {
                write!(f, ", signed by `{key_id}` (not checked: no key given)")
            }
            SignatureStatus::Verified { key_id } => write!(f, ", signature by `{key_id}` verified"),
        }
    }
}

/// The expected continuation of the chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chain {
    /// The seq the next record must have.
    pub(crate) next_seq: u64,
    /// The hash the next record's `prev_hash` must equal.
    pub(crate) prev: [u8; 32],
}

impl Chain {
    /// The start of a log.
    pub(crate) const GENESIS: Self = Self { next_seq: 1, prev: GENESIS };

    /// Checks one line (without its newline) and advances.
    pub(crate) fn check<'a>(&mut self, line: &'a [u8]) -> Result<Entry<'a>, RecordProblem> {
        let e = parse_line(line).map_err(|m| RecordProblem::Malformed(m.to_owned()))?;
        self.check_entry(&e)?;
        Ok(e)
    }

    /// Checks one parsed entry and advances.
    pub(crate) fn check_entry(&mut self, e: &Entry<'_>) -> Result<(), RecordProblem> {
        if chain_hash(e.seq, &e.prev, e.record) != e.hash {
            return Err(RecordProblem::HashMismatch);
        }
        if e.seq > self.next_seq {
            return Err(RecordProblem::SeqGap { found: e.seq });
        }
        if e.seq < self.next_seq {
            return Err(RecordProblem::SeqBackwards { found: e.seq });
        }
        if e.prev != self.prev {
            return Err(RecordProblem::BrokenLink);
        }
        check_json(e.record).map_err(RecordProblem::BadJson)?;
        self.next_seq += 1;
        self.prev = e.hash;
        Ok(())
    }
}

/// Verifies the log in `dir`: every segment in order (seq continuity from 1, `prev_hash` links,
/// each hash, the exact line layout, JSON), then the checkpoint (its seq and hash must match a
/// record, so a cut tail is caught), and, when `public_key` is given, the checkpoint's
/// signature (an unsigned checkpoint is then refused).
///
/// `public_key` is an Ed25519 public key: 32 raw bytes, SubjectPublicKeyInfo DER, or PEM
/// (`PUBLIC KEY`; a PKCS#8 `PRIVATE KEY` PEM is accepted too and its public half used).
///
/// Meant for a log at rest: a log being written may end in a half-written line.
pub fn verify(dir: impl AsRef<Path>, public_key: Option<&[u8]>) -> Result<VerifyReport, VerifyError> {
    let dir = dir.as_ref();
    let public_key = public_key.map(parse_public_key).transpose().map_err(VerifyError::BadKey)?;
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |error| VerifyError::Io { path, error }
    };
    let segments = list_segments(dir).map_err(io_err(dir))?;
    let checkpoint = match Checkpoint::read(dir) {
        Ok(cp) => cp,
        Err((path, CheckpointReadError::Io(error))) => return Err(VerifyError::Io { path, error }),
        Err((path, CheckpointReadError::Problem(problem))) => {
            return Err(VerifyError::Checkpoint { path, problem });
        }
    };
    if segments.is_empty() && checkpoint.is_none() {
        return Err(VerifyError::NoLog { dir: dir.to_owned() });
    }

    let mut chain = Chain::GENESIS;
    let mut checkpoint_seen = false;
    let mut end = ("", 0u64); // (file, lines) of the last file
    for (_, name) in &segments {
        let path = dir.join(name);
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        let mut lines = LineReader::new(file);
        let at =
            |line: u64, seq: u64, problem| VerifyError::Record { file: name.clone(), line, seq, problem };
        while let Some(line) = lines.next_line().map_err(io_err(&path))? {
            let (line_no, seq) = (line.line_no, chain.next_seq);
            if !line.complete {
                return Err(at(line_no, seq, RecordProblem::Torn));
            }
            let entry = chain.check(line.bytes).map_err(|p| at(line_no, seq, p))?;
            if let Some(cp) = &checkpoint
                && cp.seq == entry.seq
            {
                if cp.hash != entry.hash {
                    return Err(at(line_no, seq, RecordProblem::CheckpointMismatch));
                }
                if cp.file != *name {
                    let checkpoint_file = cp.file.clone();
                    return Err(at(line_no, seq, RecordProblem::CheckpointWrongFile { checkpoint_file }));
                }
                checkpoint_seen = true;
            }
        }
        end = (name, lines.line_no);
    }
    let last_seq = chain.next_seq - 1;

    let cp_path = dir.join(CHECKPOINT_FILE);
    let Some(cp) = checkpoint else {
        return Err(VerifyError::Checkpoint { path: cp_path, problem: CheckpointProblem::Missing });
    };
    if cp.seq > last_seq {
        let file = if end.0.is_empty() { cp.file.clone() } else { end.0.to_owned() };
        return Err(VerifyError::Record {
            file,
            line: end.1 + 1,
            seq: last_seq + 1,
            problem: RecordProblem::MissingTail { checkpoint_seq: cp.seq, checkpoint_file: cp.file.clone() },
        });
    }
    if cp.seq == 0 && (cp.hash != GENESIS || cp.file_no != 1) {
        let problem =
            CheckpointProblem::Malformed("seq 0 must name the genesis hash and the first file".into());
        return Err(VerifyError::Checkpoint { path: cp_path, problem });
    }
    debug_assert!(cp.seq == 0 || checkpoint_seen);
    let signature = match (&public_key, &cp.key_id) {
        (Some(key), _) => {
            cp.verify_signature(key)
                .map_err(|problem| VerifyError::Checkpoint { path: cp_path.clone(), problem })?;
            SignatureStatus::Verified { key_id: cp.key_id.clone().unwrap_or_default() }
        }
        (None, Some(id)) => SignatureStatus::NotChecked { key_id: id.clone() },
        (None, None) => SignatureStatus::Unsigned,
    };
    Ok(VerifyReport {
        files: segments.into_iter().map(|(_, n)| n).collect(),
        records: last_seq,
        last_seq,
        last_hash: hex_string(&chain.prev),
        checkpoint_seq: cp.seq,
        checkpoint_time: cp.time,
        signature,
    })
}
