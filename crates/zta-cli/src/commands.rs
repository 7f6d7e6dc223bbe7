//! The non-demo subcommands.

use std::{
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::{Context, Result};
use base64::Engine;
use clap::Subcommand;
use serde::Deserialize;
use zta::{
    Config, ConfigError, Credential, Request,
    secrecy::{ExposeSecret, SecretString},
};

/// Exit code for a denial or a failed check.
pub(crate) const EXIT_DENY: u8 = 3;
/// Exit code for usage and configuration errors.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code of `audit verify` for a log whose chain is intact but whose tail is unprotected
/// (an unsigned checkpoint, or no key to check it).
pub(crate) const EXIT_UNPROTECTED: u8 = 4;

/// A mistake in what the user gave us (exit code 2).
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub(crate) fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<Usage>().is_some() {
        EXIT_USAGE
    } else {
        1
    }
}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// Largest token, credential or key file read, in bytes.
const MAX_SECRET_INPUT: u64 = 64 * 1024;

/// Reads a token, credential or key from the file at `path`, or from standard input if `path` is
/// `-`. Secrets never come from arguments. Refuses more than 64 KiB and text that is not UTF-8.
pub(crate) fn read_secret_input(path: &Path) -> Result<SecretString> {
    let stdin = path == Path::new("-");
    let name = if stdin { "standard input".to_owned() } else { format!("`{}`", path.display()) };
    let mut bytes = Vec::new();
    let read = if stdin {
        std::io::stdin().lock().take(MAX_SECRET_INPUT + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_SECRET_INPUT + 1).read_to_end(&mut bytes))
    };
    read.with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > MAX_SECRET_INPUT {
        return Err(usage(format!("{name} is longer than {MAX_SECRET_INPUT} bytes")));
    }
    String::from_utf8(bytes).map(SecretString::from).map_err(|_| usage(format!("{name} is not UTF-8 text")))
}

async fn build(config: &Path) -> Result<zta::Built> {
    let config = Config::from_file(config)?;
    Ok(config.build().await?)
}

