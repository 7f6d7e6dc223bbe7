//! `zta audit query`, `tail`, `verify` and `migrate` over the stores the audit sinks write: a
//! JSON Lines directory, a PostgreSQL table or a SQLite file. Records are shown as a table, as
//! JSON lines, or as OCSF events for a SIEM. The SQL stores are queried in SQL, on their
//! indexes.

use std::{
    collections::{HashMap, VecDeque},
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta::{
    AgentId, AuditEvent, AuditQuery, AuditRecord, Config, Effect,
    audit::{jsonl, nats, postgres, sqlite},
};

use crate::commands::{EXIT_UNPROTECTED, usage};

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

/// Where `zta audit verify` finds the checkpoints a JSON Lines log published.
#[derive(Debug, clap::Args)]
pub(crate) struct AnchorArgs {
    /// The anchor the log must match (every checkpoint in it, and reach the newest): a file of
    /// published checkpoints, or the store a `jsonl` sink's `anchor` publishes to, by URL: a
    /// PostgreSQL server (`postgres://zta@db.internal/zta`; a URL with a password is refused,
    /// use `--anchor-env`) or a NATS server (`nats://host:4222`). A store needs `--log-id` (or
    /// `--config`) and the checkpoint's public key.
    #[arg(long, value_name = "FILE|URL", conflicts_with = "anchor_env")]
    anchor: Option<String>,
    /// The anchor store's URL is in this environment variable (`postgres://...` or `nats://...`).
    #[arg(long, value_name = "VAR")]
    anchor_env: Option<String>,
    /// The log's id in the anchor store: its sink's `anchor.log_id`.
    #[arg(long, value_name = "ID")]
    log_id: Option<String>,
    /// The anchor's PostgreSQL table (default `zta_audit_anchor`).
    #[arg(long, value_name = "TABLE")]
    anchor_table: Option<String>,
    /// The anchor's NATS stream (default `ZTA_AUDIT_ANCHOR`).
    #[arg(long, value_name = "STREAM")]
    anchor_stream: Option<String>,
    /// The anchor's NATS subject prefix (default `zta.anchor`).
    #[arg(long, value_name = "PREFIX")]
    anchor_subject_prefix: Option<String>,
}

/// An anchor named by flags or a config.
enum Anchor {
    /// An anchor file.
    File(PathBuf),
    /// A store.
    Store(Arc<dyn jsonl::CheckpointAnchor>),
}

/// Which kind of store a URL names.
fn store_scheme(url: &str) -> Option<&'static str> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Some("postgres"),
        "nats" | "tls" | "ws" | "wss" => Some("nats"),
        _ => None,
    }
}

impl AnchorArgs {
    /// Whether an anchor flag was given.
    pub(crate) fn given(&self) -> bool {
        self.anchor.is_some() || self.anchor_env.is_some() || self.store_flag_given()
    }

    /// Whether a flag that only a store takes was given.
    fn store_flag_given(&self) -> bool {
        self.log_id.is_some()
            || self.anchor_table.is_some()
            || self.anchor_stream.is_some()
            || self.anchor_subject_prefix.is_some()
    }

