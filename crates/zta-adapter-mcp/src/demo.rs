//! A small MCP server that reads and writes files under one directory: the upstream of the
//! gateway's example and tests (`mcp-demo-files --root DIR`).
//!
//! Tools: `read_file {path}`, `write_file {path, content}`, `list_files {}`,
//! `delete_file {path}`. Paths are relative to the root; one that leaves it is refused (the
//! gateway checks paths too, before a call gets here).

use std::{
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

/// The demo files server: tools over the files of one directory.
#[derive(Clone, Debug)]
pub struct DemoFiles {
    root: Arc<PathBuf>,
}

fn schema(properties: Value, required: &[&str]) -> JsonObject {
    let value = json!({"type": "object", "properties": properties, "required": required});
    value.as_object().cloned().unwrap_or_default()
}

fn tools() -> Vec<Tool> {
    let path = json!({"path": {"type": "string", "description": "relative to the root"}});
    vec![
        Tool::new("read_file", "Reads a text file.", schema(path.clone(), &["path"])),
        Tool::new(
            "write_file",
            "Writes a text file, replacing it.",
            schema(json!({"path": {"type": "string"}, "content": {"type": "string"}}), &["path", "content"]),
        ),
        Tool::new("list_files", "Lists the files.", schema(json!({}), &[])),
        Tool::new("delete_file", "Deletes a file.", schema(path, &["path"])),
    ]
}

impl DemoFiles {
    /// A server for the files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: Arc::new(root.into()) }
    }

    /// Serves MCP on this process's stdin and stdout until the client goes away.
    pub async fn serve_stdio(self) -> Result<(), String> {
        let running = self.serve(rmcp::transport::stdio()).await.map_err(|e| e.to_string())?;
        running.waiting().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// `path` under the root, or why not.
    fn resolve(&self, arguments: &JsonObject) -> Result<PathBuf, String> {
        let path = arguments.get("path").and_then(Value::as_str).ok_or("`path` is required")?;
        let relative = Path::new(path);
        if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("`{path}` is not a path under the root"));
        }
        Ok(self.root.join(relative))
    }

    fn run(&self, name: &str, arguments: &JsonObject) -> Result<String, String> {
        match name {
            "read_file" => std::fs::read_to_string(self.resolve(arguments)?).map_err(|e| e.to_string()),
            "write_file" => {
                let content =
                    arguments.get("content").and_then(Value::as_str).ok_or("`content` is required")?;
                std::fs::write(self.resolve(arguments)?, content).map_err(|e| e.to_string())?;
                Ok(format!("wrote {} bytes", content.len()))
            }
            "delete_file" => {
                std::fs::remove_file(self.resolve(arguments)?).map_err(|e| e.to_string())?;
                Ok("deleted".to_owned())
            }
            "list_files" => {
                let mut names: Vec<String> = std::fs::read_dir(self.root.as_path())
                    .map_err(|e| e.to_string())?
                    .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect();
                names.sort();
                Ok(names.join("\n"))
            }
            other => Err(format!("no tool `{other}`")),
        }
    }
}

impl ServerHandler for DemoFiles {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        Ok(match self.run(&request.name, &arguments) {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(why) => CallToolResult::error(vec![ContentBlock::text(why)]),
        }
        .into())
    }
}
