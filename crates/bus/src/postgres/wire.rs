//! The text format of NOTIFY payloads and the mapping from subjects to channel names.
//!
//! A payload is `r1 <msg-id> <subject> <reply> <body>`, space separated (subjects never hold
//! whitespace; no reply is an empty field), where `<body>` is `i<base64>` for a payload carried inline or `t<row id>` for one
//! stored in `rivet_bus_payload` because it would not fit in NOTIFY's 8,000 bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;

use crate::subject::INBOX_PREFIX;

/// NOTIFY rejects payloads of 8,000 bytes or more.
pub(crate) const NOTIFY_LIMIT: usize = 7_999;

/// Where a notification's payload is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Inline(Bytes),
    Stored(i64),
}

/// A decoded notification.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) msg_id: String,
    pub(crate) subject: String,
    pub(crate) reply: Option<String>,
    pub(crate) body: Body,
}

/// The channel a subject is delivered on. Subjects are hashed because channel names are limited
/// to 63 bytes; receivers still compare the subject in the payload, so a hash collision costs a
/// wasted notification, never a wrong delivery. All of one bus's inboxes share one channel, so a
/// request needs no LISTEN round trip.
pub(crate) fn channel_for(subject: &str) -> String {
    format!("rivet_bus_{:016x}", fnv1a(channel_key(subject).as_bytes()))
}

/// The inbox channel of the bus whose inboxes start with `_INBOX.{instance}.`.
pub(crate) fn inbox_channel(instance: &str) -> String {
    channel_for(&format!("{INBOX_PREFIX}{instance}.0"))
}

fn channel_key(subject: &str) -> &str {
    if let Some(rest) = subject.strip_prefix(INBOX_PREFIX) {
        if let Some(dot) = rest.find('.') {
            return &subject[..INBOX_PREFIX.len() + dot];
        }
    }
    subject
}

// Stable across builds and platforms (std's hasher is not guaranteed to be), so nodes running
// different binaries agree on channel names.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The header of a payload, everything before the body kind letter.
pub(crate) fn header(msg_id: &str, subject: &str, reply: Option<&str>) -> String {
    // No reply is an empty field: a reply subject is never empty, but may be "-".
    format!("r1 {msg_id} {subject} {} ", reply.unwrap_or(""))
}

/// The complete inline payload, or `None` when it would exceed the NOTIFY limit.
pub(crate) fn encode_inline(header: &str, payload: &[u8]) -> Option<String> {
    let len = header.len() + 1 + base64::encoded_len(payload.len(), true)?;
    if len > NOTIFY_LIMIT {
        return None;
    }
    let mut out = String::with_capacity(len);
    out.push_str(header);
    out.push('i');
    STANDARD.encode_string(payload, &mut out);
    Some(out)
}

/// The prefix of a stored payload's notification; the row id is appended in SQL.
pub(crate) fn stored_prefix(header: &str) -> String {
    format!("{header}t")
}

/// Decodes a notification payload; `None` for anything not in our format (never panics).
pub(crate) fn decode(text: &str) -> Option<Notice> {
    let mut parts = text.splitn(5, ' ');
    if parts.next()? != "r1" {
        return None;
    }
    let msg_id = parts.next()?.to_owned();
    let subject = parts.next()?.to_owned();
    let reply = match parts.next()? {
        "" => None,
        r => Some(r.to_owned()),
    };
    let body = parts.next()?;
    let body = match body.as_bytes().first()? {
        b'i' => Body::Inline(Bytes::from(STANDARD.decode(&body[1..]).ok()?)),
        b't' => Body::Stored(body[1..].parse().ok()?),
        _ => return None,
    };
    if msg_id.is_empty() || subject.is_empty() {
        return None;
    }
    Some(Notice {
        msg_id,
        subject,
        reply,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_round_trip() {
        let h = header("n.1", "a.b", Some("_INBOX.x.1"));
        let text = encode_inline(&h, b"\x00\xffbin").unwrap();
        assert_eq!(
            decode(&text).unwrap(),
            Notice {
                msg_id: "n.1".into(),
                subject: "a.b".into(),
                reply: Some("_INBOX.x.1".into()),
                body: Body::Inline(Bytes::from_static(b"\x00\xffbin")),
            }
        );
    }

    #[test]
    fn stored_round_trip() {
        let text = format!("{}{}", stored_prefix(&header("n.2", "a", None)), 42);
        let n = decode(&text).unwrap();
        assert_eq!(n.body, Body::Stored(42));
        assert_eq!(n.reply, None);
    }

    #[test]
    fn too_big_for_inline() {
        let h = header("n.1", "a", None);
        assert!(encode_inline(&h, &[0u8; 5_000]).is_some());
        assert!(encode_inline(&h, &[0u8; 6_000]).is_none());
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "r1",
            "r2 a b - ix",
            "r1 a b - x",
            "r1 a b - i!!",
            "r1 a b - tz",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn inboxes_of_one_bus_share_a_channel() {
        assert_eq!(channel_for("_INBOX.abc.1"), channel_for("_INBOX.abc.2"));
        assert_eq!(channel_for("_INBOX.abc.1"), inbox_channel("abc"));
        assert_ne!(channel_for("_INBOX.abc.1"), channel_for("_INBOX.abd.1"));
        assert_ne!(channel_for("a.b"), channel_for("a.c"));
        assert!(channel_for("x").len() <= 63);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn subject() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9_-]{1,8}(\\.[a-zA-Z0-9_-]{1,8}){0,4}"
        }

        proptest! {
            #[test]
            fn inline_round_trips(
                id in "[a-f0-9]{1,16}\\.[0-9]{1,6}",
                subject in subject(),
                reply in proptest::option::of(subject()),
                payload in proptest::collection::vec(any::<u8>(), 0..6_000),
            ) {
                let h = header(&id, &subject, reply.as_deref());
                match encode_inline(&h, &payload) {
                    Some(text) => {
                        prop_assert!(text.len() <= NOTIFY_LIMIT);
                        let n = decode(&text).unwrap();
                        prop_assert_eq!(n.msg_id, id);
                        prop_assert_eq!(n.subject, subject);
                        prop_assert_eq!(n.reply, reply);
                        prop_assert_eq!(n.body, Body::Inline(Bytes::from(payload)));
                    }
                    None => prop_assert!(h.len() + 1 + payload.len().div_ceil(3) * 4 > NOTIFY_LIMIT),
                }
            }

            #[test]
            fn decode_never_panics(text in ".{0,200}") {
                let _ = decode(&text);
            }

            #[test]
            fn stored_round_trips(subject in subject(), row in any::<i64>()) {
                let text = format!("{}{row}", stored_prefix(&header("n.1", &subject, None)));
                prop_assert_eq!(decode(&text).unwrap().body, Body::Stored(row));
            }
        }
    }
}
