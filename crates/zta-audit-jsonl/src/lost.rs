//! Records lost when the writer fails. A record returned to its caller as queued may already
//! have let a request through; if the writer then fails before the record is durable, the loss
//! is reported with every lost record's id (= the request id): in an error log line and in a
//! `lost-<time>.txt` file beside the log, which [`verify`](crate::verify) reports until it is
//! moved away.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::format::create_options;

/// A record id as the writer keeps it until the record is durable: the hyphenated UUID's 36
/// bytes, or all zeros when the record did not start with one.
pub(crate) type RecordId = [u8; 36];

/// Stands for a record whose id could not be read.
const UNKNOWN: RecordId = [0; 36];

/// What `AuditRecord::write_json` starts every record with.
const ID_PREFIX: &[u8] = b"{\"id\":\"";

/// The first line of a loss file.
const HEADER: &str = "# zta-audit-jsonl lost records v1";

/// The id a record's JSON starts with.
pub(crate) fn record_id(record: &[u8]) -> RecordId {
    let id = record.strip_prefix(ID_PREFIX).and_then(|rest| match rest.get(36) {
        Some(b'"') => rest.get(..36).and_then(|id| RecordId::try_from(id).ok()),
        _ => None,
    });
    id.unwrap_or(UNKNOWN)
}

/// Adds the ids of the queued records after the first `skip` (`ends` as the queue keeps them).
pub(crate) fn queued_ids(bytes: &[u8], ends: &[usize], skip: usize, out: &mut Vec<RecordId>) {
    let mut start = match skip.checked_sub(1) {
        None => 0,
        // INVARIANT: `skip` counts records already written out of `ends`, so `i < ends.len()`.
        Some(i) => {
            debug_assert!(i < ends.len());
            ends.get(i).copied().unwrap_or(bytes.len())
        }
    };
    for &end in ends.iter().skip(skip) {
        out.push(bytes.get(start..end).map_or(UNKNOWN, record_id));
        start = end;
    }
}

fn id_text(id: &RecordId) -> &str {
    if *id == UNKNOWN { "unknown" } else { std::str::from_utf8(id).unwrap_or("unknown") }
}

/// Reports that the writer stopped on `error` with `ids` accepted but not durable; `after_seq`
/// is the last record known to be durable. Logs at error level and writes the loss file.
pub(crate) fn report(dir: &Path, error: &str, after_seq: u64, ids: &[RecordId]) {
    if ids.is_empty() {
        tracing::error!(
            error,
            after_seq,
            "audit writer failed; the sink refuses further records (every request is denied). \
             No accepted record was lost"
        );
        return;
    }
    let list: Vec<&str> = ids.iter().map(id_text).collect();
    let written = write_file(dir, error, after_seq, &list);
    let file = match &written {
        Ok(path) => path.display().to_string(),
        Err(e) => format!("none: cannot write the loss file in `{}`: {e}", dir.display()),
    };
    tracing::error!(
        error,
        lost = ids.len(),
        after_seq,
        file,
        request_ids = list.join(" "),
        "audit writer failed; the sink refuses further records (every request is denied). {} \
         accepted audit records were lost after seq {after_seq}: their requests may have been \
         permitted without a durable record",
        ids.len()
    );
}

