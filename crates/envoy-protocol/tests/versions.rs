//! Version handling and the v6 ↔ v8 conversions of envoy-protocol.md §6.3.

use rivet_envoy_protocol::*;

const V8: ProtocolVersion = ProtocolVersion::V8;
const V6: ProtocolVersion = ProtocolVersion::V6;

fn msg_id() -> MessageId {
    MessageId {
        gateway_id: [1, 2, 3, 4],
        request_id: [5, 6, 7, 8],
        message_index: 9,
    }
}

#[test]
fn unknown_versions_are_refused() {
    for v in [0u16, 1, 2, 5, 7, 9, u16::MAX] {
        assert_eq!(
            ProtocolVersion::try_from(v),
            Err(Error::UnsupportedVersion(v))
        );
    }
    assert_eq!(ProtocolVersion::try_from(6), Ok(V6));
    assert_eq!(ProtocolVersion::try_from(8), Ok(V8));
    assert_eq!(ProtocolVersion::LATEST.number(), 8);
    // A serverless payload with an unsupported version prefix is refused.
    assert_eq!(
        decode_serverless_start(&[7, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Error::UnsupportedVersion(7))
    );
    assert!(matches!(
        decode_serverless_start(&[8]),
        Err(Error::UnexpectedEof { .. })
    ));
}

#[test]
fn staged_commit_is_not_representable_in_v6() {
    let msg = ToRivet::SqliteCommitStageBeginRequest(RequestEnvelope {
        request_id: 1,
        data: SqliteCommitStageBeginRequest {
            actor_id: "a".into(),
            expected_generation: Some(1),
            expected_head_txid: None,
        },
    });
    assert!(encode(V8, &msg).is_ok());
    let err = encode(V6, &msg).unwrap_err();
    assert_eq!(
        err,
        Error::NotRepresentable {
            what: "ToRivetSqliteCommitStageBeginRequest",
            version: 6
        }
    );
    assert_eq!(
        err.to_string(),
        "ToRivetSqliteCommitStageBeginRequest is not representable in envoy protocol version 6"
    );
    let resp = ToEnvoy::SqliteCommitFinalizeResponse(RequestEnvelope {
        request_id: 1,
        data: SqliteCommitFinalizeResponse::Ok(SqliteHeadTxid { head_txid: Some(2) }),
    });
    assert!(matches!(
        encode(V6, &resp),
        Err(Error::NotRepresentable { version: 6, .. })
    ));
    // encode_into leaves the buffer untouched on error.
    let mut out = vec![0xaa];
    assert!(resp.encode_into(V6, &mut out).is_err());
    assert_eq!(out, vec![0xaa]);
}

#[test]
fn streaming_tunnel_messages_are_not_representable_in_v6() {
    let kinds = [
        ToEnvoyTunnelMessageKind::RequestBodyCancel,
        ToEnvoyTunnelMessageKind::ResponseBodyWindowUpdate(BodyWindowUpdate { consumed_bytes: 1 }),
    ];
    for message_kind in kinds {
        let msg = ToEnvoy::TunnelMessage(ToEnvoyTunnelMessage {
            message_id: msg_id(),
            message_kind,
        });
        assert!(matches!(
            encode(V6, &msg),
            Err(Error::NotRepresentable { version: 6, .. })
        ));
    }
    let kinds = [
        ToRivetTunnelMessageKind::RequestBodyCancel,
        ToRivetTunnelMessageKind::RequestBodyWindowUpdate(BodyWindowUpdate { consumed_bytes: 1 }),
    ];
    for message_kind in kinds {
        let msg = ToRivet::TunnelMessage(ToRivetTunnelMessage {
            message_id: msg_id(),
            message_kind,
        });
        assert!(matches!(
            encode(V6, &msg),
            Err(Error::NotRepresentable { version: 6, .. })
        ));
    }
}

#[test]
fn sql_arms_move_three_tags_down_in_v6() {
    let msg = ToRivet::SqliteExecRequest(RequestEnvelope {
        request_id: 0,
        data: SqliteExecRequest {
            namespace_id: String::new(),
            actor_id: String::new(),
            generation: 0,
            sql: String::new(),
        },
    });
    assert_eq!(encode(V8, &msg).unwrap()[0], 12);
    assert_eq!(encode(V6, &msg).unwrap()[0], 9);
    let resp = ToEnvoy::SqliteExecResponse(RequestEnvelope {
        request_id: 0,
        data: SqliteExecResponse::Error(SqliteErrorResponse {
            group: String::new(),
            code: String::new(),
            message: String::new(),
        }),
    });
    assert_eq!(encode(V8, &resp).unwrap()[0], 11);
    assert_eq!(encode(V6, &resp).unwrap()[0], 8);
    // Tags past the end of each version's union are invalid.
    assert!(matches!(
        decode::<ToRivet>(V6, &[12]),
        Err(Error::InvalidTag { tag: 12, .. })
    ));
    assert!(matches!(
        decode::<ToRivet>(V8, &[15]),
        Err(Error::InvalidTag { tag: 15, .. })
    ));
    assert!(matches!(
        decode::<ToEnvoy>(V6, &[11]),
        Err(Error::InvalidTag { tag: 11, .. })
    ));
    assert!(matches!(
        decode::<ToEnvoy>(V8, &[14]),
        Err(Error::InvalidTag { tag: 14, .. })
    ));
}

#[test]
fn v6_request_start_drops_and_defaults_v8_fields() {
    let start = ToEnvoyRequestStart {
        actor_id: "actor".into(),
        actor_generation: Some(3),
        method: "GET".into(),
        path: "/".into(),
        headers: [("host".to_string(), "x".to_string())]
            .into_iter()
            .collect(),
        body: None,
        stream: false,
        response_stream: true,
    };
    let msg = ToEnvoy::TunnelMessage(ToEnvoyTunnelMessage {
        message_id: msg_id(),
        message_kind: ToEnvoyTunnelMessageKind::RequestStart(start.clone()),
    });
    let v6 = encode(V6, &msg).unwrap();
    let v8 = encode(V8, &msg).unwrap();
    // optional<u32> present (5 bytes) + responseStream (1 byte).
    assert_eq!(v8.len(), v6.len() + 6);
    let ToEnvoy::TunnelMessage(back) = decode::<ToEnvoy>(V6, &v6).unwrap() else {
        panic!("wrong arm")
    };
    assert_eq!(
        back.message_kind,
        ToEnvoyTunnelMessageKind::RequestStart(ToEnvoyRequestStart {
            actor_generation: None,
            response_stream: false,
            ..start
        })
    );
}

#[test]
fn v6_aborts_are_void_and_decode_to_unknown_reason() {
    let abort = ToEnvoy::TunnelMessage(ToEnvoyTunnelMessage {
        message_id: msg_id(),
        message_kind: ToEnvoyTunnelMessageKind::RequestAbort(ToEnvoyRequestAbort {
            actor_id: Some("a".into()),
            actor_generation: Some(1),
            reason: HttpStreamAbortReason {
                kind: HttpStreamAbortReasonKind::Cancelled,
                detail: Some("x".into()),
            },
        }),
    });
    let bytes = encode(V6, &abort).unwrap();
    assert_eq!(bytes, [4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 2]);
    let ToEnvoy::TunnelMessage(back) = decode::<ToEnvoy>(V6, &bytes).unwrap() else {
        panic!("wrong arm")
    };
    assert_eq!(
        back.message_kind,
        ToEnvoyTunnelMessageKind::RequestAbort(ToEnvoyRequestAbort::default())
    );
    assert_eq!(
        ToEnvoyRequestAbort::default().reason.kind,
        HttpStreamAbortReasonKind::Unknown
    );

    let resp = ToRivet::TunnelMessage(ToRivetTunnelMessage {
        message_id: msg_id(),
        message_kind: ToRivetTunnelMessageKind::ResponseAbort(ToRivetResponseAbort {
            reason: HttpStreamAbortReason {
                kind: HttpStreamAbortReasonKind::HandlerError,
                detail: None,
            },
        }),
    });
    let bytes = encode(V6, &resp).unwrap();
    assert_eq!(bytes, [6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 2]);
    assert_eq!(
        decode::<ToRivet>(V6, &bytes).unwrap(),
        ToRivet::TunnelMessage(ToRivetTunnelMessage {
            message_id: msg_id(),
            message_kind: ToRivetTunnelMessageKind::ResponseAbort(ToRivetResponseAbort::default()),
        })
    );
}

#[test]
fn float_bits_survive_including_nan_payloads() {
    let nan = f64::from_bits(0x7ff8_0000_dead_beef);
    let msg = ToEnvoy::SqliteExecResponse(RequestEnvelope {
        request_id: 1,
        data: SqliteExecResponse::Ok(SqliteExecOk {
            result: SqliteQueryResult {
                columns: vec![],
                rows: vec![vec![SqliteValue::Float(nan), SqliteValue::Float(-0.0)]],
            },
        }),
    });
    let bytes = encode(V8, &msg).unwrap();
    let back = decode::<ToEnvoy>(V8, &bytes).unwrap();
    assert_eq!(encode(V8, &back).unwrap(), bytes);
    let ToEnvoy::SqliteExecResponse(RequestEnvelope {
        data: SqliteExecResponse::Ok(ok),
        ..
    }) = back
    else {
        panic!("wrong arm")
    };
    let SqliteValue::Float(f) = ok.result.rows[0][0] else {
        panic!("not a float")
    };
    assert_eq!(f.to_bits(), 0x7ff8_0000_dead_beef);
}

#[test]
fn decode_errors_are_precise() {
    // Trailing byte after a Stopping message.
    assert_eq!(
        decode::<ToRivet>(V8, &[3, 0]),
        Err(Error::TrailingBytes {
            offset: 1,
            remaining: 1
        })
    );
    // Empty input.
    assert_eq!(
        decode::<ToRivet>(V8, &[]),
        Err(Error::UnexpectedEof {
            offset: 0,
            needed: 1
        })
    );
    // A list count far beyond the input fails before allocating.
    assert!(matches!(
        decode::<ToRivet>(V8, &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(Error::LengthTooLarge { .. })
    ));
    // Invalid bool in an optional marker (ToRivetMetadata.prepopulateActorNames).
    assert!(matches!(
        decode::<ToRivet>(V8, &[0, 2]),
        Err(Error::InvalidBool {
            value: 2,
            offset: 1
        })
    ));
}
