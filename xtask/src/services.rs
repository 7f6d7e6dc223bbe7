//! The services the tests need. The machine runs PostgreSQL, Redis and NATS itself; this checks
//! that the ones the tests use answer, so a missing one fails the run with a message that names
//! it. The OIDC test server (`xtask/oidc-server`, a local Entra-shaped OpenID Connect provider for
//! the zta-identity-oidc tests) is started here when nothing answers for it yet, and stopped by
//! [`stop`]; so are the LDAP test servers (`crate::ldap`).

use std::{
    fs,
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The PostgreSQL database the tests make their own databases through, unless
/// `ZTA_TEST_POSTGRES_URL` says otherwise.
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Where the tests look for the OIDC test server unless `ZTA_TEST_OIDC_URL` says otherwise.
const DEFAULT_OIDC_URL: &str = "http://127.0.0.1:17080";

/// The name the server gives in `GET /__test/health`.
const OIDC_SERVER_NAME: &str = "zta-oidc-test-server";

/// The server's directory, relative to the workspace root.
const OIDC_DIR: &str = "xtask/oidc-server";

/// What to install for the OIDC test server.
const NODE: &str = "Node.js 20 or newer with npm (Debian/Ubuntu: `apt-get install nodejs npm`)";

/// How long a freshly started server may take to answer.
const OIDC_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether [`ensure`] started the OIDC test server (and so should stop it after the tests) or found
/// one running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Oidc {
    Started,
    Reused,
}

/// Checks PostgreSQL, Redis and NATS, installs the headless browser of the `/ui` test when
/// missing (`crate::browser`), makes the Python venv of the MCP end-to-end tests, and makes sure the OIDC
/// test server and the LDAP test servers answer, starting them if needed; says which it
/// started. When the LDAP servers cannot be had, an OIDC server
/// this call started is stopped again.
pub(crate) fn ensure() -> Result<(Oidc, bool)> {
    postgres()?;
    redis()?;
    nats()?;
    crate::browser::ensure()?;
    crate::python::ensure()?;
    let oidc = oidc()?;
    let ldap = crate::ldap::ensure().inspect_err(|_| {
        if oidc == Oidc::Started
            && let Err(e) = stop()
        {
            eprintln!("xtask: could not stop the OIDC test server: {e:#}");
        }
    })?;
    Ok((oidc, ldap))
}

/// Runs `work` with the services up, then stops the servers this call started, whatever `work`
/// returned; `work`'s result is the result.
pub(crate) fn around(work: impl FnOnce() -> Result<()>) -> Result<()> {
    let (oidc, ldap) = ensure()?;
    let result = work();
    if oidc == Oidc::Started
        && let Err(e) = stop()
    {
        eprintln!("xtask: could not stop the OIDC test server: {e:#}");
    }
    if ldap && let Err(e) = crate::ldap::stop() {
        eprintln!("xtask: could not stop the LDAP test servers: {e:#}");
    }
    result
}

/// The PostgreSQL server the zta-audit-postgres tests use (`ZTA_TEST_POSTGRES_URL`, by default
/// [`DEFAULT_POSTGRES_URL`]).
fn postgres() -> Result<()> {
    answers(
        "PostgreSQL",
        "ZTA_TEST_POSTGRES_URL",
        DEFAULT_POSTGRES_URL,
        "PostgreSQL 15 on 127.0.0.1:5432, trust auth, database test",
    )
}

fn redis() -> Result<()> {
    answers(
        "Redis",
        "ZTA_TEST_REDIS_URL",
        "redis://127.0.0.1:6379/",
        "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no",
    )
}

fn nats() -> Result<()> {
    answers(
        "NATS with JetStream",
        "ZTA_TEST_NATS_URL",
        "nats://127.0.0.1:4222",
        "nats-server -a 127.0.0.1 -p 4222 -js",
    )
}

