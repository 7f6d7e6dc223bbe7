//! `zta gateway`: refuses a config without a `gateway:` section or with session tokens meant
//! for something else; serves MCP over HTTP, `401` without a token and an MCP answer with one
//! from `zta token issue`; stops on SIGTERM with its audit log flushed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
};

use crate::common::{deployment, spawn_server, zta};

const RESOURCE: &str = "http://127.0.0.1:8900/mcp";

/// POSTs an MCP `initialize` to `/mcp`; the status line and headers, and the body.
fn initialize(addr: &str, token: Option<&str>) -> (String, String) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let authorization = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n{authorization}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn the_gateway_serves_mcp_to_agents_with_a_token_for_it() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let config = dir.path().join("zta.yaml");
    let base = std::fs::read_to_string(&config).unwrap();

    let (code, _, err) = zta(&["gateway", "--config", "zta.yaml"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("no `gateway` section"), "{err}");

    let gateway = format!(
        "gateway:\n  resource: {RESOURCE}\n  upstreams:\n    - {{name: tools, command: [/bin/false]}}\n"
    );
    std::fs::write(&config, format!("{base}{gateway}")).unwrap();
    let (code, _, err) = zta(&["gateway", "--config", "zta.yaml"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("tokens.audience"), "{err}");

    std::fs::write(
        &config,
        format!("{}{gateway}", base.replace("audience: zta\n", &format!("audience: {RESOURCE}\n"))),
    )
    .unwrap();
    let (code, _, err) = zta(&["gateway", "approve-tool", "--config", "zta.yaml", "tools__x"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("pins_file"), "{err}");
    let (code, _, err) = zta(&["gateway", "approve", "--config", "zta.yaml", "0123abcd"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("approvals_dir"), "{err}");
    let (code, _, err) = zta(&["gateway"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("--config"), "{err}");

    let (code, issued, err) =
        zta(&["token", "issue", "--config", "zta.yaml", "--credential-file", "writer.json"], dir.path());
    assert_eq!(code, 0, "{issued}{err}");
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let token = issued["access_token"].as_str().unwrap().to_owned();

    let (mut child, addr, mut stdout) =
        spawn_server(&["gateway", "--config", "zta.yaml", "--listen", "127.0.0.1:0"], dir.path());

    let (head, _) = initialize(&addr, None);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let metadata = "resource_metadata=\"http://127.0.0.1:8900/.well-known/oauth-protected-resource/mcp\"";
    assert!(head.to_lowercase().contains("www-authenticate: bearer") && head.contains(metadata), "{head}");
    let (head, body) = initialize(&addr, Some(&token));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(body.contains("zta-mcp-gateway"), "{body}");

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("stopped; audit log flushed"), "{rest}");
    let audit: String = std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(audit.contains("no bearer credential"), "the refused request is audited");
}

#[test]
fn the_gateway_serves_one_local_agent_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let config = dir.path().join("zta.yaml");
    let base = std::fs::read_to_string(&config)
        .unwrap()
        .replace("audience: zta\n", &format!("audience: {RESOURCE}\n"));
    let gateway = format!(
        "gateway:\n  resource: {RESOURCE}\n  upstreams:\n    - {{name: tools, command: [/bin/false]}}\n"
    );
    std::fs::write(&config, format!("{base}{gateway}")).unwrap();

    let (code, _, err) = zta(&["gateway", "--config", "zta.yaml", "--stdio"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("--credential-file"), "{err}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(["gateway", "--config", "zta.yaml", "--stdio", "--credential-file", "writer.json"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
    )
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answer = String::new();
    stdout.read_line(&mut answer).unwrap();
    assert!(answer.contains("zta-mcp-gateway"), "{answer}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