pub(crate) async fn check(config: &Path) -> Result<ExitCode> {
    let loaded = Config::from_file(config)?;
    loaded.server()?;
    loaded.gateway()?;
    let built = build(config).await?;
    outln!("{}: ok (policy {})", config.display(), built.guard.policy_engine().digest())?;
    built.guard.audit_sink().flush().await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn serve(config: &Path, listen: Option<std::net::SocketAddr>) -> Result<ExitCode> {
    let loaded = Config::from_file(config)?;
    let mut server = loaded.server()?;
    if let Some(listen) = listen {
        server.listen = listen;
    }
    let built = loaded.build().await?;
    server.identity_providers.clone_from(&built.identity_providers);
    server.audit_source.clone_from(&built.audit_source);
    if let Some(monitor) = built.monitor.clone() {
        server.monitor = Some(zta::server::MonitorReport(Arc::new(move || {
            let (stats, webhook) = (monitor.stats(), monitor.webhook_stats());
            zta::server::MonitorCounts {
                alerts: stats.alerts(),
                responses: stats.responses(),
                errors: stats.errors(),
                webhook: webhook.map(|w| (w.delivered(), w.failed())),
            }
        })));
    }
    let listener = tokio::net::TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    server.listen = listener.local_addr()?;
    let scheme = if server.tls.is_some() { "https" } else { "http" };
    outln!("zta serve: listening on {scheme}://{} (AuthZEN evaluation API)", server.listen)?;
    zta::server::serve_on(listener, built.guard, &server, shutdown_signal()).await?;
    outln!("zta serve: stopped; audit log flushed")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn gateway(config: &Path, listen: Option<std::net::SocketAddr>) -> Result<ExitCode> {
    let loaded = Config::from_file(config)?;
    let (_built, gateway) = loaded.build_gateway().await?;
    let address = listen.unwrap_or(gateway.listen());
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    outln!("zta gateway: listening on http://{} (MCP over streamable HTTP)", listener.local_addr()?)?;
    gateway.serve_on(listener, shutdown_signal()).await?;
    outln!("zta gateway: stopped; audit log flushed")?;
    Ok(ExitCode::SUCCESS)
}

/// `zta gateway --stdio`: standard output carries MCP, so nothing else is printed there.
pub(crate) async fn gateway_stdio(config: &Path, credential: &Path) -> Result<ExitCode> {
    let credential = read_credential(credential)?;
    let (_built, gateway) = Config::from_file(config)?.build_gateway().await?;
    gateway.serve_stdio(credential).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn approve_call(config: &Path, id: &str) -> Result<ExitCode> {
    let gateway = Config::from_file(config)?
        .gateway()?
        .ok_or_else(|| usage(format!("`{}` has no `gateway` section", config.display())))?;
    let dir = gateway
        .approvals_dir
        .ok_or_else(|| usage("the `gateway` section has no `approvals_dir`: nothing waits for approval"))?;
    let approved = zta::adapter::mcp::approve(&dir, id)?;
    outln!("approved once: {approved}")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn approve_tool(config: &Path, tool: &str) -> Result<ExitCode> {
    let gateway = Config::from_file(config)?
        .gateway()?
        .ok_or_else(|| usage(format!("`{}` has no `gateway` section", config.display())))?;
    let pins = gateway
        .pins_file
        .ok_or_else(|| usage("the `gateway` section keeps no `pins_file`: a restart forgets every pin"))?;
    let diff = zta::adapter::mcp::approve_tool(&pins, tool)?;
    outln!("approved the new definition of `{tool}`:\n{diff}")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// A credential file, as `zta authorize` and `zta token issue` read it: a credential in its JSON
/// shape, or what `zta token issue` printed.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CredentialFile {
    Issued(IssuedTokens),
    Credential(Credential),
}

/// What `zta token issue` prints: its access token is the bearer credential.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuedTokens {
    access_token: String,
    #[serde(rename = "refresh_token", default)]
    _refresh_token: Option<serde::de::IgnoredAny>,
    #[serde(rename = "expires_in", default)]
    _expires_in: Option<serde::de::IgnoredAny>,
}

/// Reads a credential file (`-`: standard input).
fn read_credential(path: &Path) -> Result<Credential> {
    let text = read_secret_input(path)?;
    let parsed: CredentialFile = serde_json::from_str(text.expose_secret()).map_err(|_| {
        usage(format!(
            "`{}` is not a credential file: expected {{\"bearer\": ...}}, {{\"assertion\": ...}}, {{\"username\": ..., \"password\": ...}} or the output of `zta token issue`",
            path.display()
        ))
    })?;
    Ok(match parsed {
        CredentialFile::Issued(tokens) => Credential::bearer(tokens.access_token.trim()),
        CredentialFile::Credential(credential) => credential,
    })
}

pub(crate) async fn authorize(config: &Path, credential: &Path, request: &Path) -> Result<ExitCode> {
    let credential = read_credential(credential)?;
    let text =
        std::fs::read_to_string(request).with_context(|| format!("cannot read `{}`", request.display()))?;
    let request: Request = serde_json::from_str(&text)
        .map_err(|e| usage(format!("`{}` is not a valid request: {e}", request.display())))?;
    let built = build(config).await?;
    let outcome = built.guard.check(&credential, request).await;
    built.guard.audit_sink().flush().await?;
    let (json, code) = match &outcome {
        Ok(permit) => (
            serde_json::json!({
                "effect": "allow",
                "request_id": permit.request_id().to_string(),
                "agent_id": permit.agent_id(),
                "decision": permit.decision(),
            }),
            ExitCode::SUCCESS,
        ),
        Err(denied) => (
            serde_json::json!({
                "effect": "deny",
                "request_id": denied.request_id().to_string(),
                "agent_id": denied.agent_id(),
                "reason": denied.reason().to_string(),
                "decision": denied.decision(),
            }),
            ExitCode::from(EXIT_DENY),
        ),
    };
    outln!("{}", serde_json::to_string_pretty(&json)?)?;
    Ok(code)
}

pub(crate) async fn token_issue(config: &Path, credential: &Path) -> Result<ExitCode> {
    let credential = read_credential(credential)?;
    let built = build(config).await?;
    let outcome = built.guard.login(&credential).await;
    built.guard.audit_sink().flush().await?;
    match outcome {
        Ok(tokens) => {
            let json = serde_json::json!({
                "access_token": tokens.access_token.expose_secret(),
                "refresh_token": tokens.refresh_token.expose_secret(),
                "expires_in": tokens.expires_in.as_secs(),
            });
            outln!("{}", serde_json::to_string_pretty(&json)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(denied) => {
            eprintln!("{denied}");
            Ok(ExitCode::from(EXIT_DENY))
        }
    }
}

/// `zta token inspect`: the token comes from `token_file` (`-`: standard input), never from an
/// argument.
pub(crate) async fn token_inspect(token_file: &Path, config: Option<&Path>) -> Result<ExitCode> {
    let token = read_secret_input(token_file)?;
    let token = token.expose_secret().trim();
    let mut parts = token.split('.');
    let decode = |part: Option<&str>, what: &str| -> Result<serde_json::Value> {
        let part = part.ok_or_else(|| usage(format!("not a JWT: no {what}")))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| usage(format!("not a JWT: {what} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| usage(format!("not a JWT: {what} is not JSON")))
    };
    let header = decode(parts.next(), "header")?;
    let claims = decode(parts.next(), "claims")?;
    let mut out = serde_json::Map::new();
    out.insert("header".into(), header);
    out.insert("claims".into(), claims);
    out.insert("verified".into(), false.into());
    let mut code = ExitCode::SUCCESS;
    if let Some(config) = config {
        let built = build(config).await?;
        match built.guard.authenticate(&Credential::bearer(token)).await {
            Ok(principal) => {
                out.insert("verified".into(), true.into());
                out.insert("principal".into(), serde_json::to_value(&principal)?);
            }
            Err(e) => {
                out.insert("error".into(), e.detail().into_owned().into());
                code = ExitCode::from(EXIT_DENY);
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}

/// `zta audit verify` of a JSON Lines log (with an anchor file, if any; `audit::verify_log`
/// handles anchor stores): 0 intact and protected, 4 intact but the tail unprotected, 1 failed.
pub(crate) fn audit_verify_code(
    path: Option<&Path>,
    public_key: Option<&Path>,
    config: Option<&Path>,
    anchor: Option<&Path>,
) -> Result<u8> {
    use zta::{audit::jsonl, secrecy::zeroize::Zeroizing};
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read `{}`", p.display()));
    // The config's audit section: (dir, checkpoint key file, anchor file).
    let (config_dir, config_key, config_anchor) = match config {
        None => (None, None, None),
        Some(file) => {
            let c = crate::audit::config_jsonl(file)?;
            (Some(c.dir), c.checkpoint_key_file, c.anchor.and_then(|a| a.file))
        }
    };
    let dir =
        path.map(Path::to_path_buf).or(config_dir).ok_or_else(|| usage("name the audit log directory"))?;
    // A private key file gives its public half; it is wiped after use.
    let key = match public_key.or(config_key.as_deref()) {
        Some(p) => Some(Zeroizing::new(read(p)?)),
        None => None,
    };
    let anchor = anchor.map(Path::to_path_buf).or(config_anchor);
    let mut options = jsonl::VerifyOptions::new();
    if let Some(key) = &key {
        options = options.public_key(key);
    }
    if let Some(anchor) = &anchor {
        options = options.anchor(anchor);
    }
    match jsonl::verify_with(&dir, options) {
        Ok(report) if report.tail_protected() => {
            outln!("{}: intact ({report})", dir.display())?;
            Ok(0)
        }
        Ok(report) => {
            outln!("{}: {report}", dir.display())?;
            Ok(EXIT_UNPROTECTED)
        }
        Err(e) => {
            eprintln!("{}: FAILED: {e}", dir.display());
            Ok(1)
        }
    }
}

/// `zta keygen`: the token signing key, with `checkpoint` the audit checkpoint key (Ed25519), and
/// one Ed25519 key pair per agent. Private keys are written `0600`; nothing is overwritten.
pub(crate) fn keygen(out: &Path, alg: &str, agents: &[String], checkpoint: bool) -> Result<ExitCode> {
    let alg: zta::token::Algorithm =
        alg.parse().map_err(|_| usage(format!("unknown algorithm `{alg}`; use EdDSA, ES256 or RS256")))?;
    let ids = agents
        .iter()
        .map(|a| zta::AgentId::new(a).map_err(|e| usage(format!("agent `{a}`: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let key = zta::token::SigningKey::generate(alg)?;
    write_new(&out.join("zta-signing.pem"), key.to_pkcs8_pem().expose_secret(), 0o600)?;
    write_new(&out.join("zta-signing.pub.pem"), &key.public_key_pem(), 0o644)?;
    outln!(
        "token signing key ({}, kid {}): {}",
        alg.as_str(),
        key.kid(),
        out.join("zta-signing.pem").display()
    )?;
    if checkpoint {
        let key = zta::token::SigningKey::generate(zta::token::Algorithm::EdDSA)?;
        let private = out.join("audit-checkpoint.pem");
        write_new(&private, key.to_pkcs8_pem().expose_secret(), 0o600)?;
        write_new(&out.join("audit-checkpoint.pub.pem"), &key.public_key_pem(), 0o644)?;
        outln!("audit checkpoint key (Ed25519): {} (public: audit-checkpoint.pub.pem)", private.display())?;
    }
    for id in ids {
        let agent = zta::identity::static_agents::AgentKey::generate()?;
        let private = out.join(format!("{id}.pem"));
        write_new(&private, agent.to_pkcs8_pem().expose_secret(), 0o600)?;
        write_new(&out.join(format!("{id}.pub.pem")), &agent.public_key_pem(), 0o644)?;
        outln!("agent key for {id}: {} (public: {id}.pub.pem)", private.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a new file with `mode`; never overwrites.
fn write_new(path: &PathBuf, contents: &str, mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create `{}` (it may already exist)", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// `zta policy ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Load policy files and report errors and warnings (exit 3 on errors).
    Check {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Decide one request (an attribute tree with a `principal` section) and print JSON.
    Eval {
        /// Policy file.
        #[arg(long)]
        policy: Vec<PathBuf>,
        /// Request file (JSON or YAML).
        #[arg(long)]
        request: PathBuf,
    },
    /// Like `eval`, explained for a person: every rule considered and why it held or failed.
    Explain {
        /// Policy file.
        #[arg(long)]
        policy: Vec<PathBuf>,
        /// Request file (JSON or YAML).
        #[arg(long)]
        request: PathBuf,
    },
    /// Run a file of test cases (request -> expected effect and rules); exit 3 on any failure.
    Test {
        /// The test file; its `policy:` key names the policy files.
        file: PathBuf,
    },
    /// What an agent could be allowed to do: the actions, tools, targets and segments some
    /// allow rule may permit it, each with the conditions the request still decides, and the
    /// deny rules that may override them.
    WhatCan {
        /// Policy file.
        #[arg(long)]
        policy: Vec<PathBuf>,
        /// The agent id.
        #[arg(long)]
        agent: String,
        /// The agent's principal attributes (roles, groups, segment, tenant, delegation, ...),
        /// as in a request file's `principal` section; without it the agent has none.
        #[arg(long)]
        principal_file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn policy(command: PolicyCommand) -> Result<ExitCode> {
    use zta::policy::{
        PolicySet,
        cli::{
            check_files, principal_from_attributes, read_principal_file, read_request_file, run_test_file,
        },
    };
    let load = |files: &[PathBuf]| -> Result<PolicySet> {
        PolicySet::from_files(files).map_err(|e| usage(format!("policy did not load:\n{e}")))
    };
    let read_request = |path: &Path| -> Result<zta::AuthzRequest> {
        read_request_file(path).map_err(|e| usage(e.to_string()))
    };
    let effect_code = |allowed: bool| if allowed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DENY) };
    match command {
        PolicyCommand::Check { files } => {
            let report = check_files(&files);
            outln!("{report}")?;
            Ok(effect_code(report.ok()))
        }
        PolicyCommand::Eval { policy, request } => {
            let set = load(&policy)?;
            let decision = set.decide(&read_request(&request)?);
            outln!("{}", serde_json::to_string_pretty(&decision)?)?;
            Ok(effect_code(decision.is_allowed()))
        }
        PolicyCommand::Explain { policy, request } => {
            let set = load(&policy)?;
            let explanation = set.explain(&read_request(&request)?);
            outln!("{explanation}")?;
            Ok(effect_code(explanation.decision.is_allowed()))
        }
        PolicyCommand::Test { file } => {
            let report = run_test_file(&file).map_err(|e| usage(format!("{e}")))?;
            outln!("{report}")?;
            Ok(effect_code(report.passed()))
        }
        PolicyCommand::WhatCan { policy, agent, principal_file, json } => {
            let set = load(&policy)?;
            let principal = match &principal_file {
                Some(path) => read_principal_file(&agent, path),
                None => principal_from_attributes(&agent, None),
            }
            .map_err(|e| usage(e.to_string()))?;
            let answer = set.what_can(&principal);
            if json {
                outln!("{}", serde_json::to_string_pretty(&answer)?)?;
            } else {
                out!("{answer}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