    /// The anchor the flags name, if any.
    fn anchor(&self) -> Result<Option<Anchor>> {
        let (url, from_env) = match (&self.anchor, &self.anchor_env) {
            (Some(text), None) => match store_scheme(text) {
                Some(_) => (text.clone(), false),
                None => {
                    if self.store_flag_given() {
                        return Err(usage(
                            "--log-id, --anchor-table, --anchor-stream and --anchor-subject-prefix go with an anchor store (a postgres:// or nats:// URL), not an anchor file",
                        ));
                    }
                    return Ok(Some(Anchor::File(PathBuf::from(text))));
                }
            },
            (None, Some(var)) => match std::env::var(var) {
                Ok(url) if !url.trim().is_empty() => (url, true),
                _ => {
                    return Err(usage(format!(
                        "--anchor-env: environment variable `{}` is not set (or empty, or not UTF-8)",
                        printable(var)
                    )));
                }
            },
            (Some(_), Some(_)) => return Err(usage("give --anchor or --anchor-env, not both")),
            (None, None) if self.store_flag_given() => {
                return Err(usage(
                    "--log-id, --anchor-table, --anchor-stream and --anchor-subject-prefix go with an anchor store: give it with --anchor URL or --anchor-env VAR",
                ));
            }
            (None, None) => return Ok(None),
        };
        let store: Arc<dyn jsonl::CheckpointAnchor> = match store_scheme(&url) {
            Some("postgres") => {
                if self.anchor_stream.is_some() || self.anchor_subject_prefix.is_some() {
                    return Err(usage(
                        "--anchor-stream and --anchor-subject-prefix name a NATS stream; the anchor is a PostgreSQL server",
                    ));
                }
                if !from_env && has_password(&url) {
                    return Err(usage(
                        "--anchor: the URL holds a password, which would stay in shell history and /proc/*/cmdline; give the password in PGPASSWORD or ~/.pgpass, or the whole URL in an environment variable named by --anchor-env",
                    ));
                }
                let config = match (&self.anchor_env, from_env) {
                    (Some(var), true) => postgres::PostgresAnchorConfig::from_env(var.as_str()),
                    _ => postgres::PostgresAnchorConfig::new(url.as_str()),
                };
                let config = match &self.anchor_table {
                    Some(table) => config.with_table(table.as_str()),
                    None => config,
                };
                Arc::new(postgres::PostgresAnchor::new(&config).map_err(postgres_error)?)
            }
            Some(_) => {
                if self.anchor_table.is_some() {
                    return Err(usage(
                        "--anchor-table names a PostgreSQL table; the anchor is a NATS server",
                    ));
                }
                let config = match (&self.anchor_env, from_env) {
                    (Some(var), true) => nats::NatsAnchorConfig::from_env(var.as_str()),
                    _ => nats::NatsAnchorConfig::new(url.as_str()),
                };
                let mut config = match &self.anchor_stream {
                    Some(stream) => config.with_stream(stream.as_str()),
                    None => config,
                };
                if let Some(prefix) = &self.anchor_subject_prefix {
                    config.subject_prefix.clone_from(prefix);
                }
                Arc::new(nats::NatsAnchor::new(&config).map_err(|e| usage(e.to_string()))?)
            }
            None => {
                return Err(usage(
                    "--anchor-env: the variable holds no postgres:// or nats:// URL (an anchor file is given with --anchor FILE)",
                ));
            }
        };
        Ok(Some(Anchor::Store(store)))
    }
}

/// The anchor store of a config's `jsonl` sink.
fn config_anchor(section: zta::AnchorStoreSection) -> Result<Arc<dyn jsonl::CheckpointAnchor>> {
    Ok(match section {
        zta::AnchorStoreSection::Postgres(c) => {
            Arc::new(postgres::PostgresAnchor::new(&c).map_err(postgres_error)?)
        }
        zta::AnchorStoreSection::Nats(c) => {
            Arc::new(nats::NatsAnchor::new(&c).map_err(|e| usage(e.to_string()))?)
        }
        _ => return Err(usage("the config's audit anchor is of a kind this build cannot read")),
    })
}

