//! The JWT crypto backend: jsonwebtoken 11 needs a process-wide provider; we install the
//! aws-lc-rs one ourselves, once, and never depend on a crate feature picking it.

use std::sync::OnceLock;

/// Installs jsonwebtoken's aws-lc-rs provider unless a provider is installed already (by
/// another ZTA crate, which installs the same one). Idempotent and cheap after the first call.
pub(crate) fn ensure_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // `Err` means some provider was installed first; the start-up self-test in
        // `StaticProvider::new` checks that it signs and verifies EdDSA correctly.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}
