//! HTTP through the tunnel (engine-api.md §10.1): the whole request body in one request-start,
//! one buffered response-start back.
//!
//! Retries: a request is sent again only when the actor provably did not receive it — its host
//! disconnected before answering and the method is one a client may repeat (GET, HEAD,
//! OPTIONS). Anything else that the host aborted or lost is answered `502
//! guard.retry_attempts_exceeded` instead of being replayed: the actor may already have run it.
//! (The reference replays every aborted request up to 7 times.)

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use rivet_envoy_protocol as proto;
use rivet_orchestrator::id::Id;
use rivet_orchestrator::shell::{host_subject, tunnel_signal};

use super::resolve::locate;
use super::{error_response, forwarded_headers, Gateway, MAX_REQUEST_BODY};
use crate::{GatewayError, Target};

/// How long the host has to start its response.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
/// Attempts for a repeatable request whose host went away.
const ATTEMPTS: u32 = 3;
/// The abort detail the envoy socket uses when a host disconnects with requests in flight.
pub const HOST_GONE: &str = "envoy disconnected";
/// The abort detail for a request that reached a host's socket after it stopped forwarding:
/// the actor never saw it, so it may be sent again whatever its method.
pub const NOT_DELIVERED: &str = "envoy disconnected before delivery";
/// Waiting for a host to answer, how often to check that it is still connected (it may have
/// died with another engine node, or gone between the lookup and the publish).
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

pub(crate) async fn serve(gateway: Gateway, target: Target, request: Request, ray: Id) -> Response {
    let headers = request.headers().clone();
    match serve_inner(&gateway, &target, request, ray).await {
        Ok(mut response) => {
            response
                .headers_mut()
                .extend(crate::cors::response_headers(&headers));
            response
        }
        Err(error) => error_response(&error, &headers),
    }
}

async fn serve_inner(
    gateway: &Gateway,
    target: &Target,
    request: Request,
    ray: Id,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY)
        .await
        .map_err(|_| GatewayError::invalid_request_body())?;
    // Repeated headers are joined as HTTP allows.
    let headers = forwarded_headers(&parts.headers, ", ", ray);
    let repeatable = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut attempt = 0;
    let mut undelivered = 0;
    loop {
        attempt += 1;
        let (actor, to) = locate(gateway, target).await?;
        tracing::trace!(%actor, host = %to.host, generation = to.generation, attempt, "tunnelling request");
        let start = proto::ToEnvoyRequestStart {
            actor_id: actor.to_string(),
            actor_generation: None,
            method: parts.method.as_str().to_string(),
            path: target.forward_path.clone(),
            headers: headers.clone(),
            body: (!body.is_empty()).then(|| body.to_vec()),
            stream: false,
            response_stream: false,
        };
        let (guard, mut inbox) = gateway.open_inbox();
        let message = proto::ToEnvoyTunnelMessage {
            message_id: proto::MessageId {
                gateway_id: gateway.inner.gateway_id,
                request_id: guard.request_id,
                message_index: 0,
            },
            message_kind: proto::ToEnvoyTunnelMessageKind::RequestStart(start),
        };
        let signal =
            tunnel_signal(message).map_err(|e| GatewayError::internal_error(e.to_string()))?;
        let subject = host_subject(to.namespace, &to.host);
        let delivered = gateway
            .shell()
            .bus()
            .publish_counted(&subject, signal)
            .await
            .map_err(|e| GatewayError::internal_error(e.to_string()))?;
        if delivered == Some(0) {
            // Nobody serves the host's subject: its socket just ended and the disconnect is
            // not recorded yet. The request went nowhere, so it can be sent again once the
            // actor's placement has caught up.
            undelivered += 1;
            if undelivered > UNDELIVERED_ATTEMPTS {
                return Err(GatewayError::retry_attempts_exceeded(
                    attempt,
                    "guard.service_unavailable",
                    "503",
                    "actor",
                ));
            }
            attempt -= 1;
            tokio::time::sleep(UNDELIVERED_PAUSE).await;
            continue;
        }
        // If the client goes away, tell the host (the future is dropped with this guard).
        let mut abort_on_drop = AbortOnDrop {
            gateway: gateway.clone(),
            subject: Some(subject),
            request_id: guard.request_id,
            actor,
        };
        let answer = tokio::time::timeout(RESPONSE_TIMEOUT, async {
            let mut check = tokio::time::interval_at(
                tokio::time::Instant::now() + LIVENESS_CHECK,
                LIVENESS_CHECK,
            );
            let mut seen_connection = None;
            loop {
                tokio::select! {
                    answer = inbox.recv() => match answer {
                        Some(proto::ToRivetTunnelMessageKind::ResponseStart(start)) => {
                            return Answer::Response(start)
                        }
                        Some(proto::ToRivetTunnelMessageKind::ResponseAbort(abort)) => {
                            return Answer::Aborted(abort)
                        }
                        Some(_) => continue,
                        None => return Answer::Gone,
                    },
                    _ = check.tick() => {
                        if host_left(gateway, &to, &mut seen_connection).await {
                            // An abort from its socket may still be on its way.
                            let late = tokio::time::timeout(UNDELIVERED_PAUSE * 5, inbox.recv()).await;
                            return match late {
                                Ok(Some(proto::ToRivetTunnelMessageKind::ResponseStart(start))) => Answer::Response(start),
                                Ok(Some(proto::ToRivetTunnelMessageKind::ResponseAbort(abort))) => Answer::Aborted(abort),
                                _ => Answer::HostLeft,
                            };
                        }
                    }
                }
            }
        })
        .await;
        abort_on_drop.subject = None;
        drop(guard);
        match answer {
            Ok(Answer::Response(start)) => return Ok(response(start)),
            Ok(Answer::Aborted(abort))
                if abort.reason.detail.as_deref() == Some(NOT_DELIVERED)
                    && undelivered < UNDELIVERED_ATTEMPTS =>
            {
                tracing::debug!(%actor, "the host's socket ended before the request reached it; sending it again");
                undelivered += 1;
                attempt -= 1;
                continue;
            }
            Ok(Answer::Aborted(abort))
                if abort.reason.detail.as_deref() == Some(HOST_GONE)
                    && repeatable
                    && attempt < ATTEMPTS =>
            {
                tracing::debug!(%actor, attempt, "host went away before answering; retrying");
                continue;
            }
            Ok(Answer::HostLeft) if repeatable && attempt < ATTEMPTS => {
                tracing::debug!(%actor, attempt, "host left without answering; retrying");
                continue;
            }
            Ok(Answer::HostLeft) => {
                tracing::debug!(%actor, "host left without answering");
                return Err(GatewayError::retry_attempts_exceeded(
                    attempt,
                    "guard.tunnel_response_closed",
                    "502",
                    "actor",
                ));
            }
            Ok(Answer::Aborted(abort)) => {
                tracing::debug!(%actor, ?abort, "host aborted the request");
                return Err(GatewayError::retry_attempts_exceeded(
                    attempt,
                    "guard.tunnel_request_aborted",
                    "502",
                    "actor",
                ));
            }
            Ok(Answer::Gone) => return Err(GatewayError::internal_error("gateway inbox closed")),
            Err(_) => {
                return Err(GatewayError::retry_attempts_exceeded(
                    attempt,
                    "guard.request_timeout",
                    "504",
                    "actor",
                ))
            }
        }
    }
}

