//! The obligations the gateway discharges: what an allow rule may ask of a tool call besides
//! the allow itself. Before the call: argument constraints and rate limits; after it: redaction
//! of the result. An obligation whose parameters make no sense refuses the call (fail closed).
//!
//! ```yaml
//! obligations:
//!   - {name: path_under, params: {argument: path, root: /srv/reports}}
//!   - {name: url_host, params: {argument: url, hosts: [example.com, "*.example.org"]}}
//!   - {name: max_size, params: {argument: content, bytes: 65536}}
//!   - {name: require_approval, params: {ttl: 5m}}
//!   - {name: rate_limit, params: {max: 10, per: 1m}}
//!   - {name: redact, params: {fields: [api_key], patterns: ["\\b\\d{3}-\\d{2}-\\d{4}\\b"]}}
//! ```

use std::{
    path::{Component, Path, PathBuf},
    time::Duration,
};

use regex_automata::meta::Regex;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use zta_core::{AgentId, Obligation, StateStore};

/// The obligations [`McpGateway`](crate::McpGateway) discharges; a guard serving it declares
/// them with [`GuardBuilder::discharges`](zta_core::GuardBuilder::discharges).
pub const OBLIGATIONS: [&str; 6] =
    ["path_under", "url_host", "max_size", "require_approval", "rate_limit", "redact"];

/// What replaces a redacted value.
const REDACTED: &str = "[redacted]";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathUnder {
    argument: String,
    root: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlHost {
    argument: String,
    hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxSize {
    argument: String,
    bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimit {
    max: u32,
    #[serde(with = "zta_core::duration::text")]
    per: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redact {
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
}

fn params<T: serde::de::DeserializeOwned>(obligation: &Obligation) -> Result<T, String> {
    serde_json::from_value(obligation.params.clone())
        .map_err(|e| format!("obligation `{}` is misconfigured: {e}", obligation.name))
}

/// Checks every obligation that constrains a call before it runs. `Err` is the safe reason
/// the call is refused.
pub(crate) async fn before_call(
    obligations: &[Obligation],
    state: &dyn StateStore,
    approvals: &crate::approvals::Approver,
    agent: &AgentId,
    tool: &str,
    arguments: &JsonObject,
) -> Result<(), String> {
    // Checks of the arguments first, then approval, then the rate limit: a call refused
    // earlier neither waits for a person nor uses up the limit.
    for obligation in obligations {
        match obligation.name.as_str() {
            "path_under" => path_under(&params(obligation)?, arguments)?,
            "url_host" => url_host(&params(obligation)?, arguments)?,
            "max_size" => max_size(&params(obligation)?, arguments)?,
            "require_approval" | "rate_limit" | "redact" => {}
            other => return Err(format!("obligation `{other}` cannot be met here")),
        }
    }
    for obligation in obligations.iter().filter(|o| o.name == "require_approval") {
        let arguments = Value::Object(arguments.clone());
        approvals.approve(&obligation.params, agent.as_str(), tool, &arguments).await?;
    }
    for obligation in obligations.iter().filter(|o| o.name == "rate_limit") {
        rate_limit(&params(obligation)?, state, agent, tool).await?;
    }
    Ok(())
}

/// The call's result with what `redact` obligations name removed.
pub(crate) fn redact(
    obligations: &[Obligation],
    mut result: CallToolResult,
) -> Result<CallToolResult, String> {
    for obligation in obligations.iter().filter(|o| o.name == "redact") {
        let redact: Redact = params(obligation)?;
        let patterns = redact
            .patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("obligation `redact`: pattern `{p}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let scrub = |text: &str| -> String {
            // Structured text (JSON) loses the named fields; then every pattern is replaced.
            let mut text = match serde_json::from_str::<Value>(text) {
                Ok(mut value) if value.is_object() || value.is_array() => {
                    drop_fields(&mut value, &redact.fields);
                    value.to_string()
                }
                _ => text.to_owned(),
            };
            for pattern in &patterns {
                text = replace_all(pattern, &text);
            }
            text
        };
        for block in &mut result.content {
            if let ContentBlock::Text(text) = block {
                text.text = scrub(&text.text);
            }
        }
        if let Some(structured) = &mut result.structured_content {
            drop_fields(structured, &redact.fields);
            let mut text = structured.to_string();
            let before = text.clone();
            for pattern in &patterns {
                text = replace_all(pattern, &text);
            }
            if text != before {
                *structured = serde_json::from_str(&text).unwrap_or(Value::String(REDACTED.to_owned()));
            }
        }
    }
    Ok(result)
}

fn drop_fields(value: &mut Value, fields: &[String]) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !fields.iter().any(|f| f == key));
            map.values_mut().for_each(|v| drop_fields(v, fields));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| drop_fields(v, fields)),
        _ => {}
    }
}