/// `zta audit verify` of a JSON Lines log (the directory `path`, or the config's): against its
/// anchor store when the flags or the config name one, otherwise as `commands::audit_verify`
/// does (with an anchor file, if any). The exit code: 0 intact, 4 unprotected tail, 1 failed.
pub(crate) async fn verify_log(
    path: Option<&Path>,
    public_key: Option<&Path>,
    config: Option<&Path>,
    anchor: &AnchorArgs,
) -> Result<u8> {
    let (sink, config_store) = match config {
        Some(file) => {
            let (sink, store) = config_jsonl_target(file)?;
            (Some(sink), store)
        }
        None => (None, None),
    };
    let config_log_id = sink.as_ref().and_then(|c| c.anchor.as_ref()).and_then(|a| a.log_id.clone());
    let (store, log_id) = match (anchor.anchor()?, config_store) {
        (Some(Anchor::File(file)), _) => {
            return crate::commands::audit_verify_code(path, public_key, config, Some(&file));
        }
        (Some(Anchor::Store(store)), _) => (store, anchor.log_id.clone().or(config_log_id)),
        (None, Some(section)) => (config_anchor(section)?, config_log_id),
        (None, None) => return crate::commands::audit_verify_code(path, public_key, config, None),
    };
    let log_id = log_id.ok_or_else(|| {
        usage("give --log-id: the log's id in the anchor store (its sink's `anchor.log_id`)")
    })?;
    let dir = path
        .map(Path::to_path_buf)
        .or_else(|| sink.as_ref().map(|c| c.dir.clone()))
        .ok_or_else(|| usage("name the audit log directory"))?;
    let key_file = public_key
        .map(Path::to_path_buf)
        .or_else(|| sink.and_then(|c| c.checkpoint_key_file))
        .ok_or_else(|| {
            usage(
                "an anchor store is checked with the checkpoint's public key: give --public-key (or \
                 --config with a `checkpoint_key_file`)",
            )
        })?;
    // A private key file gives its public half; it is wiped after use.
    let key = zta::secrecy::zeroize::Zeroizing::new(
        std::fs::read(&key_file).with_context(|| format!("cannot read `{}`", key_file.display()))?,
    );
    match jsonl::verify_anchored(&dir, &key, store.as_ref(), &log_id).await {
        Ok(report) => {
            outln!("{}: intact ({report})", dir.display())?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("{}: FAILED: {}", dir.display(), printable(&e.to_string()));
            Ok(1)
        }
    }
}

/// A SQL store named by flags instead of a directory or a config file.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// A PostgreSQL audit table: the server's URL (`postgres://zta@db.internal/zta`). A URL with
    /// a password is refused (the command line ends up in shell history and
    /// `/proc/*/cmdline`): give the password in `PGPASSWORD` or `~/.pgpass`, or the whole URL in
    /// a variable named by `--postgres-env`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["postgres_env", "sqlite"])]
    postgres: Option<String>,
    /// A PostgreSQL audit table: the environment variable that holds the server's URL.
    #[arg(long, value_name = "VAR", conflicts_with = "sqlite")]
    postgres_env: Option<String>,
    /// The PostgreSQL table (with `--postgres` or `--postgres-env`; default `zta_audit`).
    #[arg(long, value_name = "TABLE")]
    table: Option<String>,
    /// A SQLite audit file.
    #[arg(long, value_name = "FILE")]
    sqlite: Option<PathBuf>,
}

/// Where records are read: one sink's store.
#[derive(Debug)]
pub(crate) enum Source {
    /// A JSON Lines log directory.
    Jsonl(PathBuf),
    /// A PostgreSQL table.
    Postgres(postgres::PostgresConfig),
    /// A SQLite file.
    Sqlite(sqlite::SqliteConfig),
    /// A NATS JetStream stream (verified only).
    Nats {
        /// The server (may carry credentials: never printed).
        url: String,
        /// The stream.
        stream: String,
    },
}

impl Source {
    /// How messages name the store (never with a password).
    fn name(&self) -> String {
        match self {
            Self::Jsonl(dir) => format!("`{}`", dir.display()),
            Self::Postgres(c) => format!("PostgreSQL table `{}`", c.table),
            Self::Sqlite(c) => format!("SQLite file `{}`", c.path.display()),
            Self::Nats { stream, .. } => format!("NATS stream `{stream}`"),
        }
    }
}

impl StoreArgs {
    /// Whether a store flag was given.
    pub(crate) fn given(&self) -> bool {
        self.postgres.is_some() || self.postgres_env.is_some() || self.sqlite.is_some()
    }

