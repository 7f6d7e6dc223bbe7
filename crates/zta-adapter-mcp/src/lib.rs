//! A zero-trust gateway for the Model Context Protocol: agents (Rust, or Python frameworks
//! such as CrewAI and AutoGen, which speak MCP) reach their tools only through it, and every
//! request proves itself to the ZTA [`Guard`](zta_core::Guard): a bearer credential verified
//! on each request, each tool call authorized on its own with its arguments visible to policy,
//! every decision audited with the verified agent.
//!
//! ```no_run
//! # async fn demo(guard: zta_core::Guard, config: zta_adapter_mcp::GatewayConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = zta_adapter_mcp::McpGateway::new(guard, config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8900").await?;
//! // With the connection's peer address, so that denials record where they came from.
//! let app = gateway.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod approvals;
mod config;
pub mod demo;
mod error;
mod gateway;
mod local;
mod obligations;
mod pins;
mod upstream;

pub use approvals::approve;
pub use config::{ApprovalWebhook, GatewayConfig, UpstreamConfig};
pub use error::Error;
pub use gateway::{DENIED, McpGateway};
pub use obligations::OBLIGATIONS;
pub use pins::approve_tool;
