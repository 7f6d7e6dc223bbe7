//! The TLS client configuration: rustls on aws-lc-rs (the workspace's one provider, chosen
//! explicitly, since ldap3's and reqwest's rustls features leave no unique default), trusting
//! the configured CA file, or the system's roots without one.

use std::{path::Path, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

use crate::Error;

pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::config("ca_file", format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| Error::config("ca_file", format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| Error::config("ca_file", format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(Error::config("ca_file", format!("{} holds no certificate", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::config(
                    "ca_file",
                    "no system root certificates found; name the CA in `ca_file`",
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("tls", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
