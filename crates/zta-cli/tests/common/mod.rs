//! Runs the `zta` binary the way a person would.

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
