//! The pattern operands a condition may use, built once at load: IP networks, and regexes and
//! globs as linear-time automata. The reader checks them, the compiler keeps them.

use std::net::IpAddr;

use regex_automata::{
    meta::{self, Regex},
    nfa::thompson::WhichCaptures,
};

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host network).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.trim().parse::<IpAddr>().ok()?, Some(p.trim().parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Builds a start-anchored, linear-time regex (`$` is end of text).
pub(crate) fn build_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > 4096 {
        return Err("pattern longer than 4096 bytes".into());
    }
    Regex::builder()
        .configure(
            meta::Config::new()
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(4 << 20))
                .hybrid_cache_capacity(1 << 20),
        )
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// Builds the regex of a glob: `*` any run of characters, `?` one character, `[...]` a class;
/// everything else literal; the whole value must match.
pub(crate) fn build_glob(glob: &str) -> Result<Regex, String> {
    let mut re = String::from("(?s)^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if matches!(c, '\\' | '[' | '&' | '~' | '^') {
                        re.push('\\');
                    }
                    re.push(c);
                }
                if !closed {
                    return Err("unclosed `[`".into());
                }
                re.push(']');
            }
            c => {
                let mut buf = [0u8; 4];
                re.push_str(&regex_syntax_escape(c.encode_utf8(&mut buf)));
            }
        }
    }
    re.push_str(r"\z");
    build_regex(&re)
}

fn regex_syntax_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
