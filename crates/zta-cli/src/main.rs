//! `zta`: run the demo, check configs and policies, authorize a request by hand, issue and
//! inspect session tokens, verify audit logs, make keys.
//!
//! Exit codes: 0 success / allow, 3 deny (or a failed check), 2 usage or configuration error,
//! 4 `audit verify` found the hash chain intact but its tail unprotected (the checkpoint is
//! unsigned, or no public key was given to check it), 1 anything else (e.g. an audit log that
//! fails verification: broken, cut, rolled back against its anchor, or with records a failed
//! writer lost), 141 standard output closed by its reader (`zta audit query | head`; nothing
//! more is printed).
//!
//! Tokens, credentials and secrets are never arguments (shell history and `/proc/*/cmdline`
//! would keep them): every command reads them from a file, or from standard input given `-`.
#![allow(clippy::print_stderr)]

#[macro_use]
mod out;

mod agent;
mod audit;
mod commands;
mod credential;
mod demo;
mod monitor;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// mimalloc (in its secure mode: guard pages, encoded free lists) rather than the system
/// allocator: with glibc's, `zta serve` and `zta gateway` spend much of their time in its arena
/// locks when requests run on several threads (measured: `zta serve` on Redis 46-48k -> 57-60k
/// checks/s, the MCP gateway 5.7k -> 10.2k calls/s with 32 agents; docs/benchmarks.md). Their
/// benches use it too, to measure this binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Zero Trust Agent framework command line.
#[derive(Debug, Parser)]
#[command(name = "zta", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `zta gateway` does besides running the gateway.
#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Approve the changed definition of an upstream tool (see the audit log's "tool
    /// definition changed" record): the gateway lists it again and lets calls through. Prints
    /// what changed.
    /// Approve one call waiting for a person (a `require_approval` obligation): the agent's
    /// next identical call runs, once. Prints what it approved.
    Approve {
        /// The config file whose `gateway.approvals_dir` holds the requests.
        #[arg(long)]
        config: PathBuf,
        /// The approval id the refused call was given.
        id: String,
    },
    ApproveTool {
        /// The config file whose `gateway.pins_file` keeps the pins.
        #[arg(long)]
        config: PathBuf,
        /// The tool, as agents see it (`files__read_file`).
        tool: String,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the three-agent demo with a compromised agent (no services, no setup).
    Demo {
        /// Where the demo writes its audit log.
        #[arg(long, default_value = "zta-demo-audit")]
        audit_dir: PathBuf,
    },
    /// Load a config file and build everything it describes, without serving.
    Check {
        /// The config file (`zta.yaml` or `.toml`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve the guard over HTTP: the AuthZEN evaluation API (until Ctrl-C or SIGTERM; the
    /// audit log is flushed before it exits).
    Serve {
        /// The config file (`zta.yaml` or `.toml`); its `server:` section, if any, sets the
        /// address and limits.
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead (`127.0.0.1:0` picks a free port; the address is printed).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the MCP gateway: agents reach the tools of the `gateway:` section's upstreams
    /// through it, every call authorized and audited (until Ctrl-C or SIGTERM).
    #[command(args_conflicts_with_subcommands = true)]
    Gateway {
        #[command(subcommand)]
        command: Option<GatewayCommand>,
        /// The config file (`zta.yaml` or `.toml`) with a `gateway:` section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen here instead of `gateway.listen` (`127.0.0.1:0` picks a free port; the
        /// address is printed).
        #[arg(long, conflicts_with = "stdio")]
        listen: Option<std::net::SocketAddr>,
        /// Serve one local agent over stdin and stdout instead of HTTP (the agent starts `zta
        /// gateway` as its MCP server); needs `--credential-file`.
        #[arg(long, requires = "credential_file")]
        stdio: bool,
        /// The local agent's credential (`-`: standard input), as `zta authorize` reads it:
        /// `{"assertion": ...}`, `{"username": ..., "password": ...}` or `{"bearer": ...}`.
        #[arg(long, requires = "stdio")]
        credential_file: Option<PathBuf>,
    },
    /// Run the full guard path for one request and print the decision as JSON.
    Authorize {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// A JSON file (`-`: standard input): `{"bearer": "..."}`, `{"assertion": "..."}`,
        /// `{"username": "...", "password": "..."}`, or what `zta token issue` printed (its access
        /// token is used).
        #[arg(long)]
        credential_file: PathBuf,
        /// A JSON file with the request: `{"action": {"kind": "tool_call", "name": "..."}, ...}`.
        #[arg(long)]
        request: PathBuf,
    },
    /// Session tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Suspend, reinstate, or show the status of an agent.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Audit logs.
    #[command(subcommand)]
    Audit(Box<AuditCommand>),
    /// What monitoring has done: the detectors, who is suspended and why, the latest alerts.
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Make keys: a token signing key, and agent key pairs.
    Keygen {
        /// Directory to write the keys to (created; existing files are not overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Token signing algorithm: EdDSA, ES256 or RS256.
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        /// Also make an Ed25519 key pair for this agent (repeatable).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Also make the Ed25519 key pair that signs the audit checkpoint
        /// (`audit-checkpoint.pem` for `checkpoint_key_file`, `audit-checkpoint.pub.pem` for
        /// `zta audit verify --public-key`).
        #[arg(long)]
        checkpoint: bool,
    },
    /// Make the credential files `authorize` and `token issue` read: agent assertions, and
    /// secret hashes for the config.
    #[command(subcommand)]
    Credential(credential::CredentialCommand),
    /// Policy tools.
    #[command(subcommand)]
    Policy(commands::PolicyCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Log in with a primary credential and print the session token pair (audited).
    Issue {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The primary credential (see `authorize`).
        #[arg(long)]
        credential_file: PathBuf,
    },
    /// Show a token's header and claims; with `--config`, also verify it.
    Inspect {
        /// A file holding the token (`-`: standard input). Never the token itself: arguments
        /// end up in shell history and `/proc/*/cmdline`.
        #[arg(long)]
        token_file: PathBuf,
        /// Verify against this config's token service.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify an audit log's hash chain and checkpoint (exit 0), and with `--anchor` that it was
    /// not rolled back. Exit 4: the chain is intact but without a verified signature its tail is
    /// unprotected. Exit 1: it fails verification, or a failed writer lost records.
    ///
    /// A PostgreSQL table or SQLite file (`--postgres`, `--postgres-env`, `--sqlite`, or the
    /// sinks of `--config`): every writer's chain, reported per writer (exit 0), or the first
    /// break (exit 1). With `--config` and no directory, every `jsonl`, `postgres`, `sqlite`
    /// and `nats` sink of the config is verified and the exit code is the worst.
    Verify {
        /// The audit log directory (with `--config`: the config's audit `dir` if left out).
        #[arg(required_unless_present_any = ["config", "nats", "postgres", "postgres_env", "sqlite"])]
        path: Option<PathBuf>,
        /// Verify a NATS JetStream stream instead (every writer's chain): the server's URL.
        #[arg(long, conflicts_with_all = [
            "path", "config", "public_key", "anchor", "anchor_env", "log_id", "anchor_table", "anchor_stream",
            "anchor_subject_prefix", "postgres", "postgres_env", "sqlite",
        ])]
        nats: Option<String>,
        #[command(flatten)]
        store: audit::StoreArgs,
        /// The stream `--nats` verifies.
        #[arg(long, requires = "nats", default_value = "ZTA_AUDIT")]
        stream: String,
        /// The checkpoint's Ed25519 public key (PEM). Without it (or `--config`), the report
        /// says the tail is unprotected. For a PostgreSQL table or SQLite file: the key that
        /// checks its pruned-up-to markers (without it they are not checked: exit 4).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A deployment config: its audit section gives the log directory, the checkpoint's
        /// public key (the public half of `checkpoint_key_file`) and the anchor
        /// (`anchor: {file: ...}`, or a store: `anchor: {postgres: ...}` or `{nats: ...}` with
        /// its `log_id`).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        anchor: audit::AnchorArgs,
    },
    /// Find records: the latest `--limit` that match every filter given, oldest first.
    ///
    /// In a PostgreSQL table or SQLite file the filters run in SQL, on the table's indexes,
    /// and "latest" is by record time.
    Query {
        /// The audit log directory (or `--config`, `--postgres`, `--postgres-env`, `--sqlite`).
        #[arg(required_unless_present_any = ["config", "postgres", "postgres_env", "sqlite"])]
        path: Option<PathBuf>,
        /// A deployment config: its first `jsonl`, `postgres` or `sqlite` audit sink is read.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        store: audit::StoreArgs,
        #[command(flatten)]
        filters: audit::Filters,
        /// How to print them.
        #[arg(long, value_enum, default_value = "table")]
        format: audit::Format,
        /// At most this many (the latest).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Apply the embedded schema migrations of a PostgreSQL table or SQLite file.
    ///
    /// Makes the table (or file) if it is missing and says what was applied; running it again
    /// changes nothing. The sinks also migrate when they open: run this in a deploy step to
    /// set the schema up before the processes start (or to check it is current).
    Migrate {
        /// A deployment config: every `postgres` and `sqlite` audit sink of it is migrated.
        #[arg(long, required_unless_present_any = ["postgres", "postgres_env", "sqlite"])]
        config: Option<PathBuf>,
        #[command(flatten)]
        store: audit::StoreArgs,
    },
    /// Delete old records from a PostgreSQL table or SQLite file, leaving signed markers.
    ///
    /// Deletes what is older than `--older-than`. Each writer keeps its last row; per writer a "pruned up to" marker (the last deleted
    /// row's seq and hash) is stored, signed with the audit checkpoint key, so that `audit
    /// verify --public-key` (or `--config`) still verifies the chain from there and reports a
    /// changed, forged or missing marker as a break. The rows deleted are verified first.
    Prune {
        /// Delete what was recorded longer ago than this (`30d`, `12h`).
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// The audit checkpoint's private key (PEM, `zta keygen --checkpoint`); with `--config`,
        /// its `jsonl` sink's `checkpoint_key_file` if left out.
        #[arg(long)]
        key: Option<PathBuf>,
        /// A deployment config: every `postgres` and `sqlite` audit sink of it is pruned.
        #[arg(long, required_unless_present_any = ["postgres", "postgres_env", "sqlite"])]
        config: Option<PathBuf>,
        #[command(flatten)]
        store: audit::StoreArgs,
    },
    /// Show the latest matching records and, with `--follow`, each new one as it is written.
    ///
    /// A PostgreSQL table or SQLite file is polled four times a second.
    Tail {
        /// The audit log directory (or `--config`, `--postgres`, `--postgres-env`, `--sqlite`).
        #[arg(required_unless_present_any = ["config", "postgres", "postgres_env", "sqlite"])]
        path: Option<PathBuf>,
        /// A deployment config: its first `jsonl`, `postgres` or `sqlite` audit sink is read.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        store: audit::StoreArgs,
        #[command(flatten)]
        filters: audit::Filters,
        /// How to print them.
        #[arg(long, value_enum, default_value = "table")]
        format: audit::Format,
        /// How many of the latest to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Keep printing new records until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ZTA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Demo { audit_dir } => demo::run(&audit_dir).await,
        Command::Check { config } => commands::check(&config).await,
        Command::Serve { config, listen } => commands::serve(&config, listen).await,
        Command::Gateway { command: Some(GatewayCommand::Approve { config, id }), .. } => {
            commands::approve_call(&config, &id)
        }
        Command::Gateway { command: Some(GatewayCommand::ApproveTool { config, tool }), .. } => {
            commands::approve_tool(&config, &tool)
        }
        Command::Gateway { command: None, config: Some(config), listen, stdio, credential_file } => {
            match credential_file.filter(|_| stdio) {
                Some(credential) => commands::gateway_stdio(&config, &credential).await,
                None => commands::gateway(&config, listen).await,
            }
        }
        Command::Gateway { command: None, config: None, .. } => Err(commands::usage(
            "`zta gateway` needs `--config FILE` (or a subcommand: approve, approve-tool)",
        )),
        Command::Authorize { config, credential_file, request } => {
            commands::authorize(&config, &credential_file, &request).await
        }
        Command::Agent(cmd) => agent::run(cmd).await,
        Command::Monitor(cmd) => monitor::run(cmd).await,
        Command::Token(TokenCommand::Issue { config, credential_file }) => {
            commands::token_issue(&config, &credential_file).await
        }
        Command::Token(TokenCommand::Inspect { token_file, config }) => {
            commands::token_inspect(&token_file, config.as_deref()).await
        }
        Command::Audit(cmd) => audit_command(*cmd).await,
        Command::Keygen { out, alg, agents, checkpoint } => commands::keygen(&out, &alg, &agents, checkpoint),
        Command::Credential(cmd) => credential::run(cmd),
        Command::Policy(cmd) => commands::policy(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) if out::is_closed_pipe(&e) => ExitCode::from(out::CLOSED_PIPE),
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::from(commands::exit_code_for(&e))
        }
    }
}

/// `zta audit ...`
async fn audit_command(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { nats: Some(url), stream, .. } => audit::verify_nats(&url, &stream).await,
        AuditCommand::Verify { path: None, public_key, config, anchor, store, .. }
            if store.given() || config.is_some() =>
        {
            audit::verify(&store, config.as_deref(), public_key.as_deref(), &anchor).await
        }
        AuditCommand::Verify { path, public_key, config, anchor, store, .. } => {
            if store.given() {
                Err(commands::usage(
                    "give one store: a log directory, --config, --postgres/--postgres-env or --sqlite",
                ))
            } else {
                audit::verify_log(path.as_deref(), public_key.as_deref(), config.as_deref(), &anchor)
                    .await
                    .map(ExitCode::from)
            }
        }
        AuditCommand::Migrate { config, store } => audit::migrate(&store, config.as_deref()).await,
        AuditCommand::Prune { older_than, key, config, store } => {
            audit::prune(&store, config.as_deref(), &older_than, key.as_deref()).await
        }
        AuditCommand::Query { path, config, store, filters, format, limit } => {
            match audit::source(path.as_deref(), config.as_deref(), &store) {
                Ok(source) => audit::query(&source, &filters, format, limit).await,
                Err(e) => Err(e),
            }
        }
        AuditCommand::Tail { path, config, store, filters, format, lines, follow } => {
            match audit::source(path.as_deref(), config.as_deref(), &store) {
                Ok(source) => audit::tail(&source, &filters, format, lines, follow).await,
                Err(e) => Err(e),
            }
        }
    }
}

