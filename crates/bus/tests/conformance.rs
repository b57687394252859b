//! One conformance suite, instantiated per driver by `conformance!`.
//!
//! Needs NATS (`RIVET_TEST_NATS_URL`, default nats://127.0.0.1:4222) and PostgreSQL
//! (`RIVET_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/test). Every
//! test uses its own random subject prefix, so tests run in parallel without interfering.
//!
//! | test | memory | nats | postgres |
//! |---|---|---|---|
//! | fan_out (N subscribers on two nodes) | yes (one bus, two handles) | yes | yes |
//! | per_publisher_ordering | yes | yes | yes |
//! | queue_group_delivers_once (members on two nodes) | yes | yes | yes |
//! | request_reply / timeout / no_responders | yes | yes | yes |
//! | large_payload (1 MiB), large_request_reply (1 MiB both ways) | yes | yes | yes |
//! | payload_sizes (0 B … 100 KB, around PostgreSQL's inline limit) | yes | yes | yes |
//! | unsubscribe_on_drop | yes | yes | yes |
//! | closed_bus | yes | yes | yes |
//! | recovery after the server connection drops | not applicable (no server) | `recovery.rs` | `recovery.rs` |

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{next_within, prefix, DriverKind, WAIT};
use futures::{FutureExt, StreamExt};
use rivet_bus::{Bus, BusError, Subscription};

/// Two buses standing for two nodes (on memory, two handles of one bus).
async fn nodes(kind: DriverKind) -> (Bus, Bus) {
    let a = kind.connect().await;
    let b = match kind {
        DriverKind::Memory => a.clone(),
        _ => kind.connect().await,
    };
    (a, b)
}

fn seq_of(msg: &rivet_bus::Message) -> u32 {
    u32::from_be_bytes(msg.payload()[..4].try_into().unwrap())
}

async fn fan_out(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.fan", prefix());
    let mut subs = Vec::new();
    for i in 0..4 {
        let node = if i % 2 == 0 { &a } else { &b };
        subs.push(node.subscribe(&subject).await.unwrap());
    }
    for i in 0..10u32 {
        a.publish(&subject, Bytes::copy_from_slice(&i.to_be_bytes()))
            .await
            .unwrap();
    }
    for sub in &mut subs {
        for i in 0..10u32 {
            let msg = next_within(sub, WAIT).await;
            assert_eq!(msg.subject(), subject);
            assert_eq!(seq_of(&msg), i);
            assert_eq!(msg.reply(), None);
        }
    }
    assert_eq!(a.stats().published, 10);
    let received = if matches!(kind, DriverKind::Memory) {
        a.stats().received
    } else {
        a.stats().received + b.stats().received
    };
    assert_eq!(received, 40);
}

async fn per_publisher_ordering(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.order", prefix());
    let mut sub = b.subscribe(&subject).await.unwrap();
    const N: u32 = 300;
    let publisher = a.clone();
    let subject2 = subject.clone();
    let task = tokio::spawn(async move {
        for i in 0..N {
            publisher
                .publish(&subject2, Bytes::copy_from_slice(&i.to_be_bytes()))
                .await
                .unwrap();
        }
    });
    for i in 0..N {
        assert_eq!(seq_of(&next_within(&mut sub, WAIT).await), i);
    }
    task.await.unwrap();
}

/// Takes every message already delivered to `sub`, without waiting.
fn drain_ready(sub: &mut Subscription, into: &mut Vec<u32>) {
    while let Some(Some(msg)) = sub.next().now_or_never() {
        into.push(seq_of(&msg));
    }
}

async fn queue_group_delivers_once(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.work", prefix());
    let mut members = vec![
        a.queue_subscribe(&subject, "workers").await.unwrap(),
        a.queue_subscribe(&subject, "workers").await.unwrap(),
        b.queue_subscribe(&subject, "workers").await.unwrap(),
        b.queue_subscribe(&subject, "workers").await.unwrap(),
    ];
    // A plain subscriber per node sees every message in order: once it has seen the fence, its
    // node has already handed every earlier message to its group members.
    let mut observers = vec![
        a.subscribe(&subject).await.unwrap(),
        b.subscribe(&subject).await.unwrap(),
    ];
    const N: u32 = 40;
    for i in 0..=N {
        a.publish(&subject, Bytes::copy_from_slice(&i.to_be_bytes()))
            .await
            .unwrap();
    }
    for obs in &mut observers {
        for i in 0..=N {
            assert_eq!(seq_of(&next_within(obs, WAIT).await), i);
        }
    }
    let mut got = Vec::new();
    for m in &mut members {
        drain_ready(m, &mut got);
    }
    got.retain(|&i| i != N); // the fence itself went to some member too
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "each message exactly once");
}

