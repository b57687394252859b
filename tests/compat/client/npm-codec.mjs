// The client-protocol codec of npm rivetkit@2.3.19, called exactly as the package calls it
// (serializeWithEncoding / deserializeWithEncoding with the generated BARE v1-v4 code, the
// versioned handlers and the zod schemas), plus a JSON-safe form of decoded values ("jv") that
// the Rust compat test compares against.
//
// jv forms: ["null"] ["undefined"] ["bool",b] ["int","<safe integer>"] ["float","<f64 bits hex>"]
// ["bigint","<n>"] ["text",s] ["u8","<hex>"] (Uint8Array) ["bytes","<hex>"] (ArrayBuffer/Buffer)
// ["array",[...]] ["object",[[k,v],...]] ["map",[[k,v],...]] ["set",[...]] ["tag",n,jv].
import fs from "node:fs";
import { register } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, "..", "node_modules");
const dist = path.join(nodeModules, "rivetkit", "dist", "tsup");

if (!fs.existsSync(dist)) {
	console.error(
		`npm packages missing (${dist}): run \`npm ci --ignore-scripts\` in tests/compat`,
	);
	process.exit(3);
}

register(pathToFileURL(path.join(here, "expose-hooks.mjs")));

function findChunk(marker) {
	for (const f of fs.readdirSync(dist)) {
		if (f.endsWith(".js") && fs.readFileSync(path.join(dist, f), "utf8").includes(marker)) {
			return pathToFileURL(path.join(dist, f)).href;
		}
	}
	throw new Error(`no chunk in ${dist} contains ${marker}`);
}

const proto = await import(findChunk("var CLIENT_PROTOCOL_TO_SERVER ="));
const serde = await import(findChunk("function serializeWithEncoding("));
const p = (n) => {
	const v = proto[`__npm_${n}`];
	if (v === undefined) throw new Error(`npm internal ${n} not found`);
	return v;
};

const ab = (u8) => serde.bufferToArrayBuffer(u8);
const enc = (v) => ab(serde.encodeCborCompat(v));
const dec = (buf) => serde.decodeCborCompat(new Uint8Array(buf));

