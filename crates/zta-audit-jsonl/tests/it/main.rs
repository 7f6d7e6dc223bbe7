//! The integration tests of `zta-audit-jsonl`, one module per behaviour, linked into one binary
//! (one link instead of one per file).

mod anchor_detects_a_rollback;
mod any_flipped_byte_is_detected;
mod common;
mod crash_recovery_resumes_the_chain;
mod deleted_record_is_detected;
mod deny_mode_refuses_when_full;
mod flushed_append_is_on_disk;
mod inserted_copy_is_detected;
mod jsonl_reader_conformance;
mod jsonl_sink_conformance;
mod open_refuses_a_cut_log;
mod queue_depth_counts_what_is_not_committed;
mod rotation_keeps_the_chain;
mod signed_checkpoint;
mod swapped_records_are_detected;
mod truncated_tail_is_detected;
mod unsigned_checkpoint_leaves_the_tail_unprotected;
mod wait_mode_never_drops;
mod write_failure_reports_lost_records;
mod writer_failure_fails_closed;
mod written_log_verifies;
