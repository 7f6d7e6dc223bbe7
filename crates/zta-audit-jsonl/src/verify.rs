//! The verifier: walks every segment and the checkpoint (and an anchor file, and any loss
//! files) and names the first thing that is wrong.

use std::{
    collections::HashMap,
    fmt, io,
    path::{Path, PathBuf},
};

use zta_audit_chain::{AnchorEntry, CheckpointAnchor};

use crate::{
    checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointReadError, key_id, parse_public_key},
    format::{Entry, GENESIS, LineReader, chain_hash, check_json, hex_string, list_segments, parse_line},
    lost::{RecordId, read_loss_files, record_id},
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

/// How an anchor shows that the log was rolled back or cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackProblem {
    /// The log ends before the anchored checkpoint's seq.
    #[error("the log ends at seq {last_seq}: records were cut from the end")]
    LogEndsBefore {
        /// The log's last seq.
        last_seq: u64,
    },
    /// The log's record at the anchored seq has another hash.
    #[error("the log's record at that seq has another hash: the log was rewritten")]
    HashDiffers,
    /// The checkpoint beside the log is older than the anchored one.
    #[error("the checkpoint beside the log is at seq {checkpoint_seq} ({}): an older checkpoint was put back",
        checkpoint_time.as_deref().unwrap_or("missing"))]
    CheckpointOlder {
        /// The local checkpoint's seq (0 if there is none).
        checkpoint_seq: u64,
        /// When the local checkpoint was written, if there is one.
        checkpoint_time: Option<String>,
    },
    /// A later anchored checkpoint goes back to a lower seq (or the same seq with another
    /// hash): the log was rolled back and the sink wrote on from there.
    #[error(
        "anchored checkpoint {line} (in the order published) goes back to seq {found}: the log was rolled back and written on"
    )]
    WentBackwards {
        /// 1-based place in the anchor: the line of an anchor file, the entry of a store.
        line: u64,
        /// The seq on that line.
        found: u64,
    },
}

/// Records that a failed writer reported lost, and that the log does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loss {
    /// The loss file (`lost-<time>.txt`) in the log directory that lists their request ids.
    pub file: String,
    /// The last record known durable when the writer failed.
    pub after_seq: u64,
    /// Listed records the log does not hold.
    pub missing: u64,
    /// Records the file lists.
    pub listed: u64,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records were lost after seq {} (their request ids are in `{}`)",
            self.missing, self.after_seq, self.file
        )
    }
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
    /// The anchor shows a newer checkpoint than the log and its checkpoint bear out.
    #[error(
        "audit log rolled back or cut: the anchor {anchor} has a checkpoint at seq {anchored_seq} ({anchored_time}), \
         but {problem}"
    )]
    RolledBack {
        /// The anchor: ``file `PATH` `` or the store and the log's id in it.
        anchor: String,
        /// The anchored checkpoint's seq.
        anchored_seq: u64,
        /// When it was written (RFC 3339).
        anchored_time: String,
        /// What the log or its checkpoint shows instead.
        problem: RollbackProblem,
    },
    /// The anchor cannot be used (unreadable, empty for this log, or holding a checkpoint
    /// whose signature does not verify: a forged entry).
    #[error("audit anchor {anchor} {problem}")]
    Anchor {
        /// The anchor: ``file `PATH` `` or the store and the log's id in it.
        anchor: String,
        /// What is wrong.
        problem: String,
    },
    /// The chain is intact, but a failed writer reported records lost that the log does not
    /// hold: requests may have been permitted without a record.
    #[error("audit records lost: {}", losses.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Lost {
        /// Each loss file with records missing.
        losses: Vec<Loss>,
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

/// What the anchor held, when one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnchorReport {
    /// The anchor: ``file `PATH` `` or the store and the log's id in it.
    pub anchor: String,
    /// The newest anchored checkpoint's seq; the log matches it.
    pub seq: u64,
    /// When that checkpoint was written (RFC 3339).
    pub time: String,
    /// Anchored checkpoints checked against the log.
    pub checkpoints: u64,
    /// Lines that were not a checkpoint (a torn append) and were skipped (a file only).
    pub skipped_lines: u64,
}