// How npm builds the BARE form of each message from its object form, and back.
export const TYPES = {
	ToServer: {
		handler: p("CLIENT_PROTOCOL_TO_SERVER"),
		schema: p("ToServerSchema"),
		toBare: (m) =>
			m.body.tag === "ActionRequest"
				? {
						body: {
							tag: "ActionRequest",
							val: { id: m.body.val.id, name: m.body.val.name, args: enc(m.body.val.args) },
						},
					}
				: m,
		fromBare: (b) =>
			b.body.tag === "ActionRequest"
				? {
						body: {
							tag: "ActionRequest",
							val: { id: b.body.val.id, name: b.body.val.name, args: dec(b.body.val.args) },
						},
					}
				: b,
		fields: (m) =>
			m.body.tag === "ActionRequest"
				? { id: String(m.body.val.id), name: m.body.val.name, args: jv(m.body.val.args) }
				: { eventName: m.body.val.eventName, subscribe: m.body.val.subscribe },
	},
	ToClient: {
		handler: p("CLIENT_PROTOCOL_TO_CLIENT"),
		schema: p("ToClientSchema"),
		toBare: (m) => {
			const v = m.body.val;
			switch (m.body.tag) {
				case "Error":
					return {
						body: {
							tag: "Error",
							val: {
								group: v.group,
								code: v.code,
								message: v.message,
								metadata: "metadata" in v ? enc(v.metadata) : null,
								actionId: v.actionId ?? null,
								actor: v.actor
									? { actorId: v.actor.actorId, generation: BigInt(v.actor.generation), key: v.actor.key ?? null }
									: null,
							},
						},
					};
				case "ActionResponse":
					return { body: { tag: "ActionResponse", val: { id: v.id, output: enc(v.output) } } };
				case "Event":
					return { body: { tag: "Event", val: { name: v.name, args: enc(v.args) } } };
				default:
					return m;
			}
		},
		fromBare: (b) => {
			const v = b.body.val;
			switch (b.body.tag) {
				case "Error": {
					const out = { group: v.group, code: v.code, message: v.message };
					if (v.metadata !== null) out.metadata = dec(v.metadata);
					out.actionId = v.actionId;
					if (v.actor) out.actor = { actorId: v.actor.actorId, generation: v.actor.generation, key: v.actor.key ?? undefined };
					return { body: { tag: "Error", val: out } };
				}
				case "ActionResponse":
					return { body: { tag: "ActionResponse", val: { id: v.id, output: dec(v.output) } } };
				case "Event":
					return { body: { tag: "Event", val: { name: v.name, args: dec(v.args) } } };
				default:
					return b;
			}
		},
		fields: (m) => {
			const v = m.body.val;
			switch (m.body.tag) {
				case "Init":
					return { actorId: v.actorId, connectionId: v.connectionId };
				case "Error":
					return {
						group: v.group,
						code: v.code,
						message: v.message,
						metadata: "metadata" in v ? jv(v.metadata) : null,
						actionId: v.actionId === null || v.actionId === undefined ? null : String(v.actionId),
						actor: actorFields(v.actor),
					};
				case "ActionResponse":
					return { id: String(v.id), output: jv(v.output) };
				default:
					return { name: v.name, args: jv(v.args) };
			}
		},
	},
	HttpActionRequest: {
		handler: p("HTTP_ACTION_REQUEST_VERSIONED"),
		schema: p("HttpActionRequestSchema"),
		toBare: (m) => ({ args: enc(m.args) }),
		fromBare: (b) => ({ args: dec(b.args) }),
		fields: (m) => ({ args: jv(m.args) }),
	},
	HttpActionResponse: {
		handler: p("HTTP_ACTION_RESPONSE_VERSIONED"),
		schema: p("HttpActionResponseSchema"),
		toBare: (m) => ({ output: enc(m.output) }),
		fromBare: (b) => ({ output: dec(b.output) }),
		fields: (m) => ({ output: jv(m.output) }),
	},
	HttpQueueSendRequest: {
		handler: p("HTTP_QUEUE_SEND_REQUEST_VERSIONED"),
		schema: p("HttpQueueSendRequestSchema"),
		// As the npm client's queue sender builds it.
		toBare: (m) => ({
			body: enc(m.body),
			name: m.name ?? null,
			wait: m.wait ?? null,
			timeout: m.timeout !== undefined ? BigInt(m.timeout) : null,
		}),
		fromBare: (b) => {
			const out = { body: dec(b.body) };
			if (b.name !== null) out.name = b.name;
			if (b.wait !== null) out.wait = b.wait;
			if (b.timeout !== null) out.timeout = b.timeout;
			return out;
		},
		fields: (m) => ({
			body: jv(m.body),
			name: m.name ?? null,
			wait: m.wait ?? null,
			timeout: m.timeout === undefined || m.timeout === null ? null : String(m.timeout),
		}),
	},
	HttpQueueSendResponse: {
		handler: p("HTTP_QUEUE_SEND_RESPONSE_VERSIONED"),
		schema: p("HttpQueueSendResponseSchema"),
		toBare: (m) => ({ status: m.status, response: "response" in m ? enc(m.response) : null }),
		fromBare: (b) => (b.response === null ? { status: b.status } : { status: b.status, response: dec(b.response) }),
		fields: (m) => ({ status: m.status, response: "response" in m ? jv(m.response) : null }),
	},
	HttpResponseError: {
		handler: p("HTTP_RESPONSE_ERROR_VERSIONED"),
		schema: p("HttpResponseErrorSchema"),
		// As npm's router (handleRouteError) builds it.
		toBare: (m) => ({
			group: m.group,
			code: m.code,
			message: m.message,
			metadata: "metadata" in m ? enc(m.metadata) : null,
			actor: m.actor ? { actorId: m.actor.actorId, generation: BigInt(m.actor.generation), key: m.actor.key ?? null } : null,
		}),
		fromBare: (b) => {
			const out = { group: b.group, code: b.code, message: b.message };
			if (b.metadata !== null) out.metadata = dec(b.metadata);
			if (b.actor) out.actor = { actorId: b.actor.actorId, generation: b.actor.generation, key: b.actor.key ?? undefined };
			return out;
		},
		fields: (m) => ({
			group: m.group,
			code: m.code,
			message: m.message,
			metadata: "metadata" in m ? jv(m.metadata) : null,
			actor: actorFields(m.actor),
		}),
	},
	HttpResolveResponse: {
		handler: p("HTTP_RESOLVE_RESPONSE_VERSIONED"),
		schema: p("HttpResolveResponseSchema"),
		toBare: (m) => m,
		fromBare: (b) => b,
		fields: (m) => ({ actorId: m.actorId }),
	},
};

