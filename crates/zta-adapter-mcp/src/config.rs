//! The `gateway:` section of `zta.yaml`.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::Error;

/// The gateway's settings.
///
/// ```yaml
/// gateway:
///   listen: 127.0.0.1:8900                  # where it listens (default)
///   resource: http://127.0.0.1:8900/mcp     # this gateway's URL, as agents reach it
///   upstreams:
///     - name: files
///       command: [mcp-files, --root, ./data]   # a child process speaking MCP on stdio
///     - name: search
///       url: http://127.0.0.1:9000/mcp         # a streamable-HTTP MCP server
///       timeout: 10s
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The address to listen on (default `127.0.0.1:8900`).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// This gateway's URL as agents reach it (`https://tools.example.com/mcp`): named in the
    /// protected-resource metadata (RFC 9728) and in every `401` answer.
    pub resource: String,
    /// Authorization servers agents get their tokens from, listed in the metadata (for
    /// example the Entra ID issuer); empty when agents use ZTA session tokens.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Host names (`host` or `host:port`) accepted in the `Host` header besides the host of
    /// `resource` (default: the loopback names), against DNS rebinding.
    #[serde(default = "loopback_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Where the fingerprints of the upstreams' tool definitions are kept (JSON): a tool is
    /// pinned the first time the gateway sees it, and a changed definition is hidden and
    /// refused until `zta gateway approve-tool` approves it. Without a file, pins live as long
    /// as the process.
    #[serde(default)]
    pub pins_file: Option<std::path::PathBuf>,
    /// Where calls that need a person's approval (`require_approval`) wait for it, and where
    /// `zta gateway approve` leaves it. Without it, such calls are refused.
    #[serde(default)]
    pub approvals_dir: Option<std::path::PathBuf>,
    /// A service asked to approve calls that need approval, before they wait for `zta
    /// gateway approve`.
    #[serde(default)]
    pub approval_webhook: Option<ApprovalWebhook>,
    /// Largest request body accepted from an agent (default 1 MiB).
    #[serde(default = "default_request_bytes")]
    pub max_request_bytes: usize,
    /// How long an agent may take to send a request's body (default 10 s).
    #[serde(default = "default_body_timeout", with = "zta_core::duration::text")]
    pub body_timeout: Duration,
    /// The MCP servers behind the gateway; their tools appear as `<name>__<tool>`.
    pub upstreams: Vec<UpstreamConfig>,
}

/// The approval webhook: the gateway POSTs `{approval_id, agent, tool, arguments, expires}`
/// with `x-zta-signature: sha256=<hex HMAC-SHA256 of the body>`, and runs the call only if the
/// answer is `200` with `{"approval_id": <the same id>, "approved": true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApprovalWebhook {
    /// Where to POST.
    pub url: String,
    /// The environment variable holding the HMAC key the webhook checks the signature with.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding that key (instead of `secret_env`).
    #[serde(default)]
    pub secret_file: Option<std::path::PathBuf>,
    /// How long to wait for the answer (default 30 s; no answer is no approval).
    #[serde(default = "default_timeout", with = "zta_core::duration::text")]
    pub timeout: Duration,
}

/// One MCP server behind the gateway: a child process (`command`) or a URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// Its name: lower-case letters, digits, `-` and single `_`; the prefix of its tools.
    pub name: String,
    /// A program and its arguments, started by the gateway, speaking MCP on stdin/stdout.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment variables for `command` (nothing else of the gateway's environment is
    /// passed on but `PATH`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A streamable-HTTP MCP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// How long one request to it may take (default 30 s).
    #[serde(default = "default_timeout", with = "zta_core::duration::text")]
    pub timeout: Duration,
}

impl ApprovalWebhook {
    /// The HMAC key, from `secret_env` or `secret_file` (exactly one).
    pub(crate) fn secret(&self) -> Result<String, Error> {
        zta_core::secret_source::read(self.secret_env.as_deref(), self.secret_file.as_deref()).map_err(|e| {
            let field = e
                .setting()
                .map_or_else(|| "approval_webhook".to_owned(), |s| format!("approval_webhook.{s}"));
            Error::config(field, e.to_string())
        })
    }
}

impl GatewayConfig {
    /// Checks what serde cannot: names, one transport per upstream, URLs.
    pub fn check(&self) -> Result<(), Error> {
        url(&self.resource).map_err(|why| Error::config("resource", why))?;
        if self.upstreams.is_empty() {
            return Err(Error::config("upstreams", "name at least one MCP server"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let at = |field: &str| format!("upstreams[{i}].{field}");
            let name = &upstream.name;
            let valid = !name.is_empty()
                && name.len() <= 64
                && !name.contains("__")
                && !name.starts_with(['_', '-'])
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !valid {
                return Err(Error::config(
                    at("name"),
                    format!("`{name}`: lower-case letters, digits, `-` and single `_`, at most 64"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::config(at("name"), format!("`{name}` is named twice")));
            }
            match (&upstream.command, &upstream.url) {
                (Some(command), None) if command.first().is_some_and(|c| !c.is_empty()) => {}
                (Some(_), None) => return Err(Error::config(at("command"), "name the program to run")),
                (None, Some(u)) => url(u).map_err(|why| Error::config(at("url"), why))?,
                _ => return Err(Error::config(at("command"), "give exactly one of `command` and `url`")),
            }
            if upstream.timeout.is_zero() {
                return Err(Error::config(at("timeout"), "must be more than zero"));
            }
        }
        if let Some(hook) = &self.approval_webhook {
            url(&hook.url).map_err(|why| Error::config("approval_webhook.url", why))?;
            if hook.secret()?.len() < 16 {
                return Err(Error::config("approval_webhook", "the webhook's key must be at least 16 bytes"));
            }
        }
        if self.body_timeout.is_zero() {
            return Err(Error::config("body_timeout", "must be more than zero"));
        }
        if self.max_request_bytes < 1024 {
            return Err(Error::config("max_request_bytes", "at least 1024"));
        }
        Ok(())
    }
}

fn url(text: &str) -> Result<(), String> {
    let parsed = http::Uri::try_from(text).map_err(|e| format!("`{text}`: {e}"))?;
    match parsed.scheme_str() {
        Some("http" | "https") if parsed.host().is_some() => Ok(()),
        _ => Err(format!("`{text}`: an http:// or https:// URL")),
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8900))
}
fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
}
fn default_request_bytes() -> usize {
    1 << 20
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
