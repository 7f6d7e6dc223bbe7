//! Reading records back, for queries and `zta audit tail`. Reading does not verify the chain
//! (that is [`verify`](crate::verify)'s job); it parses each line and keeps the records.

use std::{
    collections::VecDeque,
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use zta_core::{AuditQuery, AuditReadError, AuditRecord, AuditSource};

use crate::{Error, format};

#[derive(serde::Deserialize)]
struct Entry {
    seq: u64,
    record: AuditRecord,
}

/// Calls `each` with every record of the log in `dir` whose sequence number is above `after`,
/// in order, and returns the last sequence number read (`after` when there is none). A last
/// line without its newline (a write in progress) is left for the next read. A line that is
/// not an entry is an error naming its file and line.
pub fn read_records(
    dir: impl AsRef<Path>,
    after: u64,
    mut each: impl FnMut(u64, AuditRecord),
) -> Result<u64, Error> {
    let dir = dir.as_ref();
    let mut last = after;
    let segments = format::list_segments(dir).map_err(Error::io("list", dir))?;
    for (_, name) in segments {
        let path = dir.join(&name);
        let file = match File::open(&path) {
            Ok(file) => file,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(Error::io("read", &path))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            // Cheap skip of entries already read: the sequence number leads the line.
            if let Some(seq) = leading_seq(&line)
                && seq <= after
            {
                continue;
            }
            let entry: Entry = serde_json::from_slice(&line).map_err(|e| Error::Unreadable {
                path: path.clone(),
                line: number,
                reason: e.to_string(),
            })?;
            if entry.seq > after {
                last = last.max(entry.seq);
                each(entry.seq, entry.record);
            }
        }
    }
    Ok(last)
}

/// The `seq` at the start of a line in the writer's fixed layout (`{"seq":N,...`).
fn leading_seq(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(b"{\"seq\":")?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// The log in one directory as an [`AuditSource`], for `zta serve`'s audit query API. Each
/// query reads the whole log (on a blocking thread), keeping only the latest `limit` matches:
/// fine for an operator's page, not for a log of many millions of records.
#[derive(Debug, Clone)]
pub struct JsonlReader {
    dir: PathBuf,
}

impl JsonlReader {
    /// Reads the log in `dir` (a sink's `dir`); nothing is opened until a query.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl AuditSource for JsonlReader {
    async fn query(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditRecord>, AuditReadError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let dir = self.dir.clone();
        let query = query.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut latest = VecDeque::with_capacity(limit.min(1024));
            read_records(&dir, 0, |_, record| {
                if query.matches(&record) {
                    if latest.len() == limit {
                        latest.pop_front();
                    }
                    latest.push_back(record);
                }
            })
            .map(|_| Vec::from(latest))
        });
        read.await.map_err(AuditReadError::read)?.map_err(AuditReadError::read)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use zta_core::{AgentId, AuditEvent, AuditSink, Durability, Effect};

    use super::*;
    use crate::{JsonlConfig, JsonlSink};

    #[tokio::test]
    async fn a_reader_finds_the_latest_matching_records_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let sink = JsonlSink::open(JsonlConfig::new(dir.path())).unwrap();
        for i in 0..5 {
            let effect = if i % 2 == 0 { Effect::Deny } else { Effect::Allow };
            let mut record = AuditRecord::new(AuditEvent::Authorization, effect).with_reason(format!("r{i}"));
            record.agent_id = Some(AgentId::new("a").unwrap());
            sink.append(record, Durability::Flushed).await.unwrap();
        }
        sink.close().await.unwrap();
        let reader = JsonlReader::new(dir.path());
        let mut denials = AuditQuery::default();
        denials.effect = Some(Effect::Deny);
        let found = reader.query(&denials, 2).await.unwrap();
        let reasons: Vec<_> = found.iter().map(|r| r.reason.clone().unwrap()).collect();
        assert_eq!(reasons, ["r2", "r4"]);
        assert!(reader.query(&denials, 0).await.unwrap().is_empty());
        assert_eq!(reader.query(&AuditQuery::default(), 100).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_missing_log_is_an_error_not_an_empty_answer() {
        let dir = tempfile::tempdir().unwrap();
        let reader = JsonlReader::new(dir.path().join("absent"));
        assert!(reader.query(&AuditQuery::default(), 10).await.is_err());
    }
}