fn replace_all(pattern: &Regex, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in pattern.find_iter(text) {
        out.push_str(text.get(last..found.start()).unwrap_or_default());
        out.push_str(REDACTED);
        last = found.end();
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

fn string_argument<'a>(arguments: &'a JsonObject, name: &str, obligation: &str) -> Result<&'a str, String> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("obligation `{obligation}`: argument `{name}` must be a string"))
}

/// The argument, as a path relative to `root` or absolute, names something under `root`: no
/// `..` at all, and after symbolic links are resolved (as far as the path exists) still under
/// `root`.
fn path_under(rule: &PathUnder, arguments: &JsonObject) -> Result<(), String> {
    let refused =
        || format!("obligation `path_under`: `{}` is not under the allowed directory", rule.argument);
    let given = Path::new(string_argument(arguments, &rule.argument, "path_under")?);
    if given.as_os_str().is_empty()
        || given.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(refused());
    }
    let root = rule
        .root
        .canonicalize()
        .map_err(|_| "obligation `path_under`: its root cannot be read".to_owned())?;
    let full = if given.is_absolute() { given.to_path_buf() } else { root.join(given) };
    // The deepest part that exists, with its links resolved; the rest cannot be a link.
    let mut existing = full.as_path();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(resolved) => break resolved,
            Err(_) => existing = existing.parent().ok_or_else(refused)?,
        }
    };
    if resolved.starts_with(&root) { Ok(()) } else { Err(refused()) }
}

/// The argument is an http(s) URL whose host is one of `hosts` (`*.example.org` for its
/// subdomains).
fn url_host(rule: &UrlHost, arguments: &JsonObject) -> Result<(), String> {
    let refused = || format!("obligation `url_host`: `{}` is not an allowed host", rule.argument);
    let text = string_argument(arguments, &rule.argument, "url_host")?;
    let url = url::Url::parse(text).map_err(|_| refused())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused());
    }
    let host = url.host_str().ok_or_else(refused)?.to_ascii_lowercase();
    let allowed = rule.hosts.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        match allowed.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => host == allowed,
        }
    });
    if allowed { Ok(()) } else { Err(refused()) }
}

/// The argument is at most `bytes` long (a string's bytes, anything else as JSON).
fn max_size(rule: &MaxSize, arguments: &JsonObject) -> Result<(), String> {
    let size = match arguments.get(&rule.argument) {
        None => 0,
        Some(Value::String(s)) => s.len(),
        Some(other) => other.to_string().len(),
    };
    if size <= rule.bytes {
        Ok(())
    } else {
        Err(format!("obligation `max_size`: `{}` is larger than {} bytes", rule.argument, rule.bytes))
    }
}

