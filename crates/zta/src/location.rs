//! Turns a deserializer's error into one that points at the offending line and column.
//!
//! serde_yaml reports the start of an internally tagged section (`type: ...`) rather than the
//! bad key inside it; this finds the key itself in the source text.

/// A position in a config file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Finds the first line at or after `from_line` (1-based) whose key is `key` (YAML `key:` or
/// TOML `key =`), and returns its position.
pub(crate) fn find_key(src: &str, key: &str, from_line: usize) -> Option<Position> {
    src.lines().enumerate().skip(from_line.saturating_sub(1)).find_map(|(i, line)| {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let rest = trimmed.strip_prefix(key)?;
        let rest = rest.trim_start();
        (rest.starts_with(':') || rest.starts_with('='))
            .then(|| Position { line: i + 1, column: line.len() - trimmed.len() + 1 })
    })
}

/// The name in backticks after `unknown field ` or `unknown variant `, if the message has one.
pub(crate) fn offending_name(message: &str) -> Option<&str> {
    ["unknown field `", "unknown variant `", "missing field `"].iter().find_map(|marker| {
        let start = message.find(marker)? + marker.len();
        let rest = message.get(start..)?;
        rest.find('`').and_then(|end| rest.get(..end))
    })
}

/// Finds where a YAML scalar value `value` appears after `key:` (for `type: ldap` errors).
pub(crate) fn find_key_value(src: &str, key: &str, value: &str) -> Option<Position> {
    src.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let rest = trimmed.strip_prefix(key)?.trim_start();
        let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?.trim();
        (rest.trim_matches(|c| c == '"' || c == '\'') == value)
            .then(|| Position { line: i + 1, column: line.len() - trimmed.len() + 1 })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_yaml_and_toml() {
        let yaml = "identity:\n  - type: static\n    bogus: 1\n";
        assert_eq!(find_key(yaml, "bogus", 1), Some(Position { line: 3, column: 5 }));
        assert_eq!(find_key(yaml, "type", 1), Some(Position { line: 2, column: 5 }));
        let toml = "[audit]\ndir = 'x'\nextra = 2\n";
        assert_eq!(find_key(toml, "extra", 1), Some(Position { line: 3, column: 1 }));
        assert_eq!(find_key_value(yaml, "type", "static"), Some(Position { line: 2, column: 5 }));
    }

    #[test]
    fn extracts_the_offending_name() {
        assert_eq!(offending_name("identity: unknown field `bogus`, expected `a`"), Some("bogus"));
        assert_eq!(offending_name("no name here"), None);
    }
}
