//! The directory of the LDAP integration tests: two Debian `slapd` instances on loopback, set up
//! from nothing by `xtask/ldap/setup.sh` (a CA made for the test, StartTLS and ldaps, the crew of
//! `crew.ldif` added online so that `memberOf` is maintained), in `<target>/zta-services/ldap`,
//! which the tests find through `ZTA_TEST_LDAP_DIR`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The pinned Debian version of `slapd` and `ldap-utils`.
const SLAPD_VERSION: &str = "2.5.13+dfsg-5";

/// The instances' plain/StartTLS ports.
const PORTS: [u16; 2] = [3389, 3390];

/// The state directory, absolute (the tests run in their crates' directories).
pub(crate) fn dir() -> Result<PathBuf> {
    let dir = super::services::state_dir()?.join("ldap");
    std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))
}

/// Makes sure both instances answer, setting them up if they do not; `true` when this call
/// started them.
pub(crate) fn ensure() -> Result<bool> {
    let dir = dir()?;
    if answers(&dir) {
        println!("xtask: reusing the LDAP test servers ({})", dir.display());
        return Ok(false);
    }
    install()?;
    let status = Command::new("sh")
        .arg("xtask/ldap/setup.sh")
        .arg(&dir)
        .status()
        .context("running xtask/ldap/setup.sh (needs sh, openssl and slapd)")?;
    if !status.success() || !answers(&dir) {
        bail!("the LDAP test servers did not come up ({status}); see {}/a/load.log", dir.display());
    }
    println!("xtask: LDAP test servers started on 127.0.0.1:3389/3636 and 3390/3637 ({})", dir.display());
    Ok(true)
}

/// Stops both instances (their data stays until the next setup).
pub(crate) fn stop() -> Result<()> {
    let dir = dir()?;
    for instance in ["a", "b"] {
        let script = dir.join(instance).join("stop.sh");
        if script.exists() {
            Command::new("sh")
                .arg(&script)
                .status()
                .with_context(|| format!("running {}", script.display()))?;
        }
    }
    println!("xtask: LDAP test servers stopped");
    Ok(())
}

/// Both instances bind the service account over StartTLS with the test CA.
fn answers(dir: &Path) -> bool {
    let ca = dir.join("ca.pem");
    ca.exists()
        && PORTS.iter().all(|port| {
            Command::new("ldapwhoami")
                .args(["-x", "-ZZ", "-H", &format!("ldap://127.0.0.1:{port}")])
                .args(["-D", "cn=zta-gateway,ou=services,dc=zta,dc=test", "-w", "gateway-test-secret"])
                .env("LDAPTLS_CACERT", &ca)
                .output()
                .is_ok_and(|out| out.status.success())
        })
}

/// Installs the pinned `slapd` and `ldap-utils` when they are missing, without letting the
/// package configure or start a server of its own.
fn install() -> Result<()> {
    // Removed packages keep their version in dpkg's database: ask for the status too.
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status} ${Version}\n", "slapd", "ldap-utils"])
        .output()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let wanted = format!("install ok installed {SLAPD_VERSION}");
            text.lines().filter(|line| *line == wanted).count() == 2
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    println!("xtask: installing slapd and ldap-utils {SLAPD_VERSION}");
    let preseed = Command::new("sh")
        .args(["-c", "echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections"])
        .status()
        .context("running debconf-set-selections (a Debian machine is needed for the LDAP tests)")?;
    let update = Command::new("apt-get").args(["update", "-qq"]).status().context("running apt-get")?;
    let install = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            &format!("slapd={SLAPD_VERSION}"),
            &format!("ldap-utils={SLAPD_VERSION}"),
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !(preseed.success() && update.success() && install.success()) {
        bail!(
            "could not install slapd and ldap-utils {SLAPD_VERSION} with apt-get; the LDAP tests need them \
             (`apt-cache policy slapd` shows which versions are available)"
        );
    }
    // With no_configuration the package starts no server; make sure none holds the ports.
    let _ = Command::new("service").args(["slapd", "stop"]).output();
    Ok(())
}