    /// The store the flags name, if any.
    fn source(&self) -> Result<Option<Source>> {
        let postgres = match (&self.postgres, &self.postgres_env) {
            (Some(url), _) => {
                if has_password(url) {
                    return Err(usage(
                        "--postgres: the URL holds a password, which would stay in shell history and \
                         /proc/*/cmdline; give the password in PGPASSWORD or ~/.pgpass, or the whole URL \
                         in an environment variable named by --postgres-env",
                    ));
                }
                Some(postgres::PostgresConfig::new(url.as_str()))
            }
            (None, Some(var)) => Some(postgres::PostgresConfig::from_env(var.as_str())),
            (None, None) => None,
        };
        match (postgres, &self.sqlite) {
            (Some(config), _) => Ok(Some(Source::Postgres(match &self.table {
                Some(table) => config.with_table(table.as_str()),
                None => config,
            }))),
            (None, Some(_)) if self.table.is_some() => {
                Err(usage("--table names a PostgreSQL table: give it with --postgres or --postgres-env"))
            }
            (None, Some(path)) => Ok(Some(Source::Sqlite(sqlite::SqliteConfig::new(path)))),
            (None, None) if self.table.is_some() => {
                Err(usage("--table names a PostgreSQL table: give it with --postgres or --postgres-env"))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Whether a PostgreSQL URL carries a password (in its user information or a `password=`
/// parameter).
fn has_password(url: &str) -> bool {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let userinfo = base
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    userinfo.is_some_and(|u| u.contains(':'))
        || query
            .split('&')
            .any(|p| p.split_once('=').is_some_and(|(k, _)| k.eq_ignore_ascii_case("password")))
}

/// The store to read: the flags' store, the directory `path`, or the first sink of the config
/// `config` that can be read (`jsonl`, `postgres` or `sqlite`, in the order listed).
pub(crate) fn source(path: Option<&Path>, config: Option<&Path>, store: &StoreArgs) -> Result<Source> {
    if let Some(source) = store.source()? {
        if path.is_some() || config.is_some() {
            return Err(usage(
                "give one store: a log directory, --config, --postgres/--postgres-env or --sqlite",
            ));
        }
        return Ok(source);
    }
    if let Some(path) = path {
        return Ok(Source::Jsonl(path.to_owned()));
    }
    let Some(file) = config else {
        return Err(usage("name the audit log directory, --config, --postgres, --postgres-env or --sqlite"));
    };
    config_sources(file)?
        .into_iter()
        .find(|s| !matches!(s, Source::Nats { .. }))
        .ok_or_else(|| no_readable_sink(file))
}

fn no_readable_sink(file: &Path) -> anyhow::Error {
    usage(format!(
        "the audit section of `{}` has no `jsonl`, `postgres` or `sqlite` sink to read",
        file.display()
    ))
}

/// The sinks of the config in `file` that can be read or verified, in the order listed.
fn config_sources(file: &Path) -> Result<Vec<Source>> {
    Ok(Config::from_file(file)?
        .audit
        .into_iter()
        .filter_map(|target| match target.sink {
            zta::AuditSection::Jsonl(c) => Some(Source::Jsonl(c.dir)),
            zta::AuditSection::Postgres(c) => Some(Source::Postgres(c)),
            zta::AuditSection::Sqlite(c) => Some(Source::Sqlite(c)),
            zta::AuditSection::Nats(c) => Some(Source::Nats { url: c.url, stream: c.stream }),
            _ => None,
        })
        .collect())
}

/// A PostgreSQL sink's error; a config error (an unset `url_env`, a bad table name) is a usage
/// error (exit 2).
fn postgres_error(e: postgres::Error) -> anyhow::Error {
    match e {
        postgres::Error::Config(_) => usage(e.to_string()),
        other => anyhow::Error::new(other),
    }
}

/// A SQLite sink's error; a config error is a usage error (exit 2).
fn sqlite_error(e: sqlite::Error) -> anyhow::Error {
    match e {
        sqlite::Error::Config(_) => usage(e.to_string()),
        other => anyhow::Error::new(other),
    }
}

/// `zta audit verify` of a SQL store: every writer's chain (exit 0), from its pruned-up-to
/// marker when it has one (checked with `key`; without a key the markers are taken on trust
/// and the exit code is 4, like an unchecked checkpoint), or the first break (exit 1).
async fn verify_sql(source: &Source, key: Option<&[u8; 32]>) -> Result<u8> {
    let result = match source {
        Source::Jsonl(_) | Source::Nats { .. } => {
            return Err(usage("only a PostgreSQL table or SQLite file is verified here"));
        }
        Source::Postgres(c) => postgres::verify_with(c, key).await.map_err(|e| match e {
            postgres::Error::Broken { .. } => Ok(e.to_string()),
            other => Err(postgres_error(other)),
        }),
        Source::Sqlite(c) => sqlite::verify_with(c, key).await.map_err(|e| match e {
            sqlite::Error::Broken { .. } => Ok(e.to_string()),
            other => Err(sqlite_error(other)),
        }),
    };
    let name = source.name();
    match result {
        Ok((report, markers)) => {
            let unchecked = !markers.unchecked.is_empty();
            outln!(
                "{name}: {}: {} records from {} writers, every chain verified",
                if unchecked { "intact, but pruned chains unchecked" } else { "intact" },
                report.rows(),
                report.writers.len()
            )?;
            for (writer, chain) in &report.writers {
                let pruned = match (markers.checked.get(writer), markers.unchecked.get(writer)) {
                    (Some(seq), _) => format!(", pruned up to seq {seq} (marker signature verified)"),
                    (None, Some(seq)) => {
                        format!(
                            ", pruned up to seq {seq} (marker NOT checked: give the checkpoint public key)"
                        )
                    }
                    (None, None) => String::new(),
                };
                outln!(
                    "  writer {}: {} records, head {}{pruned}",
                    printable(writer),
                    chain.rows,
                    chain.head
                )?;
            }
            Ok(if unchecked { EXIT_UNPROTECTED } else { 0 })
        }
        Err(Ok(broken)) => {
            eprintln!("{name}: FAILED: {}", printable(&broken));
            Ok(1)
        }
        Err(Err(e)) => Err(e),
    }
}

/// The raw public key that checks pruned-up-to markers: `--public-key`, or the public half of
/// the config's JSON Lines `checkpoint_key_file`.
fn marker_key(public_key: Option<&Path>, config: Option<&Path>) -> Result<Option<[u8; 32]>> {
    let file = match (public_key, config) {
        (Some(file), _) => file.to_owned(),
        (None, Some(config)) => match config_jsonl(config).ok().and_then(|c| c.checkpoint_key_file) {
            Some(file) => file,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let bytes = zta::secrecy::zeroize::Zeroizing::new(
        std::fs::read(&file).with_context(|| format!("cannot read `{}`", file.display()))?,
    );
    sqlite::public_key(&bytes).map(Some).map_err(|e| usage(format!("`{}`: {e}", file.display())))
}

/// `zta audit prune`: deletes the records older than `older_than` of each SQL store (the
/// flags' store, or every `postgres` and `sqlite` sink of the config), leaving per writer a
/// pruned-up-to marker signed with the checkpoint key (`key`, or the config's JSON Lines
/// `checkpoint_key_file`).
pub(crate) async fn prune(
    store: &StoreArgs,
    config: Option<&Path>,
    older_than: &str,
    key: Option<&Path>,
) -> Result<ExitCode> {
    let age = zta::duration::parse(older_than)
        .map_err(|e| usage(format!("--older-than `{}`: {e}", printable(older_than))))?;
    let age = time::Duration::try_from(age).map_err(|_| usage("--older-than is too long"))?;
    let before = OffsetDateTime::now_utc()
        .checked_sub(age)
        .ok_or_else(|| usage("--older-than reaches before the earliest time"))?;
    let key_file = match (key, config) {
        (Some(key), _) => key.to_owned(),
        (None, Some(file)) => {
            config_jsonl(file).ok().and_then(|c| c.checkpoint_key_file).ok_or_else(|| {
                usage("give --key: the config's jsonl sink has no checkpoint_key_file to sign the markers")
            })?
        }
        (None, None) => {
            return Err(usage("give --key: the audit checkpoint key signs the pruned-up-to markers"));
        }
    };
    let signer = sqlite::MarkerSigner::load(&key_file).map_err(usage)?;
    let sources = match (store.source()?, config) {
        (Some(_), Some(_)) => {
            return Err(usage("give one store: --config, --postgres/--postgres-env or --sqlite"));
        }
        (Some(source), None) => vec![source],
        (None, Some(file)) => config_sources(file)?,
        (None, None) => {
            return Err(usage("name the store: --config, --postgres, --postgres-env or --sqlite"));
        }
    };
    let cut = before.format(&Rfc3339).unwrap_or_else(|_| before.to_string());
    let mut pruned_any = false;
    for source in &sources {
        let pruned = match source {
            Source::Jsonl(_) | Source::Nats { .. } => continue,
            Source::Postgres(c) => postgres::prune(c, before, &signer).await.map_err(postgres_error)?,
            Source::Sqlite(c) => sqlite::prune(c, before, &signer).await.map_err(sqlite_error)?,
        };
        pruned_any = true;
        let name = source.name();
        if pruned.is_empty() {
            outln!("{name}: nothing recorded before {cut} to prune")?;
        }
        for (writer, (upto, deleted)) in &pruned {
            outln!(
                "{name}: writer {}: {deleted} records before {cut} deleted, pruned up to seq {upto} (marker signed by key {})",
                printable(writer),
                signer.key_id()
            )?;
        }
    }
    if !pruned_any {
        return Err(usage("no `postgres` or `sqlite` store to prune"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `zta audit verify` with store flags, or with `--config` and no directory: each store
/// (every `jsonl`, `postgres` and `sqlite` sink of the config); the exit code is the worst
/// (1 failed, then 4 unprotected, then 0).
pub(crate) async fn verify(
    store: &StoreArgs,
    config: Option<&Path>,
    public_key: Option<&Path>,
    anchor: &AnchorArgs,
) -> Result<ExitCode> {
    if store.given() && anchor.given() {
        return Err(usage("--anchor checks a JSON Lines log, not a PostgreSQL table or SQLite file"));
    }
    let sources = match (store.source()?, config) {
        (Some(_), Some(_)) => {
            return Err(usage("give one store: --config, --postgres/--postgres-env or --sqlite"));
        }
        (Some(source), None) => vec![source],
        (None, Some(file)) => config_sources(file)?,
        (None, None) => return Err(usage("name the audit log directory, --config, --postgres or --sqlite")),
    };
    if sources.is_empty() {
        return Err(config.map_or_else(|| usage("nothing to verify"), no_readable_sink));
    }
    let key = marker_key(public_key, config)?;
    let mut worst = 0;
    let mut jsonl_done = false;
    for source in &sources {
        let code = match source {
            // The config's (first) log, with its key and anchor.
            Source::Jsonl(_) if jsonl_done => continue,
            Source::Jsonl(_) => {
                jsonl_done = true;
                verify_log(None, public_key, config, anchor).await?
            }
            Source::Nats { url, stream } => verify_stream(url, stream).await?,
            _ => verify_sql(source, key.as_ref()).await?,
        };
        worst = match (worst, code) {
            (1, _) | (_, 1) => 1,
            (EXIT_UNPROTECTED, _) | (_, EXIT_UNPROTECTED) => EXIT_UNPROTECTED,
            _ => code.max(worst),
        };
    }
    Ok(ExitCode::from(worst))
}

/// `zta audit migrate`: the embedded migrations of each SQL store (the flags' store, or every
/// `postgres` and `sqlite` sink of the config), and what they applied.
pub(crate) async fn migrate(store: &StoreArgs, config: Option<&Path>) -> Result<ExitCode> {
    let sources = match (store.source()?, config) {
        (Some(_), Some(_)) => {
            return Err(usage("give one store: --config, --postgres/--postgres-env or --sqlite"));
        }
        (Some(source), None) => vec![source],
        (None, Some(file)) => config_sources(file)?,
        (None, None) => {
            return Err(usage("name the store: --config, --postgres, --postgres-env or --sqlite"));
        }
    };
    let mut migrated_any = false;
    for source in &sources {
        let (applied, version, made) = match source {
            Source::Jsonl(_) | Source::Nats { .. } => continue,
            Source::Postgres(c) => {
                let m = postgres::migrate(c).await.map_err(postgres_error)?;
                (m.applied, m.version, m.made)
            }
            Source::Sqlite(c) => {
                let m = sqlite::migrate(c).await.map_err(sqlite_error)?;
                (m.applied, m.version, m.made)
            }
        };
        migrated_any = true;
        let mut said = Vec::new();
        if !applied.is_empty() {
            let list: Vec<String> = applied.iter().map(|(v, what)| format!("{v} ({what})")).collect();
            said.push(format!("applied migration {}", list.join(", ")));
        }
        if !made.is_empty() {
            said.push(format!("made {}", made.join(", ")));
        }
        if said.is_empty() {
            said.push("up to date".to_owned());
        }
        outln!("{}: {}; schema version {version}", source.name(), said.join("; "))?;
    }
    if !migrated_any {
        let file = config.map_or_else(|| "the config".to_owned(), |f| format!("`{}`", f.display()));
        return Err(usage(format!(
            "the audit section of {file} has no `postgres` or `sqlite` sink to migrate"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// `zta audit verify --config` of a NATS sink's stream: every writer's chain (exit 0) or the
/// first break (exit 1).
async fn verify_stream(url: &str, stream: &str) -> Result<u8> {
    match zta::audit::nats::verify(url, stream).await {
        Ok(report) => {
            outln!(
                "NATS stream `{stream}`: intact: {} records from {} writers, every chain verified",
                report.records.len(),
                report.writers.len()
            )?;
            for (writer, count) in &report.writers {
                outln!("  writer {}: {count} records", printable(writer))?;
            }
            Ok(0)
        }
        Err(e @ zta::audit::nats::VerifyError::Broken { .. }) => {
            eprintln!("NATS stream `{stream}`: FAILED: {}", printable(&e.to_string()));
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

/// `zta audit verify --nats URL --stream S`: every writer's chain in the stream (exit 0), or
/// the first break (exit 1).
pub(crate) async fn verify_nats(url: &str, stream: &str) -> Result<ExitCode> {
    let report = zta::audit::nats::verify(url, stream).await?;
    outln!(
        "stream `{stream}`: {} records from {} writers, every chain intact",
        report.records.len(),
        report.writers.len()
    )?;
    for (writer, count) in &report.writers {
        outln!("  writer {}: {count} records", printable(writer))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `type: jsonl` sink of the config in `file`, and its anchor store if it has one.
fn config_jsonl_target(file: &Path) -> Result<(jsonl::JsonlConfig, Option<zta::AnchorStoreSection>)> {
    let jsonl = Config::from_file(file)?.audit.into_iter().find_map(|target| match target.sink {
        zta::AuditSection::Jsonl(c) => Some((*c, target.anchor)),
        _ => None,
    });
    jsonl.ok_or_else(|| usage(format!("the audit section of `{}` has no `type: jsonl` sink", file.display())))
}

/// The `type: jsonl` sink of the config in `file`.
pub(crate) fn config_jsonl(file: &Path) -> Result<jsonl::JsonlConfig> {
    let jsonl = Config::from_file(file)?.audit.into_iter().find_map(|target| match target.sink {
        zta::AuditSection::Jsonl(c) => Some(*c),
        _ => None,
    });
    jsonl.ok_or_else(|| usage(format!("the audit section of `{}` has no `type: jsonl` sink", file.display())))
}

/// `zta audit query`: the latest `limit` matching records of `source`, oldest first.
pub(crate) async fn query(
    source: &Source,
    filters: &Filters,
    format: Format,
    limit: usize,
) -> Result<ExitCode> {
    let dir = match source {
        Source::Jsonl(dir) => dir,
        sql => {
            let query = filters.query()?;
            let mut reader = SqlReader::connect(sql).await?;
            let found = reader.latest(&query, limit.saturating_add(1)).await;
            reader.close().await;
            let mut found = found?;
            let more = found.len() > limit;
            if more {
                found.remove(0);
            }
            let records: Vec<AuditRecord> = found.into_iter().map(|r| r.record).collect();
            print(&records, format)?;
            if more {
                eprintln!("earlier matching records not shown (--limit {limit})");
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
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
    source: &Source,
    filters: &Filters,
    format: Format,
    lines: usize,
    follow: bool,
) -> Result<ExitCode> {
    let dir = match source {
        Source::Jsonl(dir) => dir,
        sql => {
            let mut reader = SqlReader::connect(sql).await?;
            let result = tail_sql(&mut reader, filters, format, lines, follow).await;
            reader.close().await;
            return result;
        }
    };
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

/// Records read per poll of a followed SQL store.
const FOLLOW_PAGE: usize = 4096;

/// `zta audit tail` of a SQL store. Following reads the rows stored after the last one seen
/// (by the table's stored order), polling. On PostgreSQL two writers' batches may commit in
/// another order than their rows were numbered, so a batch that commits late can land before
/// rows already shown: each writer's rows come in chain order, so when a writer's next row
/// skips seqs, the matching rows it skipped are read and shown first.
async fn tail_sql(
    reader: &mut SqlReader,
    filters: &Filters,
    format: Format,
    lines: usize,
    follow: bool,
) -> Result<ExitCode> {
    let query = filters.query()?;
    let start = reader.last_pos().await?;
    let shown = reader.latest(&query, lines).await?;
    let records: Vec<AuditRecord> = shown.into_iter().map(|r| r.record).collect();
    print(&records, format)?;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(format, Format::Table) && records.is_empty() {
        print_header()?;
    }
    let mut after = start;
    // Writer -> the seq of its last row seen while following.
    let mut seen: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        loop {
            let page = reader.after(&query, after, FOLLOW_PAGE).await?;
            let full = page.len() == FOLLOW_PAGE;
            let mut out = Vec::with_capacity(page.len());
            for row in page {
                after = after.max(row.pos);
                if let Some(&last) = seen.get(&row.writer_id) {
                    if row.seq <= last {
                        continue;
                    }
                    if row.seq > last + 1 {
                        let skipped = reader.writer_between(&query, &row.writer_id, last, row.seq).await?;
                        out.extend(skipped.into_iter().map(|r| r.record));
                    }
                }
                seen.insert(row.writer_id, row.seq);
                out.push(row.record);
            }
            print_rows(&out, format)?;
            if !full {
                break;
            }
        }
    }
}

/// A connection reading a PostgreSQL table or a SQLite file.
enum SqlReader {
    Postgres(postgres::PostgresReader),
    Sqlite(sqlite::SqliteReader),
}

impl SqlReader {
    async fn connect(source: &Source) -> Result<Self> {
        Ok(match source {
            Source::Postgres(c) => {
                Self::Postgres(postgres::PostgresReader::connect(c).await.map_err(postgres_error)?)
            }
            Source::Sqlite(c) => Self::Sqlite(sqlite::SqliteReader::connect(c).await.map_err(sqlite_error)?),
            Source::Jsonl(_) | Source::Nats { .. } => {
                return Err(usage("only a PostgreSQL table or SQLite file is read in SQL"));
            }
        })
    }

    async fn latest(&mut self, query: &AuditQuery, limit: usize) -> Result<Vec<postgres::StoredRecord>> {
        Ok(match self {
            Self::Postgres(r) => r.latest(query, limit).await?.into_iter().collect(),
            Self::Sqlite(r) => r.latest(query, limit).await?.into_iter().collect(),
        })
    }

    async fn after(
        &mut self,
        query: &AuditQuery,
        pos: i64,
        limit: usize,
    ) -> Result<Vec<postgres::StoredRecord>> {
        Ok(match self {
            Self::Postgres(r) => r.after(query, pos, limit).await?.into_iter().collect(),
            Self::Sqlite(r) => r.after(query, pos, limit).await?.into_iter().collect(),
        })
    }

    async fn writer_between(
        &mut self,
        query: &AuditQuery,
        writer: &str,
        after: i64,
        before: i64,
    ) -> Result<Vec<postgres::StoredRecord>> {
        Ok(match self {
            Self::Postgres(r) => r.writer_between(query, writer, after, before).await?.into_iter().collect(),
            Self::Sqlite(r) => r.writer_between(query, writer, after, before).await?.into_iter().collect(),
        })
    }

    async fn last_pos(&mut self) -> Result<i64> {
        Ok(match self {
            Self::Postgres(r) => r.last_pos().await?,
            Self::Sqlite(r) => r.last_pos().await?,
        })
    }

    async fn close(self) {
        match self {
            Self::Postgres(r) => r.close().await,
            Self::Sqlite(r) => r.close().await,
        }
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

pub(crate) fn print(records: &[AuditRecord], format: Format) -> Result<()> {
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
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::has_password;

    #[test]
    fn postgres_urls_with_a_password_are_recognised() {
        for url in [
            "postgres://zta:secret@db/zta",
            "postgres://zta:@db/zta",
            "postgres://db/zta?user=zta&password=secret",
            "postgres://db/zta?sslmode=require&PASSWORD=secret",
        ] {
            assert!(has_password(url), "{url}");
        }
        for url in ["postgres://zta@db/zta", "postgres://db:5432/zta?sslmode=require", "postgres://db/a@b"] {
            assert!(!has_password(url), "{url}");
        }
    }
}
