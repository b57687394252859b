//! WebSockets through the tunnel (engine-api.md §10.2): the client's upgrade completes first,
//! then the actor is resolved and woken and the host is asked to open; frames and closes pass
//! both ways with their binary flag, code and reason.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rivet_envoy_protocol::{self as proto, Headers};
use rivet_orchestrator::id::Id;
use rivet_orchestrator::shell::{host_subject, tunnel_signal};

use super::resolve::{ready, resolve};
use super::Gateway;
use crate::{GatewayError, Target};

/// How long the host has to accept a WebSocket.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest client frame.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

async fn upgrade_of(
    request: Request,
) -> Result<(WebSocketUpgrade, axum::http::HeaderMap), Response> {
    let (mut parts, _) = request.into_parts();
    let headers = parts.headers.clone();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => Ok((upgrade, headers)),
        Err(rejection) => Err(rejection.into_response()),
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: String) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// A routing error on a WebSocket: the upgrade is accepted, then closed `1011 group.code#ray`.
pub(crate) async fn refuse(request: Request, error: GatewayError, ray: Id) -> Response {
    let (upgrade, _) = match upgrade_of(request).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let reason = error.close_reason(&ray.to_string());
    upgrade
        .protocols(["rivet"])
        .on_upgrade(move |socket| close(socket, crate::error::CLOSE_CODE_ERROR, reason))
}

pub(crate) async fn serve(gateway: Gateway, target: Target, request: Request, ray: Id) -> Response {
    let (upgrade, headers) = match upgrade_of(request).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let mut forwarded = Headers::new();
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            forwarded
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
    }
    forwarded.insert("x-rivet-ray-id".into(), ray.to_string());
    upgrade
        .protocols(["rivet"])
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            if let Err((error, socket)) = tunnel(&gateway, &target, forwarded, socket).await {
                close(
                    socket,
                    crate::error::CLOSE_CODE_ERROR,
                    error.close_reason(&ray.to_string()),
                )
                .await;
            }
        })
}

fn envoy_message(
    gateway: &Gateway,
    request_id: [u8; 4],
    index: &mut u16,
    kind: proto::ToEnvoyTunnelMessageKind,
) -> Result<Bytes, GatewayError> {
    let message = proto::ToEnvoyTunnelMessage {
        message_id: proto::MessageId {
            gateway_id: gateway.inner.gateway_id,
            request_id,
            message_index: *index,
        },
        message_kind: kind,
    };
    *index = index.wrapping_add(1);
    tunnel_signal(message).map_err(|e| GatewayError::internal_error(e.to_string()))
}

