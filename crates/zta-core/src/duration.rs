//! Durations in configuration files: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`, or sums like
//! `"1h30m"`. Every backend's config uses this one format.

use std::time::Duration;

/// Longest duration accepted (100 years), so later timestamp arithmetic cannot overflow.
const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason}")]
pub struct InvalidDuration {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses whole numbers with units `ns us ms s m h d`, summed (`1h30m`). Refuses signs,
/// fractions, missing or unknown units, and anything over 100 years.
pub fn parse(input: &str) -> Result<Duration, InvalidDuration> {
    let refuse = |reason| InvalidDuration { input: input.to_owned(), reason };
    let text = input.trim();
    if text.is_empty() {
        return Err(refuse("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(refuse("expected a whole number followed by a unit (ms, s, m, h, d)"));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.chars().take_while(|c| c.is_alphabetic()).map(char::len_utf8).sum();
        let (unit, tail) = tail.split_at(unit_len);
        let value: u64 = number.parse().map_err(|_| refuse("number too large"))?;
        let part = match unit {
            "ns" => Some(Duration::from_nanos(value)),
            "us" | "µs" => Some(Duration::from_micros(value)),
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "d" => value.checked_mul(86_400).map(Duration::from_secs),
            "" => return Err(refuse("missing unit; use ms, s, m, h or d")),
            _ => return Err(refuse("unknown unit; use ms, s, m, h or d")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .filter(|t| *t <= MAX)
            .ok_or_else(|| refuse("too large"))?;
        rest = tail;
    }
    Ok(total)
}

/// The shortest exact text for `d` (`3600s` → `1h`, `5ms` → `5ms`); [`parse`] reads it back.
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    const UNITS: [(&str, u128); 7] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    UNITS
        .iter()
        .find(|(_, per)| ns.is_multiple_of(*per))
        .map_or_else(|| format!("{ns}ns"), |(unit, per)| format!("{}{unit}", ns / per))
}

/// Serde `with` module for a `Duration` written as text.
pub mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as [`format`](super::format) does.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads a duration text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde `with` module for an `Option<Duration>` written as text (use with
/// `#[serde(default)]`).
pub mod option_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads a duration text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            (" 5m ", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("7d", Duration::from_secs(604_800)),
            ("0s", Duration::ZERO),
            ("10us", Duration::from_micros(10)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for text in ["", "s", "5", "5x", "-5s", "+5s", "1.5m", "5 s", "99999999999999999999s", "40000d", "é"]
        {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "5ms", "90s", "1h", "7d", "250us", "3ns", "61s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
