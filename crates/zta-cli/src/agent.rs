//! `zta agent suspend|reinstate|status`: shut a compromised agent out of every replica, and let
//! it back in. The suspension lives in the configured shared state store, where every guard
//! built from the same config looks on each request; the change is audited to the configured
//! audit sink.

use std::{path::Path, process::ExitCode};

use anyhow::Result;
use clap::Subcommand;
use zta::{AgentId, Config, StateSection};

use crate::commands::{EXIT_DENY, usage};

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Suspend an agent: every credential of it is refused until it is reinstated (audited).
    Suspend {
        /// The agent id.
        id: String,
        /// The config file (its `state` must be shared, e.g. `type: redis`).
        #[arg(long)]
        config: std::path::PathBuf,
        /// Why, for the audit record.
        #[arg(long, default_value = "suspended with zta agent suspend")]
        reason: String,
    },
    /// Lift a suspension; the agent's earlier sessions stay revoked, so it logs in again (audited).
    Reinstate {
        /// The agent id.
        id: String,
        /// The config file.
        #[arg(long)]
        config: std::path::PathBuf,
        /// Why, for the audit record.
        #[arg(long, default_value = "reinstated with zta agent reinstate")]
        reason: String,
    },
    /// Print whether an agent is suspended (exit 0 if active, 3 if suspended).
    Status {
        /// The agent id.
        id: String,
        /// The config file.
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

pub(crate) async fn run(command: AgentCommand) -> Result<ExitCode> {
    let (id, config, change) = match command {
        AgentCommand::Suspend { id, config, reason } => (id, config, Some((true, reason))),
        AgentCommand::Reinstate { id, config, reason } => (id, config, Some((false, reason))),
        AgentCommand::Status { id, config } => (id, config, None),
    };
    let agent = AgentId::new(&id).map_err(|e| usage(format!("`{id}` is not an agent id: {e}")))?;
    let built = shared_state(&config)?.build().await?;
    let guard = &built.guard;
    let outcome = match &change {
        Some((true, reason)) => guard.suspend_agent(&agent, &zta::Actor::Local, reason).await,
        Some((false, reason)) => guard.reinstate_agent(&agent, &zta::Actor::Local, reason).await,
        None => Ok(()),
    };
    guard.audit_sink().flush().await?;
    if let Err(denied) = outcome {
        anyhow::bail!("the change was not made: {denied}");
    }
    let suspended = guard.is_suspended(&agent).await?;
    outln!("{agent}: {}", if suspended { "suspended" } else { "active" })?;
    Ok(if suspended && change.is_none() { ExitCode::from(EXIT_DENY) } else { ExitCode::SUCCESS })
}

/// Loads `path`, refusing a config whose state lives inside one process: a suspension made
/// there would end with this command and bind no running guard.
fn shared_state(path: &Path) -> Result<Config> {
    let config = Config::from_file(path)?;
    if matches!(config.state, StateSection::Memory) {
        return Err(usage(format!(
            "`{}` keeps its state in memory, inside each process: a suspension made by this \
             command would bind no running guard; configure a shared `state` (e.g. `type: redis`), \
             or suspend through the running process (`Guard::suspend_agent`)",
            path.display()
        )));
    }
    Ok(config)
}
