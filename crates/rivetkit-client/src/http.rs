//! HTTP/1.1 over plain TCP with a small pool of kept-alive connections. The client talks to a
//! local or proxied engine; this build carries no TLS stack.
//!
//! Why a pool of our own rather than hyper-util's pooling client: the retry rule has to be
//! exact (an action is a POST and must never run twice), and `http1::SendRequest::
//! try_send_request` tells us precisely when a request was never written. hyper-util's
//! `client-legacy` would also pull in its connector stack and change hyper-util's features
//! for every crate of the workspace, for a pool that is a `Vec` behind a mutex here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::ClientError;

/// Idle connections kept per client; more concurrent requests open more connections, and
/// those beyond this many are closed when they finish.
const MAX_IDLE: usize = 8;
/// An idle connection older than this is closed instead of reused: servers and proxies drop
/// idle connections after a while, and a reused one that died costs a round trip.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// The `ws://` URL of `path` (which starts with `/`).
    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}{path}", self.authority, self.prefix)
    }
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    /// The `content-type` header, when it is text.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.header(hyper::header::CONTENT_TYPE.as_str())
    }

    /// A header's value, when present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body is JSON whatever encoding was requested (engine and gateway errors).
    pub(crate) fn is_json(&self) -> bool {
        self.content_type()
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

/// One request to send: everything needed to build it again for a retry.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    /// Path relative to the endpoint, starting with `/`.
    pub path: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Bytes,
}

type Sender = SendRequest<Full<Bytes>>;

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The connections of one client to its endpoint.
pub(crate) struct HttpPool {
    endpoint: Endpoint,
    idle: Mutex<Vec<Idle>>,
    opened: AtomicU64,
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool")
            .field("endpoint", &self.endpoint.display)
            .field("opened", &self.connections_opened())
            .finish_non_exhaustive()
    }
}

/// Why an attempt on a connection failed, and whether resending is safe.
struct Failed {
    error: hyper::Error,
    /// hyper handed the request back: not a byte of it reached the socket.
    unsent: bool,
}

impl HttpPool {
    pub(crate) fn new(endpoint: Endpoint) -> HttpPool {
        HttpPool {
            endpoint,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How many TCP connections this pool has opened so far.
    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sends `request` and reads the whole response, within `timeout`.
    pub(crate) async fn send(
        &self,
        request: Outgoing<'_>,
        timeout: Duration,
    ) -> Result<RawResponse, ClientError> {
        let url = self.endpoint.url(request.path);
        tokio::time::timeout(timeout, self.exchange(&request, &url))
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout,
            })?
    }

    async fn exchange(
        &self,
        request: &Outgoing<'_>,
        url: &str,
    ) -> Result<RawResponse, ClientError> {
        let failed = |reason: String| ClientError::Transport {
            url: url.to_string(),
            reason,
        };
        if let Some(mut sender) = self.take_idle() {
            match attempt(&mut sender, self.build(request, url)?).await {
                Ok(response) => return self.finish(sender, response, url).await,
                Err(f) => {
                    // A request hyper never wrote can go anywhere. One that was written may
                    // have run (the peer can close after reading it), so only a safe method
                    // is sent again, and only when the connection ended before a complete
                    // response head (the usual race with a server closing an idle
                    // connection).
                    let safe =
                        f.unsent || (is_safe(&request.method) && f.error.is_incomplete_message());
                    if !safe {
                        return Err(failed(f.error.to_string()));
                    }
                    tracing::debug!(
                        error = %f.error,
                        unsent = f.unsent,
                        "a kept-alive connection failed before answering; sending on a new one"
                    );
                }
            }
        }
        let mut sender = self.connect(url).await?;
        match attempt(&mut sender, self.build(request, url)?).await {
            Ok(response) => self.finish(sender, response, url).await,
            Err(f) => Err(failed(f.error.to_string())),
        }
    }

    fn build(
        &self,
        request: &Outgoing<'_>,
        url: &str,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder()
            .method(request.method.clone())
            .uri(format!("{}{}", self.endpoint.prefix, request.path))
            .header(hyper::header::HOST, self.endpoint.authority.as_str());
        for (name, value) in request.headers {
            builder = builder.header(*name, value.as_str());
        }
        builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: format!("invalid request: {e}"),
            })
    }

    /// The most recently used idle connection that is still open, if any.
    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self, url: &str) -> Result<Sender, ClientError> {
        let failed = |reason: String| ClientError::Transport {
            url: url.to_string(),
            reason,
        };
        let stream = TcpStream::connect(&self.endpoint.authority)
            .await
            .map_err(|e| failed(e.to_string()))?;
        // Small request/response exchanges: Nagle would only add latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
        let opened = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(endpoint = %self.endpoint.display, opened, "opened an HTTP connection");
        Ok(sender)
    }

    /// Reads the body, then keeps the connection for the next request if it is still good.
    async fn finish(
        &self,
        sender: Sender,
        response: Response<hyper::body::Incoming>,
        url: &str,
    ) -> Result<RawResponse, ClientError> {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .to_bytes();
        // Only a connection whose response was read to the end can carry another request.
        self.put_idle(sender);
        Ok(RawResponse {
            status,
            headers: parts.headers,
            body,
        })
    }
}

