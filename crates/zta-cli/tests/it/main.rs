//! The integration tests of `zta-cli`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod agent_suspension;
mod audit_migrate_applies_once;
mod audit_prune_leaves_signed_markers;
mod audit_query_and_tail_find_records;
mod audit_sql_stores_query_tail_and_verify;
mod audit_verify_against_an_anchor_store;
mod audit_verify_exit_codes;
mod cli_exit_codes;
mod common;
mod credential_commands_make_what_the_cli_reads;
mod demo_log_verifies_and_tampering_is_named;
mod entra_tokens_from_the_cli;
mod gateway_serves_mcp_behind_tokens;
mod kubernetes_manifest_config_loads;
mod ldap_accounts_from_the_cli;
mod monitor_status_and_alerts;
mod python_client_checks_crewai_and_autogen;
mod readme_walk_runs_from_keygen_to_audit_verify;
mod replicas_share_state_through_redis;
mod secrets_are_read_from_files_or_stdin;
mod serve_answers_authzen_and_stops_cleanly;
mod ui_in_a_headless_browser;
