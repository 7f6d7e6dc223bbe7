//! The integration tests of `zta-adapter-tower`, one module per behaviour, linked into one
//! binary.

mod http_requests_pass_the_guard;
