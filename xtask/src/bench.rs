//! `cargo xtask bench [CRITERION ARGS]`: runs the workspace's criterion benchmarks and the
//! policy comparisons (cedar-policy, agent-governance: crates of their own, outside the
//! workspace's lock), then prints each group's medians with the ratio to the group's reference
//! (the benchmark whose id starts with `ref_`). Only results written by this run are shown.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context, Result};
use serde_json::Value;

/// The comparison crates, each its own workspace.
const COMPARISONS: &[&str] = &[
    "crates/zta-policy/benches/compare/cedar/Cargo.toml",
    "crates/zta-policy/benches/compare/agent-governance/Cargo.toml",
];

pub(crate) fn run(root: &Path, extra: &[String]) -> Result<()> {
    let started = SystemTime::now();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let criterion_args: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut args = vec!["bench", "--workspace", "--all-features", "--"];
    args.extend(&criterion_args);
    super::cargo(&args)?;
    for manifest in COMPARISONS {
        let target_dir = target.to_string_lossy().into_owned();
        let mut args = vec!["bench", "--manifest-path", manifest, "--target-dir", &target_dir, "--"];
        args.extend(&criterion_args);
        super::cargo(&args)?;
    }
    print_table(&target.join("criterion"), started)
}

fn print_table(dir: &Path, since: SystemTime) -> Result<()> {
    let mut groups: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for group in sorted_dirs(dir)? {
        let group_name = file_name(&group);
        if group_name == "report" {
            continue;
        }
        let mut rows = Vec::new();
        collect(&group, String::new(), since, &mut rows)?;
        if !rows.is_empty() {
            groups.push((group_name, rows));
        }
    }
    println!("\n| group | benchmark | median | ratio to reference |");
    println!("|---|---|---|---|");
    for (group, rows) in groups {
        let reference = rows.iter().find(|(id, _)| id.starts_with("ref_")).map(|(_, m)| *m);
        for (id, median) in &rows {
            let ratio = reference.map_or_else(|| "-".to_owned(), |r| format!("{:.2}x", median / r));
            println!("| {group} | {id} | {} | {ratio} |", human(*median));
        }
    }
    Ok(())
}

/// Finds `new/estimates.json` below `dir` (benchmark ids may have several path levels).
fn collect(dir: &Path, prefix: String, since: SystemTime, rows: &mut Vec<(String, f64)>) -> Result<()> {
    let estimates = dir.join("new").join("estimates.json");
    if estimates.exists() {
        let fresh = std::fs::metadata(&estimates).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
        if !fresh {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&estimates)?)
            .with_context(|| format!("reading {}", estimates.display()))?;
        if let Some(median) = v.pointer("/median/point_estimate").and_then(Value::as_f64) {
            rows.push((if prefix.is_empty() { "-".to_owned() } else { prefix.clone() }, median));
        }
        return Ok(());
    }
    for sub in sorted_dirs(dir)? {
        let name = file_name(&sub);
        if matches!(name.as_str(), "report" | "base" | "new" | "change") {
            continue;
        }
        let id = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        collect(&sub, id, since, rows)?;
    }
    Ok(())
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}
