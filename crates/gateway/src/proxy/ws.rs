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

use super::resolve::{locate, ready};
use super::Gateway;
use crate::{GatewayError, Target};

/// How long the host has to accept a WebSocket.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// tungstenite zero-fills its whole read buffer before each read (128 KiB by default, measured
/// at ~10% of the CPU of small-message traffic); frames larger than this take several reads.
const READ_BUFFER: usize = 16 * 1024;
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
    answer_rivet(
        upgrade
            .protocols(["rivet"])
            .on_upgrade(move |socket| close(socket, crate::error::CLOSE_CODE_ERROR, reason)),
    )
}

/// The reference answers `Sec-WebSocket-Protocol: rivet` on every upgrade, whether or not the
/// client offered it (engine-api.md §10.2); axum only echoes offered protocols.
pub fn answer_rivet(mut response: Response) -> Response {
    if response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .entry(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .or_insert(axum::http::HeaderValue::from_static("rivet"));
    }
    response
}

pub(crate) async fn serve(gateway: Gateway, target: Target, request: Request, ray: Id) -> Response {
    let (upgrade, headers) = match upgrade_of(request).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    // The offered subprotocols reach the host as one list (`rivet,rivet_encoding.json,…`).
    let forwarded = super::forwarded_headers(&headers, ",", ray);
    answer_rivet(
        upgrade
            .protocols(["rivet"])
            .max_message_size(MAX_MESSAGE)
            .read_buffer_size(READ_BUFFER)
            .on_upgrade(move |socket| async move {
                if let Err((error, socket)) = tunnel(&gateway, &target, forwarded, socket).await {
                    close(
                        socket,
                        crate::error::CLOSE_CODE_ERROR,
                        error.close_reason(&ray.to_string()),
                    )
                    .await;
                }
            }),
    )
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
    let (actor, to) = match locate(gateway, target).await {
        Ok(located) => located,
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
    let can_hibernate = loop {
        tokio::select! {
            answer = inbox.recv() => match answer {
                Some(proto::ToRivetTunnelMessageKind::WebSocketOpen(open)) => break open.can_hibernate,
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
    };

    let mut socket_state = Hibernatable {
        gateway,
        actor,
        gateway_id: gateway.inner.gateway_id,
        request_id: guard.request_id,
        can_hibernate,
        unacked: std::collections::VecDeque::new(),
        unacked_bytes: 0,
        waiting_since: None,
        hibernating: false,
        subject,
    };
    if can_hibernate {
        socket_state.record(true).await;
    }
    let result = socket_state
        .run(&mut socket, &mut inbox, &mut index, early)
        .await;
    if can_hibernate {
        socket_state.record(false).await;
    }
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err((error, socket)),
    }
}

/// Times a wake re-sends to a host that turned out gone, and the pause between tries.
const WAKE_ATTEMPTS: u32 = 100;
const WAKE_PAUSE: Duration = Duration::from_millis(50);

/// How long a hibernatable socket's message may stay unacknowledged (§9.6).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Most client messages kept for re-delivery while the host has not acknowledged them.
const MAX_UNACKED: usize = 1024;
/// Most bytes kept for re-delivery.
const MAX_UNACKED_BYTES: usize = 8 * 1024 * 1024;

/// One tunnelled WebSocket after the host accepted it. With `can_hibernate`, client messages are
/// kept until the host acknowledges them, and when the host goes away (it closes with
/// `hibernate`, or its socket dies) the client's socket stays open: its next message wakes the
/// actor, whose StartActor lists this socket, and the unacknowledged messages are re-sent there
/// with their original indexes (envoy-protocol.md §9.6).
struct Hibernatable<'a> {
    gateway: &'a Gateway,
    actor: Id,
    gateway_id: [u8; 4],
    request_id: [u8; 4],
    can_hibernate: bool,
    unacked: std::collections::VecDeque<(u16, proto::WebSocketMessage)>,
    unacked_bytes: usize,
    /// When the oldest unacknowledged message was last sent to a host.
    waiting_since: Option<tokio::time::Instant>,
    hibernating: bool,
    subject: String,
}

impl Hibernatable<'_> {
    /// Adds or removes this socket from the actor's hibernating sockets.
    async fn record(&self, open: bool) {
        let (actor, gateway_id, request_id) = (self.actor, self.gateway_id, self.request_id);
        let result = self
            .gateway
            .shell()
            .db()
            .txn(|tx| async move {
                if open {
                    rivet_orchestrator::hibernation::add(&tx, actor, gateway_id, request_id)
                } else {
                    rivet_orchestrator::hibernation::remove(&tx, actor, gateway_id, request_id);
                    Ok(())
                }
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, %actor, "cannot record a hibernatable socket");
        }
    }

    /// Sends to the host; `false` when nobody serves its subject any more (its socket just
    /// ended: the message went nowhere).
    async fn publish(
        &self,
        index: &mut u16,
        kind: proto::ToEnvoyTunnelMessageKind,
    ) -> Result<bool, GatewayError> {
        let signal = envoy_message(self.gateway, self.request_id, index, kind)?;
        let delivered = self
            .gateway
            .shell()
            .bus()
            .publish_counted(&self.subject, signal)
            .await;
        Ok(!matches!(delivered, Ok(Some(0))))
    }

    /// Sends a client message to the host, keeping it until acknowledged when hibernatable.
    async fn send_message(
        &mut self,
        index: &mut u16,
        message: proto::WebSocketMessage,
    ) -> Result<(), GatewayError> {
        if self.can_hibernate {
            self.unacked_bytes += message.data.len();
            self.unacked.push_back((*index, message.clone()));
            if self.unacked.len() > MAX_UNACKED || self.unacked_bytes > MAX_UNACKED_BYTES {
                return Err(GatewayError::internal_error(
                    "too many client messages not acknowledged by the actor",
                ));
            }
        }
        if self.hibernating {
            // `wake` re-sends from the kept copies; the socket's own count must still move on,
            // or the next message would reuse this index (and a host that skips re-deliveries
            // by index would drop it).
            *index = index.wrapping_add(1);
            return self.wake().await;
        }
        if self.can_hibernate && self.waiting_since.is_none() {
            // The acknowledgement clock starts with the first message it waits for.
            self.waiting_since = Some(tokio::time::Instant::now());
        }
        let delivered = self
            .publish(
                index,
                proto::ToEnvoyTunnelMessageKind::WebSocketMessage(message),
            )
            .await?;
        if !delivered && self.can_hibernate {
            // The host is gone and its close has not reached us yet: the kept copy goes to
            // the actor's next host.
            self.hibernating = true;
            return self.wake().await;
        }
        Ok(())
    }

    /// Wakes the actor (its StartActor restores this socket) and re-sends what it has not
    /// acknowledged, with the original indexes.
    ///
    /// Right after a host died, the actor's record may still name it until its disconnect is
    /// recorded; messages sent there go nowhere, so this tries again until they land.
    async fn wake(&mut self) -> Result<(), GatewayError> {
        for _ in 0..WAKE_ATTEMPTS {
            let to = ready(self.gateway, self.actor, false).await?;
            self.subject = host_subject(to.namespace, &to.host);
            self.hibernating = false;
            let pending: Vec<(u16, proto::WebSocketMessage)> =
                self.unacked.iter().cloned().collect();
            self.waiting_since = (!pending.is_empty()).then(tokio::time::Instant::now);
            let mut landed = true;
            for (mut at, message) in pending {
                landed &= self
                    .publish(
                        &mut at,
                        proto::ToEnvoyTunnelMessageKind::WebSocketMessage(message),
                    )
                    .await?;
            }
            if landed {
                return Ok(());
            }
            self.hibernating = true;
            tokio::time::sleep(WAKE_PAUSE).await;
        }
        Err(GatewayError::new(
            "guard",
            "service_unavailable",
            "The actor's host is not reachable.",
            503,
        ))
    }

    /// The actor's host sent something while we thought it asleep: it woke elsewhere and
    /// restored this socket; learn where.
    async fn restored(&mut self) {
        if let Ok(to) = ready(self.gateway, self.actor, true).await {
            self.subject = host_subject(to.namespace, &to.host);
            self.hibernating = false;
        }
    }

    fn acked(&mut self, index: u16) {
        // Indexes wrap at 65536: an entry is acknowledged when it is at most `index`, counting
        // back less than half the range.
        while let Some((at, message)) = self.unacked.front() {
            if index.wrapping_sub(*at) < u16::MAX / 2 {
                self.unacked_bytes -= message.data.len();
                self.unacked.pop_front();
            } else {
                break;
            }
        }
        // The clock restarts for what is left: the host is answering.
        self.waiting_since = (!self.unacked.is_empty()).then(tokio::time::Instant::now);
    }

    async fn run(
        &mut self,
        socket: &mut WebSocket,
        inbox: &mut tokio::sync::mpsc::UnboundedReceiver<proto::ToRivetTunnelMessageKind>,
        index: &mut u16,
        early: Vec<Message>,
    ) -> Result<(), GatewayError> {
        for message in early {
            if let Some(done) = self
                .on_client_frame(socket, index, Some(Ok(message)))
                .await?
            {
                return Ok(done);
            }
        }
        loop {
            let ack_deadline = self.waiting_since.map(|at| at + ACK_TIMEOUT);
            tokio::select! {
                // A host that does not acknowledge a hibernatable socket's messages for 30 s has
                // lost them (it restarted without restoring the socket): the client is closed
                // so that it reconnects and re-sends, as the reference does.
                _ = async {
                    match ack_deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!(actor = %self.actor, unacked = self.unacked.len(), "closing a hibernatable socket whose messages were not acknowledged");
                    return Err(GatewayError::new(
                        "guard",
                        "websocket_garbage_collected",
                        "WebSocket messages were not acknowledged by the actor in time.",
                        502,
                    ));
                }
                answer = inbox.recv() => {
                    let Some(answer) = answer else { return Ok(()) };
                    if self.hibernating {
                        self.restored().await;
                    }
                    match answer {
                        proto::ToRivetTunnelMessageKind::WebSocketMessage(m) => {
                            let message = if m.binary {
                                Message::Binary(Bytes::from(m.data))
                            } else {
                                match String::from_utf8(m.data) {
                                    Ok(text) => Message::Text(text.into()),
                                    Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
                                }
                            };
                            if socket.send(message).await.is_err() {
                                return Ok(());
                            }
                        }
                        proto::ToRivetTunnelMessageKind::WebSocketMessageAck(ack) => self.acked(ack.index),
                        proto::ToRivetTunnelMessageKind::WebSocketClose(c) => {
                            let host_gone = c.reason.as_deref() == Some(super::HOST_GONE);
                            if self.can_hibernate && (c.hibernate || host_gone) {
                                tracing::debug!(actor = %self.actor, "client socket hibernating");
                                self.hibernating = true;
                                // Nobody can acknowledge while the actor sleeps.
                                self.waiting_since = None;
                                // Messages the stopping actor never handled would otherwise
                                // wait for the client's next frame, which may never come (it
                                // waits for their answers): wake the actor for them now.
                                if !self.unacked.is_empty() {
                                    self.wake().await?;
                                }
                                continue;
                            }
                            let _ = socket
                                .send(Message::Close(Some(CloseFrame {
                                    code: c.code.unwrap_or(1000),
                                    reason: c.reason.unwrap_or_default().into(),
                                })))
                                .await;
                            return Ok(());
                        }
                        _ => {}
                    }
                }
                frame = socket.recv() => {
                    if self.on_client_frame(socket, index, frame).await?.is_some() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Handles one client frame; `Some(())` when the socket is finished.
    async fn on_client_frame(
        &mut self,
        socket: &mut WebSocket,
        index: &mut u16,
        frame: Option<Result<Message, axum::Error>>,
    ) -> Result<Option<()>, GatewayError> {
        let message = match frame {
            Some(Ok(message)) => message,
            // The client vanished: tell the host the socket is closed.
            None | Some(Err(_)) => Message::Close(Some(CloseFrame {
                code: 1006,
                reason: "".into(),
            })),
        };
        match message {
            Message::Text(text) => {
                let message = proto::WebSocketMessage {
                    data: text.as_bytes().to_vec(),
                    binary: false,
                };
                self.send_message(index, message).await?;
            }
            Message::Binary(data) => {
                let message = proto::WebSocketMessage {
                    data: data.to_vec(),
                    binary: true,
                };
                self.send_message(index, message).await?;
            }
            Message::Close(frame) => {
                if !self.hibernating {
                    let close = proto::ToEnvoyWebSocketClose {
                        code: frame.as_ref().map(|f| f.code),
                        reason: frame.as_ref().map(|f| f.reason.to_string()),
                    };
                    self.publish(
                        index,
                        proto::ToEnvoyTunnelMessageKind::WebSocketClose(close),
                    )
                    .await?;
                }
                // Complete the client's close handshake with its own code (a socket dropped
                // without it reads as 1006 on the client); tungstenite queues the reply when it
                // reads the close, and reading on until the end flushes it.
                if socket.send(Message::Close(frame)).await.is_err() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                    .await;
                }
                return Ok(Some(()));
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
        Ok(None)
    }
}
