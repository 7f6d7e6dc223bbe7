//! The crew example policy loads cleanly and passes its own test cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use zta_policy::{PolicySet, cli::run_test_file};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

#[test]
fn crew_policy_loads_without_warnings() {
    let p = PolicySet::from_files(&[examples().join("crew.yaml")]).unwrap();
    assert!(p.enforces_segments());
    assert!(p.warnings().is_empty(), "{:#?}", p.warnings());
}

#[test]
fn crew_policy_passes_its_test_cases() {
    let report = run_test_file(&examples().join("crew.tests.yaml")).unwrap();
    assert!(report.passed(), "\n{report}");
    assert!(report.cases.len() >= 10);
}
