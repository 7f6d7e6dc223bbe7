//! The integration tests of `zta-adapter-mcp`, linked into one binary: a gateway with two
//! upstreams (the demo files server as a child process, a notes server over streamable HTTP in
//! this process) and real rmcp clients as agents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod agent_frameworks;
mod argument_dependent_grants;
mod bad_input;
mod calls;
mod local;
mod obligations;
mod pinning;
mod resources_and_prompts;
mod support;
