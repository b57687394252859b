//! CORS for gateway routes (engine-api.md §1.1).
//!
//! Every proxied response gets `access-control-allow-origin` (the request's `Origin`, or `*`),
//! `access-control-allow-credentials: true`, `access-control-expose-headers: *` and, when an
//! `Origin` was sent, `vary: Origin`. A preflight to a gateway path is answered by the gateway
//! with `204` and never reaches the actor.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// Methods a gateway preflight allows.
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS, PATCH";

/// Seconds a browser may cache a gateway preflight.
pub const MAX_AGE_SECONDS: &str = "86400";

/// The gateway's own answer to a CORS preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// Always `204`.
    pub status: u16,
    /// Response headers, in the order they should be written.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight on a gateway path, or `None` when the request is not a preflight
/// (it is then routed like any other request).
pub fn preflight(method: &Method, headers: &HeaderMap) -> Option<Preflight> {
    if !is_preflight(method, headers) {
        return None;
    }
    let mut out = response_headers(headers);
    out.push((
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    ));
    if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        out.push((ACCESS_CONTROL_ALLOW_HEADERS, requested.clone()));
    }
    out.push((
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE_SECONDS),
    ));
    Some(Preflight {
        status: 204,
        headers: out,
    })
}

/// The CORS headers added to every gateway response (proxied or error) for a request with
/// `request_headers`.
pub fn response_headers(request_headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let origin = request_headers.get(ORIGIN);
    let mut out = vec![
        (
            ACCESS_CONTROL_ALLOW_ORIGIN,
            origin
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("*")),
        ),
        (
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ),
        (ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("*")),
    ];
    if origin.is_some() {
        out.push((VARY, HeaderValue::from_static("Origin")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn as_strings(headers: &[(HeaderName, HeaderValue)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn origin_is_echoed_with_vary() {
        let out = response_headers(&headers(&[("origin", "http://app.test")]));
        assert_eq!(
            as_strings(&out),
            vec![
                (
                    "access-control-allow-origin".into(),
                    "http://app.test".into()
                ),
                ("access-control-allow-credentials".into(), "true".into()),
                ("access-control-expose-headers".into(), "*".into()),
                ("vary".into(), "Origin".into()),
            ]
        );
    }

    #[test]
    fn no_origin_allows_any_without_vary() {
        let out = response_headers(&HeaderMap::new());
        assert_eq!(
            as_strings(&out),
            vec![
                ("access-control-allow-origin".into(), "*".into()),
                ("access-control-allow-credentials".into(), "true".into()),
                ("access-control-expose-headers".into(), "*".into()),
            ]
        );
    }

    #[test]
    fn preflight_is_answered_with_204() {
        let request = headers(&[
            ("origin", "http://app.test"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-rivet-encoding",
            ),
        ]);
        let answer = preflight(&Method::OPTIONS, &request).unwrap();
        assert_eq!(answer.status, 204);
        assert_eq!(
            as_strings(&answer.headers),
            vec![
                (
                    "access-control-allow-origin".into(),
                    "http://app.test".into()
                ),
                ("access-control-allow-credentials".into(), "true".into()),
                ("access-control-expose-headers".into(), "*".into()),
                ("vary".into(), "Origin".into()),
                (
                    "access-control-allow-methods".into(),
                    "GET, POST, PUT, DELETE, OPTIONS, PATCH".into()
                ),
                (
                    "access-control-allow-headers".into(),
                    "content-type,x-rivet-encoding".into()
                ),
                ("access-control-max-age".into(), "86400".into()),
            ]
        );
    }

    #[test]
    fn options_without_request_method_is_not_a_preflight() {
        assert_eq!(preflight(&Method::OPTIONS, &HeaderMap::new()), None);
        let request = headers(&[("access-control-request-method", "GET")]);
        assert_eq!(preflight(&Method::GET, &request), None);
    }
}