async fn tunnel(
    gateway: &Gateway,
    target: &Target,
    headers: Headers,
    mut socket: WebSocket,
) -> Result<(), (GatewayError, WebSocket)> {
    let actor = match resolve(gateway, target).await {
        Ok(actor) => actor,
        Err(error) => return Err((error, socket)),
    };
    let to = match ready(gateway, actor, target.skip_ready_wait).await {
        Ok(to) => to,
        Err(error) => return Err((error, socket)),
    };
    let bus = gateway.shell().bus().clone();
    let subject = host_subject(to.namespace, &to.host);
    let (guard, mut inbox) = gateway.open_inbox();
    let mut index: u16 = 0;
    let open = proto::ToEnvoyTunnelMessageKind::WebSocketOpen(proto::ToEnvoyWebSocketOpen {
        actor_id: actor.to_string(),
        actor_generation: None,
        path: target.forward_path.clone(),
        headers,
    });
    let sent = match envoy_message(gateway, guard.request_id, &mut index, open) {
        Ok(signal) => bus.publish(&subject, signal).await,
        Err(error) => return Err((error, socket)),
    };
    if let Err(error) = sent {
        return Err((GatewayError::internal_error(error.to_string()), socket));
    }

    // Client frames that arrive before the host accepted wait here.
    let mut early: Vec<Message> = Vec::new();
    let deadline = tokio::time::sleep(OPEN_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            answer = inbox.recv() => match answer {
                Some(proto::ToRivetTunnelMessageKind::WebSocketOpen(_)) => break,
                Some(proto::ToRivetTunnelMessageKind::WebSocketClose(_)) | None => {
                    return Err((GatewayError::websocket_closed_before_open(), socket));
                }
                Some(_) => {}
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let close = proto::ToEnvoyTunnelMessageKind::WebSocketClose(proto::ToEnvoyWebSocketClose {
                        code: Some(1000),
                        reason: None,
                    });
                    if let Ok(signal) = envoy_message(gateway, guard.request_id, &mut index, close) {
                        let _ = bus.publish(&subject, signal).await;
                    }
                    return Ok(());
                }
                Some(Ok(message)) => early.push(message),
            },
            _ = &mut deadline => {
                return Err((GatewayError::websocket_closed_before_open(), socket));
            }
        }
    }

    let forward = |message: Message, index: &mut u16| -> Option<Result<Bytes, GatewayError>> {
        let kind = match message {
            Message::Text(text) => {
                proto::ToEnvoyTunnelMessageKind::WebSocketMessage(proto::WebSocketMessage {
                    data: text.as_bytes().to_vec(),
                    binary: false,
                })
            }
            Message::Binary(data) => {
                proto::ToEnvoyTunnelMessageKind::WebSocketMessage(proto::WebSocketMessage {
                    data: data.to_vec(),
                    binary: true,
                })
            }
            Message::Close(frame) => {
                proto::ToEnvoyTunnelMessageKind::WebSocketClose(proto::ToEnvoyWebSocketClose {
                    code: frame.as_ref().map(|f| f.code),
                    reason: frame.map(|f| f.reason.to_string()),
                })
            }
            Message::Ping(_) | Message::Pong(_) => return None,
        };
        Some(envoy_message(gateway, guard.request_id, index, kind))
    };
    for message in early {
        if let Some(signal) = forward(message, &mut index) {
            match signal {
                Ok(signal) => {
                    let _ = bus.publish(&subject, signal).await;
                }
                Err(error) => return Err((error, socket)),
            }
        }
    }
    loop {
        tokio::select! {
            answer = inbox.recv() => match answer {
                Some(proto::ToRivetTunnelMessageKind::WebSocketMessage(m)) => {
                    let message = if m.binary {
                        Message::Binary(Bytes::from(m.data))
                    } else {
                        match String::from_utf8(m.data) {
                            Ok(text) => Message::Text(text.into()),
                            Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
                        }
                    };
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
                Some(proto::ToRivetTunnelMessageKind::WebSocketClose(c)) => {
                    close(socket, c.code.unwrap_or(1000), c.reason.unwrap_or_default()).await;
                    return Ok(());
                }
                Some(_) => {}
                None => break,
            },
            frame = socket.recv() => {
                let message = match frame {
                    Some(Ok(message)) => message,
                    // The client vanished: tell the host the socket is closed.
                    None | Some(Err(_)) => Message::Close(Some(CloseFrame { code: 1006, reason: "".into() })),
                };
                let closing = match &message {
                    Message::Close(frame) => Some(frame.clone()),
                    _ => None,
                };
                if let Some(signal) = forward(message, &mut index) {
                    match signal {
                        Ok(signal) => {
                            let _ = bus.publish(&subject, signal).await;
                        }
                        Err(error) => return Err((error, socket)),
                    }
                }
                if let Some(frame) = closing {
                    // Complete the client's close handshake with its own code (a socket dropped
                    // without it reads as 1006 on the client).
                    // tungstenite queues the reply when it reads the close; reading on until
                    // the end flushes it.
                    if socket.send(Message::Close(frame)).await.is_err() {
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Some(Ok(_)) = socket.recv().await {}
                        })
                        .await;
                    }
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
