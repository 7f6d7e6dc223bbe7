//! The `require_approval` obligation: a call runs only once a person approved exactly it.
//!
//! The first attempt is refused with an approval id, and the request is written to
//! `<approvals_dir>/<id>.pending`. The id is a digest of the agent, the tool and the exact
//! arguments, so an approval is good for that call alone. `zta gateway approve ID` turns the
//! pending request into `<id>.approved`; the agent's next identical call takes it (an atomic
//! rename, so it is used once) if it has not expired (`ttl`, default 5 min, counted from the
//! request). Without `approvals_dir`, nothing can be approved and such calls are refused.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error;

/// How long a request waits for approval unless the obligation says otherwise.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// A call waiting for approval, or approved.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    agent: String,
    tool: String,
    arguments: Value,
    /// Unix seconds after which the approval is void.
    expires: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, with = "zta_core::duration::option_text")]
    ttl: Option<Duration>,
}

/// The id of the call `agent` makes of `tool` with `arguments`.
pub(crate) fn approval_id(agent: &str, tool: &str, arguments: &Value) -> String {
    // serde_json's maps are sorted: the same arguments give the same text.
    let text = json!([agent, tool, arguments]).to_string();
    hex::encode(Sha256::digest(text.as_bytes())).chars().take(32).collect()
}

/// `Ok(())` if an unexpired approval of this exact call was there (it is used up now);
/// otherwise records the request and returns the refusal.
pub(crate) fn take_or_request(
    dir: Option<&Path>,
    params: &Value,
    agent: &str,
    tool: &str,
    arguments: &Value,
) -> Result<(), String> {
    let Some(dir) = dir else {
        return Err(
            "obligation `require_approval`: no approvals are configured (gateway.approvals_dir)".into()
        );
    };
    let params: Params = serde_json::from_value(if params.is_null() { json!({}) } else { params.clone() })
        .map_err(|e| format!("obligation `require_approval` is misconfigured: {e}"))?;
    let id = approval_id(agent, tool, arguments);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let used = dir.join(format!("{id}.used"));
    if std::fs::rename(dir.join(format!("{id}.approved")), &used).is_ok() {
        let approved =
            std::fs::read_to_string(&used).ok().and_then(|t| serde_json::from_str::<Request>(&t).ok());
        let _ = std::fs::remove_file(&used);
        if approved.is_some_and(|a| {
            a.expires > now && a.agent == agent && a.tool == tool && a.arguments == *arguments
        }) {
            return Ok(());
        }
    }
    let ttl = params.ttl.unwrap_or(DEFAULT_TTL);
    let request = Request {
        agent: agent.to_owned(),
        tool: tool.to_owned(),
        arguments: arguments.clone(),
        expires: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
    };
    let text = serde_json::to_string_pretty(&request).unwrap_or_default();
    std::fs::write(dir.join(format!("{id}.pending")), text)
        .map_err(|e| format!("obligation `require_approval`: the request cannot be recorded: {e}"))?;
    Err(format!("approval required: `zta gateway approve {id}`, then call again (approval id {id})"))
}

/// Approves the pending request `id` in `dir`; what it approved (agent, tool, arguments).
pub fn approve(dir: &Path, id: &str) -> Result<String, Error> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::config("approvals_dir", format!("`{id}` is not an approval id")));
    }
    let pending = dir.join(format!("{id}.pending"));
    let text = std::fs::read_to_string(&pending).map_err(|_| {
        Error::config("approvals_dir", format!("no request `{id}` waits for approval in {}", dir.display()))
    })?;
    let request: Request = serde_json::from_str(&text)
        .map_err(|e| Error::config("approvals_dir", format!("{}: {e}", pending.display())))?;
    if request.expires <= OffsetDateTime::now_utc().unix_timestamp() {
        let _ = std::fs::remove_file(&pending);
        return Err(Error::config(
            "approvals_dir",
            format!("request `{id}` has expired; the agent must ask again"),
        ));
    }
    let approved: PathBuf = dir.join(format!("{id}.approved"));
    std::fs::rename(&pending, &approved)
        .map_err(|e| Error::config("approvals_dir", format!("{}: {e}", approved.display())))?;
    Ok(format!("{} may call {} with {}", request.agent, request.tool, request.arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_is_for_one_exact_call_once() {
        let dir = tempfile::tempdir().unwrap();
        let args = json!({"path": "a.txt"});
        let refused =
            take_or_request(Some(dir.path()), &Value::Null, "writer_bot", "files__delete_file", &args);
        let id = approval_id("writer_bot", "files__delete_file", &args);
        assert!(refused.unwrap_err().contains(&id));
        assert!(approve(dir.path(), "nothex!").is_err());
        let approved = approve(dir.path(), &id).unwrap();
        assert!(approved.contains("writer_bot") && approved.contains("a.txt"), "{approved}");
        assert!(approve(dir.path(), &id).is_err(), "approved twice");

        // Other arguments, or another agent: not this approval.
        let other = json!({"path": "b.txt"});
        assert!(
            take_or_request(Some(dir.path()), &Value::Null, "writer_bot", "files__delete_file", &other)
                .is_err()
        );
        assert!(
            take_or_request(Some(dir.path()), &Value::Null, "research_bot", "files__delete_file", &args)
                .is_err()
        );
        // The exact call, once.
        assert!(
            take_or_request(Some(dir.path()), &Value::Null, "writer_bot", "files__delete_file", &args)
                .is_ok()
        );
        assert!(
            take_or_request(Some(dir.path()), &Value::Null, "writer_bot", "files__delete_file", &args)
                .is_err()
        );
        // Without a directory nothing is approved.
        assert!(take_or_request(None, &Value::Null, "writer_bot", "files__delete_file", &args).is_err());
    }
}
