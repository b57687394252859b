// Emits test vectors for every message type and union arm of envoy protocol versions 8 and 6,
// encoded by the npm codecs: [{name, kind, version, hex, value}] on stdout, where value is the
// JSON-safe view of the npm decoding of hex. Used by crates/envoy-protocol/tests/compat.rs.
import { decode, encode, toHex, view } from "./common.mjs";
import { isDeepStrictEqual } from "node:util";

const ID = "1oufyekvve2a16lluh10fi8i12cl00";
const NS = "9pq3xm0i8n7bpfh5pp1drl0ly8qo00";
const buf = (hex) => new Uint8Array(Buffer.from(hex, "hex")).buffer;
const utf8 = (s) => new TextEncoder().encode(s).buffer;
const page = (seed) => new Uint8Array(4096).map((_, i) => (i * 31 + seed) & 0xff).buffer;
const cp = (generation, index) => ({ actorId: ID, generation, index: BigInt(index) });
const GW = buf("9ea9012e");
const RQ = buf("defc9901");
const msgId = (messageIndex) => ({ gatewayId: GW, requestId: RQ, messageIndex });
const headers = () => new Map([["host", "localhost"], ["x-rivet-ray-id", "ray"], ["content-type", "text/plain; charset=ü"]]);
const meta = (ts) => ({ version: utf8("2.3.19"), updateTs: BigInt(ts) });
const sqlErr = { group: "depot", code: "head_fence_mismatch", message: "sqlite head fence mismatch" };
const sqlValues = (v) => [
  { tag: "SqliteValueNull", val: null },
  { tag: "SqliteValueInteger", val: { value: -9007199254740993n } },
  { tag: "SqliteValueFloat", val: { value: new Float64Array([v]).buffer } },
  { tag: "SqliteValueText", val: { value: "héllo" } },
  { tag: "SqliteValueBlob", val: { value: buf("00ff10") } },
];
const execResult = () => ({
  columns: ["id", "name", "score", "note", "raw"],
  rows: [sqlValues(1.5), sqlValues(-0.25)],
  changes: 2n,
  lastInsertRowId: 42n,
});

