//! Reading records back, for queries and `zta audit tail`. Reading does not verify the chain
//! (that is [`verify`](crate::verify)'s job); it parses each line and keeps the records.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use zta_core::AuditRecord;

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
