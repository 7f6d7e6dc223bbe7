//! The headless browser of the `/ui` test (`zta-cli`'s `ui_in_a_headless_browser`): Debian's
//! `chromium` and `chromium-driver` (chromedriver), installed with apt-get when missing. They are
//! not pinned to one version: Debian's security archive keeps only the latest build of chromium,
//! so a pin would stop installing within weeks; what is checked is that the driver and the
//! browser are the same build, since chromedriver refuses a browser of another major version.
//! A missing browser is an error, never a skipped test.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::services::require;

/// The Debian packages, and the binary each puts on PATH.
const PACKAGES: [(&str, &str); 2] = [("chromium", "chromium"), ("chromium-driver", "chromedriver")];

/// `chromium` and `chromedriver` on PATH, of the same version; installed when missing.
pub(crate) fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, binary)| version(binary).is_none())
        .map(|(package, _)| *package)
        .collect();
    if !missing.is_empty() {
        install(&missing)?;
    }
    let (Some(browser), Some(driver)) = (version("chromium"), version("chromedriver")) else {
        bail!(
            "the /ui browser test needs `chromium` and `chromedriver` on PATH, and after installing {} \
             one of them still does not run",
            missing.join(" and ")
        );
    };
    if browser != driver {
        bail!(
            "the /ui browser test needs chromedriver of the browser's own version: chromium is {browser}, \
             chromedriver {driver} (`apt-get install chromium chromium-driver` updates both)"
        );
    }
    Ok(())
}

/// The version `binary --version` prints (`Chromium 156.0.8078.114 ...`,
/// `ChromeDriver 156.0.8078.114 (...)`), if it runs.
fn version(binary: &str) -> Option<String> {
    let output = Command::new(binary).arg("--version").stdin(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()) && word.contains('.'))
        .map(str::to_owned)
}

fn install(missing: &[&str]) -> Result<()> {
    let uid =
        Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref().ok() != Some("0") {
        bail!(
            "the /ui browser test needs {}, which are not installed, and installing them needs root: \
             `apt-get install chromium chromium-driver`",
            missing.join(" and ")
        );
    }
    require("apt-get", &["--version"], "the /ui browser test", "apt (a Debian or Ubuntu machine)")?;
    println!("xtask: installing {} for the /ui browser test", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .stdin(Stdio::null())
        .status()
        .context("running apt-get update")?;
    if !update.success() {
        bail!("apt-get update exited with {update} (is the Debian archive reachable?)");
    }
    // Both, so that the driver and the browser come from the same build.
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("apt-get install chromium chromium-driver exited with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_read_from_both_banners() {
        let word = |text: &str| {
            text.split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
                .map(str::to_owned)
        };
        assert_eq!(
            word("Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)").as_deref(),
            Some("156.0.8078.114")
        );
        assert_eq!(
            word("ChromeDriver 156.0.8078.114 (abc-refs/branch-heads/1@{#1})").as_deref(),
            Some("156.0.8078.114")
        );
    }
}