function toRivet(version) {
  const v8 = version === 8;
  const t = (tag, val) => ({ tag, val });
  const tunnel = (kind, val) => t("ToRivetTunnelMessage", { messageId: msgId(7), messageKind: { tag: kind, val } });
  const kv = (data) => t("ToRivetKvRequest", { actorId: ID, requestId: 0xfffffffe, data });
  const out = [
    ["metadata", t("ToRivetMetadata", {
      prepopulateActorNames: new Map([["counter", { metadata: '{"icon":"x","name":"Counter"}' }], ["chat", { metadata: "{}" }]]),
      metadata: '{"rivetkit":{"version":"2.3.19"}}',
    })],
    ["metadata-empty", t("ToRivetMetadata", { prepopulateActorNames: null, metadata: null })],
    ["events", t("ToRivetEvents", [
      { checkpoint: cp(1, 0), inner: t("EventActorStateUpdate", { state: t("ActorStateRunning", null) }) },
      { checkpoint: cp(1, 1), inner: t("EventActorStateUpdate", { state: t("ActorStateStopped", { code: "Ok", message: null }) }) },
      { checkpoint: cp(1, 2), inner: t("EventActorStateUpdate", { state: t("ActorStateStopped", { code: "Error", message: "boom" }) }) },
      { checkpoint: cp(2, 3), inner: t("EventActorIntent", { intent: t("ActorIntentSleep", null) }) },
      { checkpoint: cp(2, 4), inner: t("EventActorIntent", { intent: t("ActorIntentStop", null) }) },
      { checkpoint: cp(2, 5), inner: t("EventActorSetAlarm", { alarmTs: 1795334396868n }) },
      { checkpoint: cp(4294967295, -1), inner: t("EventActorSetAlarm", { alarmTs: null }) },
    ])],
    ["events-empty", t("ToRivetEvents", [])],
    ["ack-commands", t("ToRivetAckCommands", { lastCommandCheckpoints: [cp(1, 1), cp(3, 9007199254740993)] })],
    ["stopping", t("ToRivetStopping", null)],
    ["pong", t("ToRivetPong", { ts: 1795334396868n })],
    ["kv-get", kv(t("KvGetRequest", { keys: [buf("01"), buf(""), utf8("state")] }))],
    ["kv-list-all", kv(t("KvListRequest", { query: t("KvListAllQuery", null), reverse: true, limit: 18446744073709551615n }))],
    ["kv-list-range", kv(t("KvListRequest", { query: t("KvListRangeQuery", { start: buf("00"), end: buf("ff"), exclusive: true }), reverse: false, limit: null }))],
    ["kv-list-prefix", kv(t("KvListRequest", { query: t("KvListPrefixQuery", { key: buf("0102") }), reverse: null, limit: 1n }))],
    ["kv-put", kv(t("KvPutRequest", { keys: [buf("01"), buf("02")], values: [utf8("one"), buf("")] }))],
    ["kv-delete", kv(t("KvDeleteRequest", { keys: [buf("01")] }))],
    ["kv-delete-range", kv(t("KvDeleteRangeRequest", { start: buf("00"), end: buf("10") }))],
    ["kv-drop", kv(t("KvDropRequest", null))],
    ["tunnel-response-start", tunnel("ToRivetResponseStart", { status: 200, headers: headers(), body: utf8("hello"), stream: false })],
    ["tunnel-response-start-nobody", tunnel("ToRivetResponseStart", { status: 204, headers: new Map(), body: null, stream: true })],
    ["tunnel-response-chunk", tunnel("ToRivetResponseChunk", { body: buf("abcdef"), finish: true })],
    ["tunnel-response-abort", tunnel("ToRivetResponseAbort", v8 ? { reason: { kind: "HandlerError", detail: "handler threw" } } : null)],
    ["tunnel-ws-open", tunnel("ToRivetWebSocketOpen", { canHibernate: true })],
    ["tunnel-ws-message", tunnel("ToRivetWebSocketMessage", { data: utf8("hi"), binary: false })],
    ["tunnel-ws-ack", tunnel("ToRivetWebSocketMessageAck", { index: 65535 })],
    ["tunnel-ws-close", tunnel("ToRivetWebSocketClose", { code: 1000, reason: "bye", hibernate: false })],
    ["tunnel-ws-close-hibernate", tunnel("ToRivetWebSocketClose", { code: null, reason: null, hibernate: true })],
    ["sqlite-get-pages", t("ToRivetSqliteGetPagesRequest", { requestId: 1, data: { actorId: ID, pgnos: [1, 2, 128], expectedGeneration: 3n, expectedHeadTxid: null } })],
    ["sqlite-commit", t("ToRivetSqliteCommitRequest", { requestId: 2, data: { actorId: ID, dirtyPages: [{ pgno: 1, bytes: page(1) }, { pgno: 2, bytes: page(2) }], dbSizePages: 2, nowMs: 1795334396868n, expectedGeneration: 1n, expectedHeadTxid: 0n } })],
    ["sqlite-exec", t("ToRivetSqliteExecRequest", { requestId: 6, data: { namespaceId: NS, actorId: ID, generation: 1n, sql: "CREATE TABLE t(x); SELECT 1" } })],
    ["sqlite-execute", t("ToRivetSqliteExecuteRequest", { requestId: 7, data: { namespaceId: NS, actorId: ID, generation: 2n, sql: "INSERT INTO t VALUES (?,?,?,?,?)", params: sqlValues(3.25) } })],
    ["sqlite-execute-noparams", t("ToRivetSqliteExecuteRequest", { requestId: 8, data: { namespaceId: NS, actorId: ID, generation: 2n, sql: "SELECT 1", params: null } })],
    ["sqlite-execute-batch", t("ToRivetSqliteExecuteBatchRequest", { requestId: 9, data: { namespaceId: NS, actorId: ID, generation: 3n, statements: [{ sql: "SELECT ?", params: [sqlValues(0)[1]] }, { sql: "SELECT 2", params: null }] } })],
  ];
  if (v8) {
    out.push(
      ["tunnel-request-body-window-update", tunnel("ToRivetRequestBodyWindowUpdate", { consumedBytes: 65536n })],
      ["tunnel-request-body-cancel", tunnel("ToRivetRequestBodyCancel", null)],
      ["tunnel-response-abort-unknown", tunnel("ToRivetResponseAbort", { reason: { kind: "Unknown", detail: null } })],
      ["sqlite-stage-begin", t("ToRivetSqliteCommitStageBeginRequest", { requestId: 3, data: { actorId: ID, expectedGeneration: 1n, expectedHeadTxid: 4n } })],
      ["sqlite-stage-segment", t("ToRivetSqliteCommitStageSegmentRequest", { requestId: 4, data: { actorId: ID, expectedGeneration: null, txid: 5n, firstPgno: 320, dirtyPages: [{ pgno: 321, bytes: page(9) }] } })],
      ["sqlite-finalize", t("ToRivetSqliteCommitFinalizeRequest", { requestId: 5, data: { actorId: ID, expectedGeneration: 1n, txid: 5n, newDbSizePages: 700, nowMs: 1795334396868n, segmentFirstPgnos: new Uint32Array([0, 320, 640]) } })],
      ["sqlite-finalize-empty", t("ToRivetSqliteCommitFinalizeRequest", { requestId: 6, data: { actorId: ID, expectedGeneration: null, txid: 1n, newDbSizePages: 0, nowMs: -1n, segmentFirstPgnos: new Uint32Array([]) } })],
    );
  }
  return out;
}

