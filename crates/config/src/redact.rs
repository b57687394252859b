//! The effective configuration for display, with secrets replaced.

use serde_json::Value;

use crate::Config;

const REDACTED: &str = "<redacted>";

/// Serializes the config with the admin token and URL passwords replaced by `<redacted>`.
pub(crate) fn redacted(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(token) = value.pointer_mut("/auth/admin_token") {
        if !token.is_null() {
            *token = Value::String(REDACTED.to_string());
        }
    }
    for pointer in [
        "/storage/postgres/url",
        "/pubsub/nats/url",
        "/pubsub/postgres/url",
    ] {
        if let Some(Value::String(url)) = value.pointer_mut(pointer) {
            *url = redact_url(url);
        }
    }
    value
}

/// Replaces the password of `scheme://user:password@host…` with `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{REDACTED}@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://postgres:s3cr@t@db:5432/test?sslmode=disable"),
            "postgres://postgres:<redacted>@db:5432/test?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@db/test"),
            "postgres://postgres@db/test"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
