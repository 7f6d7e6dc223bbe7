//! The integration tests of `zta-monitor`, one module per behaviour, linked into one binary.

mod common;
mod detectors_fire_at_their_threshold;
mod normal_work_raises_no_alarm;
mod responses_act_through_the_state_store;
mod webhook_gets_signed_alerts;