impl AnchorReport {
    /// Records after the newest anchored checkpoint: how far the anchor lags the log.
    pub fn lag(&self, report: &VerifyReport) -> u64 {
        report.last_seq.saturating_sub(self.seq)
    }
}

/// What a successful verification found. Check [`tail_protected`](Self::tail_protected):
/// without a verified signature the chain is intact but its end is not protected.
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
    /// What the anchor held, when one was given.
    pub anchor: Option<AnchorReport>,
}

impl VerifyReport {
    /// Whether the checkpoint's signature was verified. If not (the checkpoint is unsigned, or
    /// no key was given), the chain is intact but its tail is unprotected: anyone able to write
    /// the directory can cut records from the end and write a matching unsigned checkpoint.
    pub fn tail_protected(&self) -> bool {
        matches!(self.signature, SignatureStatus::Verified { .. })
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.signature {
            SignatureStatus::Verified { .. } => f.write_str("ok: ")?,
            SignatureStatus::Unsigned => f.write_str(
                "chain intact, but the tail is UNPROTECTED: the checkpoint is unsigned, so records cut \
                 from the end with a rewritten checkpoint would look the same; ",
            )?,
            SignatureStatus::NotChecked { .. } => f.write_str(
                "chain intact, but the tail is UNPROTECTED: no public key was given to check the \
                 checkpoint's signature, so records cut from the end with a rewritten unsigned \
                 checkpoint would look the same; ",
            )?,
        }
        write!(
            f,
            "{} records in {} files, last seq {} (hash {}); checkpoint at seq {} ({})",
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
        }?;
        match &self.anchor {
            Some(a) => {
                write!(
                    f,
                    "; matches the anchor's newest checkpoint, seq {} ({}), in {}",
                    a.seq, a.time, a.anchor
                )?;
                match a.lag(self) {
                    0 => f.write_str(", the anchor is up to date"),
                    lag => write!(f, ", the anchor lags by {lag} records"),
                }
            }
            None => Ok(()),
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

/// What [`verify_with`] checks besides the chain.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    public_key: Option<&'a [u8]>,
    anchor: Option<AnchorSource<'a>>,
    losses: bool,
}

/// Where the anchored checkpoints come from.
#[derive(Debug, Clone, Copy)]
enum AnchorSource<'a> {
    File(&'a Path),
    /// A store's entries for one log, read by [`verify_anchored`]: (description, entries).
    Store(&'a str, &'a [AnchorEntry]),
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        Self { public_key: None, anchor: None, losses: true }
    }
}

impl<'a> VerifyOptions<'a> {
    /// No key, no anchor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The checkpoint's Ed25519 public key: 32 raw bytes, SubjectPublicKeyInfo DER, or PEM
    /// (`PUBLIC KEY`; a PKCS#8 `PRIVATE KEY` PEM is accepted too and its public half used).
    /// An unsigned checkpoint is then refused.
    #[must_use]
    pub fn public_key(mut self, key: &'a [u8]) -> Self {
        self.public_key = Some(key);
        self
    }

    /// An anchor file (JSON lines of published checkpoints, see
    /// [`AnchorConfig`](crate::AnchorConfig)) to hold the log against.
    #[must_use]
    pub fn anchor(mut self, path: &'a Path) -> Self {
        self.anchor = Some(AnchorSource::File(path));
        self
    }

