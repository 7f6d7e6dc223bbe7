//! HTTPS for `zta serve` (`server.tls`): agents send their credentials in every request, so
//! anywhere off loopback the service should be reached over TLS. rustls on aws-lc-rs (the
//! workspace's one TLS stack), TLS 1.2 and 1.3, HTTP/1.1.

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown, service::TowerToHyperService};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

/// The service's certificate and key (`server.tls`), PEM files. Relative paths are relative to
/// the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The certificate chain, the service's own certificate first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl TlsConfig {
    /// A configuration from the two files.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self { cert_file: cert_file.into(), key_file: key_file.into() }
    }

    /// Reads the files and builds the TLS server configuration; an error says which file and why.
    pub fn load(&self) -> std::io::Result<Arc<rustls::ServerConfig>> {
        let fail = |file: &PathBuf, why: String| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {why}", file.display()))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(Iterator::collect)
            .map_err(|e| fail(&self.cert_file, format!("not a PEM certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(fail(&self.cert_file, "holds no certificate".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| fail(&self.key_file, format!("not a PEM private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| fail(&self.key_file, format!("does not go with the certificate: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A client has this long to finish its handshake; a silent one holds nothing longer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until `shutdown` completes, then lets the connections'
/// requests in flight finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "zta serve: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "zta serve: TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "zta serve: TLS handshake timed out"),
            };
            // The peer address is what logins record as their source (see `native::peer`).
            let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let service = TowerToHyperService::new(app);
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "zta serve: connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