/// The error and its causes, like `{:#}`, leaving out a cause whose text the error already
/// says (a config error quotes its cause, and would otherwise say it twice).
fn report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    text
}

#[cfg(test)]
mod reports_say_each_cause_once {
    use super::report;

    #[test]
    fn a_cause_the_error_quotes_is_not_repeated() {
        let io = std::io::Error::other("audit log `audit` is locked by another writer");
        let quoted =
            anyhow::Error::new(io).context("zta.yaml:19:3: audit log `audit` is locked by another writer");
        assert_eq!(report(&quoted), "zta.yaml:19:3: audit log `audit` is locked by another writer");
        let other =
            anyhow::Error::new(std::io::Error::other("permission denied")).context("cannot read zta.yaml");
        assert_eq!(report(&other), "cannot read zta.yaml: permission denied");
    }
}

#[cfg(test)]
mod secrets_are_never_arguments {
    use clap::{CommandFactory, builder::ValueParser};

    use super::Cli;

    /// Words that mark an argument as carrying a secret.
    const SECRET_WORDS: [&str; 7] =
        ["token", "password", "secret", "assertion", "bearer", "credential", "key"];

    /// Every argument of every subcommand that takes a value and is named for a secret takes a
    /// path (a file, or `-` for standard input), never the secret itself.
    #[test]
    fn every_secret_argument_is_a_path() {
        let mut stack = vec![(String::from("zta"), Cli::command())];
        let mut checked = 0;
        while let Some((name, command)) = stack.pop() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                let secret = id.split('_').any(|word| SECRET_WORDS.contains(&word));
                if secret && arg.get_action().takes_values() {
                    checked += 1;
                    assert!(
                        arg.get_value_parser().type_id() == ValueParser::path_buf().type_id(),
                        "`{name}` takes `{id}` as a value on the command line; take a file path instead"
                    );
                }
            }
            for sub in command.get_subcommands() {
                stack.push((format!("{name} {}", sub.get_name()), sub.clone()));
            }
        }
        // credential_file (authorize, token issue), token_file, key, public_key.
        assert!(checked >= 5, "only {checked} secret arguments found");
    }
}
