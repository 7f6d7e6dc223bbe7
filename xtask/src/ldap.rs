//! The LDAP test directory of the directory tests (zta-identity-ldap, the facade's `type: ldap`):
//! two Debian `slapd` instances on loopback serving the same crew, set up from nothing here in
//! `<target>/zta-services/ldap` (the tests find it through `ZTA_TEST_LDAP_DIR`):
//!
//! * the pinned `slapd` and `ldap-utils` installed with apt-get when missing (the package
//!   configures and starts no server of its own);
//! * a CA made for the test (`ca.pem`), the servers' certificate for `localhost` and 127.0.0.1
//!   (`server.pem`, `server.key`), and an unrelated CA (`wrong-ca.pem`);
//! * per instance (`a`: 3389 plain and StartTLS, 3636 ldaps; `b`: 3390 and 3637) a `slapd.conf`
//!   from `xtask/ldap/slapd.conf.in`, its data, and `stop.sh` / `restart.sh` for the tests that
//!   take a server away;
//! * the crew of `xtask/ldap/crew.ldif` added online, so that the memberof overlay writes
//!   `memberOf`.
//!
//! Servers that already answer as this directory's (the service account binds over StartTLS and
//! ldaps with this directory's CA and finds the crew's last entry) are reused, unless
//! `slapd.conf.in` or `crew.ldif` changed since. See `xtask/ldap/README.md`.

use std::{
    fs,
    io::{ErrorKind, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::services::{require, terminate};

/// The Debian packages installed when missing, at these versions (pinned).
const PACKAGES: [(&str, &str); 2] = [("slapd", "2.5.13+dfsg-5"), ("ldap-utils", "2.5.13+dfsg-5")];

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPPASSWD: &str = "/usr/sbin/slappasswd";

/// The directory's administrator (`rootdn`; the tests change entries with it).
const ROOT_DN: &str = "cn=admin,dc=zta,dc=test";
const ROOT_PASSWORD: &str = "admin-test-secret";

/// The gateway's service account, in `crew.ldif`.
const GATEWAY_DN: &str = "cn=zta-gateway,ou=services,dc=zta,dc=test";
const GATEWAY_PASSWORD: &str = "gateway-test-secret";

/// The last entry of `crew.ldif`: when the service account finds it, the crew is all there.
const LAST_ENTRY: &str = "cn=everyone,ou=groups,dc=zta,dc=test";

const TEMPLATE: &str = include_str!("../ldap/slapd.conf.in");
const CREW: &str = include_str!("../ldap/crew.ldif");

/// How long an instance may take to answer after its start (restart.sh waits as long).
const START_TIMEOUT_SECS: u64 = 15;
/// How long a stopping instance may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one probe of a running instance may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One slapd instance: its name (and directory) and its two ports on 127.0.0.1.
struct Instance {
    name: &'static str,
    ldap: u16,
    ldaps: u16,
}

const INSTANCES: [Instance; 2] =
    [Instance { name: "a", ldap: 3389, ldaps: 3636 }, Instance { name: "b", ldap: 3390, ldaps: 3637 }];

impl Instance {
    fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap)
    }

    fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps)
    }

    /// slapd's `-h`.
    fn listeners(&self) -> String {
        format!("{}/ {}/", self.ldap_url(), self.ldaps_url())
    }

    fn dir(&self, state: &Path) -> PathBuf {
        state.join(self.name)
    }
}

/// The test directory's state dir, absolute (the tests run in their crates' directories):
/// `<target>/zta-services/ldap`, what `ZTA_TEST_LDAP_DIR` names.
pub(crate) fn dir() -> Result<PathBuf> {
    let dir = super::services::state_dir()?.join("ldap");
    std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))
}

