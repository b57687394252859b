//! One keep-alive HTTP/1.1 connection issuing sequential requests: enough to time round trips
//! without measuring TCP handshakes or a full client library.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A persistent connection; fails (does not reconnect) if the server closes it, so every
/// measured round trip is on the same socket.
pub struct KeepAlive {
    stream: BufReader<TcpStream>,
    host: String,
    line: String,
    body: Vec<u8>,
}

impl KeepAlive {
    /// Connects to `addr` with Nagle off (requests are single small writes).
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends `method path` with `body` and reads the whole response; returns the status.
    pub async fn request(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<u16> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(head.as_bytes()).await?;
        self.read_response()
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// The body of the last response.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    async fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            bail!("connection closed mid-response");
        }
        Ok(())
    }

    async fn read_response(&mut self) -> anyhow::Result<u16> {
        self.read_line().await?;
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            self.read_line().await?;
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().context("bad content-length")?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                } else if name.eq_ignore_ascii_case("connection")
                    && value.eq_ignore_ascii_case("close")
                {
                    bail!("server closed the keep-alive connection");
                }
            }
        }
        self.body.clear();
        if chunked {
            loop {
                self.read_line().await?;
                let size = usize::from_str_radix(self.line.trim(), 16)
                    .with_context(|| format!("bad chunk size {:?}", self.line))?;
                let start = self.body.len();
                self.body.resize(start + size + 2, 0);
                self.stream.read_exact(&mut self.body[start..]).await?;
                self.body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            self.body.resize(length, 0);
            self.stream.read_exact(&mut self.body).await?;
        }
        Ok(status)
    }
}
