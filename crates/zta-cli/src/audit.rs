//! `zta audit query` and `zta audit tail`: finding records in a JSON Lines audit log, shown as
//! a table, as JSON lines, or as OCSF events for a SIEM.

use std::{collections::VecDeque, io::Write, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta::{AgentId, AuditEvent, AuditQuery, AuditRecord, Config, Effect, audit::jsonl};

use crate::commands::usage;

/// Which records to show.
#[derive(Debug, clap::Args)]
pub(crate) struct Filters {
    /// Only this agent's records.
    #[arg(long)]
    agent: Option<String>,
    /// Only records of this action (tool, task or message type, or custom verb).
    #[arg(long)]
    action: Option<String>,
    /// Only `allow` or only `deny`.
    #[arg(long)]
    effect: Option<String>,
    /// Only this event (`login`, `authorization`, `token_refresh`, `revocation`, ...).
    #[arg(long)]
    event: Option<String>,
    /// Only records whose reason contains this text (ignoring case).
    #[arg(long)]
    reason: Option<String>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-12-04T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Only the record of this request id.
    #[arg(long)]
    request_id: Option<String>,
}

/// How records are printed.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// A readable table.
    Table,
    /// One audit record per line, as stored.
    Json,
    /// One OCSF event per line (API Activity, Authentication).
    Ocsf,
}

impl Filters {
    fn query(&self) -> Result<AuditQuery> {
        let time = |text: &Option<String>, flag: &str| -> Result<Option<OffsetDateTime>> {
            text.as_deref()
                .map(|t| {
                    OffsetDateTime::parse(t, &Rfc3339)
                        .map_err(|e| usage(format!("--{flag} `{t}` is not an RFC 3339 time: {e}")))
                })
                .transpose()
        };
        let named = |text: &Option<String>| text.as_deref().map(|t| serde_json::Value::String(t.to_owned()));
        let mut query = AuditQuery::default();
        query.agent = self
            .agent
            .as_deref()
            .map(|a| AgentId::new(a).map_err(|e| usage(format!("--agent: {e}"))))
            .transpose()?;
        query.action.clone_from(&self.action);
        query.effect = named(&self.effect)
            .map(|v| serde_json::from_value::<Effect>(v).map_err(|_| usage("--effect is `allow` or `deny`")))
            .transpose()?;
        query.event = named(&self.event)
            .map(|v| {
                serde_json::from_value::<AuditEvent>(v).map_err(|_| {
                    let names: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
                    usage(format!("--event is one of {}", names.join(", ")))
                })
            })
            .transpose()?;
        query.reason.clone_from(&self.reason);
        query.since = time(&self.since, "since")?;
        query.until = time(&self.until, "until")?;
        query.request_id = self
            .request_id
            .as_deref()
            .map(|id| {
                id.parse().map_err(|_| usage(format!("--request-id `{id}` is not a request id (a UUID)")))
            })
            .transpose()?;
        Ok(query)
    }
}

/// `zta audit verify --nats URL --stream S`: every writer's chain in the stream (exit 0), or
/// the first break (exit 1).
pub(crate) async fn verify_nats(url: &str, stream: &str) -> Result<ExitCode> {
    let report = zta::audit::nats::verify(url, stream).await?;
    println!(
        "stream `{stream}`: {} records from {} writers, every chain intact",
        report.records.len(),
        report.writers.len()
    );
    for (writer, count) in &report.writers {
        println!("  writer {writer}: {count} records");
    }
    Ok(ExitCode::SUCCESS)
}

/// The log directory: `path`, or the `type: jsonl` sink of the config `config`.
pub(crate) fn log_dir(path: Option<&Path>, config: Option<&Path>) -> Result<std::path::PathBuf> {
    if let Some(path) = path {
        return Ok(path.to_owned());
    }
    let Some(file) = config else { return Err(usage("name the audit log directory, or --config")) };
    Ok(config_jsonl(file)?.dir)
}