    /// Skips the loss files (recovery uses the verifier to explain a chain problem).
    pub(crate) fn without_losses(mut self) -> Self {
        self.losses = false;
        self
    }
}

/// Verifies the log in `dir`: every segment in order (seq continuity from 1, `prev_hash` links,
/// each hash, the exact line layout, JSON), then the checkpoint (its seq and hash must match a
/// record, so a cut tail is caught), and, when `public_key` is given, the checkpoint's
/// signature (an unsigned checkpoint is then refused). Loss files a failed writer left are
/// checked too ([`VerifyError::Lost`]).
///
/// `public_key` is an Ed25519 public key: 32 raw bytes, SubjectPublicKeyInfo DER, or PEM
/// (`PUBLIC KEY`; a PKCS#8 `PRIVATE KEY` PEM is accepted too and its public half used).
/// Without it the report says the tail is unprotected ([`VerifyReport::tail_protected`]).
///
/// Meant for a log at rest: a log being written may end in a half-written line.
pub fn verify(dir: impl AsRef<Path>, public_key: Option<&[u8]>) -> Result<VerifyReport, VerifyError> {
    let options = VerifyOptions::new();
    verify_with(dir, public_key.map_or(options, |k| options.public_key(k)))
}

/// [`verify`] with options: a public key and an anchor file. With an anchor, every anchored
/// checkpoint must match the log's record at its seq, anchored seqs must never go back, the log
/// must reach the newest anchored seq and the checkpoint beside the log must not be older;
/// otherwise [`VerifyError::RolledBack`]. With a public key, every anchored checkpoint's
/// signature must verify too ([`VerifyError::Anchor`] names a forged one).
pub fn verify_with(dir: impl AsRef<Path>, options: VerifyOptions<'_>) -> Result<VerifyReport, VerifyError> {
    let dir = dir.as_ref();
    let public_key = options.public_key.map(parse_public_key).transpose().map_err(VerifyError::BadKey)?;
    verify_parsed(dir, public_key, options)
}

/// [`verify_with`] against the checkpoints the sink published to an anchor store as the log
/// `log_id` (see [`AnchorConfig::store`](crate::AnchorConfig::store)): the store's entries of
/// that log signed by `public_key` are read first (held in memory, about 200 bytes each),
/// then the log is walked on the calling thread. Every entry's signature must verify (a
/// forged one is [`VerifyError::Anchor`]), and the log must bear out every entry
/// ([`VerifyError::RolledBack`] says whether it was cut or rewritten, and where). The report's
/// [`AnchorReport::lag`] says how many records the anchor has not seen yet.
///
/// An anchor holding no entry of this log (a wrong `log_id` or key, or a sink that never
/// reached it) is refused: it vouches for nothing.
pub async fn verify_anchored(
    dir: impl AsRef<Path>,
    public_key: &[u8],
    store: &dyn CheckpointAnchor,
    log_id: &str,
) -> Result<VerifyReport, VerifyError> {
    let raw = parse_public_key(public_key).map_err(VerifyError::BadKey)?;
    zta_audit_chain::check_log_id(log_id).map_err(|problem| VerifyError::Anchor {
        anchor: store.describe(),
        problem: format!("cannot be asked: {problem}"),
    })?;
    let key_id = key_id(&raw);
    let described = format!("{} (log `{log_id}`, key `{key_id}`)", store.describe());
    let entries = store.entries(log_id, &key_id).await.map_err(|e| VerifyError::Anchor {
        anchor: described.clone(),
        problem: format!("cannot be read: {e}"),
    })?;
    let options = VerifyOptions::new().public_key(public_key);
    verify_parsed(
        dir.as_ref(),
        Some(raw),
        VerifyOptions { anchor: Some(AnchorSource::Store(&described, &entries)), ..options },
    )
}

fn verify_parsed(
    dir: &Path,
    public_key: Option<[u8; 32]>,
    options: VerifyOptions<'_>,
) -> Result<VerifyReport, VerifyError> {
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
    let mut anchor = options.anchor.map(|a| AnchorWalk::open(a, public_key)).transpose()?;
    let mut losses = if options.losses {
        let files = read_loss_files(dir).map_err(|(path, error)| VerifyError::Io { path, error })?;
        Losses::new(files)
    } else {
        Losses::new(Vec::new())
    };

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
            if let Some(anchor) = &mut anchor {
                anchor.check(&entry)?;
            }
            if entry.seq > losses.after_seq {
                losses.seen(entry.record);
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
    let anchor = match anchor {
        Some(walk) => Some(walk.finish(last_seq, &cp)?),
        None => None,
    };
    losses.finish()?;
    Ok(VerifyReport {
        files: segments.into_iter().map(|(_, n)| n).collect(),
        records: last_seq,
        last_seq,
        last_hash: hex_string(&chain.prev),
        checkpoint_seq: cp.seq,
        checkpoint_time: cp.time,
        signature,
        anchor,
    })
}

/// Holds the log against an anchor while it is walked: anchored checkpoints come in seq
/// order, so each is compared with the log's record at its seq as the walk passes it.
struct AnchorWalk<'a> {
    anchor: String,
    entries: Entries<'a>,
    /// Checks each anchored checkpoint's signature, when given.
    public_key: Option<[u8; 32]>,
    /// The next anchored checkpoint no record has been compared with yet.
    next: Option<Checkpoint>,
    /// The newest anchored checkpoint read so far.
    newest: Option<Checkpoint>,
    checkpoints: u64,
    skipped_lines: u64,
}

/// The anchored checkpoints, in the order they were published.
enum Entries<'a> {
    File(PathBuf, LineReader),
    Store(std::iter::Enumerate<std::slice::Iter<'a, AnchorEntry>>),
}

impl<'a> AnchorWalk<'a> {
    fn open(source: AnchorSource<'a>, public_key: Option<[u8; 32]>) -> Result<Self, VerifyError> {
        let (anchor, entries) = match source {
            AnchorSource::File(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|error| VerifyError::Io { path: path.to_owned(), error })?;
                (format!("file `{}`", path.display()), Entries::File(path.to_owned(), LineReader::new(file)))
            }
            AnchorSource::Store(described, entries) => {
                (described.to_owned(), Entries::Store(entries.iter().enumerate()))
            }
        };
        let mut walk =
            Self { anchor, entries, public_key, next: None, newest: None, checkpoints: 0, skipped_lines: 0 };
        walk.advance()?;
        Ok(walk)
    }

