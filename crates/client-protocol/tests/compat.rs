//! Cross-check against the real npm package (rivetkit@2.3.19 in tests/compat/node_modules):
//!
//! 1. `tests/compat/client/vectors.mjs` encodes every message type and union arm in json, cbor
//!    and bare (plus BARE versions 1–3) with npm's codec. Each vector is decoded here, compared
//!    with npm's own decoding, and (version 4) re-encoded: the bytes must be identical.
//! 2. Every expected message is encoded here and decoded by npm (`check-decode.mjs`); npm must
//!    see the expected message.
//!
//! Without node_modules the test fails with instructions instead of skipping.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use rivet_client_protocol::*;
use serde_json::{json, Value as J};

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat")
}

fn require_node_modules() {
    let pkg = compat_dir().join("node_modules/rivetkit/package.json");
    assert!(
        pkg.exists(),
        "npm packages missing ({}): run `npm ci --ignore-scripts` in tests/compat",
        pkg.display()
    );
}

fn node(script: &str, args: &[&str]) -> String {
    let out = Command::new("node")
        .arg(compat_dir().join("client").join(script))
        .args(args)
        .output()
        .expect("failed to run `node` (is Node.js installed?)");
    assert!(
        out.status.success(),
        "node {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("node output is UTF-8")
}

/// Every message type / union arm.
const ARMS: &[(&str, &str)] = &[
    ("ToServer", "ActionRequest"),
    ("ToServer", "SubscriptionRequest"),
    ("ToClient", "Init"),
    ("ToClient", "Error"),
    ("ToClient", "ActionResponse"),
    ("ToClient", "Event"),
    ("HttpActionRequest", "HttpActionRequest"),
    ("HttpActionResponse", "HttpActionResponse"),
    ("HttpQueueSendRequest", "HttpQueueSendRequest"),
    ("HttpQueueSendResponse", "HttpQueueSendResponse"),
    ("HttpResponseError", "HttpResponseError"),
    ("HttpResolveResponse", "HttpResolveResponse"),
];

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    ToServer(ToServer),
    ToClient(ToClient),
    HttpActionRequest(HttpActionRequest),
    HttpActionResponse(HttpActionResponse),
    HttpQueueSendRequest(HttpQueueSendRequest),
    HttpQueueSendResponse(HttpQueueSendResponse),
    HttpResponseError(HttpResponseError),
    HttpResolveResponse(HttpResolveResponse),
}

fn decode(ty: &str, bytes: &[u8], enc: Encoding) -> Result<Msg, Error> {
    Ok(match ty {
        "ToServer" => Msg::ToServer(ToServer::decode(bytes, enc)?),
        "ToClient" => Msg::ToClient(ToClient::decode(bytes, enc)?),
        "HttpActionRequest" => Msg::HttpActionRequest(HttpActionRequest::decode(bytes, enc)?),
        "HttpActionResponse" => Msg::HttpActionResponse(HttpActionResponse::decode(bytes, enc)?),
        "HttpQueueSendRequest" => {
            Msg::HttpQueueSendRequest(HttpQueueSendRequest::decode(bytes, enc)?)
        }
        "HttpQueueSendResponse" => {
            Msg::HttpQueueSendResponse(HttpQueueSendResponse::decode(bytes, enc)?)
        }
        "HttpResponseError" => Msg::HttpResponseError(HttpResponseError::decode(bytes, enc)?),
        "HttpResolveResponse" => Msg::HttpResolveResponse(HttpResolveResponse::decode(bytes, enc)?),
        other => panic!("unknown type {other}"),
    })
}

fn encode(msg: &Msg, enc: Encoding) -> Vec<u8> {
    match msg {
        Msg::ToServer(m) => m.encode(enc),
        Msg::ToClient(m) => m.encode(enc),
        Msg::HttpActionRequest(m) => m.encode(enc),
        Msg::HttpActionResponse(m) => m.encode(enc),
        Msg::HttpQueueSendRequest(m) => m.encode(enc),
        Msg::HttpQueueSendResponse(m) => m.encode(enc),
        Msg::HttpResponseError(m) => m.encode(enc),
        Msg::HttpResolveResponse(m) => m.encode(enc),
    }
}

