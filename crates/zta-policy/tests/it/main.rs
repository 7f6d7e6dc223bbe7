//! The integration tests of `zta-policy`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod analysis_warnings;
mod attribute_references;
mod cli_support;
mod combining_rules;
#[path = "../common/mod.rs"]
mod common;
mod crew_example_policy;
mod explain;
mod hot_reload;
mod load_errors_have_positions;
mod operators_and_conditions;
mod original_policy_files_load;
mod permissible_is_sound;
mod policy_conformance;
mod properties;
mod references_agree_with_a_model;
mod request_vocabulary_agrees_with_core;
mod reserved_attributes;
mod schema;
mod segments;
mod what_can_is_sound;
