//! At a refresh the directory is asked again, without the password: an account taken out of
//! its group, or disabled, ends the session.

use zta_core::{AuthError, IdentityProvider};

use crate::support::*;

/// Runs `ldapmodify` as the directory's administrator on instance A.
fn modify(ldif: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            "ldap://127.0.0.1:3389",
            "-D",
            "cn=admin,dc=zta,dc=test",
            "-w",
            "admin-test-secret",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "{ldif}");
}

#[tokio::test]
async fn leaving_a_group_or_being_disabled_ends_the_session_at_refresh() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    let principal = login(&provider, "analysis_bot", "analysis-secret").await.unwrap();
    assert_eq!(principal.roles, ["reader"]);
    provider.revalidate(&principal).await.unwrap();

    let group = "dn: cn=tools-readers,ou=groups,dc=zta,dc=test\nchangetype: modify\n";
    modify(&format!("{group}delete: member\nmember: uid=analysis_bot,ou=agents,dc=zta,dc=test\n"));
    let refused = provider.revalidate(&principal).await;
    modify(&format!("{group}add: member\nmember: uid=analysis_bot,ou=agents,dc=zta,dc=test\n"));
    assert_eq!(refused.unwrap_err(), AuthError::invalid("the account's groups changed"));
    provider.revalidate(&principal).await.unwrap();

    let entry = "dn: uid=analysis_bot,ou=agents,dc=zta,dc=test\nchangetype: modify\n";
    modify(&format!("{entry}add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"));
    let refused = provider.revalidate(&principal).await;
    modify(&format!("{entry}delete: pwdAccountLockedTime\n"));
    assert_eq!(refused.unwrap_err(), AuthError::invalid("the account is disabled"));
}
