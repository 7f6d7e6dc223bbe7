//! The line format and the hash chain, shared by the writer, recovery on open and the verifier.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader},
    path::Path,
};

use sha2::{Digest, Sha256};

/// Domain separation tag at the start of every hashed message.
const DOMAIN: &[u8] = b"zta-audit-jsonl/v1\n";

/// The `prev_hash` of the first record.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

const P_SEQ: &[u8] = b"{\"seq\":";
const P_PREV: &[u8] = b",\"prev_hash\":\"";
const P_HASH: &[u8] = b"\",\"hash\":\"";
const P_RECORD: &[u8] = b"\",\"record\":";

/// Bytes a line takes besides its seq digits and record bytes.
pub(crate) const LINE_OVERHEAD: usize =
    P_SEQ.len() + P_PREV.len() + 64 + P_HASH.len() + 64 + P_RECORD.len() + 2;

/// The chain hash of one entry.
pub(crate) fn chain_hash(seq: u64, prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(record);
    h.finalize().into()
}

/// Lowercase hex of a hash.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // INVARIANT: 64 bytes hold the hex of 32; `encode_to_slice` fails only on a length mismatch.
    let encoded = hex::encode_to_slice(bytes, &mut out);
    debug_assert!(encoded.is_ok());
    out
}

/// Lowercase hex of a hash, as a `String`.
pub(crate) fn hex_string(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// Parses 64 lowercase hex digits (the only form the writer produces: uppercase is refused).
pub(crate) fn unhex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Decimal digits of `n`.
pub(crate) fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Appends one complete line (with its trailing newline) to `out`.
pub(crate) fn encode_line(out: &mut Vec<u8>, seq: u64, prev: &[u8; 32], hash: &[u8; 32], record: &[u8]) {
    out.reserve(LINE_OVERHEAD + 20 + record.len());
    out.extend_from_slice(P_SEQ);
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.extend_from_slice(P_PREV);
    out.extend_from_slice(&hex32(prev));
    out.extend_from_slice(P_HASH);
    out.extend_from_slice(&hex32(hash));
    out.extend_from_slice(P_RECORD);
    out.extend_from_slice(record);
    out.extend_from_slice(b"}\n");
}

/// One parsed line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
    pub(crate) hash: [u8; 32],
    pub(crate) record: &'a [u8],
}

/// Parses a line (without its newline) in the exact layout [`encode_line`] writes. Any other
/// layout, however equivalent as JSON, is refused: the verifier accepts exactly what the writer
/// produces.
pub(crate) fn parse_line(line: &[u8]) -> Result<Entry<'_>, &'static str> {
    let rest = line.strip_prefix(P_SEQ).ok_or("does not start with `{\"seq\":`")?;
    let n_digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (num, rest) = rest.split_at_checked(n_digits).ok_or("bad seq")?;
    if num.is_empty() || num.len() > 20 || num.first() == Some(&b'0') {
        return Err("seq is not a positive integer");
    }
    let mut seq: u64 = 0;
    for d in num {
        seq = seq
            .checked_mul(10)
            .and_then(|s| s.checked_add(u64::from(d - b'0')))
            .ok_or("seq is out of range")?;
    }
    let rest = rest.strip_prefix(P_PREV).ok_or("`prev_hash` is missing after `seq`")?;
    let (prev, rest) = rest.split_at_checked(64).ok_or("`prev_hash` is too short")?;
    let prev = unhex32(prev).ok_or("`prev_hash` is not 64 lowercase hex digits")?;
    let rest = rest.strip_prefix(P_HASH).ok_or("`hash` is missing after `prev_hash`")?;
    let (hash, rest) = rest.split_at_checked(64).ok_or("`hash` is too short")?;
    let hash = unhex32(hash).ok_or("`hash` is not 64 lowercase hex digits")?;
    let rest = rest.strip_prefix(P_RECORD).ok_or("`record` is missing after `hash`")?;
    let record = rest.strip_suffix(b"}").ok_or("line does not end with `}`")?;
    if record.first() != Some(&b'{') {
        return Err("`record` is not a JSON object");
    }
    Ok(Entry { seq, prev, hash, record })
}

/// Whether the record bytes are one well-formed JSON value.
pub(crate) fn check_json(record: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(record).map(|_| ()).map_err(|e| e.to_string())
}

/// Options for a file this crate creates: readable by owner and group only, as audit records
/// name agents, users and resources.
pub(crate) fn create_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
    o
}

/// Creates `dir` (and its parents) if missing; new directories are closed to others.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o750);
    b.create(dir)
}

/// The name of segment file `n`.
pub(crate) fn segment_name(n: u64) -> String {
    format!("audit-{n:06}.jsonl")
}

