//! The dependency direction rule: core depends on no zta crate; backends and adapters on core
//! only; only the facade, the CLI, examples and the testkit combine implementations.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Crates allowed to depend on several zta crates.
const COMBINERS: &[&str] = &["zta", "zta-cli", "zta-testkit", "xtask"];

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
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let name = pkg["name"].as_str().unwrap_or_default();
        let manifest = pkg["manifest_path"].as_str().unwrap_or_default();
        if COMBINERS.contains(&name) || manifest.contains("/examples/") {
            continue;
        }
        let deps = pkg["dependencies"].as_array().into_iter().flatten();
        for dep in deps.filter(|d| d["kind"].is_null()) {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if !(dep_name == "zta" || dep_name.starts_with("zta-")) {
                continue;
            }
            let allowed = name != "zta-core" && dep_name == "zta-core";
            if !allowed {
                violations.push(format!("`{name}` depends on `{dep_name}`"));
            }
        }
    }
    if !violations.is_empty() {
        bail!("layering violations (core depends on no zta crate; backends and adapters on core only):\n  {}", violations.join("\n  "));
    }
    Ok(())
}