/// Makes sure both instances answer as this directory's, setting the directory up from nothing
/// when they do not; `true` when this call started them.
pub(crate) fn ensure() -> Result<bool> {
    let state = dir()?;
    if INSTANCES.iter().all(|instance| answers(&state, instance)) {
        if current(&state) {
            println!("xtask: LDAP test servers already answer (ZTA_TEST_LDAP_DIR={})", state.display());
            return Ok(false);
        }
        println!("xtask: xtask/ldap changed since the LDAP test servers were set up; setting them up again");
    }
    packages()?;
    require("openssl", &["version"], "the LDAP test servers", "openssl (Debian: apt-get install openssl)")?;
    // What an earlier run left goes (one instance down, a half-loaded crew), its servers first.
    stop_instances(&state)?;
    for instance in &INSTANCES {
        for port in [instance.ldap, instance.ldaps] {
            if listening(port) {
                bail!(
                    "the LDAP test servers need 127.0.0.1:{port}, and something else listens there (it does \
                     not answer as the test directory in {}); stop it (another checkout's `cargo xtask \
                     services stop`?) and run again",
                    state.display()
                );
            }
        }
    }
    let started = Instant::now();
    set_up(&state).inspect_err(|_| {
        // Not one instance left up when the other failed.
        if let Err(e) = stop_instances(&state) {
            eprintln!("xtask: could not stop the LDAP test servers after a failed setup: {e:#}");
        }
    })?;
    println!(
        "xtask: LDAP test servers started in {:.1}s: a on {} and {}, b on {} and {} (ZTA_TEST_LDAP_DIR={})",
        started.elapsed().as_secs_f64(),
        INSTANCES[0].ldap_url(),
        INSTANCES[0].ldaps_url(),
        INSTANCES[1].ldap_url(),
        INSTANCES[1].ldaps_url(),
        state.display()
    );
    Ok(true)
}

/// Stops both instances (by their pid files, when those name this directory's slapd); the
/// directory stays until the next setup.
pub(crate) fn stop() -> Result<()> {
    let state = dir()?;
    let stopped = stop_instances(&state)?;
    if stopped.is_empty() {
        println!("xtask: no LDAP test server to stop ({})", state.display());
    } else {
        println!("xtask: LDAP test servers stopped ({})", stopped.join(", "));
    }
    Ok(())
}

/// The instance binds the service account over StartTLS and over ldaps with this directory's CA,
/// and finds the crew's last entry.
fn answers(state: &Path, instance: &Instance) -> bool {
    let ca = state.join("ca.pem");
    ca.exists()
        && [(instance.ldap_url(), true), (instance.ldaps_url(), false)].iter().all(|(url, starttls)| {
            let mut search = ldap_tool("ldapsearch", &ca);
            search.args(["-LLL", "-o", "nettimeout=2", "-H", url]);
            if *starttls {
                search.arg("-ZZ");
            }
            search.args(["-D", GATEWAY_DN, "-w", GATEWAY_PASSWORD, "-b", LAST_ENTRY, "-s", "base", "1.1"]);
            succeeds_within(&mut search, PROBE_TIMEOUT)
        })
}

/// The directory was set up from this `slapd.conf.in` and this `crew.ldif`.
fn current(state: &Path) -> bool {
    let same = |name: &str, text: &str| fs::read_to_string(state.join(name)).is_ok_and(|copy| copy == text);
    same("slapd.conf.in", TEMPLATE) && same("crew.ldif", CREW)
}

/// An ldap-utils command that trusts `ca` alone and insists on the server's certificate.
fn ldap_tool(tool: &str, ca: &Path) -> Command {
    let mut command = Command::new(tool);
    command.arg("-x").env("LDAPTLS_CACERT", ca).env("LDAPTLS_REQCERT", "demand");
    command
}

/// Runs `command` (output discarded); `true` when it exits successfully within `limit`.
fn succeeds_within(command: &mut Command, limit: Duration) -> bool {
    let Ok(mut child) = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn listening(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(300)).is_ok()
}