/// At most `max` calls of `tool` by `agent` per `per`, as a sliding window: this window's
/// count plus the previous window's, weighted by how much of it still overlaps. Counted in the
/// shared state store, so replicas share the limit; refused calls count too.
async fn rate_limit(
    rule: &RateLimit,
    state: &dyn StateStore,
    agent: &AgentId,
    tool: &str,
) -> Result<(), String> {
    if rule.per.is_zero() {
        return Err("obligation `rate_limit` is misconfigured: `per` is zero".to_owned());
    }
    let per = rule.per.as_nanos();
    let now = u128::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or_default();
    let (window, into) = (now / per, now % per);
    let key = |w: u128| format!("mcp-rate:{agent}:{tool}:{}:{w}", rule.per.as_millis());
    let unavailable = |e: zta_core::StateError| format!("rate limit unavailable: {e}");
    let (current_key, previous_key) = (key(window), key(window.saturating_sub(1)));
    // Both at once: with Redis the two commands share one round trip.
    let (current, previous) =
        tokio::join!(state.add_failure(&current_key, rule.per * 2), state.failures(&previous_key));
    let (current, previous) = (current.map_err(unavailable)?, previous.map_err(unavailable)?);
    let overlap = 1.0 - (into as f64 / per as f64);
    let estimate = f64::from(previous) * overlap + f64::from(current);
    if estimate > f64::from(rule.max) {
        return Err(format!("obligation `rate_limit`: more than {} calls per {:?}", rule.max, rule.per));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn paths_stay_under_their_root_even_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();
        let rule = PathUnder { argument: "path".into(), root: root.clone() };
        let check = |path: &str| path_under(&rule, &args(json!({"path": path})));
        assert!(check("docs/a.txt").is_ok());
        assert!(check("new/dir/file").is_ok());
        assert!(check(root.join("docs").to_str().unwrap()).is_ok());
        for bad in ["../x", "docs/../../x", "escape/secret", "escape/nope/deeper", "/etc/passwd", ""] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert!(path_under(&rule, &args(json!({"path": 7}))).is_err());
        assert!(path_under(&rule, &args(json!({}))).is_err());
    }

    #[test]
    fn urls_must_name_an_allowed_host() {
        let rule =
            UrlHost { argument: "url".into(), hosts: vec!["example.com".into(), "*.example.org".into()] };
        let check = |url: &str| url_host(&rule, &args(json!({"url": url})));
        assert!(check("https://example.com/a").is_ok());
        assert!(check("https://EXAMPLE.com").is_ok());
        assert!(check("https://api.example.org/x").is_ok());
        for bad in [
            "https://example.org",
            "https://evilexample.org",
            "https://example.com.evil.net",
            "https://user@evil.net/?example.com",
            "file:///etc/passwd",
            "ftp://example.com",
            "not a url",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_removes_named_fields_and_patterns() {
        let obligation = Obligation {
            name: "redact".into(),
            params: json!({"fields": ["api_key"], "patterns": ["\\d{3}-\\d{2}-\\d{4}"]}),
        };
        let mut result = CallToolResult::success(vec![
            rmcp::model::ContentBlock::text(
                r#"{"user": "ann", "api_key": "k-123", "nested": [{"api_key": "x"}]}"#,
            ),
            rmcp::model::ContentBlock::text("ssn 123-45-6789 on file"),
        ]);
        result.structured_content = Some(json!({"api_key": "k", "note": "ssn 123-45-6789"}));
        let redacted = redact(&[obligation], result).unwrap();
        let texts: Vec<String> =
            redacted.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
        assert_eq!(texts[0], r#"{"nested":[{}],"user":"ann"}"#);
        assert_eq!(texts[1], "ssn [redacted] on file");
        assert_eq!(redacted.structured_content, Some(json!({"note": "ssn [redacted]"})));
    }

    #[tokio::test]
    async fn a_rate_limit_holds_within_its_window() {
        let state = zta_core::MemoryStateStore::new();
        let agent = AgentId::new("research_bot").unwrap();
        let rule = RateLimit { max: 3, per: Duration::from_secs(3600) };
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            outcomes.push(rate_limit(&rule, &state, &agent, "files__read_file").await.is_ok());
        }
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 3, "{outcomes:?}");
        // Another tool, another agent: their own limits.
        assert!(rate_limit(&rule, &state, &agent, "files__list_files").await.is_ok());
        let other = AgentId::new("writer_bot").unwrap();
        assert!(rate_limit(&rule, &state, &other, "files__read_file").await.is_ok());
    }
}