    fn rolled_back(&self, anchored: &Checkpoint, problem: RollbackProblem) -> VerifyError {
        VerifyError::RolledBack {
            anchor: self.anchor.clone(),
            anchored_seq: anchored.seq,
            anchored_time: anchored.time.clone(),
            problem,
        }
    }

    fn unusable(&self, place: u64, problem: impl fmt::Display) -> VerifyError {
        let what = match self.entries {
            Entries::File(..) => "line",
            Entries::Store(..) => "entry",
        };
        VerifyError::Anchor { anchor: self.anchor.clone(), problem: format!("{what} {place}: {problem}") }
    }

    /// The next anchored checkpoint and its 1-based place, `None` at the end. A file's line
    /// that does not parse is a torn append (a crash mid-write) and anchors nothing; a store's
    /// entry that does not parse, or whose copies disagree with its checkpoint, is refused.
    fn read(&mut self) -> Result<Option<(u64, Checkpoint)>, VerifyError> {
        loop {
            let (place, cp) = match &mut self.entries {
                Entries::File(path, lines) => {
                    let Some(line) =
                        lines.next_line().map_err(|error| VerifyError::Io { path: path.clone(), error })?
                    else {
                        return Ok(None);
                    };
                    match Checkpoint::parse(line.bytes) {
                        Ok(cp) => (line.line_no, cp),
                        Err(_) => {
                            self.skipped_lines += 1;
                            continue;
                        }
                    }
                }
                Entries::Store(entries) => {
                    let Some((i, entry)) = entries.next() else { return Ok(None) };
                    let place = i as u64 + 1;
                    let cp = Checkpoint::parse(entry.checkpoint.as_bytes())
                        .map_err(|p| self.unusable(place, format!("the checkpoint {p}")))?;
                    if cp.seq != entry.seq
                        || hex_string(&cp.hash) != entry.hash
                        || cp.key_id.as_deref() != Some(entry.key_id.as_str())
                    {
                        return Err(self.unusable(
                            place,
                            format!(
                                "says seq {} but holds a checkpoint at seq {} (or another hash or key): it was edited",
                                entry.seq, cp.seq
                            ),
                        ));
                    }
                    (place, cp)
                }
            };
            if let Some(key) = &self.public_key {
                cp.verify_signature(key)
                    .map_err(|p| self.unusable(place, format!("the checkpoint at seq {} {p}", cp.seq)))?;
            }
            return Ok(Some((place, cp)));
        }
    }

