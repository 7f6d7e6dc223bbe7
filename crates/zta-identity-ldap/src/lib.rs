//! Agent identities from LDAP directories and Active Directory: an agent logs in with its
//! service account's name and password; [`LdapProvider`] finds the account as a service
//! account, binds as it over StartTLS or ldaps, confirms the bound identity, and maps its
//! groups to roles and a segment. `Guard::login` then issues a ZTA session token, so the
//! directory is not asked on every request; each refresh confirms the account again.

mod cache;
mod config;
mod conn;
mod error;
mod provider;
mod tls;

pub use config::{Disabled, Groups, GroupsVia, LdapConfig, Lockout, Pool, Timeouts, TlsMode};
pub use error::Error;
pub use provider::LdapProvider;
