//! The gateway's imperative shell: it resolves the routed actor through the orchestrator, wakes
//! it and waits until it is connectable, then tunnels the HTTP request or the WebSocket to the
//! actor's host over the bus (`rivet.envoy.<ns>.<key>` down, `rivet.gateway.<id>` back).
//!
//! One [`Gateway`] per engine node has a random 4-byte gateway id; every request or WebSocket it
//! tunnels has a random 4-byte request id, and the host's answers are dispatched to the waiting
//! request by that id.

mod http;
mod resolve;
mod ws;

pub use http::{HOST_GONE, NOT_DELIVERED};
pub use ws::answer_rivet;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rivet_envoy_protocol::{self as proto, ProtocolVersion};
use rivet_orchestrator::id::Id;
use rivet_orchestrator::shell::{gateway_subject, Shell};
use tokio::sync::mpsc;

use crate::{GatewayError, RequestParts, Route};

/// Largest request body forwarded to an actor (engine-api.md §10.1).
pub const MAX_REQUEST_BODY: usize = 20 * 1024 * 1024;

/// Most name/key resolutions remembered.
const RESOLVED_CACHE: usize = 100_000;

/// The request's ray id, inserted into request extensions by the engine's ray-id middleware.
#[derive(Debug, Clone, Copy)]
pub struct Ray(pub Id);

type Inbox = mpsc::UnboundedSender<proto::ToRivetTunnelMessageKind>;

/// The gateway of one engine node. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    shell: Shell,
    gateway_id: [u8; 4],
    inboxes: Mutex<HashMap<[u8; 4], Inbox>>,
    /// Resolved (namespace, name, key) → actor, so the npm client's per-call query-form URLs
    /// cost a map lookup (PERFORMANCE-NOTES.md). Entries are only hints: the actor's record is
    /// read on every request anyway, and a destroyed one drops its entry and resolves again.
    resolved: Mutex<HashMap<(String, String, String), Id>>,
}

impl Gateway {
    /// Starts the gateway: subscribes to its answer subject.
    pub async fn start(shell: Shell) -> Result<Gateway, rivet_bus::BusError> {
        let gateway_id: [u8; 4] = rand::random();
        let mut answers = shell.bus().subscribe(&gateway_subject(&gateway_id)).await?;
        let gateway = Gateway {
            inner: Arc::new(Inner {
                shell,
                gateway_id,
                inboxes: Mutex::new(HashMap::new()),
                resolved: Mutex::new(HashMap::new()),
            }),
        };
        let dispatcher = gateway.clone();
        tokio::spawn(async move {
            while let Some(message) = answers.next().await {
                dispatcher.dispatch(message.payload());
            }
        });
        Ok(gateway)
    }

    /// The orchestrator.
    pub fn shell(&self) -> &Shell {
        &self.inner.shell
    }

    fn cached(&self, key: &(String, String, String)) -> Option<Id> {
        self.inner.resolved.lock().ok()?.get(key).copied()
    }

    fn remember(&self, key: (String, String, String), actor: Id) {
        if let Ok(mut resolved) = self.inner.resolved.lock() {
            // A bound on memory: a gateway serving more keys than this simply forgets them all.
            if resolved.len() >= RESOLVED_CACHE {
                resolved.clear();
            }
            resolved.insert(key, actor);
        }
    }

    fn forget(&self, key: &(String, String, String)) {
        if let Ok(mut resolved) = self.inner.resolved.lock() {
            resolved.remove(key);
        }
    }

    fn dispatch(&self, payload: &[u8]) {
        let message = match proto::decode::<proto::ToRivet>(ProtocolVersion::V8, payload) {
            Ok(proto::ToRivet::TunnelMessage(message)) => message,
            Ok(_) | Err(_) => {
                tracing::debug!("undecodable tunnel answer");
                return;
            }
        };
        let inbox = self
            .inner
            .inboxes
            .lock()
            .ok()
            .and_then(|inboxes| inboxes.get(&message.message_id.request_id).cloned());
        match inbox {
            Some(inbox) => {
                let _ = inbox.send(message.message_kind);
            }
            None => tracing::debug!("tunnel answer for a finished request"),
        }
    }

