//! The little HTTP/1.1 client serverless pools need: one request per connection, the response
//! body either read whole (metadata) or as a stream of chunks (the `/start` event stream).
//! Plain `http://` only: this build carries no TLS stack (a TLS-terminating proxy in front of
//! the application works), which the README states.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("unsupported serverless URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Connecting or talking to the server failed.
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL.
        url: String,
        /// The failure.
        reason: String,
    },
    /// No answer in time.
    #[error("request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix without a trailing slash (may be empty).
    pub path: String,
}

impl Target {
    /// Parses the configured pool URL.
    pub fn parse(url: &str) -> Result<Target, HttpError> {
        let fail = |reason| HttpError::Url {
            url: url.to_string(),
            reason,
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(fail("https is not supported by this build; put a TLS-terminating proxy in front or use http"));
        } else {
            return Err(fail("expected an http:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(fail("missing host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            || authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `{url}/{suffix}` as a request path.
    pub fn path_for(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.path)
    }
}

/// Sends one request and returns the response head with its body still streaming.
pub async fn send(
    url: &str,
    target: &Target,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<hyper::Response<Incoming>, HttpError> {
    let failed = |reason: String| HttpError::Request {
        url: url.to_string(),
        reason,
    };
    let exchange = async {
        let stream = TcpStream::connect(&target.authority)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "serverless connection ended");
            }
        });
        sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.to_string(),
            timeout,
        })?
}

/// Reads a whole body, up to `limit` bytes.
pub async fn read_body(
    url: &str,
    mut body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    let read = async {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| HttpError::Request {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            if let Some(data) = frame.data_ref() {
                if out.len() + data.len() > limit {
                    return Err(HttpError::Request {
                        url: url.to_string(),
                        reason: format!("response larger than {limit} bytes"),
                    });
                }
                out.extend_from_slice(data);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.to_string(),
            timeout,
        })?
}

/// Server-sent events, fed chunk by chunk.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field (`message` when absent).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

impl SseParser {
    /// Adds bytes; returns the events completed by them.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).to_string();
            if line.is_empty() {
                if self.event.is_some() || !self.data.is_empty() {
                    out.push(SseEvent {
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("http://app:3000/api/rivet/").unwrap(),
            Target {
                authority: "app:3000".into(),
                path: "/api/rivet".into()
            }
        );
        let t = Target::parse("http://app").unwrap();
        assert_eq!(t.authority, "app:80");
        assert_eq!(t.path_for("start"), "/start");
        assert!(Target::parse("https://app").is_err());
        assert!(Target::parse("ftp://app").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn server_sent_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: pi").is_empty());
        assert_eq!(
            p.feed(b"ng\n\nevent: stopping\r\ndata: a\ndata: b\n"),
            vec![SseEvent {
                event: "ping".into(),
                data: String::new()
            }]
        );
        assert_eq!(
            p.feed(b"\n: comment\n\ndata: {\"x\":1}\n\n"),
            vec![
                SseEvent {
                    event: "stopping".into(),
                    data: "a\nb".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "{\"x\":1}".into()
                }
            ]
        );
    }
}
