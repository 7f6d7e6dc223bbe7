//! Runs the `zta` binary the way a person would.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{path::Path, process::Command};

/// Runs `zta ARGS` in `cwd`; returns the exit code, stdout and stderr.
pub(crate) fn zta(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zta")).args(args).current_dir(cwd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `zta ARGS` in `cwd` with `input` on standard input; returns the exit code, stdout and
/// stderr.
#[allow(dead_code)] // not every test file feeds standard input
pub(crate) fn zta_stdin(args: &[&str], cwd: &Path, input: &str) -> (i32, String, String) {
    use std::{io::Write, process::Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // zta may exit before reading (a usage error): a closed pipe is not the test's failure.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const POLICY: &str = include_str!("../../../../../examples/policies/crew.yaml");

/// Writes `zta.yaml` in `dir`: a static identity section with `identity` (its lines after
/// `audience`), the keygen signing key, the crew policy (`crew.yaml`, written too) and a JSON
/// Lines audit log in `audit/` with `audit` (further lines of that section).
#[allow(dead_code)] // not every test file writes a config
pub(crate) fn write_config(dir: &Path, identity: &str, audit: &str) {
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    let config = format!(
        "identity:
  - type: static
    audience: https://zta.test
{identity}tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: keys/zta-signing.pem
policy:
  type: native
  files: [crew.yaml]
audit:
  type: jsonl
  dir: audit
{audit}"
    );
    std::fs::write(dir.join("zta.yaml"), config).unwrap();
}

/// The secret of `writer_bot` in [`deployment`].
#[allow(dead_code)]
pub(crate) const SECRET: &str = "correct horse battery staple";

/// A deployment in `dir`: keys from `zta keygen`, `research_bot` with a key and `writer_bot`
/// with a secret, the crew policy, a credential file for writer_bot and two requests.
#[allow(dead_code)] // not every test file needs a deployment
pub(crate) fn deployment(dir: &Path) {
    let (code, out, err) = zta(&["keygen", "--out", "keys", "--agent", "research_bot"], dir);
    assert_eq!(code, 0, "{out}{err}");
    let hash = zta::identity::static_agents::hash_secret(SECRET).unwrap();
    write_config(
        dir,
        &format!(
            "    agents:
      - {{id: research_bot, segment: research, public_key_file: keys/research_bot.pub.pem}}
      - {{id: writer_bot, segment: writing, secret_hash: '{hash}'}}
"
        ),
        "",
    );
    let credential = serde_json::json!({"username": "writer_bot", "password": SECRET});
    std::fs::write(dir.join("writer.json"), credential.to_string()).unwrap();
    std::fs::write(dir.join("write.json"), r#"{"action": {"kind": "tool_call", "name": "write_document"}}"#)
        .unwrap();
    std::fs::write(dir.join("shell.json"), r#"{"action": {"kind": "tool_call", "name": "shell"}}"#).unwrap();
}

/// Starts `zta ARGS` in `cwd` as a server that prints `... http://ADDR ...` as its first line;
/// the child, that address, and the rest of its standard output.
#[allow(dead_code)] // only the server tests start servers
pub(crate) fn spawn_server(
    args: &[&str],
    cwd: &Path,
) -> (std::process::Child, String, std::io::BufReader<std::process::ChildStdout>) {
    use std::{io::BufRead, process::Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    (child, addr, stdout)
}

/// POSTs `body` to `path` over one HTTP/1.1 connection; the status code and the JSON answer.
#[allow(dead_code)] // only the server tests post
pub(crate) fn post(addr: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    post_as(addr, path, None, body)
}

/// [`post`] with `Authorization: Bearer <bearer>` when given.
#[allow(dead_code)] // only the server tests post
pub(crate) fn post_as(
    addr: &str,
    path: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let body = body.to_string();
    let authorization = bearer.map(|token| format!("authorization: Bearer {token}\r\n")).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{authorization}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let json = response
        .split_once("\r\n\r\n")
        .map_or(serde_json::Value::Null, |(_, b)| serde_json::from_str(b).unwrap_or(serde_json::Value::Null));
    (status, json)
}