/// The directory from nothing: certificates, both instances configured, started and filled.
fn set_up(state: &Path) -> Result<()> {
    let text = state.to_str().filter(|s| !s.contains(['"', '\'', '\\', '\n'])).with_context(|| {
        format!("the LDAP test directory's path {} has characters slapd.conf cannot take", state.display())
    })?;
    match fs::remove_dir_all(state) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", state.display()));
        }
        _ => {}
    }
    fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    certificates(state)?;
    let root_hash = slappasswd(ROOT_PASSWORD)?;
    let crew = state.join("crew.ldif");
    write(&crew, CREW)?;
    write(&state.join("slapd.conf.in"), TEMPLATE)?;
    for instance in &INSTANCES {
        let dir = instance.dir(state);
        fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}/data", dir.display()))?;
        let config = TEMPLATE
            .replace("@STATE@", text)
            .replace("@INSTANCE@", &format!("{text}/{}", instance.name))
            .replace("@ROOTPW@", &root_hash);
        write(&dir.join("slapd.conf"), &config)?;
        write(&dir.join("stop.sh"), &stop_script(&dir, instance))?;
        write(&dir.join("restart.sh"), &restart_script(state, &dir, instance))?;
        start(&dir, instance)?;
        load(state, &crew, instance)?;
        if !answers(state, instance) {
            bail!(
                "LDAP test instance {} started and took the crew, but the service account does not find \
                 {LAST_ENTRY} over StartTLS and ldaps; see {}",
                instance.name,
                dir.display()
            );
        }
    }
    let env = state.join("env.sh");
    write(&env, &format!("export ZTA_TEST_LDAP_DIR={}\n", quote(text)))
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// The test CA, the servers' certificate (`localhost`, 127.0.0.1) it signs, and an unrelated CA.
fn certificates(state: &Path) -> Result<()> {
    let ca = |name: &str, subject: &str| {
        openssl(
            state,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "3650",
                "-subj",
                subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
    };
    ca("ca", "/CN=zta-test-ldap-ca")?;
    ca("wrong-ca", "/CN=zta-test-wrong-ca")?;
    openssl(
        state,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    )?;
    write(
        &state.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )?;
    openssl(
        state,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-CAserial",
            "ca.srl",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    )?;
    openssl(state, &["verify", "-CAfile", "ca.pem", "server.pem"])
}

fn openssl(state: &Path, args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(state)
        .stdin(Stdio::null())
        .output()
        .context("running openssl")?;
    checked(&output, &format!("openssl {}", args.join(" ")))
}

/// `Ok` when `output` says its command succeeded, else an error with what it printed.
fn checked(output: &Output, what: &str) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} exited with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `password` hashed for slapd.conf's `rootpw`.
fn slappasswd(password: &str) -> Result<String> {
    let output = Command::new(SLAPPASSWD)
        .args(["-h", "{SSHA}", "-s", password])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {SLAPPASSWD} (from the slapd package)"))?;
    checked(&output, SLAPPASSWD)?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !hash.starts_with("{SSHA}") || hash.contains(char::is_whitespace) {
        bail!("{SLAPPASSWD} printed `{hash}`, not an {{SSHA}} hash");
    }
    Ok(hash)
}

/// `s` quoted for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `stop.sh`: stops the instance if its pid file names this instance's slapd, and waits until it
/// is gone (killing it after 10 s); the data stays.
fn stop_script(dir: &Path, instance: &Instance) -> String {
    let dir = quote(&dir.to_string_lossy());
    let name = instance.name;
    format!(
        "#!/bin/sh\n\
         # Stops instance {name} of the LDAP test directory; its data stays, and restart.sh starts it\n\
         # again. Exits 0 when it does not run. Written by `cargo xtask services`.\n\
         dir={dir}\n\
         pid=$(cat \"$dir/slapd.pid\" 2>/dev/null) || exit 0\n\
         ours() {{ tr '\\0' '\\n' < \"/proc/$pid/cmdline\" 2>/dev/null | grep -qxF \"$dir/slapd.conf\"; }}\n\
         ours || {{ rm -f \"$dir/slapd.pid\"; exit 0; }}\n\
         kill -TERM \"$pid\" 2>/dev/null\n\
         i=0\n\
         while ours; do\n\
         \x20 i=$((i + 1))\n\
         \x20 [ \"$i\" -eq 100 ] && kill -KILL \"$pid\" 2>/dev/null\n\
         \x20 [ \"$i\" -gt 150 ] && {{ echo \"slapd (pid $pid) of LDAP test instance {name} did not stop\" >&2; exit 1; }}\n\
         \x20 sleep 0.1\n\
         done\n\
         rm -f \"$dir/slapd.pid\"\n"
    )
}

