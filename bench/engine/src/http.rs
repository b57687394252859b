//! A minimal keep-alive HTTP/1.1 client: the test-support client opens one connection per
//! request, which would make the benchmark measure TCP handshakes instead of the engines.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A status and a body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {}, body not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One persistent connection to an engine, re-opened when the server closes it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    /// A client for `addr`; connects on the first request.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// Sends one request and reads its response. A request on a reused connection that fails
    /// before any response byte is retried once on a fresh connection (the server may have
    /// closed an idle connection); the engines do not close idle connections within a run, so
    /// this never duplicates a create in practice.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let reused = self.stream.is_some();
        match self.try_request(method, path, body).await {
            Ok(reply) => Ok(reply),
            Err(e) if reused => {
                self.stream = None;
                self.try_request(method, path, body)
                    .await
                    .with_context(|| format!("{method} {path} (retried after: {e:#})"))
            }
            Err(e) => {
                self.stream = None;
                Err(e.context(format!("{method} {path}")))
            }
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.request("GET", path, None).await
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            // Requests are single small writes; Nagle would hold them back behind delayed ACKs.
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        head.push_str(body);
        stream.get_mut().write_all(head.as_bytes()).await?;

        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            bail!("connection closed before the response");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                bail!("connection closed in the response head");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = Some(value.parse()?),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                stream.read_exact(&mut body[start..]).await?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            stream.read_exact(&mut body).await?;
        } else {
            stream.read_to_end(&mut body).await?;
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(Reply { status, body })
    }
}
