//! Opening WebSockets through the gateway (client-protocol.md §6.1, §7) and reading their
//! close frames.

use std::time::Duration;

use rivet_client_protocol::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use crate::error::{ClientError, RemoteError};
use crate::http::Endpoint;
use crate::key::encode_component;
use crate::retry::parse_close_reason;

/// A WebSocket to the gateway.
pub(crate) type Socket = WebSocketStream<TcpStream>;

/// Largest frame accepted from the actor: the gateway's own limit for client frames.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// The subprotocols the npm client offers, in its order: `rivet` (the gateway always
/// answers it), the encoding, then the percent-encoded connection parameters.
pub(crate) fn subprotocols(encoding: &str, params_json: Option<&str>) -> Vec<String> {
    let mut protocols = vec!["rivet".to_string(), format!("rivet_encoding.{encoding}")];
    if let Some(json) = params_json {
        protocols.push(format!("rivet_conn_params.{}", encode_component(json)));
    }
    protocols
}

/// Opens a WebSocket to `path` (relative to the endpoint, starting with `/`), offering
/// `protocols`; the TCP connect and the upgrade together must finish within `timeout`.
pub(crate) async fn open(
    endpoint: &Endpoint,
    path: &str,
    protocols: &[String],
    user_agent: &str,
    timeout: Duration,
) -> Result<Socket, ClientError> {
    let url = endpoint.ws_url(path);
    let failed = |reason: String| ClientError::Transport {
        url: url.clone(),
        reason,
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(format!("invalid WebSocket request: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&protocols.join(", "))
            .map_err(|e| failed(format!("invalid subprotocol: {e}")))?,
    );
    if let Ok(agent) = HeaderValue::from_str(user_agent) {
        headers.insert("user-agent", agent);
    }
    // tungstenite zero-fills its whole read buffer before every read (128 KiB by default,
    // several per cent of the CPU with small frames); larger frames take several reads.
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let handshake = async {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .map_err(|e| failed(e.to_string()))?;
        // Actions and events are small frames; Nagle would delay each by up to 40 ms.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map(|(socket, _)| socket)
            .map_err(|e| upgrade_error(&url, e))
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            timeout,
        })?
}

/// An upgrade refused with an HTTP response carries the engine's JSON error when it has one.
fn upgrade_error(url: &str, error: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            crate::client::json_error_body(status, body).unwrap_or_else(|| ClientError::Http {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(body).chars().take(512).collect(),
            })
        }
        other => ClientError::Transport {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

/// What a close frame (or its absence) means to a caller: a `group.code` reason becomes
/// that remote error, anything else a [`ClientError::ConnectionClosed`].
pub(crate) fn close_error(frame: Option<&CloseFrame>) -> ClientError {
    let Some(frame) = frame else {
        return ClientError::ConnectionClosed {
            code: None,
            reason: "the connection was lost".to_string(),
        };
    };
    let code = u16::from(frame.code);
    let reason = frame.reason.as_str();
    match parse_close_reason(reason) {
        Some(parsed) => ClientError::Remote(Box::new(RemoteError {
            group: parsed.group.to_string(),
            code: parsed.code.to_string(),
            message: format!("Connection closed: {reason}"),
            metadata: parsed
                .ray
                .map(|ray| Value::object([("rayId", Value::text(ray))])),
            actor: None,
            status: None,
        })),
        None => ClientError::ConnectionClosed {
            code: Some(code),
            reason: if reason.is_empty() {
                format!("closed with code {code}")
            } else {
                format!("closed with code {code}: {reason}")
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn offers_the_npm_subprotocols() {
        assert_eq!(subprotocols("bare", None), ["rivet", "rivet_encoding.bare"]);
        assert_eq!(
            subprotocols("json", Some(r#"{"user":"a b"}"#)),
            [
                "rivet",
                "rivet_encoding.json",
                "rivet_conn_params.%7B%22user%22%3A%22a%20b%22%7D"
            ]
        );
    }

    #[test]
    fn close_frames_become_errors() {
        let frame = CloseFrame {
            code: CloseCode::Error,
            reason: "user.rejected".into(),
        };
        let err = close_error(Some(&frame));
        assert!(err.is("user", "rejected"), "{err}");

        let frame = CloseFrame {
            code: CloseCode::Error,
            reason: "actor.not_found#ray1".into(),
        };
        let err = close_error(Some(&frame));
        assert!(err.is("actor", "not_found"), "{err}");
        let metadata = err.remote().unwrap().metadata.clone().unwrap();
        assert_eq!(metadata.get("rayId").and_then(|v| v.as_str()), Some("ray1"));

        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        assert!(matches!(
            close_error(Some(&frame)),
            ClientError::ConnectionClosed {
                code: Some(1000),
                ..
            }
        ));
        assert!(matches!(
            close_error(None),
            ClientError::ConnectionClosed { code: None, .. }
        ));
    }
}
