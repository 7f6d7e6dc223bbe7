//! The integration tests of `zta-server`, one module per behaviour, linked into one binary.

mod authzen_evaluations;
