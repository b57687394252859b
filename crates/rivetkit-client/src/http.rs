//! One HTTP/1.1 request per connection over plain TCP. The client talks to a local or
//! proxied engine; this build carries no TLS stack.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ClientError;

/// A parsed `http://host[:port][/prefix]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The endpoint as given, without a trailing slash (for error messages).
    pub display: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix without a trailing slash (may be empty).
    pub prefix: String,
}

impl Endpoint {
    pub(crate) fn parse(endpoint: &str) -> Result<Endpoint, ClientError> {
        let fail = |reason| ClientError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        let rest = if let Some(rest) = endpoint.strip_prefix("http://") {
            rest
        } else if endpoint.starts_with("https://") {
            return Err(fail("https is not supported by this build; use http"));
        } else {
            return Err(fail("expected an http:// URL"));
        };
        if rest.contains(['?', '#']) {
            return Err(fail("the endpoint must not contain a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(fail("missing host"));
        }
        if authority.contains('@') {
            return Err(fail(
                "credentials in the endpoint are not supported; use the namespace and token options",
            ));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']');
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let prefix = path.trim_end_matches('/').to_string();
        Ok(Endpoint {
            display: format!("http://{authority}{prefix}"),
            authority,
            prefix,
        })
    }

    /// The full URL of `path` (which starts with `/`), for error messages.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.display)
    }
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl RawResponse {
    /// Whether the body is JSON whatever encoding was requested (engine and gateway errors).
    pub(crate) fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.contains("application/json"))
    }

    /// The body as text for error messages, cut to a readable length.
    pub(crate) fn body_text(&self) -> String {
        const MAX: usize = 512;
        let text = String::from_utf8_lossy(&self.body);
        match text.char_indices().nth(MAX) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.into_owned(),
        }
    }
}

/// Sends one request to `path` (relative to the endpoint, starting with `/`) and reads the
/// whole response.
pub(crate) async fn send(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<RawResponse, ClientError> {
    let url = endpoint.url(path);
    let failed = |reason: String| ClientError::Transport {
        url: url.clone(),
        reason,
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", endpoint.prefix))
        .header(hyper::header::HOST, endpoint.authority.as_str());
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(e.to_string()))?;
    let exchange = async {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .map_err(|e| failed(e.to_string()))?;
        // Small request/response exchanges: Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            timeout,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:6420").unwrap();
        assert_eq!(e.authority, "127.0.0.1:6420");
        assert_eq!(e.prefix, "");
        let e = Endpoint::parse("http://engine/base/").unwrap();
        assert_eq!(e.authority, "engine:80");
        assert_eq!(e.prefix, "/base");
        assert_eq!(e.url("/actors"), "http://engine:80/base/actors");
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://a?b=1",
            "http://ns:tok@host",
        ] {
            assert!(
                matches!(
                    Endpoint::parse(bad),
                    Err(ClientError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }
}
