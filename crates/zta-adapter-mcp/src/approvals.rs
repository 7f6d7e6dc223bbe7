//! The `require_approval` obligation: a call runs only once a person approved exactly it.
//!
//! When an approval webhook is configured it is asked first, and its yes lets this one call
//! run. Otherwise the first attempt is refused with an approval id, and the request is written to
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

use crate::{Error, GatewayConfig};

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

/// Where approvals come from: the approvals directory (`zta gateway approve`) and the webhook.
pub(crate) struct Approver {
    dir: Option<PathBuf>,
    webhook: Option<Webhook>,
}

struct Webhook {
    url: String,
    key: aws_lc_rs::hmac::Key,
    client: reqwest::Client,
}

impl Approver {
    pub(crate) fn new(config: &GatewayConfig) -> Result<Self, Error> {
        let webhook = match &config.approval_webhook {
            None => None,
            Some(hook) => {
                let secret = hook.secret()?;
                let client = reqwest::Client::builder()
                    .timeout(hook.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| Error::config("approval_webhook", e.to_string()))?;
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
                Some(Webhook { url: hook.url.clone(), key, client })
            }
        };
        Ok(Self { dir: config.approvals_dir.clone(), webhook })
    }

    /// `Ok(())` if this exact call is approved: by an unexpired approval in the directory (used
    /// up now), or by the webhook; otherwise records the request for `zta gateway approve` and
    /// returns the refusal.
    pub(crate) async fn approve(
        &self,
        params: &Value,
        agent: &str,
        tool: &str,
        arguments: &Value,
    ) -> Result<(), String> {
        let params: Params =
            serde_json::from_value(if params.is_null() { json!({}) } else { params.clone() })
                .map_err(|e| format!("obligation `require_approval` is misconfigured: {e}"))?;
        let id = approval_id(agent, tool, arguments);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = params.ttl.unwrap_or(DEFAULT_TTL);
        let request = Request {
            agent: agent.to_owned(),
            tool: tool.to_owned(),
            arguments: arguments.clone(),
            expires: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        if let Some(dir) = &self.dir
            && take(dir, &id, &request, now)
        {
            return Ok(());
        }
        if let Some(webhook) = &self.webhook
            && webhook.approves(&id, &request).await
        {
            return Ok(());
        }
        let Some(dir) = &self.dir else {
            return Err(format!("approval required, and not given (approval id {id})"));
        };
        let text = serde_json::to_string_pretty(&request).unwrap_or_default();
        std::fs::write(dir.join(format!("{id}.pending")), text)
            .map_err(|e| format!("obligation `require_approval`: the request cannot be recorded: {e}"))?;
        Err(format!("approval required: `zta gateway approve {id}`, then call again (approval id {id})"))
    }
}

impl Webhook {
    /// Whether the webhook answers yes to exactly this request.
    async fn approves(&self, id: &str, request: &Request) -> bool {
        let body = json!({
            "approval_id": id, "agent": request.agent, "tool": request.tool,
            "arguments": request.arguments, "expires": request.expires,
        })
        .to_string();
        let signature = hex::encode(aws_lc_rs::hmac::sign(&self.key, body.as_bytes()));
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-zta-signature", format!("sha256={signature}"))
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                response.json::<Value>().await.ok()
            }
            Ok(response) => {
                tracing::warn!(target: "zta_adapter_mcp", status = %response.status(), "the approval webhook said no");
                None
            }
            Err(e) => {
                tracing::warn!(target: "zta_adapter_mcp", error = %e, "the approval webhook did not answer");
                None
            }
        };
        answer.is_some_and(|a| {
            a.get("approval_id").and_then(Value::as_str) == Some(id)
                && a.get("approved") == Some(&Value::Bool(true))
        })
    }
}

/// Takes the approval of `id` from `dir` if it is there, unexpired, and for exactly `request`
/// (an atomic rename: a second taker finds nothing).
fn take(dir: &Path, id: &str, request: &Request, now: i64) -> bool {
    let used = dir.join(format!("{id}.used"));
    if std::fs::rename(dir.join(format!("{id}.approved")), &used).is_err() {
        return false;
    }
    let approved = std::fs::read_to_string(&used).ok().and_then(|t| serde_json::from_str::<Request>(&t).ok());
    let _ = std::fs::remove_file(&used);
    approved.is_some_and(|a| {
        a.expires > now
            && a.agent == request.agent
            && a.tool == request.tool
            && a.arguments == request.arguments
    })
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

    #[tokio::test]
    async fn an_approval_is_for_one_exact_call_once() {
        let dir = tempfile::tempdir().unwrap();
        let approver = Approver { dir: Some(dir.path().to_path_buf()), webhook: None };
        let ask = |agent: &'static str, args: Value| {
            let approver = &approver;
            async move { approver.approve(&Value::Null, agent, "files__delete_file", &args).await }
        };
        let args = json!({"path": "a.txt"});
        let refused = ask("writer_bot", args.clone()).await;
        let id = approval_id("writer_bot", "files__delete_file", &args);
        assert!(refused.unwrap_err().contains(&id));
        assert!(approve(dir.path(), "nothex!").is_err());
        let approved = approve(dir.path(), &id).unwrap();
        assert!(approved.contains("writer_bot") && approved.contains("a.txt"), "{approved}");
        assert!(approve(dir.path(), &id).is_err(), "approved twice");

        // Other arguments, or another agent: not this approval.
        assert!(ask("writer_bot", json!({"path": "b.txt"})).await.is_err());
        assert!(ask("research_bot", args.clone()).await.is_err());
        // The exact call, once.
        assert!(ask("writer_bot", args.clone()).await.is_ok());
        assert!(ask("writer_bot", args.clone()).await.is_err());
        // Without a directory or a webhook nothing is approved.
        let nobody = Approver { dir: None, webhook: None };
        assert!(nobody.approve(&Value::Null, "writer_bot", "files__delete_file", &args).await.is_err());
    }
}