function envoyTunnel(version) {
  const v8 = version === 8;
  const t = (tag, val) => ({ tag, val });
  const kind = (k, val) => ({ messageId: msgId(3), messageKind: t(k, val) });
  const out = [
    ["request-start", kind("ToEnvoyRequestStart", {
      actorId: ID, ...(v8 ? { actorGeneration: 3 } : {}), method: "POST", path: "/foo/bar?x=1&y=2",
      headers: headers(), body: utf8("{\"a\":1}"), stream: false, ...(v8 ? { responseStream: true } : {}),
    })],
    ["request-start-nobody", kind("ToEnvoyRequestStart", {
      actorId: ID, ...(v8 ? { actorGeneration: null } : {}), method: "GET", path: "/",
      headers: new Map(), body: null, stream: true, ...(v8 ? { responseStream: false } : {}),
    })],
    ["request-chunk", kind("ToEnvoyRequestChunk", { body: buf("0001"), finish: false })],
    ["request-abort", kind("ToEnvoyRequestAbort", v8 ? { actorId: ID, actorGeneration: 2, reason: { kind: "Cancelled", detail: "client left" } } : null)],
    ["ws-open", kind("ToEnvoyWebSocketOpen", { actorId: ID, ...(v8 ? { actorGeneration: 1 } : {}), path: "/ws?x=1", headers: headers() })],
    ["ws-message", kind("ToEnvoyWebSocketMessage", { data: buf("00ff"), binary: true })],
    ["ws-close", kind("ToEnvoyWebSocketClose", { code: 1001, reason: "going away" })],
    ["ws-close-empty", kind("ToEnvoyWebSocketClose", { code: null, reason: null })],
  ];
  if (v8) {
    out.push(
      ["request-abort-unknown", kind("ToEnvoyRequestAbort", { actorId: null, actorGeneration: null, reason: { kind: "Unknown", detail: null } })],
      ["request-abort-internal", kind("ToEnvoyRequestAbort", { actorId: ID, actorGeneration: null, reason: { kind: "InternalError", detail: null } })],
      ["request-abort-handler", kind("ToEnvoyRequestAbort", { actorId: null, actorGeneration: 9, reason: { kind: "HandlerError", detail: "x" } })],
      ["request-body-cancel", kind("ToEnvoyRequestBodyCancel", null)],
      ["response-body-window-update", kind("ToEnvoyResponseBodyWindowUpdate", { consumedBytes: 1048576n })],
    );
  }
  return out;
}

