//! proptest strategies for every message type (version-independent values).

use indexmap::IndexMap;
use proptest::collection::vec;
use proptest::option::of as opt;
use proptest::prelude::*;
use rivet_envoy_protocol::*;

use super::AnyMsg;

pub fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _ü€😀-]{0,10}"
}

pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..12)
}

fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(bytes(), 0..3)
}

fn headers() -> impl Strategy<Value = Headers> {
    vec((text(), text()), 0..4).prop_map(|v| v.into_iter().collect())
}

fn float() -> impl Strategy<Value = f64> {
    any::<u64>()
        .prop_map(f64::from_bits)
        .prop_filter("NaN != NaN", |f| !f.is_nan())
}

pub fn checkpoint() -> impl Strategy<Value = ActorCheckpoint> {
    (text(), any::<u32>(), any::<i64>()).prop_map(|(actor_id, generation, index)| ActorCheckpoint {
        actor_id,
        generation,
        index,
    })
}

fn message_id() -> impl Strategy<Value = MessageId> {
    (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>()).prop_map(|(g, r, i)| MessageId {
        gateway_id: g,
        request_id: r,
        message_index: i,
    })
}

fn kv_metadata() -> impl Strategy<Value = KvMetadata> {
    (bytes(), any::<i64>()).prop_map(|(version, update_ts)| KvMetadata { version, update_ts })
}

fn actor_config() -> impl Strategy<Value = ActorConfig> {
    (text(), opt(text()), any::<i64>(), opt(bytes())).prop_map(|(name, key, create_ts, input)| {
        ActorConfig {
            name,
            key,
            create_ts,
            input,
        }
    })
}

fn command() -> impl Strategy<Value = Command> {
    let reason = prop_oneof![
        Just(StopActorReason::SleepIntent),
        Just(StopActorReason::StopIntent),
        Just(StopActorReason::Destroy),
        Just(StopActorReason::GoingAway),
        Just(StopActorReason::Lost),
    ];
    let preloaded = (
        vec(
            (bytes(), bytes(), kv_metadata()).prop_map(|(key, value, metadata)| PreloadedKvEntry {
                key,
                value,
                metadata,
            }),
            0..3,
        ),
        keys(),
        keys(),
    )
        .prop_map(
            |(entries, requested_get_keys, requested_prefixes)| PreloadedKv {
                entries,
                requested_get_keys,
                requested_prefixes,
            },
        );
    let start = (
        actor_config(),
        vec(
            (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(g, r)| HibernatingRequest {
                gateway_id: g,
                request_id: r,
            }),
            0..3,
        ),
        opt(preloaded),
    )
        .prop_map(
            |(config, hibernating_requests, preloaded_kv)| CommandStartActor {
                config,
                hibernating_requests,
                preloaded_kv,
            },
        );
    prop_oneof![
        start.prop_map(Command::StartActor),
        reason.prop_map(|reason| Command::StopActor(CommandStopActor { reason })),
    ]
}

pub fn command_wrapper() -> impl Strategy<Value = CommandWrapper> {
    (checkpoint(), command()).prop_map(|(checkpoint, inner)| CommandWrapper { checkpoint, inner })
}

fn event() -> impl Strategy<Value = Event> {
    let state = prop_oneof![
        Just(ActorState::Running),
        (
            prop_oneof![Just(StopCode::Ok), Just(StopCode::Error)],
            opt(text())
        )
            .prop_map(|(code, message)| ActorState::Stopped(ActorStateStopped { code, message })),
    ];
    prop_oneof![
        prop_oneof![Just(ActorIntent::Sleep), Just(ActorIntent::Stop)]
            .prop_map(|intent| Event::Intent(EventActorIntent { intent })),
        state.prop_map(|state| Event::StateUpdate(EventActorStateUpdate { state })),
        opt(any::<i64>()).prop_map(|alarm_ts| Event::SetAlarm(EventActorSetAlarm { alarm_ts })),
    ]
}