/// A value from its JSON-safe form (see npm-codec.mjs).
fn jv(j: &J) -> Value {
    let a = j.as_array().expect("jv is an array");
    let kind = a[0].as_str().expect("jv kind");
    let s = |i: usize| a[i].as_str().expect("jv string").to_owned();
    let hex = |t: String| -> Vec<u8> {
        (0..t.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
            .collect()
    };
    let list = |i: usize| {
        a[i].as_array()
            .expect("jv list")
            .iter()
            .map(jv)
            .collect::<Vec<_>>()
    };
    let entries = |i: usize, text_keys: bool| {
        a[i].as_array()
            .expect("jv entries")
            .iter()
            .map(|e| {
                let k = if text_keys {
                    Value::Text(e[0].as_str().unwrap().to_owned())
                } else {
                    jv(&e[0])
                };
                (k, jv(&e[1]))
            })
            .collect::<Vec<_>>()
    };
    match kind {
        "null" => Value::Null,
        "undefined" => Value::Undefined,
        "bool" => Value::Bool(a[1].as_bool().unwrap()),
        "int" => Value::Int(s(1).parse().unwrap()),
        "float" => {
            let b: [u8; 8] = hex(s(1)).try_into().unwrap();
            Value::number(f64::from_be_bytes(b))
        }
        "bigint" => Value::BigInt(s(1).parse().unwrap()),
        "text" => Value::Text(s(1)),
        "u8" => Value::uint8_array(hex(s(1))),
        "bytes" => Value::Bytes(hex(s(1))),
        "array" => Value::Array(list(1)),
        "set" => Value::set(list(1)),
        "object" => Value::Map(entries(1, true)),
        "map" => Value::js_map(entries(1, false)),
        "tag" => Value::Tag(a[1].as_u64().unwrap(), Box::new(jv(&a[2]))),
        other => panic!("unknown jv kind {other}"),
    }
}

/// The JSON-safe form of a value, as npm-codec.mjs writes it for the decoded JavaScript value.
fn to_jv(v: &Value) -> J {
    let hx = |b: &[u8]| J::String(hex(b));
    match v {
        Value::Null => json!(["null"]),
        Value::Undefined => json!(["undefined"]),
        Value::Bool(b) => json!(["bool", b]),
        Value::Int(i) => json!(["int", i.to_string()]),
        Value::BigInt(i) => json!(["bigint", i.to_string()]),
        Value::Float(f) => json!(["float", hex(&f.to_be_bytes())]),
        Value::Text(s) => json!(["text", s]),
        Value::Bytes(b) => json!(["bytes", hx(b)]),
        Value::Tag(TAG_UINT8_ARRAY, inner) => match &**inner {
            Value::Bytes(b) => json!(["u8", hx(b)]),
            _ => panic!("unsupported"),
        },
        Value::Tag(TAG_SET, inner) => match &**inner {
            Value::Array(items) => json!(["set", items.iter().map(to_jv).collect::<Vec<_>>()]),
            _ => panic!("unsupported"),
        },
        Value::Tag(TAG_MAP, inner) => match &**inner {
            Value::Map(e) => json!([
                "map",
                e.iter()
                    .map(|(k, v)| json!([to_jv(k), to_jv(v)]))
                    .collect::<Vec<_>>()
            ]),
            _ => panic!("unsupported"),
        },
        Value::Array(items) => json!(["array", items.iter().map(to_jv).collect::<Vec<_>>()]),
        Value::Map(e) => json!([
            "object",
            e.iter()
                .map(|(k, v)| json!([k.as_str().expect("text key"), to_jv(v)]))
                .collect::<Vec<_>>()
        ]),
        other => panic!("no jv for {other:?}"),
    }
}

fn opt<T>(j: &J, f: impl FnOnce(&J) -> T) -> Option<T> {
    if j.is_null() {
        None
    } else {
        Some(f(j))
    }
}

fn u(j: &J) -> u64 {
    j.as_str().expect("integer as string").parse().unwrap()
}

fn st(j: &J) -> String {
    j.as_str().expect("string").to_owned()
}

fn actor(j: &J) -> Option<ActorSpecifier> {
    opt(j, |a| ActorSpecifier {
        actor_id: st(&a["actorId"]),
        generation: u(&a["generation"]),
        key: opt(&a["key"], st),
    })
}

fn expected_msg(ty: &str, arm: &str, f: &J) -> Msg {
    match (ty, arm) {
        ("ToServer", "ActionRequest") => Msg::ToServer(ToServer::ActionRequest(ActionRequest {
            id: u(&f["id"]),
            name: st(&f["name"]),
            args: jv(&f["args"]),
        })),
        ("ToServer", "SubscriptionRequest") => {
            Msg::ToServer(ToServer::SubscriptionRequest(SubscriptionRequest {
                event_name: st(&f["eventName"]),
                subscribe: f["subscribe"].as_bool().unwrap(),
            }))
        }
        ("ToClient", "Init") => Msg::ToClient(ToClient::Init(Init {
            actor_id: st(&f["actorId"]),
            connection_id: st(&f["connectionId"]),
        })),
        ("ToClient", "Error") => Msg::ToClient(ToClient::Error(ErrorMessage {
            group: st(&f["group"]),
            code: st(&f["code"]),
            message: st(&f["message"]),
            metadata: opt(&f["metadata"], jv),
            action_id: opt(&f["actionId"], u),
            actor: actor(&f["actor"]),
        })),
        ("ToClient", "ActionResponse") => Msg::ToClient(ToClient::ActionResponse(ActionResponse {
            id: u(&f["id"]),
            output: jv(&f["output"]),
        })),
        ("ToClient", "Event") => Msg::ToClient(ToClient::Event(Event {
            name: st(&f["name"]),
            args: jv(&f["args"]),
        })),
        ("HttpActionRequest", _) => Msg::HttpActionRequest(HttpActionRequest {
            args: jv(&f["args"]),
        }),
        ("HttpActionResponse", _) => Msg::HttpActionResponse(HttpActionResponse {
            output: jv(&f["output"]),
        }),
        ("HttpQueueSendRequest", _) => Msg::HttpQueueSendRequest(HttpQueueSendRequest {
            body: jv(&f["body"]),
            name: opt(&f["name"], st),
            wait: opt(&f["wait"], |b| b.as_bool().unwrap()),
            timeout: opt(&f["timeout"], u),
        }),
        ("HttpQueueSendResponse", _) => Msg::HttpQueueSendResponse(HttpQueueSendResponse {
            status: st(&f["status"]),
            response: opt(&f["response"], jv),
        }),
        ("HttpResponseError", _) => Msg::HttpResponseError(HttpResponseError {
            group: st(&f["group"]),
            code: st(&f["code"]),
            message: st(&f["message"]),
            metadata: opt(&f["metadata"], jv),
            actor: actor(&f["actor"]),
        }),
        ("HttpResolveResponse", _) => Msg::HttpResolveResponse(HttpResolveResponse {
            actor_id: st(&f["actorId"]),
        }),
        other => panic!("unknown arm {other:?}"),
    }
}

/// The message with every `Uint8Array` turned into an untagged byte string.
fn js_bytes(m: &Msg) -> Msg {
    fn v(x: &Value) -> Value {
        match x {
            Value::Tag(TAG_UINT8_ARRAY, inner) if matches!(**inner, Value::Bytes(_)) => {
                (**inner).clone()
            }
            Value::Tag(t, inner) => Value::Tag(*t, Box::new(v(inner))),
            Value::Array(items) => Value::Array(items.iter().map(v).collect()),
            Value::Map(entries) => Value::Map(entries.iter().map(|(a, b)| (v(a), v(b))).collect()),
            other => other.clone(),
        }
    }
    let o = |x: &Option<Value>| x.as_ref().map(v);
    match m.clone() {
        Msg::ToServer(ToServer::ActionRequest(mut a)) => {
            a.args = v(&a.args);
            Msg::ToServer(ToServer::ActionRequest(a))
        }
        Msg::ToClient(ToClient::Error(mut e)) => {
            e.metadata = o(&e.metadata);
            Msg::ToClient(ToClient::Error(e))
        }
        Msg::ToClient(ToClient::ActionResponse(mut a)) => {
            a.output = v(&a.output);
            Msg::ToClient(ToClient::ActionResponse(a))
        }
        Msg::ToClient(ToClient::Event(mut e)) => {
            e.args = v(&e.args);
            Msg::ToClient(ToClient::Event(e))
        }
        Msg::HttpActionRequest(mut r) => {
            r.args = v(&r.args);
            Msg::HttpActionRequest(r)
        }
        Msg::HttpActionResponse(mut r) => {
            r.output = v(&r.output);
            Msg::HttpActionResponse(r)
        }
        Msg::HttpQueueSendRequest(mut r) => {
            r.body = v(&r.body);
            Msg::HttpQueueSendRequest(r)
        }
        Msg::HttpQueueSendResponse(mut r) => {
            r.response = o(&r.response);
            Msg::HttpQueueSendResponse(r)
        }
        Msg::HttpResponseError(mut r) => {
            r.metadata = o(&r.metadata);
            Msg::HttpResponseError(r)
        }
        other => other,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn npm_vectors_decode_and_reencode_byte_exact_and_npm_decodes_ours() {
    require_node_modules();
    let out: J = serde_json::from_str(&node("vectors.mjs", &[])).expect("vectors JSON");
    let vectors = out["vectors"].as_array().expect("vectors");

    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    let mut old_versions = BTreeSet::new();
    let mut reverse = Vec::new();
    let mut byte_exact = 0;

    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let ty = v["type"].as_str().unwrap();
        let arm = v["arm"].as_str().unwrap();
        let enc = Encoding::from_name(v["encoding"].as_str().unwrap()).unwrap();
        let bytes = unhex(v["hex"].as_str().unwrap());
        let expected = expected_msg(ty, arm, &v["expected"]);

        let decoded = match decode(ty, &bytes, enc) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: decode failed: {e}"));
                continue;
            }
        };
        // JavaScript cannot tell an untagged CBOR byte string from a tag-64 one once decoded
        // (cbor-x yields a Uint8Array for both), so cbor vectors compare them as equal.
        let (decoded_cmp, expected_cmp) = if enc == Encoding::Cbor {
            (js_bytes(&decoded), js_bytes(&expected))
        } else {
            (decoded.clone(), expected.clone())
        };
        if decoded_cmp != expected_cmp {
            failures.push(format!(
                "{name}: decoded\n  {decoded:?}\nexpected\n  {expected:?}"
            ));
            continue;
        }
        if v["roundtrip"].as_bool().unwrap() {
            let again = encode(&decoded, enc);
            if again != bytes {
                let at = bytes.iter().zip(&again).take_while(|(a, b)| a == b).count();
                let from = at.saturating_sub(8);
                failures.push(format!(
                    "{name}: re-encoded bytes differ at byte {at}\n  npm:  …{}\n  rust: …{}",
                    hex(&bytes[from..bytes.len().min(at + 24)]),
                    hex(&again[from..again.len().min(at + 24)])
                ));
                continue;
            }
            byte_exact += 1;
            covered.insert((ty.to_owned(), arm.to_owned(), enc.as_str()));
            reverse.push(json!({
                "name": name,
                "type": ty,
                "encoding": enc.as_str(),
                "hex": hex(&encode(&decoded, enc)),
                "expected": v["expected"],
            }));
        } else {
            old_versions.insert(format!("{ty}/{arm}@v{}", v["version"]));
        }
    }

    // Values only Rust produces in some encodings (json keeps `undefined` and sets as tagged
    // arrays, cbor escapes `$` arrays): npm must still read them back unchanged.
    for enc in Encoding::ALL {
        let mut entries = vec![
            ("u", Value::Undefined),
            ("s", Value::set(vec![Value::Int(1), Value::text("a")])),
            ("esc", Value::Array(vec![Value::text("$x"), Value::Int(1)])),
            ("bi", Value::BigInt(7)),
            ("f", Value::Float(0.1)),
            ("bytes", Value::uint8_array(vec![0, 255])),
        ];
        if enc != Encoding::Json {
            entries.push(("m", Value::js_map(vec![(Value::Int(1), Value::text("x"))])));
        }
        let output = Value::object(entries);
        let msg = ToClient::ActionResponse(ActionResponse {
            id: 9,
            output: output.clone(),
        });
        reverse.push(json!({
            "name": format!("rust-only/ToClient/ActionResponse/{}", enc.as_str()),
            "type": "ToClient",
            "encoding": enc.as_str(),
            "hex": hex(&msg.encode(enc)),
            "expected": {"id": "9", "output": to_jv(&output)},
        }));
    }

    // Reverse direction: npm decodes what Rust encoded.
    let input = std::env::temp_dir().join(format!(
        "client-protocol-reverse-{}.json",
        std::process::id()
    ));
    std::fs::write(&input, serde_json::to_vec(&reverse).unwrap()).unwrap();
    let results: J =
        serde_json::from_str(&node("check-decode.mjs", &[input.to_str().unwrap()])).unwrap();
    let _ = std::fs::remove_file(&input);
    let mut reverse_ok = 0;
    for r in results.as_array().unwrap() {
        if r["ok"].as_bool() == Some(true) {
            reverse_ok += 1;
        } else {
            failures.push(format!("npm could not read our encoding: {r}"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    let mut missing = Vec::new();
    for (ty, arm) in ARMS {
        for enc in Encoding::ALL {
            if !covered.contains(&((*ty).to_owned(), (*arm).to_owned(), enc.as_str())) {
                missing.push(format!("{ty}/{arm}/{}", enc.as_str()));
            }
        }
    }
    assert!(missing.is_empty(), "not covered: {missing:?}");
    for needed in [
        "ToClient/Init@v1",
        "ToClient/Error@v3",
        "ToServer/ActionRequest@v1",
        "HttpResponseError/HttpResponseError@v3",
        "HttpQueueSendRequest/HttpQueueSendRequest@v3",
    ] {
        assert!(
            old_versions.contains(needed),
            "old BARE version not covered: {needed}"
        );
    }

    println!(
        "client-protocol compat: {} vectors from npm, {byte_exact} re-encoded byte-exact, \
         {reverse_ok} decoded by npm from our bytes",
        vectors.len()
    );
    println!(
        "covered {} type/arm/encoding combinations: {:?}",
        covered.len(),
        covered
    );
    println!("older BARE versions decoded: {old_versions:?}");
}