/// Fails, saying what is missing and how this machine kind starts it, unless something answers
/// at the address of `env`'s URL (or of `default`).
fn answers(what: &str, env: &str, default: &str, started_by: &str) -> Result<()> {
    let url = std::env::var(env).unwrap_or_else(|_| default.into());
    let address = url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or(rest))
        .filter(|a| !a.is_empty())
        .with_context(|| format!("{env} `{url}` is not a URL like {default}"))?;
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok()));
    if reachable.is_none() {
        bail!(
            "the tests need {what} at {address} ({env}), and nothing answers there; this machine kind \
             starts it before each session (`{started_by}`)"
        );
    }
    Ok(())
}

/// The OIDC server's address from `ZTA_TEST_OIDC_URL` (or the default): `host:port`.
fn oidc_address() -> Result<(String, String, u16)> {
    let url = std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| DEFAULT_OIDC_URL.into());
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .filter(|a| !a.is_empty())
        .with_context(|| format!("ZTA_TEST_OIDC_URL `{url}` is not an http:// URL"))?;
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .with_context(|| format!("ZTA_TEST_OIDC_URL `{url}` names no port (http://127.0.0.1:17080)"))?;
    Ok((url.trim_end_matches('/').to_owned(), authority.to_owned(), port))
}

/// What `GET /__test/health` says at the address.
enum Health {
    /// Our server answers.
    Ours,
    /// Something answers the TCP connection, but it is not our server.
    Other(String),
    /// Nothing listens.
    Nothing,
}

fn health(authority: &str) -> Health {
    let Ok(addrs) = authority.to_socket_addrs() else {
        return Health::Nothing;
    };
    let mut seen = Health::Nothing;
    for addr in addrs {
        match health_at(addr, authority) {
            Health::Ours => return Health::Ours,
            Health::Other(what) => seen = Health::Other(what),
            Health::Nothing => {}
        }
    }
    seen
}