enum Answer {
    Response(proto::ToRivetResponseStart),
    Aborted(proto::ToRivetResponseAbort),
    Gone,
    /// The host disconnected (or reconnected as a new socket) and nothing came back.
    HostLeft,
}

/// Times a request whose host's socket was gone is sent again.
const UNDELIVERED_ATTEMPTS: u32 = 20;
/// Pause before sending an undelivered request again (the disconnect being recorded).
const UNDELIVERED_PAUSE: Duration = Duration::from_millis(50);

/// Whether the host a request went to is no longer the socket it was: disconnected, or
/// holding its key with another socket than at the first check.
async fn host_left(
    gateway: &Gateway,
    to: &super::resolve::Ready,
    seen: &mut Option<String>,
) -> bool {
    let (ns, key) = (to.namespace, to.host.clone());
    let record = gateway
        .shell()
        .db()
        .txn(|tx| {
            let key = key.clone();
            async move { rivet_orchestrator::envoy::load(&tx, ns, &key).await }
        })
        .await;
    match record {
        Ok(Some(record)) => match (record.connection, seen.as_ref()) {
            (None, _) => true,
            (Some(now), Some(before)) => now != *before,
            (Some(now), None) => {
                *seen = Some(now);
                false
            }
        },
        Ok(None) => true,
        // Unknown: keep waiting.
        Err(_) => false,
    }
}

fn response(start: proto::ToRivetResponseStart) -> Response {
    let status = StatusCode::from_u16(start.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::from(start.body.unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in start.headers {
        // The length is recomputed from the body; hop-by-hop framing is ours.
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// Sends the host a request abort if the request is dropped before its answer.
struct AbortOnDrop {
    gateway: Gateway,
    subject: Option<String>,
    request_id: [u8; 4],
    actor: Id,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(subject) = self.subject.take() else {
            return;
        };
        let message = proto::ToEnvoyTunnelMessage {
            message_id: proto::MessageId {
                gateway_id: self.gateway.inner.gateway_id,
                request_id: self.request_id,
                message_index: 1,
            },
            message_kind: proto::ToEnvoyTunnelMessageKind::RequestAbort(
                proto::ToEnvoyRequestAbort {
                    actor_id: Some(self.actor.to_string()),
                    actor_generation: None,
                    reason: proto::HttpStreamAbortReason {
                        kind: proto::HttpStreamAbortReasonKind::Cancelled,
                        detail: Some("client disconnected".into()),
                    },
                },
            ),
        };
        let gateway = self.gateway.clone();
        if let Ok(signal) = tunnel_signal(message) {
            tokio::spawn(async move {
                let _ = gateway.shell().bus().publish(&subject, signal).await;
            });
        }
    }
}
