//! `zta credential ...`: make the credentials that `zta authorize` and `zta token issue` read, with
//! the library's own signer and hasher. Secrets come from files or standard input, never from
//! arguments.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Result;
use clap::Subcommand;
use zta::{
    AgentId, Config, Credential, IdentitySection, MAX_CREDENTIAL_LEN,
    identity::static_agents::{AgentKey, StaticConfig, hash_secret},
    secrecy::{ExposeSecret, SecretString},
};

use crate::commands::{read_secret_input, usage};

/// The assertion lifetime used unless `--ttl` says otherwise (the static provider's default
/// `assertion.max_lifetime`).
const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// The longest `assertion.max_lifetime` a static provider accepts, so the longest `--ttl`
/// without `--config`.
const MAX_TTL: Duration = Duration::from_secs(3600);

/// `zta credential ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CredentialCommand {
    /// Sign a fresh one-use assertion with an agent key (from `zta keygen --agent`) and print it
    /// as a credential file: `{"assertion": "..."}`.
    Assertion {
        /// The agent's private key, PKCS#8 PEM (`-`: standard input).
        #[arg(long)]
        key: PathBuf,
        /// The agent id (`iss` and `sub` of the assertion).
        #[arg(long)]
        agent: String,
        /// The `aud` claim. Defaults to the audience of the `--config` static identity section
        /// that lists the agent; required without `--config`.
        #[arg(long)]
        audience: Option<String>,
        /// The config the assertion is for: gives the audience and the longest lifetime, and
        /// refuses an agent it does not list with a key.
        #[arg(long)]
        config: Option<PathBuf>,
        /// How long the assertion is good for, in whole seconds (`30s`, `1m`). Default `60s`, or
        /// the config's `assertion.max_lifetime` if shorter; at most that (without `--config`:
        /// `1h`).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Read a secret from standard input (one trailing newline is dropped) and print its
    /// argon2id hash for `secret_hash:` in the config. Refuses an empty secret, and one longer
    /// than a login accepts (8 KiB).
    HashSecret,
}

/// Runs a `zta credential` command.
pub(crate) fn run(command: CredentialCommand) -> Result<ExitCode> {
    match command {
        CredentialCommand::Assertion { key, agent, audience, config, ttl } => {
            assertion(&key, &agent, audience.as_deref(), config.as_deref(), ttl.as_deref())
        }
        CredentialCommand::HashSecret => hash_secret_from_stdin(),
    }
}

fn assertion(
    key: &Path,
    agent: &str,
    audience: Option<&str>,
    config: Option<&Path>,
    ttl: Option<&str>,
) -> Result<ExitCode> {
    let id = AgentId::new(agent).map_err(|e| usage(format!("agent `{agent}`: {e}")))?;
    let (audience, max_ttl) = match config {
        Some(path) => {
            let config = Config::from_file(path)?;
            let section = static_section_for(&config, &id, path)?;
            if audience.is_some_and(|a| a != section.audience) {
                return Err(usage(format!(
                    "`--audience` differs from the audience `{}` that `{}` accepts for `{id}`",
                    section.audience,
                    path.display()
                )));
            }
            (section.audience.clone(), section.assertion.max_lifetime.min(MAX_TTL))
        }
        None => (
            audience.ok_or_else(|| usage("`--audience` is required without `--config`"))?.to_owned(),
            MAX_TTL,
        ),
    };
    let ttl = match ttl {
        Some(text) => zta::duration::parse(text).map_err(|e| usage(format!("`--ttl`: {e}")))?,
        None => DEFAULT_TTL.min(max_ttl),
    };
    if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
        return Err(usage("`--ttl` must be a whole number of seconds, at least `1s`"));
    }
    if ttl > max_ttl {
        return Err(usage(format!(
            "`--ttl` is longer than the {} the identity provider accepts",
            zta::duration::format(max_ttl)
        )));
    }
    let pem = read_secret_input(key)?;
    let signer = AgentKey::from_pkcs8_pem(pem.expose_secret())
        .map_err(|e| usage(format!("`{}`: {e}", key.display())))?;
    let jwt = match signer.assertion(&id, &audience, ttl)? {
        Credential::AgentAssertion(jwt) => jwt,
        _ => return Err(anyhow::anyhow!("the agent key did not make an assertion")),
    };
    outln!("{}", serde_json::json!({ "assertion": jwt.expose_secret() }))?;
    Ok(ExitCode::SUCCESS)
}

/// The static identity section of `config` that lists `id` with a key.
fn static_section_for<'c>(config: &'c Config, id: &AgentId, path: &Path) -> Result<&'c StaticConfig> {
    let mut sections = config.identity.iter().filter_map(|section| match section {
        IdentitySection::Static(c) => Some(c),
        _ => None,
    });
    let (section, entry) = sections
        .find_map(|c| c.agents.iter().find(|a| a.id == *id).map(|a| (c, a)))
        .ok_or_else(|| usage(format!("`{}` has no static identity agent `{id}`", path.display())))?;
    if entry.public_key.is_none() && entry.public_key_file.is_none() {
        return Err(usage(format!(
            "agent `{id}` logs in with a secret in `{}`, not with a key; its credential file is {{\"username\": ..., \"password\": ...}}",
            path.display()
        )));
    }
    Ok(section)
}

fn hash_secret_from_stdin() -> Result<ExitCode> {
    if std::io::stdin().is_terminal() {
        eprintln!("reading the secret from standard input (it is shown as typed; end with Ctrl-D)");
    }
    let text = read_secret_input(Path::new("-"))?;
    let raw = text.expose_secret();
    let secret = SecretString::from(
        raw.strip_suffix("\r\n").or_else(|| raw.strip_suffix('\n')).unwrap_or(raw).to_owned(),
    );
    if secret.expose_secret().is_empty() {
        return Err(usage("the secret on standard input is empty"));
    }
    if secret.expose_secret().len() > MAX_CREDENTIAL_LEN {
        // The guard refuses a longer credential before looking at it: it could never log in.
        return Err(usage(format!(
            "the secret is longer than the {MAX_CREDENTIAL_LEN} bytes a login accepts"
        )));
    }
    let hash = hash_secret(secret.expose_secret())?;
    outln!("{hash}")?;
    Ok(ExitCode::SUCCESS)
}
