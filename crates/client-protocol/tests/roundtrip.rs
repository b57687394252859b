//! Property tests: every message type round-trips through every encoding, the value model
//! round-trips through CBOR and the JSON-compat transform, and no decoder panics on arbitrary
//! or mutated input.

use proptest::collection::vec;
use proptest::prelude::*;
use rivet_client_protocol::*;

/// Which values an encoding carries without loss.
#[derive(Clone, Copy)]
enum Domain {
    /// Everything the value model holds (cbor, bare).
    Any,
    /// What JSON carries: no other tags, no JS Maps, no simple values, finite floats, objects
    /// with unique text keys.
    Json,
}

fn arb_float() -> impl Strategy<Value = Value> {
    any::<f64>()
        .prop_filter("finite", |f| f.is_finite())
        .prop_map(Value::number)
}

fn leaf(domain: Domain) -> BoxedStrategy<Value> {
    let common = prop_oneof![
        Just(Value::Null),
        Just(Value::Undefined),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::Int),
        (-4_294_967_296i64..4_294_967_296).prop_map(Value::Int),
        any::<i128>().prop_map(Value::BigInt),
        any::<i64>().prop_map(|i| Value::BigInt(i128::from(i))),
        arb_float(),
        ".{0,40}".prop_map(Value::Text),
        "\\$[a-zA-Z$]{0,8}".prop_map(Value::Text),
        vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        vec(any::<u8>(), 0..40).prop_map(Value::uint8_array),
    ];
    match domain {
        Domain::Json => common.boxed(),
        Domain::Any => prop_oneof![
            8 => common,
            1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY)].prop_map(Value::Float),
            1 => (0u8..20).prop_map(Value::Simple),
            1 => (32u8..=255).prop_map(Value::Simple),
            1 => vec(any::<u8>(), 0..16).prop_map(|b| Value::Tag(77, Box::new(Value::Bytes(b)))),
            1 => (0u32..u32::MAX).prop_map(|s| Value::Tag(1, Box::new(Value::Int(i64::from(s))))),
        ]
        .boxed(),
    }
}

fn arb_value(domain: Domain) -> BoxedStrategy<Value> {
    leaf(domain)
        .prop_recursive(4, 48, 6, move |inner| {
            let object = vec(("[a-z$]{0,6}", inner.clone()), 0..6).prop_map(|entries| {
                // Unique keys: JSON.parse merges repeated keys.
                let mut seen = std::collections::HashSet::new();
                Value::object(entries.into_iter().filter(|(k, _)| seen.insert(k.clone())))
            });
            let pair = ("\\$[a-zA-Z$]{0,6}", inner.clone())
                .prop_map(|(k, v)| Value::Array(vec![Value::Text(k), v]));
            let common = prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                pair,
                object,
                vec(inner.clone(), 0..4).prop_map(Value::set),
            ];
            match domain {
                Domain::Json => common.boxed(),
                Domain::Any => prop_oneof![
                    3 => common,
                    1 => vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::js_map),
                    1 => vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
                ]
                .boxed(),
            }
        })
        .boxed()
}

fn arb_actor(domain: Domain) -> impl Strategy<Value = ActorSpecifier> {
    let generation = match domain {
        // JSON numbers hold integers exactly up to 2^53.
        Domain::Json => (0..=MAX_SAFE_INTEGER as u64).boxed(),
        Domain::Any => any::<u64>().boxed(),
    };
    (".{0,32}", generation, proptest::option::of(".{0,16}")).prop_map(
        |(actor_id, generation, key)| ActorSpecifier {
            actor_id,
            generation,
            key,
        },
    )
}

fn arb_to_server(domain: Domain) -> impl Strategy<Value = ToServer> {
    prop_oneof![
        (any::<u64>(), ".{0,20}", arb_value(domain)).prop_map(|(id, name, args)| {
            ToServer::ActionRequest(ActionRequest { id, name, args })
        }),
        (".{0,20}", any::<bool>()).prop_map(|(event_name, subscribe)| {
            ToServer::SubscriptionRequest(SubscriptionRequest {
                event_name,
                subscribe,
            })
        }),
    ]
}

fn arb_to_client(domain: Domain) -> impl Strategy<Value = ToClient> {
    prop_oneof![
        (".{0,32}", ".{0,36}").prop_map(|(actor_id, connection_id)| ToClient::Init(Init {
            actor_id,
            connection_id
        })),
        (
            (".{0,10}", ".{0,10}", ".{0,30}"),
            proptest::option::of(arb_value(domain)),
            proptest::option::of(any::<u64>()),
            proptest::option::of(arb_actor(domain)),
        )
            .prop_map(|((group, code, message), metadata, action_id, actor)| {
                ToClient::Error(ErrorMessage {
                    group,
                    code,
                    message,
                    metadata,
                    action_id,
                    actor,
                })
            }),
        (any::<u64>(), arb_value(domain))
            .prop_map(|(id, output)| ToClient::ActionResponse(ActionResponse { id, output })),
        (".{0,20}", arb_value(domain))
            .prop_map(|(name, args)| ToClient::Event(Event { name, args })),
    ]
}

