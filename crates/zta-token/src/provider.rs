//! Explicit installation of jsonwebtoken's aws-lc-rs crypto provider.
//!
//! jsonwebtoken 11 picks its provider from Cargo features and panics at the first
//! encode/decode when feature unification enables both or neither backend. Installing the
//! provider ourselves (once per process) removes that dependency on the feature graph; the
//! self-test in [`TokenService::new`](crate::TokenService::new) then proves it works.

use std::sync::OnceLock;

use jsonwebtoken::crypto::{CryptoProvider, aws_lc::DEFAULT_PROVIDER};

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the aws-lc-rs provider as jsonwebtoken's process default. Idempotent; if another
/// provider was installed first it is kept (with a warning) and the self-test decides.
pub(crate) fn install() {
    INSTALLED.get_or_init(|| {
        if let Err(existing) = DEFAULT_PROVIDER.install_default()
            && !std::ptr::eq::<CryptoProvider>(existing, &DEFAULT_PROVIDER)
        {
            tracing::warn!(
                target: "zta_token",
                "a different jsonwebtoken crypto provider is already installed; relying on the startup self-test"
            );
        }
    });
}
