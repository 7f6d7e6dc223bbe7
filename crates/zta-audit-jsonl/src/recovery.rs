//! Recovery on open: find where the chain ends, cut off a torn tail, refuse a log that does not
//! reach its checkpoint.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::{
    Error,
    checkpoint::{Checkpoint, CheckpointReadError, CheckpointWriter},
    format::{GENESIS, LineReader, create_options, list_segments, parse_line, segment_name},
    verify::{Chain, CheckpointProblem, RecordProblem, VerifyError},
};

/// What [`JsonlSink::open`](crate::JsonlSink::open) did about a torn tail: the end of the last
/// segment after the checkpoint that was not a sound continuation of the chain (typically a line
/// half-written when the process or machine died). Those bytes were moved to `saved_as` and cut
/// off, and the chain resumed after the last good record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The segment whose tail was cut off.
    pub file: PathBuf,
    /// 1-based line number of the first torn line.
    pub line: u64,
    /// The byte offset where it was cut (its new length).
    pub offset: u64,
    /// How many bytes were cut off.
    pub torn_bytes: u64,
    /// Where those bytes were saved for forensics (`<file>.torn-<n>`).
    pub saved_as: PathBuf,
    /// Why the first cut line was not kept.
    pub problem: RecordProblem,
    /// The seq of the last good record; the next record gets the one after.
    pub resumed_after_seq: u64,
}

/// Where the writer picks up.
#[derive(Debug)]
pub(crate) struct Resume {
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
    pub(crate) file: File,
    pub(crate) file_no: u64,
    pub(crate) file_len: u64,
    pub(crate) last_record_file_no: u64,
    pub(crate) recovery: Option<Recovery>,
}

struct Torn {
    file_no: u64,
    line: u64,
    offset: u64,
    problem: RecordProblem,
}

fn integrity(dir: &Path, error: VerifyError) -> Error {
    Error::Integrity { dir: dir.to_owned(), error }
}

fn open_segment(dir: &Path, file_no: u64) -> Result<File, Error> {
    let path = dir.join(segment_name(file_no));
    create_options().append(true).create(true).open(&path).map_err(Error::io("open", path))
}

/// Starts the first segment of a log that has no records yet.
fn empty_log(dir: &Path, dir_handle: &File) -> Result<Resume, Error> {
    let file = open_segment(dir, 1)?;
    dir_handle.sync_all().map_err(Error::io("sync", dir))?;
    Ok(Resume {
        seq: 0,
        prev: GENESIS,
        file,
        file_no: 1,
        file_len: 0,
        last_record_file_no: 1,
        recovery: None,
    })
}

