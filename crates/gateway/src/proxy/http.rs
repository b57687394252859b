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
        gateway
            .shell()
            .bus()
            .publish(&subject, signal)
            .await
            .map_err(|e| GatewayError::internal_error(e.to_string()))?;
        // If the client goes away, tell the host (the future is dropped with this guard).
        let mut abort_on_drop = AbortOnDrop {
            gateway: gateway.clone(),
            subject: Some(subject),
            request_id: guard.request_id,
            actor,
        };
        let answer = tokio::time::timeout(RESPONSE_TIMEOUT, async {
            loop {
                match inbox.recv().await {
                    Some(proto::ToRivetTunnelMessageKind::ResponseStart(start)) => {
                        return Answer::Response(start)
                    }
                    Some(proto::ToRivetTunnelMessageKind::ResponseAbort(abort)) => {
                        return Answer::Aborted(abort)
                    }
                    Some(_) => continue,
                    None => return Answer::Gone,
                }
            }
        })
        .await;
        abort_on_drop.subject = None;
        drop(guard);
        match answer {
            Ok(Answer::Response(start)) => return Ok(response(start)),
            Ok(Answer::Aborted(abort))
                if abort.reason.detail.as_deref() == Some(HOST_GONE)
                    && repeatable
                    && attempt < ATTEMPTS =>
            {
                tracing::debug!(%actor, attempt, "host went away before answering; retrying");
                continue;
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
