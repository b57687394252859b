//! The worked examples of spec/client-protocol.md §4 and §11, byte for byte, plus decoder
//! behaviour on hostile or malformed input.

use rivet_client_protocol::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn text_hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

const ACTOR: &str = "pim0yjtijc9cd952d89znjlvxobl00";
const CONN: &str = "8f72acf8-b6ff-4bc0-89a1-dada2af1caa9";

fn increment() -> ToServer {
    ToServer::ActionRequest(ActionRequest {
        id: 0,
        name: "increment".into(),
        args: Value::Array(vec![Value::Int(5)]),
    })
}

#[test]
fn json_examples() {
    let req = r#"{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[5]}}}"#;
    assert_eq!(increment().encode_json(), req);
    assert_eq!(
        ToServer::decode(req.as_bytes(), Encoding::Json).unwrap(),
        increment()
    );

    let init = ToClient::Init(Init {
        actor_id: ACTOR.into(),
        connection_id: CONN.into(),
    });
    let init_json = format!(
        r#"{{"body":{{"tag":"Init","val":{{"actorId":"{ACTOR}","connectionId":"{CONN}"}}}}}}"#
    );
    assert_eq!(init.encode_json(), init_json);

    let resp = ToClient::ActionResponse(ActionResponse {
        id: 0,
        output: Value::Int(5),
    });
    assert_eq!(
        resp.encode_json(),
        r#"{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":5}}}"#
    );
    // Servers accept a plain number id too.
    let plain = r#"{"body":{"tag":"ActionRequest","val":{"id":0,"name":"increment","args":[5]}}}"#;
    assert_eq!(
        ToServer::decode(plain.as_bytes(), Encoding::Json).unwrap(),
        increment()
    );

    let http = HttpActionRequest {
        args: Value::Array(vec![Value::Int(5)]),
    };
    assert_eq!(http.encode_json(), r#"{"args":[5]}"#);
    assert_eq!(
        HttpActionResponse {
            output: Value::Int(10)
        }
        .encode_json(),
        r#"{"output":10}"#
    );

    let err = ToClient::Error(ErrorMessage {
        group: "user".into(),
        code: "bad_thing".into(),
        message: "nope".into(),
        metadata: Some(Value::object([("a", Value::Int(1))])),
        action_id: Some(7),
        actor: Some(ActorSpecifier {
            actor_id: ACTOR.into(),
            generation: 1,
            key: Some("ex/bare".into()),
        }),
    });
    let err_json = format!(
        r#"{{"body":{{"tag":"Error","val":{{"group":"user","code":"bad_thing","message":"nope","metadata":{{"a":1}},"actionId":["$BigInt","7"],"actor":{{"actorId":"{ACTOR}","generation":1,"key":"ex/bare"}}}}}}}}"#
    );
    assert_eq!(err.encode_json(), err_json);
    assert_eq!(
        ToClient::decode(err_json.as_bytes(), Encoding::Json).unwrap(),
        err
    );

    let spec_value = Value::object([
        ("arr", Value::Array(vec![Value::text("$x"), Value::Int(1)])),
        ("b", Value::BigInt(5)),
        ("u", Value::uint8_array(vec![1, 2, 3])),
    ]);
    assert_eq!(
        HttpActionResponse {
            output: spec_value.clone()
        }
        .encode_json(),
        r#"{"output":{"arr":["$$x",1],"b":["$BigInt","5"],"u":["$Uint8Array","AQID"]}}"#
    );

    let queue = HttpQueueSendRequest {
        body: Value::Int(1),
        name: Some("q1".into()),
        wait: Some(false),
        timeout: None,
    };
    assert_eq!(
        queue.encode_json(),
        r#"{"body":1,"name":"q1","wait":false}"#
    );
    let queue_resp = HttpQueueSendResponse {
        status: QUEUE_STATUS_TIMED_OUT.into(),
        response: None,
    };
    assert_eq!(queue_resp.encode_json(), r#"{"status":"timedOut"}"#);
}

#[test]
fn cbor_examples() {
    // Client ActionRequest exactly as the npm client writes it (§11.2).
    let req = unhex(
        "b9 00 01 64 62 6f 64 79 b9 00 02 63 74 61 67 6d 41 63 74 69 6f 6e 52 65 71 75 65 73 74
         63 76 61 6c b9 00 03 62 69 64 1b 00 00 00 00 00 00 00 00 64 6e 61 6d 65
         69 69 6e 63 72 65 6d 65 6e 74 64 61 72 67 73 81 05",
    );
    assert_eq!(ToServer::decode(&req, Encoding::Cbor).unwrap(), increment());
    assert_eq!(increment().encode(Encoding::Cbor), req);

    // The reference server's compact map headers decode to the same message.
    let resp = unhex(
        "a1 64 62 6f 64 79 a2 63 74 61 67 6e 41 63 74 69 6f 6e 52 65 73 70 6f 6e 73 65
         63 76 61 6c a2 62 69 64 1b 00 00 00 00 00 00 00 00 66 6f 75 74 70 75 74 05",
    );
    let expected = ToClient::ActionResponse(ActionResponse {
        id: 0,
        output: Value::Int(5),
    });
    assert_eq!(ToClient::decode(&resp, Encoding::Cbor).unwrap(), expected);

    let http_req = unhex("b9 00 01 64 61 72 67 73 81 05");
    let decoded = HttpActionRequest::decode(&http_req, Encoding::Cbor).unwrap();
    assert_eq!(decoded.args_list(), vec![Value::Int(5)]);
    assert_eq!(decoded.encode(Encoding::Cbor), http_req);
    let http_resp = unhex("a1 66 6f 75 74 70 75 74 0a");
    assert_eq!(
        HttpActionResponse::decode(&http_resp, Encoding::Cbor)
            .unwrap()
            .output,
        Value::Int(10)
    );
}

#[test]
fn bare_examples() {
    let req = unhex(&format!("0400 00 00 09{} 02 8105", text_hex("increment")));
    assert_eq!(ToServer::decode(&req, Encoding::Bare).unwrap(), increment());
    assert_eq!(increment().encode(Encoding::Bare), req);

    let init = ToClient::Init(Init {
        actor_id: ACTOR.into(),
        connection_id: CONN.into(),
    });
    let init_bytes = unhex(&format!(
        "0400 00 1e{} 24{}",
        text_hex(ACTOR),
        text_hex(CONN)
    ));
    assert_eq!(init.encode(Encoding::Bare), init_bytes);
    assert_eq!(ToClient::decode(&init_bytes, Encoding::Bare).unwrap(), init);

    let resp = unhex("0400 02 00 01 05");
    let expected = ToClient::ActionResponse(ActionResponse {
        id: 0,
        output: Value::Int(5),
    });
    assert_eq!(ToClient::decode(&resp, Encoding::Bare).unwrap(), expected);
    assert_eq!(expected.encode(Encoding::Bare), resp);

    let http_req = unhex("0400 02 8105");
    let http = HttpActionRequest {
        args: Value::Array(vec![Value::Int(5)]),
    };
    assert_eq!(http.encode(Encoding::Bare), http_req);
    assert_eq!(
        HttpActionRequest::decode(&http_req, Encoding::Bare).unwrap(),
        http
    );
    let http_resp = unhex("0400 01 0a");
    assert_eq!(
        HttpActionResponse {
            output: Value::Int(10)
        }
        .encode(Encoding::Bare),
        http_resp
    );

    // The spec's Error frame carries metadata as the reference server's compact CBOR `a1 61 61 01`;
    // npm (and this crate) write plain objects with a 2-byte count, so only decoding is checked.
    let err = unhex(&format!(
        "0400 01 04{} 09{} 04{} 01 04 a1616101 01 07 01 1e{} 01 01 07{}",
        text_hex("user"),
        text_hex("bad_thing"),
        text_hex("nope"),
        text_hex(ACTOR),
        text_hex("ex/bare")
    ));
    let decoded = ToClient::decode(&err, Encoding::Bare).unwrap();
    let expected = ToClient::Error(ErrorMessage {
        group: "user".into(),
        code: "bad_thing".into(),
        message: "nope".into(),
        metadata: Some(Value::object([("a", Value::Int(1))])),
        action_id: Some(7),
        actor: Some(ActorSpecifier {
            actor_id: ACTOR.into(),
            generation: 1,
            key: Some("ex/bare".into()),
        }),
    });
    assert_eq!(decoded, expected);
    let ours = expected.encode(Encoding::Bare);
    assert!(ours
        .windows(8)
        .any(|w| w == [0x01, 0x06, 0xb9, 0x00, 0x01, 0x61, 0x61, 0x01]));
}

#[test]
fn bare_versions() {
    // v1 Init carried a connection token that is dropped.
    let v1 = unhex(&format!(
        "0100 00 01{} 01{} 03{}",
        text_hex("a"),
        text_hex("c"),
        text_hex("tok")
    ));
    assert_eq!(
        ToClient::decode(&v1, Encoding::Bare).unwrap(),
        ToClient::Init(Init {
            actor_id: "a".into(),
            connection_id: "c".into()
        })
    );
    // Version 0 and 5 are unknown; queue bodies exist from version 3.
    for bad in ["0000 00 00 00 00", "0500 00 00 00 00"] {
        assert!(matches!(
            ToServer::decode(&unhex(bad), Encoding::Bare),
            Err(Error::UnsupportedVersion { .. })
        ));
    }
    assert!(matches!(
        HttpQueueSendRequest::decode(&unhex("0200 01 f6 00 00 00"), Encoding::Bare),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    assert!(HttpQueueSendRequest::decode(&unhex("0300 01 f6 00 00 00"), Encoding::Bare).is_ok());
}

#[test]
fn malformed_input_is_rejected() {
    let cases: &[(&[u8], Encoding)] = &[
        (b"", Encoding::Bare),
        (b"\x04", Encoding::Bare),
        (b"\x04\x00\x07", Encoding::Bare),
        (b"\x04\x00\x01\x01", Encoding::Bare),
        (
            b"\x04\x00\x00\x00\x09increment\x02\x81\x05\x00",
            Encoding::Bare,
        ),
        (b"\x04\x00\x01\x02", Encoding::Bare),
        (b"", Encoding::Json),
        (b"{}", Encoding::Json),
        (br#"{"body":{"tag":"Nope","val":{}}}"#, Encoding::Json),
        (
            br#"{"body":{"tag":"ActionRequest","val":{"id":-1,"name":"x","args":[]}}}"#,
            Encoding::Json,
        ),
        (
            br#"{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","1"],"name":"x"}}}"#,
            Encoding::Json,
        ),
        (
            br#"{"body":{"tag":"ActionRequest","val":{"id":1,"name":"x","args":["$nope",1]}}}"#,
            Encoding::Json,
        ),
        (b"\xff", Encoding::Cbor),
        (b"\xa0", Encoding::Cbor),
    ];
    for (bytes, enc) in cases {
        assert!(
            ToServer::decode(bytes, *enc).is_err(),
            "accepted {bytes:?} as {enc:?}"
        );
    }
    // A length prefix claiming 4 GiB of data fails without allocating it.
    let huge = unhex("0400 00 00 01 78 ffffffff0f");
    assert!(ToServer::decode(&huge, Encoding::Bare).is_err());
}

#[test]
fn unknown_json_and_cbor_keys_are_ignored() {
    let json = br#"{"x":1,"body":{"tag":"SubscriptionRequest","val":{"eventName":"e","subscribe":true,"extra":[1]}}}"#;
    assert_eq!(
        ToServer::decode(json, Encoding::Json).unwrap(),
        ToServer::SubscriptionRequest(SubscriptionRequest {
            event_name: "e".into(),
            subscribe: true
        })
    );
}