/// The `type: jsonl` sink of the config in `file`.
pub(crate) fn config_jsonl(file: &Path) -> Result<jsonl::JsonlConfig> {
    let jsonl = Config::from_file(file)?.audit.into_iter().find_map(|target| match target.sink {
        zta::AuditSection::Jsonl(c) => Some(c),
        _ => None,
    });
    jsonl.ok_or_else(|| usage(format!("the audit section of `{}` has no `type: jsonl` sink", file.display())))
}

/// `zta audit query`: the last `limit` matching records.
pub(crate) fn query(dir: &Path, filters: &Filters, format: Format, limit: usize) -> Result<ExitCode> {
    let query = filters.query()?;
    let (shown, found, _) = latest(dir, &query, 0, limit)?;
    print(&shown, format)?;
    if found > shown.len() {
        eprintln!("{} earlier matching records not shown (--limit {limit})", found - shown.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `zta audit tail`: the last `lines` matching records, then (with `follow`) each new one as
/// it is written, until interrupted.
pub(crate) async fn tail(
    dir: &Path,
    filters: &Filters,
    format: Format,
    lines: usize,
    follow: bool,
) -> Result<ExitCode> {
    let query = filters.query()?;
    let (shown, _, mut after) = latest(dir, &query, 0, lines)?;
    print(&shown, format)?;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(format, Format::Table) && shown.is_empty() {
        print_header()?;
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let mut new = Vec::new();
        after = jsonl::read_records(dir, after, |_, record| {
            if query.matches(&record) {
                new.push(record);
            }
        })
        .with_context(|| format!("cannot read the audit log `{}`", dir.display()))?;
        print_rows(&new, format)?;
    }
}

/// The last `keep` records after seq `after` that match, how many matched, and the last seq.
fn latest(dir: &Path, query: &AuditQuery, after: u64, keep: usize) -> Result<(Vec<AuditRecord>, usize, u64)> {
    let mut shown = VecDeque::with_capacity(keep.min(4096));
    let mut found = 0;
    let last = jsonl::read_records(dir, after, |_, record| {
        if query.matches(&record) {
            found += 1;
            if shown.len() == keep {
                shown.pop_front();
            }
            if keep > 0 {
                shown.push_back(record);
            }
        }
    })
    .with_context(|| format!("cannot read the audit log `{}`", dir.display()))?;
    Ok((shown.into(), found, last))
}

fn print(records: &[AuditRecord], format: Format) -> Result<()> {
    if matches!(format, Format::Table) {
        print_header()?;
    }
    print_rows(records, format)
}

const HEADER: [&str; 7] = ["TIME", "EVENT", "EFFECT", "AGENT", "ACTION", "REQUEST ID", "REASON"];

fn print_header() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:<14} {:<6} {:<20} {:<28} {:<36} {}",
        HEADER[0], HEADER[1], HEADER[2], HEADER[3], HEADER[4], HEADER[5], HEADER[6]
    )?;
    Ok(())
}

fn print_rows(records: &[AuditRecord], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for record in records {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(record)?)?,
            Format::Ocsf => writeln!(out, "{}", zta::ocsf(record))?,
            Format::Table => {
                let t = record.time.to_offset(time::UtcOffset::UTC);
                let time = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.millisecond()
                );
                let agent = record.agent_id.as_ref().map_or("-", |a| a.as_str());
                let action = record.action.as_ref().map_or_else(|| "-".to_owned(), |a| a.name().to_owned());
                writeln!(
                    out,
                    "{:<24} {:<14} {:<6} {:<20} {:<28} {:<36} {}",
                    time,
                    record.event.as_str(),
                    record.effect.as_str(),
                    printable(agent),
                    printable(&action),
                    record.id,
                    printable(record.reason.as_deref().unwrap_or("")),
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `text` with control characters escaped, so that a hostile tool name or reason cannot move
/// the terminal's cursor or forge table rows.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}
