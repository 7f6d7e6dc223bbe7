//! The demo files server on stdio (`mcp-demo-files --root DIR`); see
//! [`zta_adapter_mcp::demo`].
#![allow(clippy::print_stderr)]

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = match (args.next().as_deref(), args.next()) {
        (Some("--root"), Some(root)) => root,
        _ => {
            eprintln!("usage: mcp-demo-files --root DIR");
            std::process::exit(2);
        }
    };
    if let Err(e) = zta_adapter_mcp::demo::DemoFiles::new(root).serve_stdio().await {
        eprintln!("mcp-demo-files: {e}");
        std::process::exit(1);
    }
}