fn kv_request() -> impl Strategy<Value = KvRequestData> {
    let query = prop_oneof![
        Just(KvListQuery::All),
        (bytes(), bytes(), any::<bool>()).prop_map(|(start, end, exclusive)| {
            KvListQuery::Range(KvListRangeQuery {
                start,
                end,
                exclusive,
            })
        }),
        bytes().prop_map(|key| KvListQuery::Prefix(KvListPrefixQuery { key })),
    ];
    prop_oneof![
        keys().prop_map(|keys| KvRequestData::Get(KvGetRequest { keys })),
        (query, opt(any::<bool>()), opt(any::<u64>())).prop_map(|(query, reverse, limit)| {
            KvRequestData::List(KvListRequest {
                query,
                reverse,
                limit,
            })
        }),
        (keys(), keys())
            .prop_map(|(keys, values)| KvRequestData::Put(KvPutRequest { keys, values })),
        keys().prop_map(|keys| KvRequestData::Delete(KvDeleteRequest { keys })),
        (bytes(), bytes()).prop_map(|(start, end)| KvRequestData::DeleteRange(
            KvDeleteRangeRequest { start, end }
        )),
        Just(KvRequestData::Drop),
    ]
}

fn kv_entries() -> impl Strategy<Value = KvEntries> {
    (keys(), keys(), vec(kv_metadata(), 0..3)).prop_map(|(keys, values, metadata)| KvEntries {
        keys,
        values,
        metadata,
    })
}

fn kv_response() -> impl Strategy<Value = KvResponseData> {
    prop_oneof![
        text().prop_map(|message| KvResponseData::Error(KvErrorResponse { message })),
        kv_entries().prop_map(KvResponseData::Get),
        kv_entries().prop_map(KvResponseData::List),
        Just(KvResponseData::Put),
        Just(KvResponseData::Delete),
        Just(KvResponseData::Drop),
    ]
}

fn abort_reason() -> impl Strategy<Value = HttpStreamAbortReason> {
    (
        prop_oneof![
            Just(HttpStreamAbortReasonKind::Unknown),
            Just(HttpStreamAbortReasonKind::Cancelled),
            Just(HttpStreamAbortReasonKind::HandlerError),
            Just(HttpStreamAbortReasonKind::InternalError),
        ],
        opt(text()),
    )
        .prop_map(|(kind, detail)| HttpStreamAbortReason { kind, detail })
}

fn body_chunk() -> impl Strategy<Value = BodyChunk> {
    (bytes(), any::<bool>()).prop_map(|(body, finish)| BodyChunk { body, finish })
}

fn ws_message() -> impl Strategy<Value = WebSocketMessage> {
    (bytes(), any::<bool>()).prop_map(|(data, binary)| WebSocketMessage { data, binary })
}

