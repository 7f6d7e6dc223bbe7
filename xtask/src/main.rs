//! `cargo xtask <command>`: the project's automation, one entry point for people and CI.
//!
//! * `ci`       — everything CI checks: fmt, clippy, tests, doc tests, examples, cargo-deny,
//!   layering. The README's test command. Stops the services it started.
//! * `test`     — services, then the whole test suite, then stops the services it started.
//! * `services` — starts what the tests need beyond what the machine already runs (the OIDC test
//!   server in `xtask/oidc-server`, the two slapd instances of `xtask/ldap`), installs Debian's
//!   `chromium` and `chromium-driver` for the `/ui` browser test when missing, and checks the rest
//!   answer; `services stop` stops them.
//! * `bench`    — criterion benchmarks, then a table of medians and ratios.
//! * `fuzz`     — runs each fuzz target for a while (`cargo xtask fuzz [SECONDS]`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod browser;
mod layering;
mod ldap;
mod python;
mod services;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The cargo-fuzz targets in `fuzz/`.
const FUZZ_TARGETS: &[&str] = &["policy_loader"];

/// cargo-deny version installed when missing (pinned).
const CARGO_DENY_VERSION: &str = "0.20.2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => services::around(tests),
        Some("services") => match args.get(1).map(String::as_str) {
            None => services::ensure().map(|_| ()),
            Some("stop") => {
                // Both, whatever the first says.
                let oidc = services::stop();
                ldap::stop().and(oidc)
            }
            Some(other) => bail!("unknown `services` command `{other}` (services [stop])"),
        },
        Some("bench") => bench::run(&root, args.get(1..).unwrap_or_default()),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str).unwrap_or("60")),
        Some("layering") => layering::check(),
        _ => {
            eprintln!("usage: cargo xtask <ci|test|services [stop]|bench|fuzz|layering>");
            std::process::exit(2)
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask has no parent directory")
}

fn ci() -> Result<()> {
    step("format", cargo(&["fmt", "--all", "--check"]))?;
    step(
        "clippy",
        cargo(&["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]),
    )?;
    step("layering", layering::check())?;
    step("feature combinations", features())?;
    step("cargo-deny", deny())?;
    services::around(|| {
        step(
            "examples and benches build",
            cargo(&["build", "--workspace", "--all-targets", "--all-features"]),
        )?;
        tests()
    })
}

/// The facade must build with no backend and with each backend alone.
fn features() -> Result<()> {
    cargo(&["check", "-p", "zta", "--no-default-features"])?;
    for feature in [
        "identity-static",
        "identity-oidc",
        "identity-ldap",
        "policy-native",
        "audit-jsonl",
        "audit-nats",
        "audit-postgres",
        "audit-sqlite",
        "state-redis",
        "adapter-tower",
        "adapter-mcp",
        "server",
    ] {
        cargo(&["check", "-p", "zta", "--no-default-features", "--features", feature])?;
    }
    Ok(())
}

/// The whole test suite, told where the LDAP test servers keep their CA and scripts.
fn tests() -> Result<()> {
    let ldap = ldap::dir()?;
    println!(
        "xtask: cargo test --workspace --all-features --no-fail-fast (ZTA_TEST_LDAP_DIR={})",
        ldap.display()
    );
    let python = python::ensure()?;
    let postgres =
        std::env::var("ZTA_TEST_POSTGRES_URL").unwrap_or_else(|_| services::DEFAULT_POSTGRES_URL.to_owned());
    let status = Command::new("cargo")
        .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .env("ZTA_TEST_LDAP_DIR", &ldap)
        .env("ZTA_TEST_POSTGRES_URL", &postgres)
        .env("ZTA_TEST_PYTHON", &python)
        .status()
        .context("running cargo test")?;
    let result =
        if status.success() { Ok(()) } else { Err(anyhow::anyhow!("cargo test exited with {status}")) };
    step("tests", result)
}

fn deny() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DENY_VERSION))
        .unwrap_or(false);
    if !installed {
        cargo(&["install", "--locked", "cargo-deny", "--version", CARGO_DENY_VERSION])?;
    }
    cargo(&["deny", "--all-features", "check", "bans", "licenses", "sources"])
}

fn fuzz(seconds: &str) -> Result<()> {
    let secs: u64 = seconds.parse().context("fuzz takes a number of seconds")?;
    let fuzz_dir = Path::new("fuzz");
    if !fuzz_dir.exists() {
        bail!("no fuzz/ directory");
    }
    for target in FUZZ_TARGETS {
        let corpus = format!("fuzz/corpus/{target}");
        let status = Command::new("cargo")
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                target,
                "--fuzz-dir",
                "fuzz",
                &corpus,
                "--",
                &format!("-max_total_time={secs}"),
            ])
            .status()
            .context(
                "running cargo fuzz (install with `cargo install cargo-fuzz --locked --version 0.13.1`)",
            )?;
        if !status.success() {
            bail!("fuzz target `{target}` failed");
        }
    }
    Ok(())
}

fn step(name: &str, result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => {
            println!("xtask: {name}: ok");
            Ok(())
        }
        Err(e) => Err(e.context(format!("xtask step `{name}` failed"))),
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    println!("xtask: cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .status()
        .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} exited with {status}", args.join(" "));
    }
    Ok(())
}
