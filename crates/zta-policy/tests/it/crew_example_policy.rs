//! The example policies load cleanly and pass their own test cases.
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

#[test]
fn every_example_policy_loads_cleanly_and_passes_its_cases() {
    let mut tested = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".tests.yaml") {
            let report = run_test_file(&path).unwrap();
            assert!(report.passed(), "{name}\n{report}");
            tested += 1;
        } else if name.ends_with(".yaml") {
            let p = PolicySet::from_files(&[&path]).unwrap();
            assert!(p.warnings().is_empty(), "{name}: {:#?}", p.warnings());
        }
    }
    assert!(tested >= 2);
}
