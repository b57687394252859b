//! CORS for REST routes (engine-api.md §1.1): echo the origin with credentials, answer
//! preflights with `200`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

/// Middleware: adds the CORS headers when the request has an `Origin`, and turns a preflight
/// into `200` with the path's `allow:` list.
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let requested = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .cloned();
    let requested_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let inner = next.run(request).await;
    let mut response = if preflight {
        // The router answered OPTIONS with 405 and the path's `allow:` list; keep the list.
        let mut ok = StatusCode::OK.into_response();
        if let Some(allow) = inner.headers().get(header::ALLOW) {
            ok.headers_mut().insert(header::ALLOW, allow.clone());
        }
        if let Some(method) = requested {
            ok.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_METHODS, method);
        }
        if let Some(headers) = requested_headers {
            ok.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
        }
        ok
    } else {
        inner
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static(VARY));
    }
    response
}
