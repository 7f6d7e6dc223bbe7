//! Connections to the directory: TCP with `TCP_NODELAY`, StartTLS or ldaps through rustls on
//! the workspace's aws-lc-rs provider, failover over the configured URLs, and a bounded pool
//! that drops a connection after any failure (the next use opens a fresh one).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, StdStream};
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::TlsMode;

/// Opens connections to the first server that answers.
pub(crate) struct Connector {
    pub(crate) urls: Vec<Url>,
    pub(crate) tls: TlsMode,
    pub(crate) tls_config: Arc<ClientConfig>,
    pub(crate) connect: Duration,
    pub(crate) operation: Duration,
}

impl Connector {
    /// A connection to the first URL that answers, in order; the last failure when none does.
    pub(crate) async fn open(&self) -> Result<Ldap, String> {
        let mut last = String::from("no server configured");
        for url in &self.urls {
            match self.open_one(url).await {
                Ok(ldap) => return Ok(ldap),
                Err(why) => {
                    tracing::warn!(target: "zta_identity_ldap", %url, error = %why, "directory server not reachable");
                    last = format!("{url}: {why}");
                }
            }
        }
        Err(last)
    }

    async fn open_one(&self, url: &Url) -> Result<Ldap, String> {
        let host = url.host_str().ok_or("no host")?;
        let port = url.port().unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
        let connecting = async {
            let stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
            // ldap3 leaves Nagle on: every TLS bind would then wait ~40 ms for a delayed ACK.
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            stream.into_std().map_err(|e| e.to_string())
        };
        let stream =
            tokio::time::timeout(self.connect, connecting).await.map_err(|_| "connect timed out")??;
        let settings = LdapConnSettings::new()
            .set_std_stream(StdStream::Tcp(stream))
            .set_config(self.tls_config.clone())
            .set_starttls(self.tls == TlsMode::Starttls)
            .set_conn_timeout(self.connect);
        let (conn, ldap) =
            LdapConnAsync::with_settings(settings, url.as_str()).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(target: "zta_identity_ldap", error = %e, "directory connection ended");
            }
        });
        Ok(ldap)
    }
}

/// A bounded set of connections of one kind: bound as the service account (`service`), or
/// used for agents' binds (`None`; idle ones are anonymous).
pub(crate) struct Pool {
    connector: Arc<Connector>,
    service: Option<(String, SecretString)>,
    idle: Mutex<Vec<Ldap>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from a [`Pool`]: returned with [`Pooled::keep`], dropped otherwise.
pub(crate) struct Pooled {
    pub(crate) ldap: Ldap,
    /// Taken from the idle ones (it may have gone stale since, unnoticed).
    pub(crate) reused: bool,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// Gives the connection back for reuse (only after an operation that went through).
    pub(crate) fn keep(self) {
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(self.ldap);
        }
    }
}

impl Pool {
    pub(crate) fn new(
        connector: Arc<Connector>,
        service: Option<(String, SecretString)>,
        size: usize,
    ) -> Self {
        Self {
            connector,
            service,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// A connection: an idle one that is still open, or a new one (bound as the service
    /// account for a service pool). Waits while all are in use.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Pooled, String> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| "connection pool closed")?;
        loop {
            let candidate = self.idle.lock().map_err(|_| "connection pool poisoned")?.pop();
            match candidate {
                Some(mut ldap) => {
                    if !ldap.is_closed() {
                        return Ok(Pooled { ldap, reused: true, pool: self.clone(), _permit: permit });
                    }
                }
                None => break,
            }
        }
        let mut ldap = self.connector.open().await?;
        if let Some((dn, password)) = &self.service {
            let result = ldap
                .with_timeout(self.connector.operation)
                .simple_bind(dn, password.expose_secret())
                .await
                .map_err(|e| e.to_string())?;
            if result.rc != 0 {
                return Err(format!("the service account's bind was refused (result code {})", result.rc));
            }
        }
        Ok(Pooled { ldap, reused: false, pool: self.clone(), _permit: permit })
    }

    /// Forgets the idle connections: after one failed, the server may have restarted, and
    /// the others would fail alike, one request at a time.
    pub(crate) fn discard_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        self.connector.operation
    }
}
