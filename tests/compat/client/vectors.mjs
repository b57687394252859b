// Emits client-protocol test vectors encoded by npm rivetkit@2.3.19's own codec: every message
// type and union arm in json, cbor and bare (plus older BARE versions, decode-only).
// Output (stdout): {"vectors":[{name,type,arm,encoding,version,hex,roundtrip,expected}]} where
// `expected` is npm's own decoding of the bytes in the fields form of npm-codec.mjs.
// Used by crates/client-protocol/tests/compat.rs.
import { fieldsOf, npmDecode, npmEncode } from "./npm-codec.mjs";

const u8 = (...b) => new Uint8Array(b);
const ab = (...b) => new Uint8Array(b).buffer;

// Payloads per encoding. cbor carries raw values (npm does not escape `$` arrays there, and its
// decoder would misread them), json carries what JSON.stringify keeps, bare carries everything.
const RICH_COMMON = {
	n: 5,
	neg: -300,
	w16: 65535,
	w32: 4294967295,
	nw32: -4294967296,
	f: 1.5,
	e21: 1e21,
	t40: 2 ** 40,
	tiny: 1e-7,
	s: "héllo \u{1F600} \"q\" \\ \n\u0001",
	long: "x".repeat(300),
	uni: "é".repeat(70),
	bi: 5n,
	bi63: 2n ** 63n,
	nbi: -(2n ** 64n),
	u8: u8(1, 2, 3),
	ab: ab(9, 8),
	yes: true,
	no: false,
	nul: null,
	nested: { deep: [[{}], [], { k: [1, [2, [3]]] }] },
	arr: [1, "two", [3]],
};
const PAYLOADS = {
	bare: [
		[5],
		{
			...RICH_COMMON,
			huge: 2n ** 70n,
			undef: undefined,
			set: new Set([1, "a", 5n]),
			map: new Map([
				[1, "one"],
				["k", [2]],
			]),
			esc: ["$x", 1],
			esc2: ["$$y", [1]],
			i16: new Int16Array([1, -2]),
			inf: Infinity,
		},
	],
	cbor: [
		[5],
		{
			...RICH_COMMON,
			huge: 2n ** 70n,
			undef: undefined,
			set: new Set([1, "a"]),
			map: new Map([
				[1, "one"],
				["k", [2]],
			]),
			i16: new Int16Array([1, -2]),
			inf: -Infinity,
		},
	],
	json: [
		[5],
		{
			...RICH_COMMON,
			esc: ["$x", 1],
			esc2: ["$$y", [1]],
			undef: undefined,
			holes: [undefined, 1],
		},
	],
};

// Deterministic doubles of every magnitude (JSON number formatting, float64 in CBOR).
function numbers() {
	const out = [];
	let x = 0x2545f4914f6cdd1dn;
	const view = new DataView(new ArrayBuffer(8));
	while (out.length < 300) {
		x ^= x << 13n;
		x &= (1n << 64n) - 1n;
		x ^= x >> 7n;
		x ^= x << 17n;
		x &= (1n << 64n) - 1n;
		view.setBigUint64(0, x);
		const f = view.getFloat64(0);
		if (Number.isFinite(f)) out.push(f, Math.round(f * 1e6) / 1e6, f / 1e300);
	}
	out.push(0.1, 0.2 + 0.1, 1 / 3, 123e-20, 1e21, 1e20, 1e-6, 1e-7, 5e-324, Number.MAX_VALUE, 2 ** 53, 2 ** 53 + 2, -0);
	return out;
}

const ACTOR = "pim0yjtijc9cd952d89znjlvxobl00";
const CONN = "8f72acf8-b6ff-4bc0-89a1-dada2af1caa9";

