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
    if !on_behalf_of.is_empty() {
        key(out, "on_behalf_of");
        strings(out, on_behalf_of.iter().map(String::as_str));
    }
    if let Some(action) = action {
        key(out, "action");
        out.extend_from_slice(b"{\"kind\":\"");
        out.extend_from_slice(action.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"name\":");
        string(out, &action.name);
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
        out.extend_from_slice(bytes.get(done..i).unwrap_or_default());
        out.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            let hex = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'0', b'0', hex(b >> 4), hex(b & 0x0f)]);
        }
        done = i + 1;
    }
    out.extend_from_slice(bytes.get(done..).unwrap_or_default());
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
    // `year` is 0..=9999 here, so it fits.
    let year = u32::try_from(year).unwrap_or_default();
    digits(out, year, 4);
    out.push(b'-');
    digits(out, u32::from(u8::from(month)), 2);
    out.push(b'-');
    digits(out, u32::from(day), 2);
    out.push(b'T');
    digits(out, u32::from(hour), 2);
    out.push(b':');
    digits(out, u32::from(minute), 2);
    out.push(b':');
    digits(out, u32::from(second), 2);
    if nanos != 0 {
        let (mut fraction, mut width) = (nanos, 9);
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        out.push(b'.');
        digits(out, fraction, width);
    }
    out.push(b'Z');
    Ok(())
}

/// `n` as exactly `width` decimal digits, zero-padded (`n` must fit).
fn digits(out: &mut Vec<u8>, n: u32, width: u32) {
    for place in (0..width).rev() {
        // A digit is below 10, so it fits in a u8.
        let digit = (n / 10u32.pow(place) % 10) as u8;
        out.push(b'0' + digit);
    }
}