    /// Reads the next anchored checkpoint into `next`; refuses one that goes back.
    fn advance(&mut self) -> Result<(), VerifyError> {
        self.next = None;
        let Some((place, cp)) = self.read()? else { return Ok(()) };
        if let Some(newest) = &self.newest
            && (cp.seq < newest.seq || (cp.seq == newest.seq && cp.hash != newest.hash))
        {
            let problem = RollbackProblem::WentBackwards { line: place, found: cp.seq };
            return Err(self.rolled_back(newest, problem));
        }
        if cp.seq == 0 && cp.hash != GENESIS {
            return Err(self.rolled_back(&cp, RollbackProblem::HashDiffers));
        }
        self.checkpoints += 1;
        self.newest = Some(cp.clone());
        self.next = Some(cp);
        Ok(())
    }

    /// Compares the anchored checkpoints at or before `entry`'s seq with it.
    fn check(&mut self, entry: &Entry<'_>) -> Result<(), VerifyError> {
        while let Some(next) = &self.next
            && next.seq <= entry.seq
        {
            // Earlier seqs were compared as the walk passed them; only seq 0 is left behind.
            if next.seq == entry.seq && next.hash != entry.hash {
                return Err(self.rolled_back(next, RollbackProblem::HashDiffers));
            }
            self.advance()?;
        }
        Ok(())
    }

    /// After the walk: the log must reach the newest anchored seq, and the local checkpoint
    /// must not be older than it.
    fn finish(mut self, last_seq: u64, local: &Checkpoint) -> Result<AnchorReport, VerifyError> {
        while self.next.is_some() {
            self.advance()?;
        }
        let Some(newest) = self.newest.clone() else {
            let problem = match self.entries {
                Entries::File(..) => "holds no checkpoint",
                Entries::Store(..) => "holds no checkpoint of this log signed by this key",
            };
            return Err(VerifyError::Anchor { anchor: self.anchor, problem: problem.into() });
        };
        if newest.seq > last_seq {
            return Err(self.rolled_back(&newest, RollbackProblem::LogEndsBefore { last_seq }));
        }
        if local.seq < newest.seq {
            let problem = RollbackProblem::CheckpointOlder {
                checkpoint_seq: local.seq,
                checkpoint_time: Some(local.time.clone()),
            };
            return Err(self.rolled_back(&newest, problem));
        }
        Ok(AnchorReport {
            anchor: self.anchor,
            seq: newest.seq,
            time: newest.time,
            checkpoints: self.checkpoints,
            skipped_lines: self.skipped_lines,
        })
    }
}

/// Finds the records loss files list in the log, as it is walked.
struct Losses {
    files: Vec<(String, u64, u64)>,
    /// Per file, listed records found in the log.
    found: Vec<u64>,
    /// Listed id -> its file.
    ids: HashMap<RecordId, usize>,
    /// Records at or before this seq were durable before any loss.
    after_seq: u64,
}

impl Losses {
    fn new(files: Vec<crate::lost::LossFile>) -> Self {
        let mut ids = HashMap::new();
        let after_seq = files.iter().map(|f| f.after_seq).min().unwrap_or(u64::MAX);
        let files = files
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                for id in f.ids.iter().flatten() {
                    ids.entry(*id).or_insert(i);
                }
                (f.name, f.after_seq, f.ids.len() as u64)
            })
            .collect::<Vec<_>>();
        Self { found: vec![0; files.len()], files, ids, after_seq }
    }

    fn seen(&mut self, record: &[u8]) {
        if let Some(i) = self.ids.remove(&record_id(record))
            && let Some(found) = self.found.get_mut(i)
        {
            *found += 1;
        }
    }

    fn finish(self) -> Result<(), VerifyError> {
        let losses: Vec<Loss> = self
            .files
            .into_iter()
            .zip(self.found)
            .filter(|((_, _, listed), found)| found < listed)
            .map(|((file, after_seq, listed), found)| Loss {
                file,
                after_seq,
                missing: listed - found,
                listed,
            })
            .collect();
        if losses.is_empty() { Ok(()) } else { Err(VerifyError::Lost { losses }) }
    }
}
