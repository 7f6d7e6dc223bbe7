//! The HTTP client that talks to issuers: rustls on the workspace's aws-lc-rs provider, no
//! redirects, a time limit on every request, bounded response bodies.

use std::time::Duration;

use reqwest::{Client, Url, redirect::Policy};

use crate::Error;

/// Largest discovery document or key set read (real ones are a few KiB; Entra's key set is
/// under 10 KiB).
pub(crate) const MAX_BODY: usize = 512 * 1024;

/// A client for one provider's issuer requests.
pub(crate) fn client(timeout: Duration) -> Result<Client, Error> {
    Client::builder()
        .redirect(Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("zta-identity-oidc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Http(e.to_string()))
}

/// Parses an issuer URL: `https://`, or `http://` on a loopback address only (a local test
/// server). `what` names the setting in errors.
pub(crate) fn issuer_url(what: &str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| Error::config(what, format!("`{text}` is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Error::config(
                what,
                format!("`{text}` is plain http; only https is accepted, except on a loopback address"),
            ));
        }
        other => return Err(Error::config(what, format!("`{text}`: unsupported scheme `{other}`"))),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::config(what, format!("`{text}` must not carry a query, fragment or user")));
    }
    Ok(url)
}

/// A request to the issuer failed. `unreachable` tells an outage (no connection, a time-out,
/// a 5xx or 429 answer) from an answer that cannot be right (a 404, a body too large, not the
/// expected JSON), which at start-up is a configuration error.
#[derive(Debug, Clone)]
pub(crate) struct FetchError {
    pub(crate) message: String,
    pub(crate) unreachable: bool,
}

impl FetchError {
    pub(crate) fn wrong(message: String) -> Self {
        Self { message, unreachable: false }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// GETs `url` and reads the body as JSON, refusing a status other than 200, a body larger than
/// [`MAX_BODY`] (checked while reading, whatever the declared length) and anything not JSON.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    url: &str,
) -> Result<T, FetchError> {
    let mut response = client.get(url).send().await.map_err(|e| describe(url, &e))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let message = format!("{url} answered {status}");
        let unreachable = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        return Err(FetchError { message, unreachable });
    }
    let too_large = || FetchError::wrong(format!("{url} answered more than {MAX_BODY} bytes"));
    if response.content_length().is_some_and(|len| len > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(url, &e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| FetchError::wrong(format!("{url} did not answer the expected JSON: {e}")))
}

fn describe(url: &str, e: &reqwest::Error) -> FetchError {
    let message = if e.is_timeout() {
        format!("{url} did not answer in time")
    } else if e.is_connect() {
        format!("{url} is unreachable")
    } else {
        format!("request to {url} failed: {e}")
    };
    FetchError { message, unreachable: true }
}
