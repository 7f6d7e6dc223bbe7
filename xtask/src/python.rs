//! The Python virtual environment of the end-to-end tests: the MCP gateway's
//! (`crates/zta-adapter-mcp/tests/python`: AutoGen with its MCP client) and the Python client's
//! (`clients/python`: AutoGen and CrewAI), exactly the packages and versions of
//! `xtask/python/requirements.txt` (hash-checked), in `<target>/zta-services/python/venv`. The
//! tests run its interpreter, which `ZTA_TEST_PYTHON` names.
//!
//! A venv is made with the machine's `python3 -m venv` and stamped with the requirements it got
//! (`zta-requirements.txt` inside it); one whose stamp equals the requirements file is reused,
//! any other is made anew, so a changed pin never meets a stale venv.

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::services::require;

/// The pinned packages, relative to the workspace root.
const REQUIREMENTS: &str = "xtask/python/requirements.txt";

/// The Python the pins are for: some of their wheels (and so their hashes) are CPython 3.11's.
const PYTHON_VERSION: &str = "3.11";

/// What to install for the venv.
const PYTHON: &str =
    "Python 3.11 with its venv module (Debian/Ubuntu: `apt-get install python3 python3-venv`)";

/// The venv's copy of the requirements it was made with.
const STAMP: &str = "zta-requirements.txt";

/// Makes sure the venv exists with the pinned packages, making it when it is missing or was made
/// from other pins; the path of its `python`, absolute (the tests run in their crates' directories).
pub(crate) fn ensure() -> Result<PathBuf> {
    let venv = crate::services::state_dir()?.join("python").join("venv");
    let venv = std::path::absolute(&venv).with_context(|| format!("resolving {}", venv.display()))?;
    let python = venv.join("bin").join("python");
    let requirements = fs::read_to_string(REQUIREMENTS).with_context(|| format!("reading {REQUIREMENTS}"))?;
    let stamp = venv.join(STAMP);
    if fs::read_to_string(&stamp).is_ok_and(|made_from| made_from == requirements) && runs(&python) {
        println!(
            "xtask: Python venv for the end-to-end tests already set up (ZTA_TEST_PYTHON={})",
            python.display()
        );
        return Ok(python);
    }
    let started = Instant::now();
    require("python3", &["--version"], "the Python end-to-end tests", PYTHON)?;
    check_version()?;
    match fs::remove_dir_all(&venv) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old venv {}", venv.display()));
        }
        _ => {}
    }
    let made = output(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv")?;
    if !made.status.success() {
        bail!(
            "`python3 -m venv {}` failed ({}), so the Python end-to-end tests have no Python; it needs \
             Python's venv module with ensurepip: install {PYTHON}. It said:\n{}",
            venv.display(),
            made.status,
            String::from_utf8_lossy(&made.stderr).trim()
        );
    }
    println!("xtask: pip install -r {REQUIREMENTS} into {}", venv.display());
    // --no-deps with --require-hashes: pip installs what the file names and nothing else, each
    // package the very wheel that was pinned. Its output goes to the terminal: on a failure it
    // names the package.
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check"])
        .args(["--no-deps", "--require-hashes", "--requirement", REQUIREMENTS])
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {} -m pip", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not install {REQUIREMENTS} into {} ({status}; its output is above). It needs \
             PyPI; a hash mismatch or no matching wheel means the pins were made for another Python or \
             platform (CPython {PYTHON_VERSION} on x86_64 Linux): make them anew as the file's header says",
            venv.display()
        );
    }
    // What the test script imports: a venv that cannot is not stamped, and is made anew next time.
    let imports = output(
        Command::new(&python)
            .args(["-c", "import autogen_agentchat, autogen_ext.tools.mcp, mcp, crewai.hooks"]),
        "the venv's python",
    )?;
    if !imports.status.success() {
        bail!(
            "the packages of {REQUIREMENTS} are installed in {}, but AutoGen's MCP client or CrewAI's hooks do not import:\n{}",
            venv.display(),
            String::from_utf8_lossy(&imports.stderr).trim()
        );
    }
    fs::write(&stamp, &requirements).with_context(|| format!("writing {}", stamp.display()))?;
    println!(
        "xtask: Python venv for the end-to-end tests ready in {:.1}s (ZTA_TEST_PYTHON={})",
        started.elapsed().as_secs_f64(),
        python.display()
    );
    Ok(python)
}

/// `python3` is the Python the pins are for.
fn check_version() -> Result<()> {
    let asked = output(
        Command::new("python3").args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]),
        "python3",
    )?;
    let version = String::from_utf8_lossy(&asked.stdout).trim().to_owned();
    if version != PYTHON_VERSION {
        bail!(
            "the Python end-to-end tests need python3 to be Python {PYTHON_VERSION}, the Python whose wheels \
             {REQUIREMENTS} pins, and it is {}; install {PYTHON}, or make the pins anew for this one as \
             the file's header says",
            if version.is_empty() { "something that does not say its version" } else { &version }
        );
    }
    Ok(())
}

/// The venv's interpreter starts.
fn runs(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", ""])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `command` to its end, its output captured.
fn output(command: &mut Command, what: &str) -> Result<Output> {
    command.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))
}
