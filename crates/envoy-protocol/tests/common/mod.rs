//! Helpers shared by the integration tests: a kind-tagged message wrapper, the JSON view
//! normalisation used to compare with the npm codec, union-arm coverage, and the Node runner.
#![allow(dead_code)]

pub mod strategies;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use rivet_envoy_protocol::{
    decode, decode_versioned, encode, encode_versioned, Command, ProtocolVersion, ToEnvoy,
    ToEnvoyConn, ToGateway, ToOutbound, ToRivet,
};
use serde_json::Value;

/// Any top-level value, tagged with the kind name the Node scripts use.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyMsg {
    ToRivet(ToRivet),
    ToEnvoy(ToEnvoy),
    ToEnvoyConn(ToEnvoyConn),
    ToGateway(ToGateway),
    ToOutbound(ToOutbound),
    ActorCommandKeyData(Command),
    /// `ToEnvoy` behind the 2-byte version prefix.
    ServerlessStart(ToEnvoy),
}

impl AnyMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ToRivet(_) => "ToRivet",
            Self::ToEnvoy(_) => "ToEnvoy",
            Self::ToEnvoyConn(_) => "ToEnvoyConn",
            Self::ToGateway(_) => "ToGateway",
            Self::ToOutbound(_) => "ToOutbound",
            Self::ActorCommandKeyData(_) => "ActorCommandKeyData",
            Self::ServerlessStart(_) => "ServerlessStart",
        }
    }

    pub fn decode(kind: &str, v: ProtocolVersion, b: &[u8]) -> rivet_envoy_protocol::Result<Self> {
        Ok(match kind {
            "ToRivet" => Self::ToRivet(decode(v, b)?),
            "ToEnvoy" => Self::ToEnvoy(decode(v, b)?),
            "ToEnvoyConn" => Self::ToEnvoyConn(decode(v, b)?),
            "ToGateway" => Self::ToGateway(decode(v, b)?),
            "ToOutbound" => Self::ToOutbound(decode(v, b)?),
            "ActorCommandKeyData" => Self::ActorCommandKeyData(decode(v, b)?),
            "ServerlessStart" => {
                let (got, m) = decode_versioned(b)?;
                assert_eq!(got, v, "serverless payload version prefix");
                Self::ServerlessStart(m)
            }
            other => panic!("unknown kind {other}"),
        })
    }

    pub fn encode(&self, v: ProtocolVersion) -> rivet_envoy_protocol::Result<Vec<u8>> {
        match self {
            Self::ToRivet(m) => encode(v, m),
            Self::ToEnvoy(m) => encode(v, m),
            Self::ToEnvoyConn(m) => encode(v, m),
            Self::ToGateway(m) => encode(v, m),
            Self::ToOutbound(m) => encode(v, m),
            Self::ActorCommandKeyData(m) => encode(v, m),
            Self::ServerlessStart(m) => encode_versioned(v, m),
        }
    }

    /// The JSON view in npm shape for `v` (see [`normalize`]).
    pub fn view(&self, v: ProtocolVersion) -> Value {
        let raw = match self {
            Self::ToRivet(m) => serde_json::to_value(m),
            Self::ToEnvoy(m) | Self::ServerlessStart(m) => serde_json::to_value(m),
            Self::ToEnvoyConn(m) => serde_json::to_value(m),
            Self::ToGateway(m) => serde_json::to_value(m),
            Self::ToOutbound(m) => serde_json::to_value(m),
            Self::ActorCommandKeyData(m) => serde_json::to_value(m),
        }
        .expect("serialize view");
        normalize(raw, v)
    }
}

/// Makes the crate's serde view comparable with the npm view of version `v`: void union arms get
/// `val: null`; for v6 the fields and payloads v6 lacks are removed.
pub fn normalize(mut value: Value, v: ProtocolVersion) -> Value {
    fn walk(x: &mut Value, v6: bool) {
        match x {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, v6)),
            Value::Object(map) => {
                if let Some(Value::String(tag)) = map.get("tag").cloned() {
                    if !map.contains_key("val") {
                        map.insert("val".into(), Value::Null);
                    }
                    if v6 {
                        match tag.as_str() {
                            "ToEnvoyRequestAbort" | "ToRivetResponseAbort" => {
                                map.insert("val".into(), Value::Null);
                            }
                            "ToEnvoyRequestStart" | "ToEnvoyWebSocketOpen" => {
                                if let Some(Value::Object(val)) = map.get_mut("val") {
                                    val.remove("actorGeneration");
                                    val.remove("responseStream");
                                }
                            }
                            _ => {}
                        }
                    }
                }
                map.values_mut().for_each(|i| walk(i, v6));
            }
            _ => {}
        }
    }
    walk(&mut value, v == ProtocolVersion::V6);
    value
}