fn arb_queue_request(domain: Domain) -> impl Strategy<Value = HttpQueueSendRequest> {
    let timeout = match domain {
        Domain::Json => (0..=MAX_SAFE_INTEGER as u64).boxed(),
        Domain::Any => any::<u64>().boxed(),
    };
    (
        arb_value(domain),
        proptest::option::of(".{0,10}"),
        proptest::option::of(any::<bool>()),
        proptest::option::of(timeout),
    )
        .prop_map(|(body, name, wait, timeout)| HttpQueueSendRequest {
            body,
            name,
            wait,
            timeout,
        })
}

fn arb_queue_response(domain: Domain) -> impl Strategy<Value = HttpQueueSendResponse> {
    (
        prop_oneof![Just(QUEUE_STATUS_COMPLETED), Just(QUEUE_STATUS_TIMED_OUT)],
        proptest::option::of(arb_value(domain)),
    )
        .prop_map(|(status, response)| HttpQueueSendResponse {
            status: status.to_owned(),
            response,
        })
}

fn arb_response_error(domain: Domain) -> impl Strategy<Value = HttpResponseError> {
    (
        (".{0,10}", ".{0,10}", ".{0,30}"),
        proptest::option::of(arb_value(domain)),
        proptest::option::of(arb_actor(domain)),
    )
        .prop_map(
            |((group, code, message), metadata, actor)| HttpResponseError {
                group,
                code,
                message,
                metadata,
                actor,
            },
        )
}

fn check<M: Message + PartialEq + std::fmt::Debug>(
    msg: &M,
    enc: Encoding,
) -> Result<(), TestCaseError> {
    let bytes = msg.encode(enc);
    let back = M::decode(&bytes, enc);
    prop_assert_eq!(
        back.as_ref(),
        Ok(msg),
        "encoding {:?}, bytes {:02x?}",
        enc,
        bytes
    );
    // Canonical: re-encoding the decoded message gives the same bytes.
    prop_assert_eq!(back.unwrap().encode(enc), bytes);
    Ok(())
}

/// Runs a check for the binary encodings (full value domain) and for json (JSON domain).
macro_rules! roundtrip {
    ($name:ident, $strategy:ident) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn $name(any_msg in $strategy(Domain::Any), json_msg in $strategy(Domain::Json)) {
                check(&any_msg, Encoding::Cbor)?;
                check(&any_msg, Encoding::Bare)?;
                check(&json_msg, Encoding::Json)?;
                // JSON-domain messages are valid in every encoding.
                check(&json_msg, Encoding::Cbor)?;
                check(&json_msg, Encoding::Bare)?;
            }
        }
    };
}

fn arb_http_action_request(domain: Domain) -> impl Strategy<Value = HttpActionRequest> {
    arb_value(domain).prop_map(|args| HttpActionRequest { args })
}

fn arb_http_action_response(domain: Domain) -> impl Strategy<Value = HttpActionResponse> {
    arb_value(domain).prop_map(|output| HttpActionResponse { output })
}

fn arb_resolve(_domain: Domain) -> impl Strategy<Value = HttpResolveResponse> {
    ".{0,32}".prop_map(|actor_id| HttpResolveResponse { actor_id })
}

roundtrip!(to_server_round_trips, arb_to_server);
roundtrip!(to_client_round_trips, arb_to_client);
roundtrip!(http_action_request_round_trips, arb_http_action_request);
roundtrip!(http_action_response_round_trips, arb_http_action_response);
roundtrip!(http_queue_send_request_round_trips, arb_queue_request);
roundtrip!(http_queue_send_response_round_trips, arb_queue_response);
roundtrip!(http_response_error_round_trips, arb_response_error);
roundtrip!(http_resolve_response_round_trips, arb_resolve);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn cbor_value_round_trips(v in arb_value(Domain::Any)) {
        let bytes = cbor::encode(&v);
        prop_assert_eq!(cbor::decode(&bytes), Ok(v));
    }

    #[test]
    fn compat_transform_round_trips(v in arb_value(Domain::Any)) {
        prop_assert_eq!(compat::revive(compat::encode(&v)), Ok(v.clone()));
        prop_assert_eq!(compat::revive(compat::escape(&v)), Ok(v.clone()));
        prop_assert_eq!(decode_payload(&encode_payload(&v)), Ok(v));
    }

    #[test]
    fn json_value_round_trips(v in arb_value(Domain::Json)) {
        let mut text = String::new();
        json::write(&compat::encode(&v), &mut text);
        prop_assert_eq!(compat::revive(json::parse(&text).unwrap()), Ok(v));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
        for enc in Encoding::ALL {
            let _ = ToServer::decode(&bytes, enc);
            let _ = ToClient::decode(&bytes, enc);
            let _ = HttpActionRequest::decode(&bytes, enc);
            let _ = HttpActionResponse::decode(&bytes, enc);
            let _ = HttpQueueSendRequest::decode(&bytes, enc);
            let _ = HttpQueueSendResponse::decode(&bytes, enc);
            let _ = HttpResponseError::decode(&bytes, enc);
            let _ = HttpResolveResponse::decode(&bytes, enc);
        }
        let _ = cbor::decode(&bytes);
        let _ = json::parse_bytes(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_messages(
        msg in arb_to_client(Domain::Any),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for enc in Encoding::ALL {
            let mut bytes = msg.encode(enc);
            for (i, b) in &flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            let _ = ToClient::decode(&bytes, enc);
            let cut = cut.index(bytes.len() + 1);
            let _ = ToClient::decode(&bytes[..cut], enc);
        }
    }
}
