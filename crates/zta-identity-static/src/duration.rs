//! Durations in configuration: a whole number followed by `s`, `m` or `h` (`"30s"`, `"5m"`,
//! `"1h"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Longest duration accepted, so later arithmetic on timestamps cannot overflow.
const MAX_SECS: u64 = 366 * 24 * 3600;

/// Parses `"30s"`, `"5m"` or `"1h"`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{text}`: expected a whole number followed by `s`, `m` or `h`");
    let unit = text.chars().last().ok_or_else(bad)?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(bad()),
    };
    let digits = text.strip_suffix(unit).ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let secs = value
        .checked_mul(factor)
        .filter(|s| *s <= MAX_SECS)
        .ok_or_else(|| format!("invalid duration `{text}`: longer than {} days", MAX_SECS / 86_400))?;
    Ok(Duration::from_secs(secs))
}

/// Serde `deserialize_with` for a duration string.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse(&text).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        for text in ["", "s", "5", "5x", "-5s", "+5s", "1.5m", " 5s", "5 s", "5ms", "99999999999999h", "é"] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("invalid duration"), "{text}: {err}");
        }
    }
}