function actorFields(a) {
	if (!a) return null;
	return { actorId: a.actorId, generation: String(a.generation), key: a.key ?? null };
}

/** Encodes an object-form message with npm's serializeWithEncoding; returns bytes. */
export function npmEncode(type, encoding, message, version = 4) {
	const t = TYPES[type];
	const out = serde.serializeWithEncoding(encoding, message, t.handler, version, t.schema, (x) => x, t.toBare);
	// cbor-x returns a view of a shared buffer: copy before the next call.
	return typeof out === "string" ? Buffer.from(out, "utf8") : Buffer.from(out);
}

/** Decodes bytes with npm's deserializeWithEncoding; returns the object form. */
export function npmDecode(type, encoding, bytes) {
	const t = TYPES[type];
	return serde.deserializeWithEncoding(encoding, new Uint8Array(bytes), t.handler, t.schema, (x) => x, t.fromBare);
}

/** The expected-fields form of a decoded message. */
export function fieldsOf(type, message) {
	return TYPES[type].fields(message);
}

const TYPED_ARRAY_TAGS = new Map([
	[Int8Array, 72],
	[Uint8ClampedArray, 68],
	[Uint16Array, 69],
	[Uint32Array, 70],
	[Int16Array, 77],
	[Int32Array, 78],
	[Float32Array, 85],
	[Float64Array, 86],
]);

function hexOf(u8) {
	return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("hex");
}

/** JSON-safe form of a JavaScript value. */
export function jv(x) {
	if (x === null) return ["null"];
	if (x === undefined) return ["undefined"];
	switch (typeof x) {
		case "boolean":
			return ["bool", x];
		case "number": {
			if (Number.isInteger(x) && Math.abs(x) <= 2 ** 53) return ["int", String(x === 0 ? 0 : x)];
			const b = Buffer.alloc(8);
			b.writeDoubleBE(x);
			return ["float", b.toString("hex")];
		}
		case "bigint":
			return ["bigint", x.toString()];
		case "string":
			return ["text", x];
	}
	if (x instanceof ArrayBuffer) return ["bytes", Buffer.from(x).toString("hex")];
	if (Buffer.isBuffer(x)) return ["bytes", x.toString("hex")];
	if (x instanceof Uint8Array && x.constructor === Uint8Array) return ["u8", hexOf(x)];
	for (const [ctor, tag] of TYPED_ARRAY_TAGS) {
		if (x instanceof ctor) return ["tag", tag, ["bytes", hexOf(new Uint8Array(x.buffer, x.byteOffset, x.byteLength))]];
	}
	if (Array.isArray(x)) return ["array", x.map(jv)];
	if (x instanceof Set) return ["set", [...x].map(jv)];
	if (x instanceof Map) return ["map", [...x].map(([k, v]) => [jv(k), jv(v)])];
	if (typeof x === "object") return ["object", Object.entries(x).map(([k, v]) => [k, jv(v)])];
	throw new Error(`no jv form for ${typeof x}`);
}