fn health_at(addr: SocketAddr, authority: &str) -> Health {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return Health::Nothing;
    };
    let timeout = Some(Duration::from_secs(2));
    let exchange = stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .and_then(|()| {
            stream.write_all(
                format!("GET /__test/health HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        })
        .and_then(|()| {
            let mut response = Vec::new();
            (&mut stream).take(64 * 1024).read_to_end(&mut response).map(|_| response)
        });
    let response = match exchange {
        Ok(response) => String::from_utf8_lossy(&response).into_owned(),
        Err(e) => return Health::Other(format!("no HTTP answer ({e})")),
    };
    let status_ok = response.lines().next().is_some_and(|line| line.split(' ').nth(1) == Some("200"));
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    let name = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("server").and_then(Value::as_str).map(str::to_owned));
    if status_ok && name.as_deref() == Some(OIDC_SERVER_NAME) {
        Health::Ours
    } else {
        Health::Other(response.lines().next().unwrap_or("an empty answer").to_owned())
    }
}

/// `$CARGO_TARGET_DIR/zta-services` (or `target/zta-services`), created.
pub(crate) fn state_dir() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let dir = target.join("zta-services");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn pid_file() -> Result<PathBuf> {
    Ok(state_dir()?.join("oidc-server.pid"))
}

fn oidc() -> Result<Oidc> {
    let (url, authority, port) = oidc_address()?;
    match health(&authority) {
        Health::Ours => {
            println!("xtask: OIDC test server already answers at {url}");
            return Ok(Oidc::Reused);
        }
        Health::Other(what) => bail!(
            "the OIDC test server should answer at {url} (ZTA_TEST_OIDC_URL), but something else \
             listens there ({what}); free the port or point ZTA_TEST_OIDC_URL elsewhere"
        ),
        Health::Nothing => {}
    }
    let dir = Path::new(OIDC_DIR);
    require("node", &["--version"], "the OIDC test server", NODE)?;
    if needs_install(dir) {
        require("npm", &["--version"], "the OIDC test server", NODE)?;
        println!("xtask: npm ci in {OIDC_DIR}");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .context("running npm ci")?;
        if !status.success() {
            bail!("npm ci in {OIDC_DIR} exited with {status}");
        }
    }
    let state = state_dir()?;
    let log_path = state.join("oidc-server.log");
    let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new("node");
    command
        .arg("server.mjs")
        .current_dir(dir)
        .env("ZTA_OIDC_TEST_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("duplicating the log file handle")?)
        .stderr(log);
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl-C at the terminal stops the tests, not the server.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let mut child = command.spawn().context("starting node server.mjs")?;
    let pid = child.id();
    fs::write(pid_file()?, format!("{pid}\n")).context("writing the OIDC server's pid file")?;
    wait_until_up(&mut child, &authority, &log_path)?;
    println!("xtask: OIDC test server started at {url} (pid {pid}, log {})", log_path.display());
    Ok(Oidc::Started)
}

fn wait_until_up(child: &mut Child, authority: &str, log_path: &Path) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Health::Ours = health(authority) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            bail!("the OIDC test server exited at start ({status}); its log:\n{log}");
        }
        if started.elapsed() > OIDC_START_TIMEOUT {
            // Not answering after the whole wait: do not leave it behind half alive.
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the OIDC test server did not answer at {authority} within {}s; see {}",
                OIDC_START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `node_modules` is missing or older than `package-lock.json`.
fn needs_install(dir: &Path) -> bool {
    let modified = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(dir.join("node_modules")), modified(dir.join("package-lock.json"))) {
        (Some(modules), Some(lock)) => modules < lock,
        _ => true,
    }
}

/// `tool` runs; else an error saying that `needed_by` needs it and to install `what`.
pub(crate) fn require(tool: &str, args: &[&str], needed_by: &str, what: &str) -> Result<()> {
    match Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("{needed_by} needs `{tool}`, and it is not on PATH; install {what}")
        }
        Err(e) => Err(e).with_context(|| format!("running {tool}")),
    }
}

/// Stops the OIDC test server named by the pid file, if that process is still our server.
pub(crate) fn stop() -> Result<()> {
    let pid_path = pid_file()?;
    let Ok(text) = fs::read_to_string(&pid_path) else {
        println!("xtask: no OIDC test server to stop (no {})", pid_path.display());
        return Ok(());
    };
    let pid: u32 = text.trim().parse().with_context(|| format!("{} holds no pid", pid_path.display()))?;
    if !is_our_server(pid) {
        println!("xtask: pid {pid} from {} is not the OIDC test server any more", pid_path.display());
        fs::remove_file(&pid_path).with_context(|| format!("removing {}", pid_path.display()))?;
        return Ok(());
    }
    terminate(pid, Duration::from_secs(5), is_our_server)?;
    fs::remove_file(&pid_path).with_context(|| format!("removing {}", pid_path.display()))?;
    println!("xtask: OIDC test server (pid {pid}) stopped");
    Ok(())
}

/// The process runs `server.mjs` (an exited one that is not reaped yet has an empty command line).
fn is_our_server(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg.ends_with(b"server.mjs")))
        .unwrap_or(false)
}

/// Stops process `pid` while `ours` says it is still the one we started: TERM, then KILL once
/// `grace` has passed; an error when it outlives both.
pub(crate) fn terminate(pid: u32, grace: Duration, ours: impl Fn(u32) -> bool) -> Result<()> {
    let wait = |limit: Duration| {
        let deadline = Instant::now() + limit;
        while ours(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    kill(pid, "TERM")?;
    wait(grace);
    if ours(pid) {
        kill(pid, "KILL")?;
        wait(Duration::from_secs(2));
    }
    if ours(pid) {
        bail!("process {pid} did not stop");
    }
    Ok(())
}

fn kill(pid: u32, signal: &str) -> Result<()> {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    Ok(())
}