/// Scans from the checkpoint's segment to the end and prepares the writer.
pub(crate) fn recover(dir: &Path, dir_handle: &File, checkpoint: &CheckpointWriter) -> Result<Resume, Error> {
    let segments = list_segments(dir).map_err(Error::io("list", dir))?;
    let cp = match Checkpoint::read(dir) {
        Ok(cp) => cp,
        Err((path, CheckpointReadError::Io(error))) => return Err(Error::Io { action: "read", path, error }),
        Err((path, CheckpointReadError::Problem(problem))) => {
            return Err(integrity(dir, VerifyError::Checkpoint { path, problem }));
        }
    };
    let cp_path = dir.join(crate::checkpoint::CHECKPOINT_FILE);

    let Some(cp) = cp else {
        if !segments.is_empty() {
            return Err(integrity(
                dir,
                VerifyError::Checkpoint { path: cp_path, problem: CheckpointProblem::Missing },
            ));
        }
        // A new log: the checkpoint first, so that a log file never exists without one.
        checkpoint.write(0, &GENESIS, &segment_name(1)).map_err(Error::io("write", &cp_path))?;
        return empty_log(dir, dir_handle);
    };

    let missing_tail = |file: String, line: u64, seq: u64| {
        integrity(
            dir,
            VerifyError::Record {
                file,
                line,
                seq,
                problem: RecordProblem::MissingTail {
                    checkpoint_seq: cp.seq,
                    checkpoint_file: cp.file.clone(),
                },
            },
        )
    };
    if segments.is_empty() {
        if cp.seq != 0 {
            return Err(missing_tail(cp.file.clone(), 1, 1));
        }
        return empty_log(dir, dir_handle);
    }
    let Some(start) = segments.iter().position(|(n, _)| *n == cp.file_no) else {
        // The checkpoint's segment is gone: let the verifier say precisely what is missing.
        return Err(integrity(dir, verify_error(dir, &cp_path)));
    };

    let anchor = if cp.file_no == 1 { Some(Chain::GENESIS) } else { anchor_after(dir, cp.file_no - 1) };
    let Some(mut chain) = anchor else {
        // The segment before the checkpoint's is missing or does not end in a sound entry.
        return Err(integrity(dir, verify_error(dir, &cp_path)));
    };
    let mut checkpoint_seen = cp.seq == 0;
    let mut last_record_file_no = cp.file_no;
    let mut torn = None;
    let mut end = (String::new(), 0u64);
    // INVARIANT: `start` is a position found in `segments` just above.
    debug_assert!(start < segments.len());
    let scanned = segments.get(start..).unwrap_or_default();
    'files: for (i, (file_no, name)) in scanned.iter().enumerate() {
        let is_last = i + 1 == scanned.len();
        let path = dir.join(name);
        let mut lines = LineReader::new(File::open(&path).map_err(Error::io("open", &path))?);
        while let Some(line) = lines.next_line().map_err(Error::io("read", &path))? {
            let expected = chain.next_seq;
            let checked = if line.complete { chain.check(line.bytes) } else { Err(RecordProblem::Torn) };
            match checked {
                Ok(e) => {
                    last_record_file_no = *file_no;
                    if e.seq == cp.seq {
                        let at = |problem| VerifyError::Record {
                            file: name.clone(),
                            line: line.line_no,
                            seq: e.seq,
                            problem,
                        };
                        if e.hash != cp.hash {
                            return Err(integrity(dir, at(RecordProblem::CheckpointMismatch)));
                        }
                        if *file_no != cp.file_no {
                            let checkpoint_file = cp.file.clone();
                            return Err(integrity(
                                dir,
                                at(RecordProblem::CheckpointWrongFile { checkpoint_file }),
                            ));
                        }
                        checkpoint_seen = true;
                    }
                }
                // After the checkpoint, in the last segment: never committed, so a crash artefact.
                Err(problem) if is_last && checkpoint_seen => {
                    torn = Some(Torn { file_no: *file_no, line: line.line_no, offset: line.offset, problem });
                    break 'files;
                }
                Err(problem) => {
                    let error = VerifyError::Record {
                        file: name.clone(),
                        line: line.line_no,
                        seq: expected,
                        problem,
                    };
                    return Err(integrity(dir, error));
                }
            }
        }
        end = (name.clone(), lines.line_no);
    }
    let seq = chain.next_seq - 1;
    if !checkpoint_seen {
        if seq >= cp.seq {
            let problem = RecordProblem::CheckpointWrongFile { checkpoint_file: cp.file.clone() };
            return Err(integrity(
                dir,
                VerifyError::Record { file: cp.file.clone(), line: 1, seq: cp.seq, problem },
            ));
        }
        return Err(missing_tail(end.0, end.1 + 1, seq + 1));
    }

    let (last_no, last_name) = segments.last().map(|(n, name)| (*n, name.clone())).unwrap_or_default();
    let recovery = match torn {
        Some(t) => Some(cut_tail(dir, dir_handle, &dir.join(segment_name(t.file_no)), t, seq)?),
        None => None,
    };
    let path = dir.join(&last_name);
    let file = OpenOptions::new().append(true).open(&path).map_err(Error::io("open", &path))?;
    let file_len = file.metadata().map_err(Error::io("stat", &path))?.len();
    if seq != cp.seq {
        // Anchor what survived (records written after the last checkpoint) before writing more.
        file.sync_data().map_err(Error::io("sync", &path))?;
        checkpoint
            .write(seq, &chain.prev, &segment_name(last_record_file_no))
            .map_err(Error::io("write", &cp_path))?;
    }
    Ok(Resume { seq, prev: chain.prev, file, file_no: last_no, file_len, last_record_file_no, recovery })
}

