//! The dependency direction rule: core depends on no zta crate; backends and adapters on core
//! and the plumbing crates only; plumbing crates on core at most; only the facade, the CLI,
//! examples and the testkit combine implementations.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Crates allowed to depend on several zta crates.
const COMBINERS: &[&str] = &["zta", "zta-cli", "zta-testkit", "xtask"];

/// Shared plumbing (key encodings and JOSE, positioned documents, the audit hash chain): no
/// backend logic, so any backend may build on it instead of keeping its own copy.
const PLUMBING: &[&str] = &["zta-audit-chain", "zta-crypto", "zta-source"];

pub(crate) fn check() -> Result<()> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let mut violations = Vec::new();
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    for pkg in meta.get("packages").and_then(Value::as_array).into_iter().flatten() {
        let name = field(pkg, "name");
        let name = name.as_str();
        let manifest = field(pkg, "manifest_path");
        if COMBINERS.contains(&name) || manifest.contains("/examples/") {
            continue;
        }
        let deps = pkg.get("dependencies").and_then(Value::as_array).into_iter().flatten();
        for dep in deps.filter(|d| d.get("kind").is_none_or(Value::is_null)) {
            let dep_name = field(dep, "name");
            let dep_name = dep_name.as_str();
            if !(dep_name == "zta" || dep_name.starts_with("zta-")) {
                continue;
            }
            let allowed = name != "zta-core"
                && (dep_name == "zta-core" || (PLUMBING.contains(&dep_name) && !PLUMBING.contains(&name)));
            if !allowed {
                violations.push(format!("`{name}` depends on `{dep_name}`"));
            }
        }
    }
    if !violations.is_empty() {
        bail!(
            "layering violations (core depends on no zta crate; backends and adapters on core and plumbing only):\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(())
}