/// The number of a segment file name, if it is one (canonical form only).
pub(crate) fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n >= 1 && segment_name(n) == name).then_some(n)
}

/// The segment files in `dir`, sorted by number.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && let Some(n) = segment_number(name)
        {
            out.push((n, name.to_owned()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads a file line by line with a reused buffer, tracking byte offsets and line numbers.
pub(crate) struct LineReader {
    reader: BufReader<File>,
    buf: Vec<u8>,
    offset: u64,
    next_offset: u64,
    /// 1-based number of the line last returned (0 before the first).
    pub(crate) line_no: u64,
}

/// One line as read.
pub(crate) struct Line<'a> {
    /// The bytes without the newline.
    pub(crate) bytes: &'a [u8],
    /// Whether the line ended with a newline (false: torn).
    pub(crate) complete: bool,
    /// 1-based line number.
    pub(crate) line_no: u64,
    /// Byte offset of the line's start.
    pub(crate) offset: u64,
}

impl LineReader {
    pub(crate) fn new(file: File) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 16, file),
            buf: Vec::with_capacity(1024),
            offset: 0,
            next_offset: 0,
            line_no: 0,
        }
    }

    /// The next line, or `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.offset = self.next_offset;
        self.next_offset += n as u64;
        self.line_no += 1;
        let (bytes, complete) = match self.buf.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (self.buf.as_slice(), false),
        };
        Ok(Some(Line { bytes, complete, line_no: self.line_no, offset: self.offset }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_roundtrip() {
        let prev = [7u8; 32];
        let rec = br#"{"a":1}"#;
        let hash = chain_hash(42, &prev, rec);
        let mut out = Vec::new();
        encode_line(&mut out, 42, &prev, &hash, rec);
        assert_eq!(out.len(), LINE_OVERHEAD + digits(42) + rec.len());
        assert_eq!(out.last(), Some(&b'\n'));
        let e = parse_line(&out[..out.len() - 1]).unwrap();
        assert_eq!((e.seq, e.prev, e.hash, e.record), (42, prev, hash, &rec[..]));
        // the line is valid JSON too
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["seq"], 42);
        assert_eq!(v["hash"], hex_string(&hash));
        assert_eq!(v["record"]["a"], 1);
    }

    #[test]
    fn parse_refuses_other_layouts() {
        let prev = GENESIS;
        let rec = br#"{"a":1}"#;
        let hash = chain_hash(1, &prev, rec);
        let mut out = Vec::new();
        encode_line(&mut out, 1, &prev, &hash, rec);
        let good = String::from_utf8(out[..out.len() - 1].to_vec()).unwrap();
        for bad in [
            good.replace("{\"seq\":1", "{\"seq\": 1"),
            good.replace("{\"seq\":1", "{\"seq\":01"),
            good.replace("{\"seq\":1", "{\"seq\":0"),
            good.to_uppercase(),
            good.replace("\"record\":{", "\"record\":["),
            format!("{good} "),
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_line(b"{\"seq\":99999999999999999999999").is_err());
        // Without the final brace the record loses its own: framing passes, the JSON check does not.
        let cut = parse_line(&good.as_bytes()[..good.len() - 1]).unwrap();
        assert!(check_json(cut.record).is_err());
    }

    #[test]
    fn hex_and_digits() {
        let h = chain_hash(1, &GENESIS, b"{}");
        assert_eq!(unhex32(&hex32(&h)), Some(h));
        assert_eq!(hex_string(&[0xab; 32]), "ab".repeat(32));
        assert_eq!(unhex32(&[b'A'; 64]), None);
        assert_eq!(unhex32(&[b'a'; 63]), None);
        assert_eq!(unhex32(&[b'g'; 64]), None);
        for n in [0, 1, 9, 10, 99, 100, u64::MAX] {
            assert_eq!(digits(n), n.to_string().len());
        }
        // Every sequence number is written in decimal and reads back.
        for n in [1, 9, 10, 99, 100, u64::MAX] {
            let mut v = Vec::new();
            encode_line(&mut v, n, &GENESIS, &h, b"{}");
            assert!(v.starts_with(format!("{{\"seq\":{n},").as_bytes()));
            assert_eq!(parse_line(&v[..v.len() - 1]).unwrap().seq, n);
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_name(1), "audit-000001.jsonl");
        assert_eq!(segment_number("audit-000001.jsonl"), Some(1));
        assert_eq!(segment_number("audit-1234567.jsonl"), Some(1_234_567));
        assert_eq!(segment_number("audit-1.jsonl"), None);
        assert_eq!(segment_number("audit-000000.jsonl"), None);
        assert_eq!(segment_number("audit-0000001.jsonl"), None);
        assert_eq!(segment_number("audit-000001.jsonl.torn-1"), None);
    }
}