function cases(encoding) {
	const [small, rich] = PAYLOADS[encoding];
	// ToClient errors: the spec asks for an 8-byte generation in cbor, a plain number in json.
	const gen = encoding === "cbor" ? 1n : 1;
	const out = [];
	const add = (type, arm, name, message, versions = [4]) => {
		for (const version of versions) out.push({ type, arm, name, message, version });
	};
	const oldVersions = encoding === "bare" ? [1, 2, 3, 4] : [4];
	const queueVersions = encoding === "bare" ? [3, 4] : [4];

	add("ToServer", "ActionRequest", "small", { body: { tag: "ActionRequest", val: { id: 0n, name: "increment", args: small } } }, oldVersions);
	add("ToServer", "ActionRequest", "rich", { body: { tag: "ActionRequest", val: { id: 2n ** 63n + 5n, name: "group.sub", args: [rich] } } });
	add("ToServer", "SubscriptionRequest", "on", { body: { tag: "SubscriptionRequest", val: { eventName: "changed", subscribe: true } } }, oldVersions);
	add("ToServer", "SubscriptionRequest", "off", { body: { tag: "SubscriptionRequest", val: { eventName: "", subscribe: false } } });

	add("ToClient", "Init", "init", { body: { tag: "Init", val: { actorId: ACTOR, connectionId: CONN } } }, oldVersions);
	add(
		"ToClient",
		"Error",
		"full",
		{
			body: {
				tag: "Error",
				val: { group: "user", code: "bad_thing", message: "nope", metadata: { a: 1, rich }, actionId: 7n, actor: { actorId: ACTOR, generation: gen, key: "ex/bare" } },
			},
		},
		oldVersions,
	);
	add("ToClient", "Error", "connection", { body: { tag: "Error", val: { group: "actor", code: "stopping", message: "An internal error occurred", actionId: null } } }, oldVersions);
	add("ToClient", "Error", "keyless", {
		body: { tag: "Error", val: { group: "g", code: "c", message: "m", metadata: null, actionId: 0n, actor: { actorId: ACTOR, generation: encoding === "cbor" ? 2n ** 40n : 12 } } },
	});
	add("ToClient", "ActionResponse", "small", { body: { tag: "ActionResponse", val: { id: 0n, output: 5 } } }, oldVersions);
	add("ToClient", "ActionResponse", "rich", { body: { tag: "ActionResponse", val: { id: 300n, output: rich } } });
	add("ToClient", "ActionResponse", "numbers", { body: { tag: "ActionResponse", val: { id: 2n, output: numbers() } } });
	add("ToClient", "ActionResponse", "null", { body: { tag: "ActionResponse", val: { id: 1n, output: null } } });
	add("ToClient", "Event", "event", { body: { tag: "Event", val: { name: "changed", args: [38, rich] } } }, oldVersions);

	add("HttpActionRequest", "HttpActionRequest", "small", { args: small }, oldVersions);
	add("HttpActionRequest", "HttpActionRequest", "rich", { args: [rich, "b"] });
	add("HttpActionResponse", "HttpActionResponse", "small", { output: 10 }, oldVersions);
	add("HttpActionResponse", "HttpActionResponse", "rich", { output: rich });
	add("HttpQueueSendRequest", "HttpQueueSendRequest", "wait", { body: rich, name: "q1", wait: true, timeout: 5000 }, queueVersions);
	add("HttpQueueSendRequest", "HttpQueueSendRequest", "nowait", { body: 1, name: "q1", wait: false });
	add("HttpQueueSendRequest", "HttpQueueSendRequest", "bare-minimum", { body: null });
	add("HttpQueueSendResponse", "HttpQueueSendResponse", "completed", { status: "completed", response: rich }, queueVersions);
	add("HttpQueueSendResponse", "HttpQueueSendResponse", "empty", { status: "completed" });
	add("HttpQueueSendResponse", "HttpQueueSendResponse", "timedOut", { status: "timedOut" });
	add(
		"HttpResponseError",
		"HttpResponseError",
		"full",
		{ group: "actor", code: "action_not_found", message: "Action `nosuch` was not found.", metadata: { id: "x", rich }, actor: { actorId: ACTOR, generation: 1, key: "ex/bare" } },
		oldVersions,
	);
	add("HttpResponseError", "HttpResponseError", "plain", { group: "core", code: "internal_error", message: "An internal error occurred" });
	add("HttpResolveResponse", "HttpResolveResponse", "resolve", { actorId: ACTOR }, oldVersions);
	return out;
}

const vectors = [];
for (const encoding of ["json", "cbor", "bare"]) {
	for (const c of cases(encoding)) {
		const bytes = npmEncode(c.type, encoding, c.message, c.version);
		const decoded = npmDecode(c.type, encoding, bytes);
		vectors.push({
			name: `${c.type}/${c.arm}/${c.name}/${encoding}/v${c.version}`,
			type: c.type,
			arm: c.arm,
			encoding,
			version: c.version,
			hex: bytes.toString("hex"),
			// Older BARE versions are decode-only: servers always answer in version 4.
			roundtrip: c.version === 4,
			expected: fieldsOf(c.type, decoded),
		});
	}
}
process.stdout.write(JSON.stringify({ package: "rivetkit@2.3.19", vectors }));
