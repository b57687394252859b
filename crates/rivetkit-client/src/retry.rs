//! Which remote errors are worth another attempt, and how long to wait before it
//! (client-protocol.md §6.5, §9.3, §10.3). Pure functions, shared by HTTP calls and
//! realtime connections.

use std::time::Duration;

use crate::error::RemoteError;

/// Attempts of one operation on transient lifecycle and gateway failures.
pub(crate) const LIFECYCLE_ATTEMPTS: u32 = 5;
/// Wait between attempts after a stale resolution (§10.3).
pub(crate) const STALE_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Delay before lifecycle retry number `retry` (0-based): 25, 50, 100, 200, 200 … ms.
pub(crate) fn lifecycle_delay(retry: u32) -> Duration {
    exponential(retry, 25, 200)
}

/// Delay before reconnect attempt number `attempt` (0-based) of a connection that had been
/// established: 250 ms doubling up to 30 s (§6.5).
pub(crate) fn reconnect_delay(attempt: u32) -> Duration {
    exponential(attempt, 250, 30_000)
}

fn exponential(n: u32, initial_ms: u64, max_ms: u64) -> Duration {
    let factor = 1u64.checked_shl(n.min(32)).unwrap_or(u64::MAX);
    Duration::from_millis(initial_ms.saturating_mul(factor).min(max_ms))
}

/// The resolved actor id is stale: the actor was destroyed, is being replaced, or the
/// answer came from a generation that is gone. get/getOrCreate handles resolve again.
pub(crate) fn is_stale(e: &RemoteError) -> bool {
    e.group == "actor"
        && (matches!(
            e.code.as_str(),
            "not_found"
                | "starting"
                | "stopping"
                | "not_configured"
                | "dropped_reply"
                | "destroying"
        ) || e.code.starts_with("destroyed_"))
}

/// After a stale error, whether to wait [`STALE_RETRY_DELAY`] before resolving again (the
/// actor is in transition; a not-found one is simply looked up again).
pub(crate) fn stale_needs_wait(e: &RemoteError) -> bool {
    e.group == "actor"
        && (matches!(e.code.as_str(), "starting" | "stopping") || e.code.starts_with("destroyed_"))
}

/// Transient failures that the same request may survive a moment later, for any handle.
pub(crate) fn is_lifecycle_retry(e: &RemoteError) -> bool {
    match e.group.as_str() {
        "actor" => e.code == "restarting",
        "guard" => matches!(
            e.code.as_str(),
            "service_unavailable"
                | "actor_wake_retries_exceeded"
                | "actor_stopped_while_waiting"
                | "tunnel_request_aborted"
                | "tunnel_message_timeout"
                | "tunnel_response_closed"
                | "gateway_response_start_timeout"
        ),
        _ => false,
    }
}

/// The host is going away: a connection reconnects (even one that never reached `Init`).
pub(crate) fn is_reconnect_signal(e: &RemoteError) -> bool {
    e.is("actor", "stopped") || e.is("ws", "going_away") || is_lifecycle_retry(e)
}

/// The actor could not be scheduled; the actor record's `error` tells why (§9.3).
pub(crate) fn is_scheduling(e: &RemoteError) -> bool {
    e.group == "guard"
        && matches!(
            e.code.as_str(),
            "actor_ready_timeout" | "actor_runner_failed"
        )
}

/// The actor behind an id is gone for good (a getForId handle cannot find another).
pub(crate) fn is_gone(e: &RemoteError) -> bool {
    e.group == "actor" && (e.code == "not_found" || e.code.starts_with("destroyed_"))
}

/// A close reason `group.code[#rayId]` (§6.4), as the npm client parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseReason<'a> {
    pub group: &'a str,
    pub code: &'a str,
    pub ray: Option<&'a str>,
}

pub(crate) fn parse_close_reason(reason: &str) -> Option<CloseReason<'_>> {
    let (main, ray) = match reason.split_once('#') {
        Some((main, ray)) => (main, Some(ray)),
        None => (reason, None),
    };
    let (group, code) = main.split_once('.')?;
    // `a.b.c` keeps `b` as the code like the npm client's split; spaces mean prose.
    let code = code.split('.').next().unwrap_or(code);
    if group.is_empty() || code.is_empty() || main.contains(char::is_whitespace) {
        return None;
    }
    Some(CloseReason { group, code, ray })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(group: &str, code: &str) -> RemoteError {
        RemoteError {
            group: group.to_string(),
            code: code.to_string(),
            message: String::new(),
            metadata: None,
            actor: None,
            status: None,
        }
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn reconnect_backoff_doubles_from_250_ms_to_30_s() {
        let schedule: Vec<Duration> = (0..10).map(reconnect_delay).collect();
        assert_eq!(
            schedule,
            ms(&[250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
        );
        assert_eq!(reconnect_delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn lifecycle_backoff_doubles_from_25_to_200_ms() {
        let schedule: Vec<Duration> = (0..LIFECYCLE_ATTEMPTS).map(lifecycle_delay).collect();
        assert_eq!(schedule, ms(&[25, 50, 100, 200, 200]));
    }

    #[test]
    fn classifies_codes_like_the_npm_client() {
        for code in [
            "not_found",
            "starting",
            "stopping",
            "destroyed_while_waiting_for_ready",
        ] {
            assert!(is_stale(&remote("actor", code)), "{code}");
        }
        assert!(!is_stale(&remote("actor", "action_not_found")));
        assert!(!is_stale(&remote("guard", "not_found")));
        assert!(stale_needs_wait(&remote("actor", "starting")));
        assert!(!stale_needs_wait(&remote("actor", "not_found")));

        assert!(is_lifecycle_retry(&remote("actor", "restarting")));
        assert!(is_lifecycle_retry(&remote("guard", "service_unavailable")));
        assert!(!is_lifecycle_retry(&remote("guard", "actor_ready_timeout")));
        assert!(!is_lifecycle_retry(&remote("user", "restarting")));
        assert!(is_reconnect_signal(&remote("ws", "going_away")));
        assert!(is_reconnect_signal(&remote("actor", "stopped")));
        assert!(!is_reconnect_signal(&remote("user", "rejected")));

        assert!(is_scheduling(&remote("guard", "actor_runner_failed")));
        assert!(is_gone(&remote("actor", "destroyed_during_creation")));
        assert!(!is_gone(&remote("actor", "starting")));
    }

    #[test]
    fn parses_close_reasons() {
        assert_eq!(
            parse_close_reason("actor.not_found#lfpd00"),
            Some(CloseReason {
                group: "actor",
                code: "not_found",
                ray: Some("lfpd00")
            })
        );
        assert_eq!(
            parse_close_reason("user.rejected"),
            Some(CloseReason {
                group: "user",
                code: "rejected",
                ray: None
            })
        );
        assert_eq!(parse_close_reason(""), None);
        assert_eq!(parse_close_reason("bye"), None);
        assert_eq!(parse_close_reason("going away. see you"), None);
    }
}
