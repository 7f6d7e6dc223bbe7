//! `zta monitor status|alerts`: what monitoring has done, read from the configured audit store
//! (the first one that can be queried) and state store: who is suspended, by whom, why and
//! since when; the latest alerts.

use std::{collections::BTreeMap, io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::json;
use zta::{AgentId, AuditEvent, AuditQuery, AuditRecord, Config, Effect, StateSection};

use crate::{
    audit::{Format, print, printable},
    commands::usage,
};

/// The most suspension and reinstatement records read to find who is suspended.
const HISTORY: usize = 100_000;

#[derive(Debug, Subcommand)]
pub(crate) enum MonitorCommand {
    /// The detectors configured, and every agent suspended now: since when, by whom, why.
    Status {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The latest alerts, oldest first.
    Alerts {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Only alerts about this agent.
        #[arg(long)]
        agent: Option<String>,
        /// How many (the latest).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// How to print them.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

pub(crate) async fn run(command: MonitorCommand) -> Result<ExitCode> {
    match command {
        MonitorCommand::Status { config, json } => status(&config, json).await,
        MonitorCommand::Alerts { config, agent, limit, format } => {
            let agent = agent
                .map(|id| AgentId::new(&id).map_err(|e| usage(format!("`{id}` is not an agent id: {e}"))))
                .transpose()?;
            let built = Config::from_file(&config)?.build().await?;
            let source = built.audit_source.as_ref().ok_or_else(no_store)?;
            let mut query = AuditQuery::default();
            (query.event, query.agent) = (Some(AuditEvent::Alert), agent);
            let alerts = source.query(&query, limit).await.context("reading the audit store")?;
            print(&alerts, format)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(path: &std::path::Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::from_file(path)?;
    let shared = !matches!(config.state, StateSection::Memory);
    let built = config.build().await?;
    let source = built.audit_source.as_ref().ok_or_else(no_store)?;
    // The latest allowed suspension or reinstatement of each agent says whether it should be
    // suspended; a shared state store says whether it is.
    let mut latest: BTreeMap<AgentId, AuditRecord> = BTreeMap::new();
    for event in [AuditEvent::Suspension, AuditEvent::Reinstatement] {
        let mut query = AuditQuery::default();
        (query.event, query.effect) = (Some(event), Some(Effect::Allow));
        for record in source.query(&query, HISTORY).await.context("reading the audit store")? {
            let Some(agent) = record.agent_id.clone() else { continue };
            if latest.get(&agent).is_none_or(|seen| seen.time <= record.time) {
                latest.insert(agent, record);
            }
        }
    }
    let mut suspended = Vec::new();
    for (agent, record) in latest {
        if record.event == AuditEvent::Suspension && (!shared || built.state.is_suspended(&agent).await?) {
            suspended.push(record);
        }
    }
    let detectors = &config.monitor.detectors;
    if as_json {
        let detectors: Vec<_> = detectors
            .iter()
            .map(|d| {
                json!({"name": d.name, "detect": d.detect.as_str(), "window": zta::duration::format(d.window),
                    "threshold": d.threshold, "respond": d.respond.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                    "dry_run": d.dry_run})
            })
            .collect();
        let suspended: Vec<_> = suspended
            .iter()
            .map(|r| json!({"agent_id": r.agent_id, "since": rfc3339(r), "by": r.detail.get("by"), "reason": r.reason}))
            .collect();
        outln!("{}", json!({"detectors": detectors, "suspended": suspended, "state_shared": shared}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<24} {:<20} {:<8} {:<10} RESPONDS", "DETECTOR", "DETECTS", "WINDOW", "THRESHOLD")?;
    for d in detectors {
        let respond: Vec<&str> = d.respond.iter().map(|r| r.as_str()).collect();
        let (window, threshold) = if d.detect.is_immediate() {
            ("-".to_owned(), "-".to_owned())
        } else {
            (zta::duration::format(d.window), d.threshold.to_string())
        };
        let respond = if respond.is_empty() { "alert".to_owned() } else { respond.join(",") };
        let dry = if d.dry_run { "(dry run)" } else { "" };
        writeln!(
            out,
            "{:<24} {:<20} {:<8} {:<10} {:<24} {dry}",
            d.name,
            d.detect.as_str(),
            window,
            threshold,
            respond
        )?;
    }
    writeln!(out)?;
    if suspended.is_empty() {
        writeln!(out, "no agent is suspended")?;
    } else {
        writeln!(out, "{:<20} {:<30} {:<24} REASON", "SUSPENDED", "SINCE", "BY")?;
        for r in &suspended {
            let agent = r.agent_id.as_ref().map_or("-", AgentId::as_str);
            let by = r.detail.get("by").and_then(|v| v.as_str()).unwrap_or("-");
            writeln!(
                out,
                "{:<20} {:<30} {:<24} {}",
                printable(agent),
                rfc3339(r),
                printable(by),
                printable(r.reason.as_deref().unwrap_or(""))
            )?;
        }
    }
    if !shared {
        writeln!(
            out,
            "(the state store is in memory, in each process: suspensions are read from the audit log only)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(record: &AuditRecord) -> String {
    record.time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn no_store() -> anyhow::Error {
    usage("the config's audit sinks cannot be queried (no `jsonl`, `postgres` or `sqlite` sink)")
}