async fn request_reply(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.echo", prefix());
    let mut svc = b.queue_subscribe(&subject, "svc").await.unwrap();
    let responder = tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            assert!(req.reply().is_some());
            let mut out = b"re:".to_vec();
            out.extend_from_slice(req.payload());
            req.respond(out.into()).await.unwrap();
        }
    });
    for i in 0..5 {
        let reply = a
            .request(&subject, format!("ping{i}").into(), WAIT)
            .await
            .unwrap();
        assert_eq!(reply, Bytes::from(format!("re:ping{i}")));
    }
    assert_eq!(a.stats().requests, 5);
    responder.abort();
}

async fn request_timeout(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.silent", prefix());
    let _silent = b.subscribe(&subject).await.unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = a.request(&subject, "x".into(), timeout).await.unwrap_err();
    assert!(
        matches!(&err, BusError::Timeout { subject: s, timeout: t } if *s == subject && *t == timeout),
        "{err:?}"
    );
    assert!(started.elapsed() >= timeout);
    assert_eq!(a.stats().timeouts, 1);
}

async fn request_no_responders(kind: DriverKind) {
    let a = kind.connect().await;
    let subject = format!("{}.nobody", prefix());
    let started = Instant::now();
    let err = a
        .request(&subject, "x".into(), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BusError::NoResponders { subject: s } if *s == subject),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no-responders must fail fast"
    );
    assert_eq!(a.stats().no_responders, 1);
}

async fn respond_without_reply_subject(kind: DriverKind) {
    let a = kind.connect().await;
    let subject = format!("{}.plain", prefix());
    let mut sub = a.subscribe(&subject).await.unwrap();
    a.publish(&subject, "x".into()).await.unwrap();
    let msg = next_within(&mut sub, WAIT).await;
    assert_eq!(msg.respond("y".into()).await, Err(BusError::NoReplySubject));
}

async fn large_payload(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.big", prefix());
    let mut sub = b.subscribe(&subject).await.unwrap();
    let payload: Bytes = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    a.publish(&subject, payload.clone()).await.unwrap();
    a.publish(&subject, "small".into()).await.unwrap();
    let msg = next_within(&mut sub, WAIT).await;
    assert_eq!(msg.payload().len(), payload.len());
    assert!(msg.payload() == &payload, "1 MiB payload corrupted");
    assert_eq!(&next_within(&mut sub, WAIT).await.payload()[..], b"small");
}

/// Sizes around PostgreSQL's inline/stored switch (~5.9 KB of binary) and the empty payload.
async fn payload_sizes(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.sizes", prefix());
    let mut sub = b.subscribe(&subject).await.unwrap();
    let sizes = [0, 1, 5_900, 5_950, 5_990, 6_000, 8_000, 100_000];
    for size in sizes {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        a.publish(&subject, payload.into()).await.unwrap();
    }
    for size in sizes {
        let msg = next_within(&mut sub, WAIT).await;
        let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        assert_eq!(&msg.payload()[..], &expected[..], "size {size}");
    }
}

/// A 1 MiB request answered with a 1 MiB reply.
async fn large_request_reply(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.bigecho", prefix());
    let mut svc = b.subscribe(&subject).await.unwrap();
    let responder = tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            let reversed: Vec<u8> = req.payload().iter().rev().copied().collect();
            req.respond(reversed.into()).await.unwrap();
        }
    });
    let payload: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let reply = a
        .request(&subject, payload.clone().into(), WAIT)
        .await
        .unwrap();
    let expected: Vec<u8> = payload.into_iter().rev().collect();
    assert!(reply[..] == expected[..], "1 MiB reply corrupted");
    responder.abort();
}

async fn unsubscribe_on_drop(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let subject = format!("{}.drop", prefix());
    let keep_subject = format!("{}.keep", prefix());
    let sub = b.subscribe(&subject).await.unwrap();
    let member = b.queue_subscribe(&subject, "g").await.unwrap();
    let mut keep = b.subscribe(&keep_subject).await.unwrap();
    // While subscribed, requests find a responder (and time out: nobody answers).
    let short = Duration::from_millis(100);
    assert!(matches!(
        a.request(&subject, "x".into(), short).await,
        Err(BusError::Timeout { .. })
    ));
    drop(sub);
    drop(member);
    // Unsubscribing reaches the server asynchronously: poll until it took effect.
    let deadline = Instant::now() + WAIT;
    loop {
        match a.request(&subject, "x".into(), short).await {
            Err(BusError::NoResponders { .. }) => break,
            Err(BusError::Timeout { .. }) if Instant::now() < deadline => continue,
            other => panic!("expected no responders after drop, got {other:?}"),
        }
    }
    // Other subscriptions of the same bus are unaffected.
    a.publish(&keep_subject, "still".into()).await.unwrap();
    assert_eq!(&next_within(&mut keep, WAIT).await.payload()[..], b"still");
}