function commands() {
  const t = (tag, val) => ({ tag, val });
  return [
    { checkpoint: cp(1, 1), inner: t("CommandStartActor", {
      config: { name: "counter", key: "k3", createTs: 1795334396859n, input: utf8("hello") },
      hibernatingRequests: [{ gatewayId: GW, requestId: RQ }],
      preloadedKv: { entries: [{ key: buf("01"), value: buf("02"), metadata: meta(5) }], requestedGetKeys: [buf("01")], requestedPrefixes: [buf("")] },
    }) },
    { checkpoint: cp(2, 1), inner: t("CommandStartActor", {
      config: { name: "chat", key: null, createTs: 0n, input: null }, hibernatingRequests: [], preloadedKv: null,
    }) },
    ...["SleepIntent", "StopIntent", "Destroy", "GoingAway", "Lost"].map((reason, i) => (
      { checkpoint: cp(1, i + 2), inner: t("CommandStopActor", { reason }) }
    )),
  ];
}

function toEnvoy(version) {
  const v8 = version === 8;
  const t = (tag, val) => ({ tag, val });
  const kvr = (data) => t("ToEnvoyKvResponse", { requestId: 102, data });
  const wrap = (tag, data) => t(tag, { requestId: 77, data });
  const out = [
    ["init", t("ToEnvoyInit", { metadata: { envoyLostThreshold: 15000n, actorStopThreshold: 1800000n, maxResponsePayloadSize: 20971520n } })],
    ["commands", t("ToEnvoyCommands", commands())],
    ["commands-empty", t("ToEnvoyCommands", [])],
    ["ack-events", t("ToEnvoyAckEvents", { lastEventCheckpoints: [cp(1, 300)] })],
    ["kv-error", kvr(t("KvErrorResponse", { message: "unsupported ID version: 103" }))],
    ["kv-get", kvr(t("KvGetResponse", { keys: [utf8("a"), utf8("c")], values: [utf8("1"), utf8("333")], metadata: [meta(1795334396866), meta(1795334396866)] }))],
    ["kv-list", kvr(t("KvListResponse", { keys: [], values: [], metadata: [] }))],
    ["kv-put", kvr(t("KvPutResponse", null))],
    ["kv-delete", kvr(t("KvDeleteResponse", null))],
    ["kv-drop", kvr(t("KvDropResponse", null))],
    ...envoyTunnel(version).map(([n, v]) => [`tunnel-${n}`, t("ToEnvoyTunnelMessage", v)]),
    ["ping", t("ToEnvoyPing", { ts: -9223372036854775808n })],
    ["sqlite-get-pages-ok", wrap("ToEnvoySqliteGetPagesResponse", t("SqliteGetPagesOk", { pages: [{ pgno: 1, bytes: page(3) }, { pgno: 9, bytes: null }], headTxid: 4n }))],
    ["sqlite-get-pages-err", wrap("ToEnvoySqliteGetPagesResponse", t("SqliteErrorResponse", { group: "depot", code: "database_not_found", message: "sqlite database was not found in this bucket branch" }))],
    ["sqlite-commit-ok", wrap("ToEnvoySqliteCommitResponse", t("SqliteCommitOk", { headTxid: 1n }))],
    ["sqlite-commit-err", wrap("ToEnvoySqliteCommitResponse", t("SqliteErrorResponse", sqlErr))],
    ["sqlite-exec-ok", wrap("ToEnvoySqliteExecResponse", t("SqliteExecOk", { result: { columns: ["a"], rows: [sqlValues(2.5)] } }))],
    ["sqlite-exec-err", wrap("ToEnvoySqliteExecResponse", t("SqliteErrorResponse", sqlErr))],
    ["sqlite-execute-ok", wrap("ToEnvoySqliteExecuteResponse", t("SqliteExecuteOk", { result: execResult() }))],
    ["sqlite-execute-err", wrap("ToEnvoySqliteExecuteResponse", t("SqliteErrorResponse", sqlErr))],
    ["sqlite-execute-batch-ok", wrap("ToEnvoySqliteExecuteBatchResponse", t("SqliteExecuteBatchOk", { results: [execResult(), { columns: [], rows: [], changes: 0n, lastInsertRowId: null }] }))],
    ["sqlite-execute-batch-err", wrap("ToEnvoySqliteExecuteBatchResponse", t("SqliteErrorResponse", sqlErr))],
  ];
  if (v8) {
    out.push(
      ["sqlite-stage-begin-ok", wrap("ToEnvoySqliteCommitStageBeginResponse", t("SqliteCommitStageBeginOk", { txid: 5n }))],
      ["sqlite-stage-begin-err", wrap("ToEnvoySqliteCommitStageBeginResponse", t("SqliteErrorResponse", sqlErr))],
      ["sqlite-stage-segment-ok", wrap("ToEnvoySqliteCommitStageSegmentResponse", t("SqliteCommitStageSegmentOk", { stagedBytes: 123456n }))],
      ["sqlite-stage-segment-err", wrap("ToEnvoySqliteCommitStageSegmentResponse", t("SqliteErrorResponse", { group: "depot", code: "stage_segment_invalid", message: "first page 1 is not shard-aligned" }))],
      ["sqlite-finalize-ok", wrap("ToEnvoySqliteCommitFinalizeResponse", t("SqliteCommitFinalizeOk", { headTxid: 5n }))],
      ["sqlite-finalize-err", wrap("ToEnvoySqliteCommitFinalizeResponse", t("SqliteErrorResponse", { group: "depot", code: "stage_not_found", message: "no staged segment at page 0 for txid 5" }))],
    );
  }
  return out;
}