/// `restart.sh`: stops the instance if it runs, starts it on its data, and waits until it answers
/// StartTLS with the test CA.
fn restart_script(state: &Path, dir: &Path, instance: &Instance) -> String {
    let ca = quote(&state.join("ca.pem").to_string_lossy());
    let dir = quote(&dir.to_string_lossy());
    let name = instance.name;
    let listeners = quote(&instance.listeners());
    let url = instance.ldap_url();
    let tries = START_TIMEOUT_SECS * 10;
    format!(
        "#!/bin/sh\n\
         # Starts instance {name} of the LDAP test directory on its data (stopping it first if it runs)\n\
         # and waits until it answers StartTLS, at most {START_TIMEOUT_SECS} s. Written by `cargo xtask services`.\n\
         dir={dir}\n\
         sh \"$dir/stop.sh\" || exit 1\n\
         {SLAPD} -f \"$dir/slapd.conf\" -h {listeners} >>\"$dir/slapd.log\" 2>&1 ||\n\
         \x20 {{ echo \"slapd of LDAP test instance {name} did not start; see $dir/slapd.log\" >&2; exit 1; }}\n\
         i=0\n\
         while [ \"$i\" -lt {tries} ]; do\n\
         \x20 LDAPTLS_CACERT={ca} LDAPTLS_REQCERT=demand ldapwhoami -x -ZZ -o nettimeout=1 -H {url} >/dev/null 2>&1 && exit 0\n\
         \x20 i=$((i + 1))\n\
         \x20 sleep 0.1\n\
         done\n\
         echo \"LDAP test instance {name} did not answer at {url} within {START_TIMEOUT_SECS} s; see $dir/slapd.log\" >&2\n\
         exit 1\n"
    )
}

/// Starts the instance through its `restart.sh` (the path the tests use too).
fn start(dir: &Path, instance: &Instance) -> Result<()> {
    let script = dir.join("restart.sh");
    let output = Command::new("sh")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        let log = fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
        bail!(
            "LDAP test instance {} did not start ({}): {}\nslapd's output:\n{log}",
            instance.name,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Adds the crew online (so the memberof overlay sees the groups), over StartTLS.
fn load(state: &Path, crew: &Path, instance: &Instance) -> Result<()> {
    let output = ldap_tool("ldapadd", &state.join("ca.pem"))
        .args(["-ZZ", "-H", &instance.ldap_url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-f"])
        .arg(crew)
        .stdin(Stdio::null())
        .output()
        .context("running ldapadd (from ldap-utils)")?;
    let log = instance.dir(state).join("load.log");
    fs::File::create(&log)
        .and_then(|mut file| file.write_all(&output.stdout).and_then(|()| file.write_all(&output.stderr)))
        .with_context(|| format!("writing {}", log.display()))?;
    checked(&output, &format!("ldapadd of the crew into LDAP test instance {}", instance.name))
}

/// Stops the instances whose pid files name this directory's slapd; their names.
fn stop_instances(state: &Path) -> Result<Vec<&'static str>> {
    let mut stopped = Vec::new();
    for instance in &INSTANCES {
        if stop_instance(&instance.dir(state))? {
            stopped.push(instance.name);
        }
    }
    Ok(stopped)
}

fn stop_instance(dir: &Path) -> Result<bool> {
    let pid_path = dir.join("slapd.pid");
    let Ok(text) = fs::read_to_string(&pid_path) else {
        return Ok(false);
    };
    let config = dir.join("slapd.conf");
    let pid = text.trim().parse::<u32>().ok().filter(|pid| is_our_slapd(*pid, &config));
    if let Some(pid) = pid {
        terminate(pid, STOP_TIMEOUT, |pid| is_our_slapd(pid, &config))
            .with_context(|| format!("stopping slapd ({})", config.display()))?;
    }
    match fs::remove_file(&pid_path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", pid_path.display()))
        }
        _ => Ok(pid.is_some()),
    }
}

/// The process is a slapd run with `config` (an exited one not reaped yet has an empty command
/// line).
fn is_our_slapd(pid: u32, config: &Path) -> bool {
    let config = config.to_string_lossy();
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let mut args = cmdline.split(|b| *b == 0);
        args.next().is_some_and(|program| program.ends_with(b"slapd"))
            && args.any(|arg| arg == config.as_bytes())
    })
}

