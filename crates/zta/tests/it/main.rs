//! The integration tests of `zta`, one module per behaviour, linked into one binary
//! (one link instead of one per file). `traces_never_carry_secrets` keeps its own process:
//! tracing caches, per process, which callsites a subscriber wants, so a test-local subscriber
//! beside other tests would miss spans.

mod anchor_config_errors_are_located;
mod anchor_store_detects_a_rolled_back_log;
mod audit_failure_denies;
mod audit_goes_to_every_listed_sink;
mod audit_source_reads_the_first_readable_sink;
mod common;
mod config_errors_name_the_exact_place;
mod config_loads_and_refuses_bad_files;
mod credentials_go_to_the_provider_that_declares_the_agent;
mod entra_tokens_pass_the_guard;
mod ldap_accounts_pass_the_guard;
mod monitoring_suspends_a_probing_agent;
mod nats_audit_gets_every_decision;
mod postgres_audit_gets_every_decision;
mod postgres_cut_is_spooled_and_replayed;
mod redis_cluster_state_is_configured;
mod redis_state_is_shared_by_replicas;
mod server_section_reads_operators_and_trusted_peps;
mod sqlite_audit_gets_every_decision;
mod suspended_agent_is_shut_out;