function envelopes(version) {
  const t = (tag, val) => ({ tag, val });
  const tunnelIn = envoyTunnel(version)[0][1];
  const tunnelOut = { messageId: msgId(1), messageKind: t("ToRivetWebSocketOpen", { canHibernate: false }) };
  return [
    ["ToEnvoyConn", "ping", t("ToEnvoyConnPing", { gatewayId: GW, requestId: RQ, ts: 1795334396868n })],
    ["ToEnvoyConn", "close", t("ToEnvoyConnClose", null)],
    ["ToEnvoyConn", "commands", t("ToEnvoyCommands", commands())],
    ["ToEnvoyConn", "ack-events", t("ToEnvoyAckEvents", { lastEventCheckpoints: [cp(1, 2)] })],
    ["ToEnvoyConn", "tunnel", t("ToEnvoyTunnelMessage", tunnelIn)],
    ["ToGateway", "pong", t("ToGatewayPong", { requestId: RQ, ts: 1795334396868n })],
    ["ToGateway", "tunnel", t("ToRivetTunnelMessage", tunnelOut)],
    ["ToOutbound", "actor-start", t("ToOutboundActorStart", { namespaceId: NS, poolName: "default", checkpoint: cp(1, 0), actorConfig: { name: "counter", key: "[\"a\"]", createTs: 1795334396859n, input: null } })],
    ["ActorCommandKeyData", "start", commands()[0].inner],
    ["ActorCommandKeyData", "stop", commands()[3].inner],
    ["ServerlessStart", "start", t("ToEnvoyCommands", [{ checkpoint: cp(1, 0), inner: commands()[1].inner }])],
  ];
}

const vectors = [];
for (const version of [8, 6]) {
  const all = [
    ...toRivet(version).map(([n, v]) => ["ToRivet", n, v]),
    ...toEnvoy(version).map(([n, v]) => ["ToEnvoy", n, v]),
    ...envelopes(version),
  ];
  for (const [kind, name, value] of all) {
    const bytes = encode(kind, version, value);
    const decoded = view(decode(kind, version, bytes));
    if (!isDeepStrictEqual(decoded, view(value))) {
      throw new Error(`v${version} ${kind} ${name}: npm decode differs from the encoded value`);
    }
    vectors.push({ name: `${kind}/${name}`, kind, version, hex: toHex(bytes), value: decoded });
  }
}
process.stdout.write(JSON.stringify(vectors));