const ENUM_VALUES: &[&str] = &[
    "SleepIntent",
    "StopIntent",
    "Destroy",
    "GoingAway",
    "Lost",
    "Ok",
    "Error",
    "Unknown",
    "Cancelled",
    "HandlerError",
    "InternalError",
];

/// Records every union arm (`parent>Tag`) and enum value (`parent>field=Value`) in a view, where
/// parent is the nearest enclosing union arm (or the message kind at the root).
pub fn collect_arms(view: &Value, root: &str, version: u16, out: &mut BTreeSet<String>) {
    fn walk(x: &Value, parent: &str, version: u16, out: &mut BTreeSet<String>) {
        match x {
            Value::Array(items) => items.iter().for_each(|i| walk(i, parent, version, out)),
            Value::Object(map) => {
                if let Some(Value::String(tag)) = map.get("tag") {
                    out.insert(format!("v{version} {parent}>{tag}"));
                    if let Some(val) = map.get("val") {
                        walk(val, tag, version, out);
                    }
                    return;
                }
                for (k, val) in map {
                    match val {
                        Value::String(s)
                            if ["reason", "code", "kind"].contains(&k.as_str())
                                && ENUM_VALUES.contains(&s.as_str()) =>
                        {
                            out.insert(format!("v{version} {parent}>{k}={s}"));
                        }
                        _ => walk(val, parent, version, out),
                    }
                }
            }
            _ => {}
        }
    }
    walk(view, root, version, out);
}