/// The verifier's account of a log that recovery found inconsistent.
fn verify_error(dir: &Path, cp_path: &Path) -> VerifyError {
    match crate::verify_with(dir, crate::VerifyOptions::new().without_losses()) {
        Err(error) => error,
        Ok(_) => VerifyError::Checkpoint {
            path: cp_path.to_owned(),
            problem: CheckpointProblem::Malformed("does not match the log".into()),
        },
    }
}

/// The chain continuing after the last entry of segment `file_no`, if that entry is sound.
fn anchor_after(dir: &Path, file_no: u64) -> Option<Chain> {
    let line = last_line(&dir.join(segment_name(file_no))).ok()??;
    let e = parse_line(&line).ok()?;
    let mut chain = Chain { next_seq: e.seq, prev: e.prev };
    chain.check_entry(&e).ok()?;
    Some(chain)
}

/// The last complete line of a file (without its newline), read from the end.
fn last_line(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(start))?;
        f.read_to_end(&mut buf)?;
        let Some(body) = buf.strip_suffix(b"\n") else { return Ok(None) };
        match body.iter().rposition(|b| *b == b'\n') {
            Some(i) => return Ok(body.get(i + 1..).map(<[u8]>::to_vec)),
            None if start == 0 => return Ok(Some(body.to_vec())),
            None => window = window.saturating_mul(4),
        }
    }
}

/// Moves the torn tail of `path` aside and truncates the segment.
fn cut_tail(dir: &Path, dir_handle: &File, path: &Path, torn: Torn, seq: u64) -> Result<Recovery, Error> {
    let mut src = File::open(path).map_err(Error::io("open", path))?;
    let len = src.metadata().map_err(Error::io("stat", path))?.len();
    let mut tail = Vec::new();
    src.seek(SeekFrom::Start(torn.offset))
        .and_then(|_| src.read_to_end(&mut tail))
        .map_err(Error::io("read", path))?;
    let saved_as = save_aside(path, &tail)?;
    let f = OpenOptions::new().write(true).open(path).map_err(Error::io("open", path))?;
    f.set_len(torn.offset).and_then(|()| f.sync_all()).map_err(Error::io("truncate", path))?;
    dir_handle.sync_all().map_err(Error::io("sync", dir))?;
    let recovery = Recovery {
        file: path.to_owned(),
        line: torn.line,
        offset: torn.offset,
        torn_bytes: len - torn.offset,
        saved_as,
        problem: torn.problem,
        resumed_after_seq: seq,
    };
    tracing::warn!(
        file = %recovery.file.display(),
        line = recovery.line,
        offset = recovery.offset,
        torn_bytes = recovery.torn_bytes,
        saved_as = %recovery.saved_as.display(),
        problem = %recovery.problem,
        resumed_after_seq = seq,
        "audit log had a torn tail after its checkpoint; moved it aside and resumed the chain"
    );
    Ok(recovery)
}

/// Writes `bytes` to the first free `<path>.torn-<n>` and syncs it.
fn save_aside(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    for n in 1u32.. {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{n}"));
        let aside = PathBuf::from(name);
        match create_options().write(true).create_new(true).open(&aside) {
            Ok(mut f) => {
                f.write_all(bytes).and_then(|()| f.sync_all()).map_err(Error::io("write", &aside))?;
                return Ok(aside);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Io { action: "create", path: aside, error: e }),
        }
    }
    Err(Error::Io {
        action: "create",
        path: path.to_owned(),
        error: io::Error::other("no free `.torn-<n>` name"),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn save_aside_picks_a_free_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit-000001.jsonl");
        let a = save_aside(&p, b"one").unwrap();
        let b = save_aside(&p, b"two").unwrap();
        assert!(a.to_string_lossy().ends_with(".torn-1"));
        assert!(b.to_string_lossy().ends_with(".torn-2"));
        assert_eq!(fs::read(b).unwrap(), b"two");
    }
}