async fn closed_bus(kind: DriverKind) {
    let a = kind.connect().await;
    let subject = format!("{}.closed", prefix());
    let mut sub = a.subscribe(&subject).await.unwrap();
    a.close().await.unwrap();
    assert_eq!(a.publish(&subject, "x".into()).await, Err(BusError::Closed));
    assert!(matches!(a.subscribe(&subject).await, Err(BusError::Closed)));
    let ended = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(ended.is_none(), "subscription stream ends on close");
}

async fn invalid_subjects(kind: DriverKind) {
    let a = kind.connect().await;
    for bad in ["", "a..b", "a b", "a.*", "a.>"] {
        assert!(matches!(
            a.publish(bad, "x".into()).await,
            Err(BusError::InvalidSubject { .. })
        ));
        assert!(matches!(
            a.subscribe(bad).await,
            Err(BusError::InvalidSubject { .. })
        ));
    }
    assert!(matches!(
        a.queue_subscribe("a", "bad group").await,
        Err(BusError::InvalidGroup { .. })
    ));
}

async fn many_subjects_route_exactly(kind: DriverKind) {
    let (a, b) = nodes(kind).await;
    let p = prefix();
    let mut subs = BTreeMap::new();
    for i in 0..20 {
        let s = format!("{p}.s{i}");
        subs.insert(i, (b.subscribe(&s).await.unwrap(), s));
    }
    for (i, (_, s)) in &subs {
        a.publish(s, Bytes::copy_from_slice(&(*i as u32).to_be_bytes()))
            .await
            .unwrap();
    }
    for (i, (sub, s)) in &mut subs {
        let msg = next_within(sub, WAIT).await;
        assert_eq!(msg.subject(), s);
        assert_eq!(seq_of(&msg), *i as u32);
        assert!(sub.next().now_or_never().is_none(), "only its own subject");
    }
}

macro_rules! conformance {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fan_out() {
                super::fan_out($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn per_publisher_ordering() {
                super::per_publisher_ordering($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queue_group_delivers_once() {
                super::queue_group_delivers_once($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn request_reply() {
                super::request_reply($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn request_timeout() {
                super::request_timeout($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn request_no_responders() {
                super::request_no_responders($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn respond_without_reply_subject() {
                super::respond_without_reply_subject($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_payload() {
                super::large_payload($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn payload_sizes() {
                super::payload_sizes($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_request_reply() {
                super::large_request_reply($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unsubscribe_on_drop() {
                super::unsubscribe_on_drop($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn closed_bus() {
                super::closed_bus($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn invalid_subjects() {
                super::invalid_subjects($kind).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn many_subjects_route_exactly() {
                super::many_subjects_route_exactly($kind).await
            }
        }
    };
}

conformance!(memory, DriverKind::Memory);
conformance!(nats, DriverKind::Nats);
conformance!(postgres, DriverKind::Postgres);

/// The memory driver hands subscribers the publisher's allocation itself.
#[tokio::test]
async fn memory_is_zero_copy() {
    let bus = Bus::memory();
    let subject = format!("{}.zc", prefix());
    let mut s1 = bus.subscribe(&subject).await.unwrap();
    let mut s2 = bus.subscribe(&subject).await.unwrap();
    let payload = Bytes::from(vec![7u8; 4096]);
    bus.publish(&subject, payload.clone()).await.unwrap();
    for sub in [&mut s1, &mut s2] {
        let msg = next_within(sub, WAIT).await;
        assert_eq!(msg.payload().as_ptr(), payload.as_ptr());
    }
}

#[tokio::test]
async fn connect_errors_redact_credentials() {
    for (config, secret) in [
        (
            rivet_bus::BusConfig::Postgres {
                url: "postgres://postgres:hunter2@127.0.0.1:1/test".into(),
            },
            "hunter2",
        ),
        (
            rivet_bus::BusConfig::Nats {
                url: "nats://s3cr3t@127.0.0.1:1".into(),
            },
            "s3cr3t",
        ),
    ] {
        let err = Bus::connect(config).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
    }
}
