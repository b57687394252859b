// Shared helpers for the envoy-protocol compatibility scripts: the npm codecs of both versions
// and the JSON-safe view of decoded values (bigint -> decimal string, bytes -> hex,
// Uint32Array -> array, Map -> object), which rivet-envoy-protocol's serde view mirrors.
import * as v8 from "@rivetkit/engine-envoy-protocol";
import * as v6 from "envoy-protocol-v6";

export const codecs = { 8: v8, 6: v6 };

const KINDS = ["ToRivet", "ToEnvoy", "ToEnvoyConn", "ToGateway", "ToOutbound", "ActorCommandKeyData"];

export function toHex(u8) {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("hex");
}

export function fromHex(s) {
  return new Uint8Array(Buffer.from(s, "hex"));
}

export function view(x) {
  if (typeof x === "bigint") return x.toString();
  if (x instanceof ArrayBuffer) return toHex(new Uint8Array(x));
  if (x instanceof Uint8Array) return toHex(x);
  if (ArrayBuffer.isView(x)) return Array.from(x);
  if (x instanceof Map) return Object.fromEntries([...x].map(([k, v]) => [k, view(v)]));
  if (Array.isArray(x)) return x.map(view);
  if (x !== null && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, view(v)]));
  }
  return x;
}

// "ServerlessStart" is ToEnvoy behind a 2-byte little-endian version prefix.
export function encode(kind, version, value) {
  const c = codecs[version];
  if (kind === "ServerlessStart") {
    const body = c.encodeToEnvoy(value);
    const out = new Uint8Array(body.length + 2);
    out[0] = version & 0xff;
    out[1] = version >> 8;
    out.set(body, 2);
    return out;
  }
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}`);
  return c[`encode${kind}`](value);
}

export function decode(kind, version, bytes) {
  const c = codecs[version];
  if (kind === "ServerlessStart") {
    const prefix = bytes[0] | (bytes[1] << 8);
    if (bytes.length < 2 || prefix !== version) throw new Error(`bad version prefix ${prefix}`);
    return c.decodeToEnvoy(bytes.subarray(2));
  }
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}`);
  return c[`decode${kind}`](bytes);
}
