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