/// The pinned `slapd` and `ldap-utils`, installed when missing; another installed version is an
/// error (the tests were checked against the pinned one).
fn packages() -> Result<()> {
    let mut missing = Vec::new();
    for (package, wanted) in PACKAGES {
        match installed_version(package)? {
            Some(version) if version == wanted => {}
            Some(version) => bail!(
                "the LDAP test servers are pinned to {package} {wanted}, and {package} {version} is \
                 installed; install the pinned one (`apt-get install --allow-downgrades \
                 {package}={wanted}`) or move the pin in xtask/src/ldap.rs once the tests pass with {version}"
            ),
            None => missing.push((package, wanted)),
        }
    }
    if missing.is_empty() { Ok(()) } else { install(&missing) }
}

/// The version of `package` when it is installed (a removed one that kept its configuration
/// files is not).
fn installed_version(package: &str) -> Result<Option<String>> {
    let output = match Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}\t${Version}", package])
        .output()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "the LDAP test servers need Debian's slapd and ldap-utils, and this machine has no dpkg-query \
             (not Debian or Ubuntu?)"
        ),
        other => other.context("running dpkg-query")?,
    };
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .split_once('\t')
        .filter(|(status, _)| output.status.success() && status.split(' ').nth(2) == Some("installed"))
        .map(|(_, version)| version.trim().to_owned()))
}

fn install(missing: &[(&str, &str)]) -> Result<()> {
    let pinned: Vec<String> =
        missing.iter().map(|(package, version)| format!("{package}={version}")).collect();
    let uid =
        Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref().ok() != Some("0") {
        bail!(
            "the LDAP test servers need {}, which are not installed, and installing them needs root: \
             `apt-get install {}` (with `slapd slapd/no_configuration boolean true` preseeded)",
            pinned.join(" and "),
            pinned.join(" ")
        );
    }
    require("apt-get", &["--version"], "the LDAP test servers", "apt (a Debian or Ubuntu machine)")?;
    println!("xtask: installing {} for the LDAP test servers", pinned.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .stdin(Stdio::null())
        .output()
        .context("running apt-get update")?;
    checked(&update, "apt-get update (is the Debian archive reachable?)")?;
    for (package, wanted) in missing {
        let output =
            Command::new("apt-cache").args(["madison", package]).output().context("running apt-cache")?;
        let available: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split('|').nth(1).map(|v| v.trim().to_owned()))
            .collect();
        if !available.iter().any(|v| v == wanted) {
            bail!(
                "the LDAP test servers are pinned to {package} {wanted}, and apt offers {}; move the pin in \
                 xtask/src/ldap.rs once the tests pass with another",
                if available.is_empty() { "no version of it".to_owned() } else { available.join(", ") }
            );
        }
    }
    // The package configures no directory and starts no server of its own.
    let mut preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .context("running debconf-set-selections")?;
    preseed
        .stdin
        .take()
        .context("no stdin for debconf-set-selections")?
        .write_all(b"slapd slapd/no_configuration boolean true\n")
        .context("writing to debconf-set-selections")?;
    let status = preseed.wait().context("running debconf-set-selections")?;
    if !status.success() {
        bail!("debconf-set-selections exited with {status}");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(&pinned)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("apt-get install {} exited with {status}", pinned.join(" "));
    }
    // Should the package have started its own server after all, it goes (it would hold 389).
    if Path::new("/run/slapd/slapd.pid").exists() {
        println!("xtask: stopping the slapd service the package started");
        let _ = Command::new("service").args(["slapd", "stop"]).stdin(Stdio::null()).status();
    }
    for (package, wanted) in missing {
        if installed_version(package)?.as_deref() != Some(*wanted) {
            bail!("apt-get install said it installed {package}={wanted}, but dpkg does not list it");
        }
    }
    Ok(())
}