/// Writes the loss file under the first free `lost-<time>[-n].txt` name and syncs it.
fn write_file(dir: &Path, error: &str, after_seq: u64, ids: &[&str]) -> io::Result<PathBuf> {
    let now = OffsetDateTime::now_utc();
    let time = now.format(&Rfc3339).map_err(io::Error::other)?;
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let error = error.replace(['\n', '\r'], " ");
    let mut text = format!(
        "{HEADER}\n# These audit records were accepted (their requests may have been permitted) but the\n\
         # writer failed before they were durable, so they are missing from the log. One request id\n\
         # (the record's `id`) per line. Move this file out of the log directory once the loss is\n\
         # dealt with; `zta audit verify` reports it until then.\n\
         # time: {time}\n# error: {error}\n# after_seq: {after_seq}\n# lost: {}\n",
        ids.len()
    );
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    for n in 1u32..1000 {
        let name = if n == 1 { format!("lost-{stamp}.txt") } else { format!("lost-{stamp}-{n}.txt") };
        let path = dir.join(name);
        match create_options().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                File::open(dir)?.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free `lost-<time>-<n>.txt` name"))
}

/// A loss file as read back by the verifier.
#[derive(Debug)]
pub(crate) struct LossFile {
    /// The file name.
    pub(crate) name: String,
    /// The last record known durable when the writer failed.
    pub(crate) after_seq: u64,
    /// The lost records' ids (`None`: unknown).
    pub(crate) ids: Vec<Option<RecordId>>,
}

/// Whether `name` is a loss file's name.
fn is_loss_file(name: &str) -> bool {
    name.starts_with("lost-") && name.ends_with(".txt")
}

/// Reads every loss file in `dir`, sorted by name.
pub(crate) fn read_loss_files(dir: &Path) -> Result<Vec<LossFile>, (PathBuf, io::Error)> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| (dir.to_owned(), e))? {
        let entry = entry.map_err(|e| (dir.to_owned(), e))?;
        if let Some(name) = entry.file_name().to_str()
            && is_loss_file(name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let text = fs::read_to_string(&path).map_err(|e| (path.clone(), e))?;
            Ok(parse(name, &text))
        })
        .collect()
}

/// Reads a loss file leniently: any line that is not a comment counts as one lost record.
fn parse(name: String, text: &str) -> LossFile {
    let mut after_seq = 0;
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(n) = comment.trim().strip_prefix("after_seq:") {
                after_seq = n.trim().parse().unwrap_or(0);
            }
            continue;
        }
        ids.push(RecordId::try_from(line.as_bytes()).ok().filter(|id| *id != UNKNOWN));
    }
    LossFile { name, after_seq, ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_records_and_queues() {
        let a = br#"{"id":"0190a3c4-0000-7000-8000-000000000001","time":"x"}"#;
        let b = br#"{"id":"0190a3c4-0000-7000-8000-000000000002","time":"x"}"#;
        assert_eq!(&record_id(a), b"0190a3c4-0000-7000-8000-000000000001");
        assert_eq!(record_id(b"{\"time\":1}"), UNKNOWN);
        assert_eq!(record_id(b"{\"id\":\"short\"}"), UNKNOWN);
        let bytes = [&a[..], &b[..]].concat();
        let ends = [a.len(), bytes.len()];
        let mut out = Vec::new();
        queued_ids(&bytes, &ends, 0, &mut out);
        queued_ids(&bytes, &ends, 1, &mut out);
        queued_ids(&bytes, &ends, 2, &mut out);
        assert_eq!(out, vec![record_id(a), record_id(b), record_id(b)]);
    }

    #[test]
    fn a_written_loss_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let ids = [record_id(br#"{"id":"0190a3c4-0000-7000-8000-000000000001"}"#), UNKNOWN];
        report(dir.path(), "cannot write `x`:\nno space", 41, &ids);
        report(dir.path(), "again", 41, &ids[..1]);
        let files = read_loss_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2, "a second loss in the same second gets its own file");
        let first = files.iter().find(|f| f.ids.len() == 2).unwrap();
        assert!(first.name.starts_with("lost-") && first.name.ends_with(".txt"), "{}", first.name);
        assert_eq!(first.after_seq, 41);
        assert_eq!(first.ids, vec![Some(ids[0]), None]);
        let text = fs::read_to_string(dir.path().join(&first.name)).unwrap();
        assert!(text.starts_with(HEADER) && text.contains("# lost: 2\n"), "{text}");
        assert!(text.contains("# error: cannot write `x`: no space\n"), "{text}");
    }
}
