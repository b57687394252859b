//! The one error type of the bus, and URL redaction for connection errors.

use std::time::Duration;

/// Everything that can go wrong on the bus.
///
/// `NoResponders` and `Timeout` are distinct on purpose: the first means nobody subscribes to the
/// subject (fail fast, e.g. the node that hosted an actor is gone), the second means someone does
/// but did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The first connection to the server failed. `url` has its credentials redacted.
    #[error("cannot connect the {driver} bus to {url}: {message}")]
    Connect {
        /// `nats` or `postgres`.
        driver: &'static str,
        /// The server URL with any password or token replaced by `***`.
        url: String,
        /// What the client library reported.
        message: String,
    },
    /// An established connection failed while serving a call.
    #[error("{driver} bus connection error: {message}")]
    Connection {
        /// `nats` or `postgres`.
        driver: &'static str,
        /// What the client library reported.
        message: String,
    },
    /// The subject is empty, has an empty token, whitespace, a wildcard or is too long.
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject {
        /// The rejected subject.
        subject: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The queue group name is empty, has whitespace or is too long.
    #[error("invalid queue group {group:?}: {reason}")]
    InvalidGroup {
        /// The rejected group name.
        group: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A request found no subscriber on its subject.
    #[error("no responders for subject {subject}")]
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// A request had subscribers but no reply arrived in time.
    #[error("request to {subject} timed out after {timeout:?}")]
    Timeout {
        /// The request subject.
        subject: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The payload is larger than the driver accepts.
    #[error("payload of {size} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// Size of the rejected payload.
        size: usize,
        /// The driver's limit.
        max: usize,
    },
    /// `respond` was called on a message that carries no reply subject.
    #[error("the message has no reply subject")]
    NoReplySubject,
    /// The bus was closed with [`crate::Bus::close`].
    #[error("the bus is closed")]
    Closed,
}

/// Replaces the password (and, when `userinfo_is_secret`, the whole user-info part, as NATS
/// tokens are) of a URL with `***`, so errors and logs never carry credentials.
///
/// Also handles the libpq key/value form (`host=... password=...`).
pub fn redact_url(url: &str, userinfo_is_secret: bool) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_key_value(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None if userinfo_is_secret => "***".to_owned(),
        None => userinfo.to_owned(),
    };
    format!(
        "{}{}{}",
        &url[..rest_start],
        redacted,
        &url[rest_start + at..]
    )
}

fn redact_key_value(conninfo: &str) -> String {
    conninfo
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_password_keeps_user() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x?sslmode=disable", false),
            "postgres://bob:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test", false),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn redacts_nats_token_and_user_password() {
        assert_eq!(
            redact_url("nats://tok3n@127.0.0.1:4222", true),
            "nats://***@127.0.0.1:4222"
        );
        assert_eq!(redact_url("nats://a:b@h:1", true), "nats://a:***@h:1");
        assert_eq!(redact_url("nats://h:1", true), "nats://h:1");
    }

    #[test]
    fn redacts_key_value_password() {
        assert_eq!(
            redact_url("host=db user=bob password=hunter2", false),
            "host=db user=bob password=***"
        );
    }

    #[test]
    fn at_sign_in_path_is_not_userinfo() {
        assert_eq!(redact_url("nats://h:1/a@b", true), "nats://h:1/a@b");
    }
}