    /// Registers a new request id; answers arrive on the receiver until the guard drops.
    fn open_inbox(
        &self,
    ) -> (
        InboxGuard,
        mpsc::UnboundedReceiver<proto::ToRivetTunnelMessageKind>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inboxes = match self.inner.inboxes.lock() {
            Ok(inboxes) => inboxes,
            Err(poisoned) => poisoned.into_inner(),
        };
        let request_id = loop {
            let id: [u8; 4] = rand::random();
            if !inboxes.contains_key(&id) {
                break id;
            }
        };
        inboxes.insert(request_id, tx);
        (
            InboxGuard {
                gateway: self.clone(),
                request_id,
            },
            rx,
        )
    }
}

/// Unregisters a request id when the request ends.
struct InboxGuard {
    gateway: Gateway,
    request_id: [u8; 4],
}

impl Drop for InboxGuard {
    fn drop(&mut self) {
        if let Ok(mut inboxes) = self.gateway.inner.inboxes.lock() {
            inboxes.remove(&self.request_id);
        }
    }
}

/// Middleware in front of the REST API: gateway paths, the header form and WebSocket
/// subprotocol form are handled here; everything else goes on (engine-api.md §8 order).
pub async fn intercept(
    axum::extract::State(gateway): axum::extract::State<Gateway>,
    request: Request,
    next: Next,
) -> Response {
    let ray = request
        .extensions()
        .get::<Ray>()
        .map(|r| r.0)
        .unwrap_or_else(|| Id::new(gateway.shell().config().label));
    let path = request.uri().path().to_string();
    if path == "/envoys/connect" || path == "/runners/connect" {
        return next.run(request).await;
    }
    let websocket = is_websocket(request.headers());
    if path.starts_with("/gateway/") {
        if let Some(preflight) = crate::cors::preflight(request.method(), request.headers()) {
            let mut response = axum::http::StatusCode::from_u16(preflight.status)
                .unwrap_or(axum::http::StatusCode::NO_CONTENT)
                .into_response();
            response.headers_mut().extend(preflight.headers);
            return response;
        }
    }
    let subprotocols = subprotocols(request.headers());
    let routed = crate::route(&RequestParts {
        path: &path,
        query: request.uri().query(),
        headers: request.headers(),
        websocket,
        subprotocols: &subprotocols,
    });
    match routed {
        Ok(Route::NotGateway) => next.run(request).await,
        Ok(Route::Actor(target)) if websocket => ws::serve(gateway, target, request, ray).await,
        Ok(Route::Actor(target)) => http::serve(gateway, target, request, ray).await,
        Err(error) if websocket => ws::refuse(request, error, ray).await,
        Err(error) => error_response(&error, request.headers()),
    }
}

fn is_websocket(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The WebSocket subprotocols a request offers, in order (the `Sec-WebSocket-Protocol` values
/// split on commas).
pub fn subprotocols(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A client request's headers as the host receives them: lower-case names, repeated headers
/// joined with `separator`, plus the request's ray id.
pub(crate) fn forwarded_headers(
    headers: &axum::http::HeaderMap,
    separator: &str,
    ray: Id,
) -> rivet_envoy_protocol::Headers {
    let mut forwarded = rivet_envoy_protocol::Headers::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            forwarded
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push_str(separator);
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
    }
    forwarded.insert("x-rivet-ray-id".into(), ray.to_string());
    forwarded
}

/// An error as the gateway answers it over HTTP: JSON body, `x-rivet-error`, CORS.
pub(crate) fn error_response(
    error: &GatewayError,
    request_headers: &axum::http::HeaderMap,
) -> Response {
    if error.status >= 500 {
        tracing::warn!(code = %error.error_code(), cause = ?error.cause, "gateway error");
    } else {
        tracing::debug!(code = %error.error_code(), "gateway error");
    }
    let status = axum::http::StatusCode::from_u16(error.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        error.http_body(),
    )
        .into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&error.error_code()) {
        response
            .headers_mut()
            .insert(crate::error::ERROR_HEADER, value);
    }
    response
        .headers_mut()
        .extend(crate::cors::response_headers(request_headers));
    response
}