/// One try on one connection.
async fn attempt(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<Response<hyper::body::Incoming>, Failed> {
    // Waits until the previous exchange is completely done; fails if the connection closed.
    if let Err(error) = sender.ready().await {
        return Err(Failed {
            error,
            unsent: true,
        });
    }
    sender
        .try_send_request(request)
        .await
        .map_err(|mut e| Failed {
            unsent: e.take_message().is_some(),
            error: e.into_error(),
        })
}

/// Methods that change nothing on the server (RFC 9110 §9.2.1), so a request that may have
/// been received can be sent again.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:6420").unwrap();
        assert_eq!(e.authority, "127.0.0.1:6420");
        assert_eq!(e.prefix, "");
        assert_eq!(
            e.ws_url("/gateway/x/connect"),
            "ws://127.0.0.1:6420/gateway/x/connect"
        );
        let e = Endpoint::parse("http://engine/base/").unwrap();
        assert_eq!(e.authority, "engine:80");
        assert_eq!(e.prefix, "/base");
        assert_eq!(e.url("/actors"), "http://engine:80/base/actors");
        assert_eq!(
            e.ws_url("/gateway/x/connect"),
            "ws://engine:80/base/gateway/x/connect"
        );
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

    /// A tiny HTTP/1.1 server over real sockets: answers the first request of every
    /// connection with `200 ok` (keep-alive), then reads the next request and closes without
    /// answering. Counts connections and requests seen.
    struct ClosingServer {
        addr: std::net::SocketAddr,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    impl ClosingServer {
        async fn start() -> ClosingServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(AtomicUsize::new(0));
            let (c, r) = (connections.clone(), requests.clone());
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    c.fetch_add(1, Ordering::SeqCst);
                    let r = r.clone();
                    tokio::spawn(async move {
                        for answered in [true, false] {
                            if !read_request(&mut socket).await {
                                return;
                            }
                            r.fetch_add(1, Ordering::SeqCst);
                            if answered {
                                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                if socket.write_all(reply.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                        // Dropping the socket closes it with the second request unanswered.
                    });
                }
            });
            ClosingServer {
                addr,
                connections,
                requests,
            }
        }
    }

    /// Reads one request head (the test requests carry no body); false at end of stream.
    async fn read_request(socket: &mut TcpStream) -> bool {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    fn request(method: Method) -> Outgoing<'static> {
        Outgoing {
            method,
            path: "/x",
            headers: &[],
            body: Bytes::new(),
        }
    }

    const T: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn reuses_a_kept_alive_connection() {
        // A server that answers every request on one connection.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    while read_request(&mut socket).await {
                        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let pool = HttpPool::new(Endpoint::parse(&format!("http://{addr}")).unwrap());
        for _ in 0..20 {
            let response = pool.send(request(Method::POST), T).await.unwrap();
            assert_eq!((response.status, &response.body[..]), (200, &b"ok"[..]));
        }
        assert_eq!(pool.connections_opened(), 1);
    }

    #[tokio::test]
    async fn a_written_post_is_not_sent_again_when_a_reused_connection_dies() {
        let server = ClosingServer::start().await;
        let pool = HttpPool::new(Endpoint::parse(&format!("http://{}", server.addr)).unwrap());
        assert_eq!(
            pool.send(request(Method::POST), T).await.unwrap().status,
            200
        );
        // The reused connection takes the POST, then closes without answering: it may have
        // run, so it must fail rather than run a second time.
        let err = pool.send(request(Method::POST), T).await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_safe_request_is_retried_once_on_a_new_connection() {
        let server = ClosingServer::start().await;
        let pool = HttpPool::new(Endpoint::parse(&format!("http://{}", server.addr)).unwrap());
        assert_eq!(
            pool.send(request(Method::GET), T).await.unwrap().status,
            200
        );
        let response = pool.send(request(Method::GET), T).await.unwrap();
        assert_eq!(response.status, 200);
        // The unanswered GET on the old connection, then the answered one on a new one.
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        assert_eq!(pool.connections_opened(), 2);
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_peer_while_idle_is_not_reused() {
        // Answers one request per connection, then closes it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    if read_request(&mut socket).await {
                        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    let _ = socket.shutdown().await;
                    // The client's end of stream: it noticed the close and dropped the socket.
                    let mut rest = Vec::new();
                    let _ = socket.read_to_end(&mut rest).await;
                    let _ = closed_tx.send(());
                });
            }
        });
        let pool = HttpPool::new(Endpoint::parse(&format!("http://{addr}")).unwrap());
        assert_eq!(
            pool.send(request(Method::POST), T).await.unwrap().status,
            200
        );
        tokio::time::timeout(T, closed_rx.recv()).await.unwrap();
        // The POST goes to a new connection without an error.
        assert_eq!(
            pool.send(request(Method::POST), T).await.unwrap().status,
            200
        );
        assert_eq!(pool.connections_opened(), 2);
    }
}