/// Every union arm and enum value the tests must cover, per version.
pub fn expected_arms(version: u16) -> BTreeSet<String> {
    let v8 = version == 8;
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut to_rivet = vec![
        "ToRivetMetadata",
        "ToRivetEvents",
        "ToRivetAckCommands",
        "ToRivetStopping",
        "ToRivetPong",
        "ToRivetKvRequest",
        "ToRivetTunnelMessage",
        "ToRivetSqliteGetPagesRequest",
        "ToRivetSqliteCommitRequest",
        "ToRivetSqliteExecRequest",
        "ToRivetSqliteExecuteRequest",
        "ToRivetSqliteExecuteBatchRequest",
    ];
    let mut to_envoy = vec![
        "ToEnvoyInit",
        "ToEnvoyCommands",
        "ToEnvoyAckEvents",
        "ToEnvoyKvResponse",
        "ToEnvoyTunnelMessage",
        "ToEnvoyPing",
        "ToEnvoySqliteGetPagesResponse",
        "ToEnvoySqliteCommitResponse",
        "ToEnvoySqliteExecResponse",
        "ToEnvoySqliteExecuteResponse",
        "ToEnvoySqliteExecuteBatchResponse",
    ];
    let mut rivet_kinds = vec![
        "ToRivetResponseStart",
        "ToRivetResponseChunk",
        "ToRivetResponseAbort",
        "ToRivetWebSocketOpen",
        "ToRivetWebSocketMessage",
        "ToRivetWebSocketMessageAck",
        "ToRivetWebSocketClose",
    ];
    let mut envoy_kinds = vec![
        "ToEnvoyRequestStart",
        "ToEnvoyRequestChunk",
        "ToEnvoyRequestAbort",
        "ToEnvoyWebSocketOpen",
        "ToEnvoyWebSocketMessage",
        "ToEnvoyWebSocketClose",
    ];
    let mut responses = vec![
        ("ToEnvoySqliteGetPagesResponse", "SqliteGetPagesOk"),
        ("ToEnvoySqliteCommitResponse", "SqliteCommitOk"),
        ("ToEnvoySqliteExecResponse", "SqliteExecOk"),
        ("ToEnvoySqliteExecuteResponse", "SqliteExecuteOk"),
        ("ToEnvoySqliteExecuteBatchResponse", "SqliteExecuteBatchOk"),
    ];
    if v8 {
        to_rivet.extend([
            "ToRivetSqliteCommitStageBeginRequest",
            "ToRivetSqliteCommitStageSegmentRequest",
            "ToRivetSqliteCommitFinalizeRequest",
        ]);
        to_envoy.extend([
            "ToEnvoySqliteCommitStageBeginResponse",
            "ToEnvoySqliteCommitStageSegmentResponse",
            "ToEnvoySqliteCommitFinalizeResponse",
        ]);
        rivet_kinds.extend(["ToRivetRequestBodyWindowUpdate", "ToRivetRequestBodyCancel"]);
        envoy_kinds.extend([
            "ToEnvoyRequestBodyCancel",
            "ToEnvoyResponseBodyWindowUpdate",
        ]);
        responses.extend([
            (
                "ToEnvoySqliteCommitStageBeginResponse",
                "SqliteCommitStageBeginOk",
            ),
            (
                "ToEnvoySqliteCommitStageSegmentResponse",
                "SqliteCommitStageSegmentOk",
            ),
            (
                "ToEnvoySqliteCommitFinalizeResponse",
                "SqliteCommitFinalizeOk",
            ),
        ]);
        groups.push((
            "ToEnvoyRequestAbort",
            vec![
                "kind=Unknown",
                "kind=Cancelled",
                "kind=HandlerError",
                "kind=InternalError",
            ],
        ));
        groups.push((
            "ToRivetResponseAbort",
            vec!["kind=Unknown", "kind=HandlerError"],
        ));
    }
    let values = vec![
        "SqliteValueNull",
        "SqliteValueInteger",
        "SqliteValueFloat",
        "SqliteValueText",
        "SqliteValueBlob",
    ];
    groups.push(("ToRivet", to_rivet));
    groups.push(("ToEnvoy", to_envoy));
    groups.push(("ToRivetTunnelMessage", rivet_kinds));
    groups.push(("ToEnvoyTunnelMessage", envoy_kinds));
    for (wrapper, ok) in responses {
        groups.push((wrapper, vec![ok, "SqliteErrorResponse"]));
    }
    groups.push(("ToRivetSqliteExecuteRequest", values.clone()));
    groups.push((
        "ToRivetSqliteExecuteBatchRequest",
        vec!["SqliteValueInteger"],
    ));
    groups.push(("SqliteExecOk", values.clone()));
    groups.push(("SqliteExecuteOk", values.clone()));
    groups.push(("SqliteExecuteBatchOk", values));
    groups.push((
        "ToRivetKvRequest",
        vec![
            "KvGetRequest",
            "KvListRequest",
            "KvPutRequest",
            "KvDeleteRequest",
            "KvDeleteRangeRequest",
            "KvDropRequest",
        ],
    ));
    groups.push((
        "KvListRequest",
        vec!["KvListAllQuery", "KvListRangeQuery", "KvListPrefixQuery"],
    ));
    groups.push((
        "ToEnvoyKvResponse",
        vec![
            "KvErrorResponse",
            "KvGetResponse",
            "KvListResponse",
            "KvPutResponse",
            "KvDeleteResponse",
            "KvDropResponse",
        ],
    ));
    groups.push((
        "ToRivetEvents",
        vec![
            "EventActorIntent",
            "EventActorStateUpdate",
            "EventActorSetAlarm",
        ],
    ));
    groups.push((
        "EventActorIntent",
        vec!["ActorIntentSleep", "ActorIntentStop"],
    ));
    groups.push((
        "EventActorStateUpdate",
        vec!["ActorStateRunning", "ActorStateStopped"],
    ));
    groups.push(("ActorStateStopped", vec!["code=Ok", "code=Error"]));
    groups.push((
        "ToEnvoyCommands",
        vec!["CommandStartActor", "CommandStopActor"],
    ));
    groups.push((
        "CommandStopActor",
        vec![
            "reason=SleepIntent",
            "reason=StopIntent",
            "reason=Destroy",
            "reason=GoingAway",
            "reason=Lost",
        ],
    ));
    groups.push((
        "ToEnvoyConn",
        vec![
            "ToEnvoyConnPing",
            "ToEnvoyConnClose",
            "ToEnvoyCommands",
            "ToEnvoyAckEvents",
            "ToEnvoyTunnelMessage",
        ],
    ));
    groups.push(("ToGateway", vec!["ToGatewayPong", "ToRivetTunnelMessage"]));
    groups.push(("ToOutbound", vec!["ToOutboundActorStart"]));
    groups.push((
        "ActorCommandKeyData",
        vec!["CommandStartActor", "CommandStopActor"],
    ));
    groups.push(("ServerlessStart", vec!["ToEnvoyCommands"]));
    groups
        .into_iter()
        .flat_map(|(parent, arms)| {
            arms.into_iter()
                .map(move |a| format!("v{version} {parent}>{a}"))
        })
        .collect()
}

/// `tests/compat` of the repository.
pub fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat")
}

/// Fails (never skips) when the pinned npm packages are not installed.
pub fn require_node_modules() {
    let nm = compat_dir().join("node_modules");
    for pkg in ["@rivetkit/engine-envoy-protocol", "envoy-protocol-v6"] {
        assert!(
            nm.join(pkg).join("package.json").exists(),
            "npm package {pkg} missing from {}: run `npm ci --ignore-scripts` in tests/compat",
            nm.display()
        );
    }
}

/// Runs `node tests/compat/envoy/<script>` with `stdin` and parses its JSON output.
pub fn run_node(script: &str, stdin: &str) -> Value {
    require_node_modules();
    let dir = compat_dir().join("envoy");
    let mut child = Process::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node (is Node.js installed?)");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    });
    let out = child.wait_with_output().expect("node output");
    writer.join().expect("stdin writer");
    assert!(
        out.status.success(),
        "node {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node printed JSON")
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