pub fn request_start() -> impl Strategy<Value = ToEnvoyRequestStart> {
    (
        text(),
        opt(any::<u32>()),
        text(),
        text(),
        headers(),
        opt(bytes()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(actor_id, actor_generation, method, path, headers, body, stream, response_stream)| {
                ToEnvoyRequestStart {
                    actor_id,
                    actor_generation,
                    method,
                    path,
                    headers,
                    body,
                    stream,
                    response_stream,
                }
            },
        )
}

pub fn envoy_tunnel() -> impl Strategy<Value = ToEnvoyTunnelMessage> {
    use ToEnvoyTunnelMessageKind as K;
    let kind = prop_oneof![
        request_start().prop_map(K::RequestStart),
        body_chunk().prop_map(K::RequestChunk),
        (opt(text()), opt(any::<u32>()), abort_reason()).prop_map(
            |(actor_id, actor_generation, reason)| K::RequestAbort(ToEnvoyRequestAbort {
                actor_id,
                actor_generation,
                reason
            })
        ),
        Just(K::RequestBodyCancel),
        any::<u64>().prop_map(
            |consumed_bytes| K::ResponseBodyWindowUpdate(BodyWindowUpdate { consumed_bytes })
        ),
        (text(), opt(any::<u32>()), text(), headers()).prop_map(
            |(actor_id, actor_generation, path, headers)| K::WebSocketOpen(ToEnvoyWebSocketOpen {
                actor_id,
                actor_generation,
                path,
                headers
            })
        ),
        ws_message().prop_map(K::WebSocketMessage),
        (opt(any::<u16>()), opt(text()))
            .prop_map(|(code, reason)| K::WebSocketClose(ToEnvoyWebSocketClose { code, reason })),
    ];
    (message_id(), kind).prop_map(|(message_id, message_kind)| ToEnvoyTunnelMessage {
        message_id,
        message_kind,
    })
}

pub fn rivet_tunnel() -> impl Strategy<Value = ToRivetTunnelMessage> {
    use ToRivetTunnelMessageKind as K;
    let kind = prop_oneof![
        (any::<u16>(), headers(), opt(bytes()), any::<bool>()).prop_map(
            |(status, headers, body, stream)| K::ResponseStart(ToRivetResponseStart {
                status,
                headers,
                body,
                stream
            })
        ),
        body_chunk().prop_map(K::ResponseChunk),
        abort_reason().prop_map(|reason| K::ResponseAbort(ToRivetResponseAbort { reason })),
        any::<u64>().prop_map(
            |consumed_bytes| K::RequestBodyWindowUpdate(BodyWindowUpdate { consumed_bytes })
        ),
        Just(K::RequestBodyCancel),
        any::<bool>()
            .prop_map(|can_hibernate| K::WebSocketOpen(ToRivetWebSocketOpen { can_hibernate })),
        ws_message().prop_map(K::WebSocketMessage),
        any::<u16>().prop_map(|index| K::WebSocketMessageAck(ToRivetWebSocketMessageAck { index })),
        (opt(any::<u16>()), opt(text()), any::<bool>()).prop_map(|(code, reason, hibernate)| {
            K::WebSocketClose(ToRivetWebSocketClose {
                code,
                reason,
                hibernate,
            })
        }),
    ];
    (message_id(), kind).prop_map(|(message_id, message_kind)| ToRivetTunnelMessage {
        message_id,
        message_kind,
    })
}

fn dirty_pages() -> impl Strategy<Value = Vec<SqliteDirtyPage>> {
    vec(
        (any::<u32>(), bytes()).prop_map(|(pgno, bytes)| SqliteDirtyPage { pgno, bytes }),
        0..3,
    )
}

fn sqlite_value() -> impl Strategy<Value = SqliteValue> {
    prop_oneof![
        Just(SqliteValue::Null),
        any::<i64>().prop_map(SqliteValue::Integer),
        float().prop_map(SqliteValue::Float),
        text().prop_map(SqliteValue::Text),
        bytes().prop_map(SqliteValue::Blob),
    ]
}

fn params() -> impl Strategy<Value = Option<Vec<SqliteValue>>> {
    opt(vec(sqlite_value(), 0..4))
}

fn rows() -> impl Strategy<Value = Vec<Vec<SqliteValue>>> {
    vec(vec(sqlite_value(), 0..3), 0..3)
}

fn execute_result() -> impl Strategy<Value = SqliteExecuteResult> {
    (vec(text(), 0..3), rows(), any::<i64>(), opt(any::<i64>())).prop_map(
        |(columns, rows, changes, last_insert_row_id)| SqliteExecuteResult {
            columns,
            rows,
            changes,
            last_insert_row_id,
        },
    )
}

fn sql_error() -> impl Strategy<Value = SqliteErrorResponse> {
    (text(), text(), text()).prop_map(|(group, code, message)| SqliteErrorResponse {
        group,
        code,
        message,
    })
}

fn env<T: std::fmt::Debug>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = RequestEnvelope<T>> {
    (any::<u32>(), s).prop_map(|(request_id, data)| RequestEnvelope { request_id, data })
}

pub fn to_rivet() -> impl Strategy<Value = ToRivet> {
    let names = opt(vec((text(), text()), 0..3).prop_map(|v| {
        v.into_iter()
            .map(|(k, metadata)| (k, ActorName { metadata }))
            .collect::<IndexMap<_, _>>()
    }));
    let fences = (opt(any::<u64>()), opt(any::<u64>()));
    prop_oneof![
        (names, opt(text())).prop_map(|(prepopulate_actor_names, metadata)| ToRivet::Metadata(
            ToRivetMetadata {
                prepopulate_actor_names,
                metadata
            }
        )),
        vec(
            (checkpoint(), event())
                .prop_map(|(checkpoint, inner)| EventWrapper { checkpoint, inner }),
            0..3
        )
        .prop_map(ToRivet::Events),
        vec(checkpoint(), 0..3).prop_map(|last_command_checkpoints| ToRivet::AckCommands(
            ToRivetAckCommands {
                last_command_checkpoints
            }
        )),
        Just(ToRivet::Stopping),
        any::<i64>().prop_map(|ts| ToRivet::Pong(ToRivetPong { ts })),
        (text(), any::<u32>(), kv_request()).prop_map(|(actor_id, request_id, data)| {
            ToRivet::KvRequest(ToRivetKvRequest {
                actor_id,
                request_id,
                data,
            })
        }),
        rivet_tunnel().prop_map(ToRivet::TunnelMessage),
        env(
            (text(), vec(any::<u32>(), 0..4), fences.clone()).prop_map(|(actor_id, pgnos, f)| {
                SqliteGetPagesRequest {
                    actor_id,
                    pgnos,
                    expected_generation: f.0,
                    expected_head_txid: f.1,
                }
            })
        )
        .prop_map(ToRivet::SqliteGetPagesRequest),
        env((
            text(),
            dirty_pages(),
            any::<u32>(),
            any::<i64>(),
            fences.clone()
        )
            .prop_map(|(actor_id, dirty_pages, db_size_pages, now_ms, f)| {
                SqliteCommitRequest {
                    actor_id,
                    dirty_pages,
                    db_size_pages,
                    now_ms,
                    expected_generation: f.0,
                    expected_head_txid: f.1,
                }
            }))
        .prop_map(ToRivet::SqliteCommitRequest),
        env(
            (text(), fences).prop_map(|(actor_id, f)| SqliteCommitStageBeginRequest {
                actor_id,
                expected_generation: f.0,
                expected_head_txid: f.1,
            })
        )
        .prop_map(ToRivet::SqliteCommitStageBeginRequest),
        env((
            text(),
            opt(any::<u64>()),
            any::<u64>(),
            any::<u32>(),
            dirty_pages()
        )
            .prop_map(
                |(actor_id, expected_generation, txid, first_pgno, dirty_pages)| {
                    SqliteCommitStageSegmentRequest {
                        actor_id,
                        expected_generation,
                        txid,
                        first_pgno,
                        dirty_pages,
                    }
                }
            ))
        .prop_map(ToRivet::SqliteCommitStageSegmentRequest),
        env((
            text(),
            opt(any::<u64>()),
            any::<u64>(),
            any::<u32>(),
            any::<i64>(),
            vec(any::<u32>(), 0..4)
        )
            .prop_map(
                |(actor_id, expected_generation, txid, new_db_size_pages, now_ms, s)| {
                    SqliteCommitFinalizeRequest {
                        actor_id,
                        expected_generation,
                        txid,
                        new_db_size_pages,
                        now_ms,
                        segment_first_pgnos: s,
                    }
                }
            ))
        .prop_map(ToRivet::SqliteCommitFinalizeRequest),
        env((text(), text(), any::<u64>(), text()).prop_map(
            |(namespace_id, actor_id, generation, sql)| SqliteExecRequest {
                namespace_id,
                actor_id,
                generation,
                sql,
            }
        ))
        .prop_map(ToRivet::SqliteExecRequest),
        env((text(), text(), any::<u64>(), text(), params()).prop_map(
            |(namespace_id, actor_id, generation, sql, params)| SqliteExecuteRequest {
                namespace_id,
                actor_id,
                generation,
                sql,
                params,
            }
        ))
        .prop_map(ToRivet::SqliteExecuteRequest),
        env((
            text(),
            text(),
            any::<u64>(),
            vec(
                (text(), params()).prop_map(|(sql, params)| SqliteBatchStatement { sql, params }),
                0..3
            )
        )
            .prop_map(|(namespace_id, actor_id, generation, statements)| {
                SqliteExecuteBatchRequest {
                    namespace_id,
                    actor_id,
                    generation,
                    statements,
                }
            }))
        .prop_map(ToRivet::SqliteExecuteBatchRequest),
    ]
}

pub fn to_envoy() -> impl Strategy<Value = ToEnvoy> {
    let head = opt(any::<u64>()).prop_map(|head_txid| SqliteHeadTxid { head_txid });
    prop_oneof![
        (any::<i64>(), any::<i64>(), any::<u64>()).prop_map(|(a, b, c)| ToEnvoy::Init(
            ToEnvoyInit {
                metadata: ProtocolMetadata {
                    envoy_lost_threshold: a,
                    actor_stop_threshold: b,
                    max_response_payload_size: c,
                }
            }
        )),
        vec(command_wrapper(), 0..3).prop_map(ToEnvoy::Commands),
        vec(checkpoint(), 0..3).prop_map(|last_event_checkpoints| ToEnvoy::AckEvents(
            ToEnvoyAckEvents {
                last_event_checkpoints
            }
        )),
        (any::<u32>(), kv_response()).prop_map(|(request_id, data)| ToEnvoy::KvResponse(
            ToEnvoyKvResponse { request_id, data }
        )),
        envoy_tunnel().prop_map(ToEnvoy::TunnelMessage),
        any::<i64>().prop_map(|ts| ToEnvoy::Ping(ToEnvoyPing { ts })),
        env(prop_oneof![
            (
                vec(
                    (any::<u32>(), opt(bytes()))
                        .prop_map(|(pgno, bytes)| SqliteFetchedPage { pgno, bytes }),
                    0..3
                ),
                opt(any::<u64>())
            )
                .prop_map(|(pages, head_txid)| SqliteGetPagesResponse::Ok(
                    SqliteGetPagesOk { pages, head_txid }
                )),
            sql_error().prop_map(SqliteGetPagesResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteGetPagesResponse),
        env(prop_oneof![
            head.clone().prop_map(SqliteCommitResponse::Ok),
            sql_error().prop_map(SqliteCommitResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteCommitResponse),
        env(prop_oneof![
            any::<u64>().prop_map(|txid| SqliteCommitStageBeginResponse::Ok(
                SqliteCommitStageBeginOk { txid }
            )),
            sql_error().prop_map(SqliteCommitStageBeginResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteCommitStageBeginResponse),
        env(prop_oneof![
            any::<u64>().prop_map(|staged_bytes| SqliteCommitStageSegmentResponse::Ok(
                SqliteCommitStageSegmentOk { staged_bytes }
            )),
            sql_error().prop_map(SqliteCommitStageSegmentResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteCommitStageSegmentResponse),
        env(prop_oneof![
            head.prop_map(SqliteCommitFinalizeResponse::Ok),
            sql_error().prop_map(SqliteCommitFinalizeResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteCommitFinalizeResponse),
        env(prop_oneof![
            (vec(text(), 0..3), rows()).prop_map(|(columns, rows)| SqliteExecResponse::Ok(
                SqliteExecOk {
                    result: SqliteQueryResult { columns, rows }
                }
            )),
            sql_error().prop_map(SqliteExecResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteExecResponse),
        env(prop_oneof![
            execute_result()
                .prop_map(|result| SqliteExecuteResponse::Ok(SqliteExecuteOk { result })),
            sql_error().prop_map(SqliteExecuteResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteExecuteResponse),
        env(prop_oneof![
            vec(execute_result(), 0..3).prop_map(|results| SqliteExecuteBatchResponse::Ok(
                SqliteExecuteBatchOk { results }
            )),
            sql_error().prop_map(SqliteExecuteBatchResponse::Error),
        ])
        .prop_map(ToEnvoy::SqliteExecuteBatchResponse),
    ]
}

pub fn to_envoy_conn() -> impl Strategy<Value = ToEnvoyConn> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<i64>()).prop_map(|(g, r, ts)| {
            ToEnvoyConn::Ping(ToEnvoyConnPing {
                gateway_id: g,
                request_id: r,
                ts,
            })
        }),
        Just(ToEnvoyConn::Close),
        vec(command_wrapper(), 0..3).prop_map(ToEnvoyConn::Commands),
        vec(checkpoint(), 0..3).prop_map(|last_event_checkpoints| ToEnvoyConn::AckEvents(
            ToEnvoyAckEvents {
                last_event_checkpoints
            }
        )),
        envoy_tunnel().prop_map(ToEnvoyConn::TunnelMessage),
    ]
}

pub fn to_gateway() -> impl Strategy<Value = ToGateway> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<i64>())
            .prop_map(|(request_id, ts)| ToGateway::Pong(ToGatewayPong { request_id, ts })),
        rivet_tunnel().prop_map(ToGateway::TunnelMessage),
    ]
}

pub fn to_outbound() -> impl Strategy<Value = ToOutbound> {
    (text(), text(), checkpoint(), actor_config()).prop_map(
        |(namespace_id, pool_name, checkpoint, actor_config)| {
            ToOutbound::ActorStart(ToOutboundActorStart {
                namespace_id,
                pool_name,
                checkpoint,
                actor_config,
            })
        },
    )
}

/// Any top-level message of any kind.
pub fn any_msg() -> impl Strategy<Value = AnyMsg> {
    prop_oneof![
        4 => to_rivet().prop_map(AnyMsg::ToRivet),
        4 => to_envoy().prop_map(AnyMsg::ToEnvoy),
        1 => to_envoy_conn().prop_map(AnyMsg::ToEnvoyConn),
        1 => to_gateway().prop_map(AnyMsg::ToGateway),
        1 => to_outbound().prop_map(AnyMsg::ToOutbound),
        1 => command().prop_map(AnyMsg::ActorCommandKeyData),
        1 => vec(command_wrapper(), 0..2).prop_map(|c| AnyMsg::ServerlessStart(ToEnvoy::Commands(c))),
    ]
}
