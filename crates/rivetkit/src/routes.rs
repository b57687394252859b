//! Client protocol v4 on the actor side: routes, encodings and error answers (the parts that
//! do not touch actor state).

use rivet_client_protocol::{ActorSpecifier, Encoding, HttpResponseError, Message, Value};
use rivet_envoy_protocol::{Headers, ToRivetResponseStart};

use crate::error::PublicError;

/// What a tunnelled HTTP request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /action/{name}` (name percent-decoded).
    Action(String),
    /// `/request…`: the path the user handler sees.
    Request(String),
    Metadata,
    Health,
    Root,
    Metrics,
    /// A method other than POST on `/action/…`.
    MethodNotAllowed,
    NotFound(String),
}

/// Routes a request path (with query) as npm rivetkit 2.3.19 does.
pub(crate) fn route(method: &str, path_and_query: &str) -> Route {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    if let Some(name) = path.strip_prefix("/action/") {
        if method != "POST" {
            return Route::MethodNotAllowed;
        }
        return Route::Action(percent_decode(name));
    }
    if path == "/request" || path.starts_with("/request/") {
        let rest = &path["/request".len()..];
        let mut user = if rest.is_empty() {
            "/".to_string()
        } else {
            rest.to_string()
        };
        if let Some(q) = query {
            user.push('?');
            user.push_str(q);
        }
        return Route::Request(user);
    }
    match (method, path) {
        ("GET", "/metadata") => Route::Metadata,
        ("GET", "/health") => Route::Health,
        ("GET", "/") => Route::Root,
        ("GET", "/metrics") => Route::Metrics,
        _ => Route::NotFound(path.to_string()),
    }
}

/// `%XX` decoding (invalid escapes kept as they are); `+` is not a space in paths.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request's encoding (`x-rivet-encoding`; json when missing or unknown).
pub(crate) fn http_encoding(headers: &Headers) -> Encoding {
    headers
        .get("x-rivet-encoding")
        .and_then(|v| Encoding::from_name(v))
        .unwrap_or(Encoding::Json)
}

/// What the client asked for in `Sec-WebSocket-Protocol`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SocketProtocols {
    /// `None` = absent (json); `Some(Err(name))` = unknown encoding.
    pub encoding: Option<Result<Encoding, String>>,
    /// Percent-decoded JSON text of the connection parameters.
    pub params: Option<String>,
}

pub(crate) fn socket_protocols(headers: &Headers) -> SocketProtocols {
    let mut out = SocketProtocols::default();
    let Some(list) = headers.get("sec-websocket-protocol") else {
        return out;
    };
    for p in list.split(',').map(str::trim) {
        if let Some(enc) = p.strip_prefix("rivet_encoding.") {
            out.encoding = Some(Encoding::from_name(enc).ok_or_else(|| enc.to_string()));
        } else if let Some(params) = p.strip_prefix("rivet_conn_params.") {
            out.params = Some(percent_decode(params));
        }
    }
    out
}

/// HTTP status of an actor-produced error (client protocol §8).
pub(crate) fn status_of(err: &PublicError) -> u16 {
    match (err.group.as_str(), err.code.as_str()) {
        ("actor", "not_found") | ("actor", "action_not_found") => 404,
        ("actor", "method_not_allowed") => 405,
        ("actor", "action_timed_out") => 408,
        ("actor", "invalid_request") => 400,
        ("auth", "forbidden") => 403,
        ("message", _) | ("queue", _) => 400,
        _ => 500,
    }
}

/// An error answer in the request's encoding.
pub(crate) fn error_response(
    err: &PublicError,
    status: u16,
    encoding: Encoding,
    actor: &ActorSpecifier,
) -> ToRivetResponseStart {
    let body = HttpResponseError {
        group: err.group.clone(),
        code: err.code.clone(),
        message: err.message.clone(),
        metadata: err.metadata.clone(),
        actor: Some(actor.clone()),
    }
    .encode(encoding);
    let mut headers = Headers::new();
    headers.insert("content-type".into(), encoding.content_type().into());
    ToRivetResponseStart {
        status,
        headers,
        body: Some(body),
        stream: false,
    }
}

/// A plain response.
pub(crate) fn plain(status: u16, content_type: &str, body: &[u8]) -> ToRivetResponseStart {
    let mut headers = Headers::new();
    headers.insert("content-type".into(), content_type.into());
    ToRivetResponseStart {
        status,
        headers,
        body: Some(body.to_vec()),
        stream: false,
    }
}

/// `actor.not_found` for an unknown route.
pub(crate) fn route_not_found(path: &str) -> PublicError {
    PublicError {
        group: "actor".into(),
        code: "not_found".into(),
        message: format!("Actor route '{path}' was not found."),
        metadata: Some(Value::object([
            ("id", Value::text(path)),
            ("resource", Value::text("route")),
        ])),
    }
}

/// A public error from parts.
pub(crate) fn public(group: &str, code: &str, message: impl Into<String>) -> PublicError {
    PublicError {
        group: group.into(),
        code: code.into(),
        message: message.into(),
        metadata: None,
    }
}

/// The masked error of a request that could not be decoded (§8: 400 `core.internal_error`).
pub(crate) fn decode_failure() -> PublicError {
    public("core", "internal_error", "An internal error occurred")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_npm() {
        assert_eq!(
            route("POST", "/action/increment"),
            Route::Action("increment".into())
        );
        assert_eq!(route("POST", "/action/a%20b"), Route::Action("a b".into()));
        assert_eq!(route("GET", "/action/x"), Route::MethodNotAllowed);
        assert_eq!(route("GET", "/request"), Route::Request("/".into()));
        assert_eq!(
            route("PUT", "/request/hello?x=1"),
            Route::Request("/hello?x=1".into())
        );
        assert_eq!(route("GET", "/health"), Route::Health);
        assert_eq!(route("GET", "/nope"), Route::NotFound("/nope".into()));
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn subprotocols_parse() {
        let mut h = Headers::new();
        h.insert(
            "sec-websocket-protocol".into(),
            "rivet, rivet_encoding.cbor, rivet_conn_params.%7B%22n%22%3A1%7D".into(),
        );
        let p = socket_protocols(&h);
        assert_eq!(p.encoding, Some(Ok(Encoding::Cbor)));
        assert_eq!(p.params.as_deref(), Some(r#"{"n":1}"#));
    }
}
