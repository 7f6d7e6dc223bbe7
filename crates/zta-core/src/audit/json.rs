//! An audit record's JSON, written directly: byte for byte what the derived `Serialize` gives
//! with serde_json (a test holds the two together), at a fraction of the cost. Every request
//! writes one record, so this is on the request path.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::AuditRecord;

pub(super) fn write_record(record: &AuditRecord, out: &mut Vec<u8>) -> Result<(), String> {
    // Destructured without `..`: a new field does not compile until it is written here.
    let AuditRecord {
        id,
        time,
        event,
        effect,
        agent_id,
        auth_method,
        tenant,
        claims,
        on_behalf_of,
        action,
        resource,
        target_agent,
        basis,
        determining,
        policy_digest,
        reason,
        latency_us,
        detail,
    } = record;
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    write_time(out, *time)?;
    out.extend_from_slice(b"\",\"event\":\"");
    out.extend_from_slice(event.as_str().as_bytes());
    out.extend_from_slice(b"\",\"effect\":\"");
    out.extend_from_slice(effect.as_str().as_bytes());
    out.push(b'"');
    if let Some(agent) = agent_id {
        key(out, "agent_id");
        string(out, agent.as_str());
    }
    if let Some(method) = auth_method {
        key(out, "auth_method");
        string(out, method.as_str());
    }
    if let Some(tenant) = tenant {
        key(out, "tenant");
        string(out, tenant);
    }
    if let Some(claims) = claims {
        key(out, "claims");
        out.push(b'{');
        for (i, (name, value)) in claims.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, name);
            out.push(b':');
            string(out, value);
        }
        out.push(b'}');
    }
    if !on_behalf_of.is_empty() {
        key(out, "on_behalf_of");
        strings(out, on_behalf_of.iter().map(String::as_str));
    }
    if let Some(action) = action {
        key(out, "action");
        out.extend_from_slice(b"{\"kind\":\"");
        out.extend_from_slice(action.kind().as_str().as_bytes());
        out.extend_from_slice(b"\",\"name\":");
        string(out, action.name());
        out.push(b'}');
    }
    if let Some(resource) = resource {
        key(out, "resource");
        out.extend_from_slice(b"{\"type\":");
        string(out, &resource.kind);
        if !resource.id.is_empty() {
            key(out, "id");
            string(out, &resource.id);
        }
        if !resource.attributes.is_empty() {
            key(out, "attributes");
            serde_json::to_writer(&mut *out, &resource.attributes).map_err(|e| e.to_string())?;
        }
        out.push(b'}');
    }
    if let Some(target) = target_agent {
        key(out, "target_agent");
        string(out, target.as_str());
    }
    if let Some(basis) = basis {
        key(out, "basis");
        string(out, basis.as_str());
    }
    if !determining.is_empty() {
        key(out, "determining");
        strings(out, determining.iter().map(|r| &**r));
    }
    if let Some(digest) = policy_digest {
        key(out, "policy_digest");
        let mut hex = [0u8; 64];
        hex::encode_to_slice(digest.0, &mut hex).map_err(|e| e.to_string())?;
        out.push(b'"');
        out.extend_from_slice(&hex);
        out.push(b'"');
    }
    if let Some(reason) = reason {
        key(out, "reason");
        string(out, reason);
    }
    if let Some(latency) = latency_us {
        key(out, "latency_us");
        out.extend_from_slice(itoa::Buffer::new().format(*latency).as_bytes());
    }
    if !detail.is_empty() {
        key(out, "detail");
        serde_json::to_writer(&mut *out, detail).map_err(|e| e.to_string())?;
    }
    out.push(b'}');
    Ok(())
}

/// `,"name":`
fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn strings<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

/// A JSON string, escaped exactly as serde_json does: `"` and `\`, and control characters as
/// `\b \f \n \r \t` or `\u00xx`; everything else (including non-ASCII) as is.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    // Nearly every string needs no escape: one cheap pass, then one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut done = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        // INVARIANT: `done <= i < bytes.len()`.
        out.extend_from_slice(within(bytes.get(done..i)));
        out.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            // INVARIANT: a nibble indexes the 16 digits.
            let hex = |n: u8| within(HEX.get(usize::from(n)..=usize::from(n)));
            out.extend_from_slice(b"00");
            out.extend_from_slice(hex(b >> 4));
            out.extend_from_slice(hex(b & 0x0f));
        }
        done = i + 1;
    }
    out.extend_from_slice(within(bytes.get(done..)));
    out.push(b'"');
}

/// RFC 3339 as the `time` crate writes it (the fraction without trailing zeros). UTC, the
/// guard's only offset, is written here; any other offset goes through `time`.
fn write_time(out: &mut Vec<u8>, t: OffsetDateTime) -> Result<(), String> {
    let year = t.year();
    if !t.offset().is_utc() || !(0..=9999).contains(&year) {
        return t.format_into(out, &Rfc3339).map(drop).map_err(|e| e.to_string());
    }
    let (_, month, day) = t.to_calendar_date();
    let (hour, minute, second, nanos) = t.to_hms_nano();
    // `year` is 0..=9999 here.
    let year = u16::try_from(year).unwrap_or_default();
    // Ten fraction digits, so that the ninth can be written as a pair too (the tenth is 0).
    let mut text = *b"0000-00-00T00:00:00.0000000000";
    let pairs = [
        (0, year / 100),
        (2, year % 100),
        (5, u16::from(u8::from(month))),
        (8, u16::from(day)),
        (11, u16::from(hour)),
        (14, u16::from(minute)),
        (17, u16::from(second)),
        (20, (nanos / 10_000_000) as u16),
        (22, (nanos / 100_000 % 100) as u16),
        (24, (nanos / 1_000 % 100) as u16),
        (26, (nanos / 10 % 100) as u16),
        (28, (nanos % 10 * 10) as u16),
    ];
    for (at, n) in pairs {
        // INVARIANT: every pair lies within the 30 bytes of `text`.
        let slot = text.get_mut(at..at + 2);
        debug_assert!(slot.is_some(), "INVARIANT broken: a digit pair outside the time text");
        if let Some(slot) = slot {
            slot.copy_from_slice(&two_digits(n));
        }
    }
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes; the fraction follows its `.` without trailing zeros
    // (none at all for a whole second).
    // INVARIANT: `text` is 30 bytes, and `len` at most 29.
    let fraction = within(text.get(20..29));
    let kept = fraction.iter().rposition(|&b| b != b'0').map_or(0, |last| last + 1);
    let len = if kept == 0 { 19 } else { 20 + kept };
    out.extend_from_slice(within(text.get(..len)));
    out.push(b'Z');
    Ok(())
}

/// A slice taken where an invariant of the caller puts the range inside the buffer: a broken
/// invariant fails debug builds and tests; a release build writes nothing rather than panic.
fn within(part: Option<&[u8]>) -> &[u8] {
    debug_assert!(part.is_some(), "INVARIANT broken: a range outside its buffer");
    part.unwrap_or_default()
}

/// `n` (below 100) as two decimal digits.
fn two_digits(n: u16) -> [u8; 2] {
    // Both digits are below 10, so they fit in a u8.
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}
