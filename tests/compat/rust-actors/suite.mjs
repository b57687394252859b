#!/usr/bin/env node
// The npm client (`rivetkit/client`) against the Rust test actors of
// crates/rivetkit/tests/npm_client.rs, which starts them on an in-process engine and runs this
// script with the engine's URL in RIVETKIT_SUITE_ENDPOINT.
//
//   node rust-actors/suite.mjs [--endpoint URL] [--client 2.3.19|2.3.11] [--target rust|ts]
//                              [--mirror-running] [--encodings bare,cbor,json] [--only name,name]
//                              [--verbose]
//
// --target ts starts tests/compat/rust-actors/mirror.ts (the same actors written with npm
// rivetkit) on pool `ts-mirror` of the same engine and runs the same cases against it: the
// expectations below are what npm TypeScript actors do, and that run is how they were checked
// (--mirror-running: that host is already attached, started by hand).
//
// Each case prints `ok <case> — detail` or `FAIL <case>: reason`. A check that the target is
// known to fail is listed in KNOWN with the reason: it prints `KNOWN <check>` and does not fail
// the run, and a known check that passes fails it (so the list stays true). Then a summary; the
// exit code is 1 if anything failed. Every wait polls a condition with a deadline.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
	CLIENT_MODULE,
	Processes,
	ScenarioError,
	check,
	compatDir,
	errCode,
	fail,
	hostEnvironment,
	race,
	reexecWithWebSocket,
	restCall,
	tail,
	waitFor,
	within,
} from "../host/harness.mjs";

// ---------------------------------------------------------------------------------------------
// Arguments

function usage(msg) {
	if (msg) console.error(msg);
	console.error(
		"usage: node rust-actors/suite.mjs [--endpoint URL] [--client 2.3.19|2.3.11] [--target rust|ts] [--mirror-running] [--encodings bare,cbor,json] [--only name,name] [--verbose]",
	);
	process.exit(2);
}

function parseArgs(argv) {
	const opts = {
		endpoint: process.env.RIVETKIT_SUITE_ENDPOINT,
		client: "2.3.19",
		target: "rust",
		encodings: ["bare", "cbor", "json"],
		only: null,
		verbose: false,
		mirrorRunning: false,
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--endpoint") opts.endpoint = argv[++i];
		else if (a === "--client") opts.client = argv[++i];
		else if (a === "--target") opts.target = argv[++i];
		else if (a === "--encodings") opts.encodings = (argv[++i] ?? "").split(",").filter(Boolean);
		else if (a === "--only") opts.only = (argv[++i] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
		else if (a === "--verbose") opts.verbose = true;
		else if (a === "--mirror-running") opts.mirrorRunning = true;
		else usage(`unknown argument ${a}`);
	}
	if (!opts.endpoint) usage("no endpoint: pass --endpoint or set RIVETKIT_SUITE_ENDPOINT");
	if (!CLIENT_MODULE[opts.client]) usage(`--client must be 2.3.19 or 2.3.11, got ${opts.client}`);
	if (!["rust", "ts"].includes(opts.target)) usage(`--target must be rust or ts, got ${opts.target}`);
	for (const e of opts.encodings) if (!["bare", "cbor", "json"].includes(e)) usage(`unknown encoding ${e}`);
	opts.endpoint = opts.endpoint.replace(/\/+$/, "");
	return opts;
}

const opts = parseArgs(process.argv.slice(2));

// The npm client needs a global WebSocket; Node 20 has it behind a flag.
await reexecWithWebSocket(import.meta.url);

// The client logs every error response at warn level; the suite provokes many.
if (!opts.verbose) process.env.RIVET_LOG_LEVEL = "error";

const NS = "default";
const POOL = opts.target === "ts" ? "ts-mirror" : "default";
const RUN = crypto.randomBytes(3).toString("hex");
const base = opts.endpoint;
const wsBase = base.replace(/^http/, "ws");
const t0 = Date.now();

// ---------------------------------------------------------------------------------------------
// Known differences

// Check id → why the target fails it. Ids are `<case>:<check>`; `*` stands for the encoding.
// `mayPass` marks a race the target loses only sometimes (its passes are not errors).
const KNOWN = {
	rust: {
		"concurrency:actions-interleave": {
			reason:
				"a Rust actor handles one input at a time (one task per actor, ARCHITECTURE.md), so a slow action delays the actions sent after it; npm actors run a connection's actions concurrently (client-protocol.md §6.3)",
		},
	},
	ts: {
		"values-cbor:bytes-http": "npm actors reject the CBOR typed-array tag the cbor client puts on a Uint8Array (core.internal_error, client-protocol.md §2.3); Rust actors accept it",
		"values-cbor:bytes-conn": "npm actors reject the CBOR typed-array tag the cbor client puts on a Uint8Array (over a connection they close it: 1011 actor.invalid_request); Rust actors accept it",
		"values-json:describe-http": "npm actors give the number 2^40 back as a bigint in json (their JSON→CBOR→JSON conversion); Rust actors give a number",
		"values-json:describe-conn": "npm actors give the number 2^40 back as a bigint in json (their JSON→CBOR→JSON conversion); Rust actors give a number",
		"raw-fetch:none-is-404": "a TypeScript onRequest returning nothing is a 500 rivetkit.internal_error; Rust's `None` is the documented empty 404 of an actor without a handler",
		"raw-websocket:no-handler-closes": "an npm actor without onWebSocket leaves the socket open and silent; the Rust SDK closes it (1000) at once, as documented",
		"hibernation-*:idle-sleep": "npm rivetkit 2.3.19 keeps an actor with an open connection awake (its idle timer waits for the connection); a Rust actor sleeps with hibernatable connections open, as the gateway holds them",
	},
};

const knownSeen = [];
const unexpectedPasses = [];

function knownEntry(id) {
	const table = KNOWN[opts.target];
	const entry = table[id] ?? table[id.replace(/-(bare|cbor|json)(?=:|$)/, "-*")];
	return typeof entry === "string" ? { reason: entry } : entry;
}

/**
 * A check that may be a known difference: fails the case unless listed in KNOWN, in which
 * case it is recorded (and a listed check that passes is an error, unless it may pass: remove
 * it from the list).
 */
function expect(id, ok, detail) {
	const known = knownEntry(id);
	if (ok) {
		if (known && !known.mayPass) unexpectedPasses.push(`${id} (listed as: ${known.reason})`);
		return true;
	}
	if (!known) fail(`${id}: ${detail}`);
	knownSeen.push(`${id}: ${detail} — ${known.reason}`);
	return false;
}

// ---------------------------------------------------------------------------------------------
// Output and processes

function info(msg) {
	if (opts.verbose) console.log(`  [${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
}

let tmp;
let eventsFile;
const procs = new Processes({ info, eventsFile: () => eventsFile });
process.on("exit", () => {
	procs.killAll();
	if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});
async function shutdown(code) {
	await procs.killAndReap();
	process.exit(code);
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
	process.on(sig, () => {
		console.error(`interrupted (${sig})`);
		shutdown(130);
	});
}

// ---------------------------------------------------------------------------------------------
// Helpers

const rest = (method, p, body) => restCall(base, method, p, body);

async function getActor(id) {
	const r = await rest("GET", `/actors?namespace=${NS}&actor_ids=${id}`);
	check(r.status === 200, `GET /actors?actor_ids=${id} → ${r.status} ${r.text.slice(0, 200)}`);
	return r.json.actors.find((a) => a.actor_id === id);
}
const isSleeping = (a) => !!a && !!a.sleep_ts && !a.connectable_ts && !a.destroy_ts;

let clientModule;
const clients = new Map();
function client(encoding) {
	if (!clients.has(encoding)) {
		clients.set(encoding, clientModule.createClient({ endpoint: base, namespace: NS, encoding, poolName: POOL }));
	}
	return clients.get(encoding);
}

/** The error `promise` rejects with; fails if it resolves. */
async function rejection(ms, what, promise) {
	let v;
	try {
		v = await race(ms, what, promise);
	} catch (e) {
		if (e instanceof ScenarioError) throw e;
		return e;
	}
	fail(`${what}: expected an error, got ${show(v)}`);
}

/** JSON-like text of any value the client returns (bigints, byte arrays, undefined). */
function show(v) {
	if (v === undefined) return "undefined";
	if (typeof v === "bigint") return `${v}n`;
	if (v instanceof Uint8Array) return `Uint8Array[${[...v].join(",")}]`;
	if (v instanceof ArrayBuffer) return `ArrayBuffer[${[...new Uint8Array(v)].join(",")}]`;
	if (Array.isArray(v)) return `[${v.map(show).join(",")}]`;
	if (v && typeof v === "object") {
		return `{${Object.keys(v)
			.sort()
			.map((k) => `${JSON.stringify(k)}:${show(v[k])}`)
			.join(",")}}`;
	}
	return JSON.stringify(v);
}
const same = (a, b) => show(a) === show(b);

/** Closes a connection, bounded (dispose of a connection that never opened can hang). */
async function disposeConn(conn) {
	try {
		await race(10_000, "connection dispose", conn.dispose());
	} catch (e) {
		info(`connection dispose: ${e.message}`);
	}
}

/** A connection plus what it received: events by name, opens, closes, errors, statuses. */
function track(conn, events) {
	const t = { conn, events: {}, opens: 0, closes: 0, errors: [], statuses: [] };
	for (const name of events) {
		t.events[name] = [];
		conn.on(name, (...args) => t.events[name].push(args.length === 1 ? args[0] : args));
	}
	conn.onOpen(() => t.opens++);
	conn.onClose(() => t.closes++);
	conn.onError((e) => t.errors.push(e));
	conn.onStatusChange?.((s) => t.statuses.push(s));
	return t;
}

/** Waits until `list` has an element matching `pred`; returns it. */
async function received(what, list, pred, timeoutMs = 15_000) {
	return waitFor(what, () => list.find(pred), { timeoutMs, intervalMs: 10 });
}

/** A WebSocket with its messages and close collected. */
function openSocket(url, protocols) {
	return collectSocket(new WebSocket(url, protocols));
}

/** Collects the messages and the close of `ws` from now on. */
function collectSocket(ws) {
	ws.binaryType = "arraybuffer";
	const messages = [];
	let opened = ws.readyState === 1;
	let closeInfo = null;
	ws.addEventListener("open", () => {
		opened = true;
	});
	ws.addEventListener("message", (ev) => messages.push(ev.data));
	const closed = new Promise((resolve) =>
		ws.addEventListener("close", (ev) => {
			closeInfo = { code: ev.code, reason: ev.reason };
			resolve(closeInfo);
		}),
	);
	return {
		ws,
		messages,
		closed,
		get opened() {
			return opened;
		},
		get closeInfo() {
			return closeInfo;
		},
		async next(what, pred, timeoutMs = 15_000) {
			return waitFor(
				what,
				() => {
					const i = messages.findIndex(pred);
					if (i >= 0) return { v: messages.splice(i, 1)[0] };
					if (closeInfo) fail(`${what}: socket closed ${JSON.stringify(closeInfo)}`);
					return false;
				},
				{ timeoutMs, intervalMs: 10 },
			).then((r) => r.v);
		},
	};
}

/** A well-formed actor id that names no actor. */
function randomActorId() {
	const bytes = Buffer.concat([Buffer.from([1]), crypto.randomBytes(16), Buffer.from([0, 1])]);
	let n = 0n;
	for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
	let s = "";
	for (let i = 0; i < 30; i++) {
		s += (n % 36n).toString(36);
		n /= 36n;
	}
	return s;
}

const key = (name) => `${name}-${RUN}`;

// ---------------------------------------------------------------------------------------------
// Cases

const cases = [];
function testCase(name, fn) {
	cases.push({ name, fn });
}
function perEncoding(name, fn) {
	for (const encoding of opts.encodings) testCase(`${name}-${encoding}`, () => fn(encoding, `${name}-${encoding}`));
}

perEncoding("handles", async (enc, id) => {
	const c = client(enc);
	const input = { label: "first", start: 40, tags: ["a", "b"] };
	const h = c.values.getOrCreate([key(id)], { createWithInput: input });
	const got = await within(60_000, "getInput", h.getInput());
	check(same(got, input), `getOrCreate input reached create_state as ${show(got)}`);
	check((await within(30_000, "increment", h.increment(2))) === 42, "increment(2) after start 40");
	// Another getOrCreate with another input reaches the same actor.
	const again = c.values.getOrCreate([key(id)], { createWithInput: { label: "second", start: 0, tags: [] } });
	check(same(await within(30_000, "getInput", again.getInput()), input), "second getOrCreate changed the input");
	const actorId = await within(30_000, "resolve", h.resolve());

	const byKey = c.values.get([key(id)]);
	check((await within(30_000, "get().increment", byKey.increment(1))) === 43, "get() reached another actor");
	check((await within(30_000, "get().resolve", byKey.resolve())) === actorId, "get().resolve() is another id");
	const missing = await rejection(30_000, "get() of a missing key", c.values.get([key(`${id}-missing`)]).increment(1));
	check(errCode(missing) === "actor.not_found", `get() of a missing key → ${errCode(missing)} ${missing.message}`);

	const ident = await within(30_000, "getForId().identity", c.values.getForId(actorId).identity());
	check(
		same(ident, { actorId, name: "values", key: key(id), count: 43 }),
		`getForId(${actorId}).identity() → ${show(ident)}`,
	);
	const unknown = await rejection(30_000, "getForId(unknown)", c.values.getForId(randomActorId()).identity());
	check(errCode(unknown) === "actor.not_found", `getForId(unknown id) → ${errCode(unknown)}`);

	const created = await within(60_000, "create", c.values.create([key(`${id}-new`)], { input: { label: "made", start: 7, tags: [] } }));
	check((await within(30_000, "created.increment", created.increment(1))) === 8, "create() input start 7");
	const dup = await rejection(60_000, "create() of a used key", c.values.create([key(`${id}-new`)]));
	check(errCode(dup) === "actor.duplicate_key", `second create() → ${errCode(dup)} ${dup.message}`);
	return `createWithInput reached create_state; get, getForId, create (input start 7); missing key/id → actor.not_found; duplicate create → actor.duplicate_key`;
});

const nested = { name: "héllo wörld", inner: { flag: true, ratio: 0.25 }, scores: [3, -1, 2 ** 40] };
const items = [{ id: 1, label: "one" }, { id: 2, label: null }];
const describeExpected = {
	doubled: 3,
	shout: "HÉLLO",
	nested,
	itemIds: [1, 2],
	labels: ["one", null],
	missingWasNull: true,
};
const BIG = 2n ** 60n + 5n;

/** The typed-value checks, over HTTP (`handle`) or a connection (`conn`). */
async function valueChecks(id, via, target) {
	const d = await within(30_000, `describe (${via})`, target.describe(1.5, "héllo", nested, items, null));
	expect(`${id}:describe-${via}`, same(d, describeExpected), `describe (${via}) → ${show(d)}, expected ${show(describeExpected)}`);
	const big = await within(30_000, `nextBig (${via})`, target.nextBig(BIG));
	check(typeof big === "bigint" && big === BIG + 1n, `nextBig(${BIG}n) (${via}) → ${show(big)} (${typeof big})`);
	let bytes;
	try {
		bytes = await race(30_000, `reverseBytes (${via})`, target.reverseBytes(new Uint8Array([1, 2, 255])));
	} catch (e) {
		if (e instanceof ScenarioError) throw e;
		bytes = e;
	}
	expect(
		`${id}:bytes-${via}`,
		bytes instanceof Uint8Array && [...bytes].join() === "255,2,1",
		`reverseBytes(Uint8Array[1,2,255]) (${via}) → ${bytes instanceof Error ? `${errCode(bytes)} ${bytes.message}` : `${show(bytes)} (${bytes?.constructor?.name})`}`,
	);
	const nothing = await within(30_000, `nothing (${via})`, target.nothing());
	expect(`${id}:unit-output-${via}`, nothing === undefined, `a unit action (${via}) gave ${show(nothing)}, npm actors give undefined`);
	return show(nothing);
}

perEncoding("values", async (enc, id) => {
	const h = client(enc).values.getOrCreate([key(id)]);
	const httpUnit = await valueChecks(id, "http", h);
	const conn = h.connect();
	try {
		await within(30_000, "connection ready", conn.ready);
		const connUnit = await valueChecks(id, "conn", conn);
		return `nested objects, arrays, null, 2^60+5 as bigint, Uint8Array round trip over HTTP and a connection; unit action → ${httpUnit} (http), ${connUnit} (conn)`;
	} finally {
		await disposeConn(conn);
	}
});

/** The action-error checks, over HTTP (`handle`) or a connection (`conn`). */
async function errorChecks(id, via, target) {
	const user = await rejection(30_000, `userFail (${via})`, target.userFail("bad_thing", "nope", { a: 1, nested: { b: [1, "two"] } }));
	check(
		errCode(user) === "user.bad_thing" && user.message === "nope" && same(user.metadata, { a: 1, nested: { b: [1, "two"] } }),
		`user error (${via}) → ${errCode(user)} ${JSON.stringify(user.message)} metadata ${show(user.metadata)}`,
	);
	const internal = await rejection(30_000, `ioFail (${via})`, target.ioFail());
	check(
		// No metadata: the bare decoder of connection errors gives null for an absent field.
		errCode(internal) === "rivetkit.internal_error" && internal.message === "An internal error occurred" && internal.metadata == null,
		`plain error (${via}) → ${errCode(internal)} ${JSON.stringify(internal.message)} metadata ${show(internal.metadata)}`,
	);
	const nf = await rejection(30_000, `unknown action (${via})`, target.action({ name: "noSuchAction", args: [] }));
	check(
		errCode(nf) === "actor.action_not_found" && nf.message === "Action `noSuchAction` was not found.",
		`unknown action (${via}) → ${errCode(nf)} ${JSON.stringify(nf.message)}`,
	);
	const t = Date.now();
	const slow = await rejection(30_000, `slow (${via})`, target.slow(5_000));
	check(
		errCode(slow) === "actor.action_timed_out" && slow.message === "Action timed out",
		`action over its 500 ms timeout (${via}) → ${errCode(slow)} ${JSON.stringify(slow.message)}`,
	);
	check(Date.now() - t < 4_000, `action timeout (${via}) took ${Date.now() - t} ms`);
	return { user, internal, nf, slow };
}

perEncoding("errors", async (enc, id) => {
	const h = client(enc).faulty.getOrCreate([key(id)]);
	const http = await errorChecks(id, "http", h);
	const big = "x".repeat(70_000);
	const tooLong = await rejection(30_000, "70 kB argument over HTTP", h.length(big));
	check(
		errCode(tooLong) === "message.incoming_too_long" && tooLong.message === "Incoming message too long",
		`70 kB argument over HTTP → ${errCode(tooLong)} ${JSON.stringify(tooLong.message)}`,
	);
	check((await within(30_000, "length", h.length("abc"))) === 3, "the actor still answers after the refused request");

	const conn = h.connect();
	const t = track(conn, []);
	try {
		await within(30_000, "connection ready", conn.ready);
		await errorChecks(id, "conn", conn);
		check(conn.connStatus === "connected" && t.closes === 0, `action errors closed the connection (status ${conn.connStatus}, closes ${t.closes})`);
		// Too long over a connection closes the socket (1011 message.incoming_too_long); the
		// client then reconnects, as it does after any close of a connected socket.
		const e = await rejection(30_000, "70 kB argument over a connection", conn.length(big));
		check(errCode(e) === "message.incoming_too_long", `70 kB argument over a connection → ${errCode(e)} ${e.message}`);
		await waitFor("the connection to reopen after the too-long close", () => t.opens >= 2 && conn.connStatus === "connected", { timeoutMs: 15_000, intervalMs: 20 });
		check((await within(30_000, "length over the reopened connection", conn.length("abcd"))) === 4, "reopened connection");
		return `user error with code/message/metadata, io::Error → rivetkit.internal_error "${http.internal.message}", action_not_found, action_timed_out, incoming_too_long (HTTP: error; connection: close 1011 and reconnect), over HTTP and a connection`;
	} finally {
		await disposeConn(conn);
	}
});

/** A json-protocol WebSocket to /connect, speaking the protocol by hand. */
function rawConnect(actorId, params) {
	const protocols = ["rivet", "rivet_encoding.json"];
	if (params !== undefined) protocols.push(`rivet_conn_params.${encodeURIComponent(JSON.stringify(params))}`);
	const sock = openSocket(`${wsBase}/gateway/${actorId}/connect`, protocols);
	const frames = () => sock.messages.map((m) => JSON.parse(typeof m === "string" ? m : Buffer.from(m).toString()));
	return { sock, frames };
}

perEncoding("connections", async (enc, id) => {
	const c = client(enc);
	const h = c.chat.getOrCreate([key(id)]);
	const actorId = await within(60_000, "resolve", h.resolve());
	const alice = track(h.connect({ name: "alice" }), ["message", "joined", "left"]);
	let whispers = 0;
	let whisper;
	alice.conn.once("whisper", (w) => {
		whispers++;
		whisper = w;
	});
	let bob;
	let raw;
	try {
		await within(30_000, "alice ready", alice.conn.ready);
		// Subscriptions go out right after Init, before queued actions: once an action answered,
		// alice's subscriptions are in place and bob's `joined` broadcast reaches her.
		await within(30_000, "whoami over alice", alice.conn.whoami());
		bob = track(h.connect({ name: "bob" }), ["message"]);
		await within(30_000, "bob ready", bob.conn.ready);
		await within(30_000, "whoami over bob", bob.conn.whoami());
		raw = rawConnect(actorId, { name: "carol" });
		check(typeof alice.conn.connectionId === "string" && alice.conn.connectionId !== bob.conn.connectionId, "connection ids");
		await received("joined(bob) at alice", alice.events.joined, (n) => n === "bob");

		check((await within(30_000, "alice says hi", alice.conn.say("hi"))) === 1, "say returned the connection's count");
		for (const [who, t] of [["alice", alice], ["bob", bob]]) {
			await received(`message hi at ${who}`, t.events.message, (m) => m.text === "hi" && m.from === "alice");
		}
		check((await within(30_000, "alice says again", alice.conn.say("again"))) === 2, "connection state kept between actions");
		const me = await within(30_000, "whoami over alice", alice.conn.whoami());
		check(same(me, { id: alice.conn.connectionId, name: "alice", said: 2, realtime: true }), `whoami over a connection → ${show(me)}`);
		const anon = await within(30_000, "whoami over HTTP", h.whoami());
		check(anon?.name === "anonymous" && anon?.realtime === false, `whoami over HTTP → ${show(anon)}`);

		// conn.send reaches one connection; once() fires once.
		check((await within(30_000, "whisper", bob.conn.whisper(alice.conn.connectionId, "psst"))) === true, "whisper found alice");
		await waitFor("whisper at alice", () => whispers === 1, { timeoutMs: 15_000, intervalMs: 10 });
		check(same(whisper, { from: "bob", text: "psst" }), `whisper payload ${show(whisper)}`);
		await within(30_000, "second whisper", bob.conn.whisper(alice.conn.connectionId, "again"));
		// Events on one connection arrive in order: once the barrier arrived, so did the whisper.
		await within(30_000, "barrier", bob.conn.say("barrier"));
		await received("barrier at alice", alice.events.message, (m) => m.text === "barrier");
		check(whispers === 1, `once() listener ran ${whispers} times`);

		// Broadcasts reach subscribers only: carol (raw socket) subscribed to `other` only.
		await raw.sock.next("Init at carol", (m) => JSON.parse(m).body.tag === "Init");
		raw.sock.ws.send(JSON.stringify({ body: { tag: "SubscriptionRequest", val: { eventName: "other", subscribe: true } } }));
		// The subscription is processed before the next message on the same socket.
		raw.sock.ws.send(JSON.stringify({ body: { tag: "ActionRequest", val: { id: ["$BigInt", "0"], name: "whoami", args: [] } } }));
		await raw.sock.next("whoami answer at carol", (m) => JSON.parse(m).body.tag === "ActionResponse");
		await within(30_000, "alice says to all", alice.conn.say("not for carol"));
		await within(30_000, "announce other", alice.conn.announce("other", "for carol"));
		const other = JSON.parse(await raw.sock.next("event other at carol", (m) => JSON.parse(m).body.tag === "Event"));
		check(
			same(other.body.val, { name: "other", args: ["for carol"] }),
			`first event at carol ${JSON.stringify(other.body.val)} (she did not subscribe to message)`,
		);

		const counts = await within(30_000, "connCount over a connection", alice.conn.connCount());
		check(counts.realtime === 3, `connCount over a connection → ${show(counts)}`);
		expect(`${id}:conn-count-total`, counts.total === 3, `ctx.conns() over a connection counts ${counts.total}, expected 3`);
		const countsHttp = await within(30_000, "connCount over HTTP", h.connCount());
		check(countsHttp.realtime === 3, `connCount over HTTP → ${show(countsHttp)}`);
		expect(`${id}:conn-count-http`, countsHttp.total === 4, `ctx.conns() during an HTTP action counts ${countsHttp.total} (the action's own connection included in npm)`);

		// The actor closes bob's connection: the client sees the close, then reconnects.
		const bobId = bob.conn.connectionId;
		check((await within(30_000, "kick bob", alice.conn.kick("bob", "go away"))) === true, "kick found bob");
		await waitFor("bob's close", () => bob.closes >= 1, { timeoutMs: 15_000, intervalMs: 10 });
		await received("left(bob) at alice", alice.events.left, (n) => n === "bob");
		await waitFor("bob to reconnect", () => bob.opens >= 2 && bob.conn.connStatus === "connected", { timeoutMs: 15_000, intervalMs: 20 });
		check(bob.conn.connectionId !== bobId, "bob reconnected with the same connection id");
		const bobAgain = await within(30_000, "whoami over bob's new connection", bob.conn.whoami());
		check(bobAgain?.name === "bob" && bobAgain?.said === 0, `after the reconnect bob is ${show(bobAgain)} (params reused, fresh state)`);
		const kickErrors = bob.errors.map(errCode);

		await disposeConn(bob.conn);
		await received("left(bob) after dispose", alice.events.left, (n) => n === "bob" && alice.events.left.length >= 2);
		// What a kicked socket sees on the wire.
		check((await within(30_000, "kick carol", alice.conn.kick("carol", "go away"))) === true, "kick found carol");
		const kicked = await race(15_000, "carol's close", raw.sock.closed);
		check(kicked.code === 1000 && kicked.reason === "go away", `conn.disconnect("go away") closed carol's socket with ${kicked.code} ${JSON.stringify(kicked.reason)}`);
		const log = await waitFor(
			"on_disconnect(carol) in the log",
			async () => {
				const l = await h.log();
				return l.includes("disconnect:carol") ? l : false;
			},
			{ timeoutMs: 15_000 },
		);
		const expectedLog = ["connect:alice", "connect:bob", "connect:carol", "disconnect:bob", "connect:bob", "disconnect:bob", "disconnect:carol"];
		check(same(log, expectedLog), `hook log ${JSON.stringify(log)}, expected ${JSON.stringify(expectedLog)}`);
		const after = await within(30_000, "connCount after the disconnects", alice.conn.connCount());
		check(after.realtime === 1, `realtime connections after the disconnects: ${show(after)}`);
		return `events to subscribers only, conn.send to one, once(), conn state in actions, ctx.conns(); kicked connection closed and reconnected (errors seen by it: ${kickErrors.join(",") || "none"}); hooks ran in order`;
	} finally {
		await disposeConn(alice.conn);
		if (bob) await disposeConn(bob.conn);
		if (raw && raw.sock.ws.readyState < 2) raw.sock.ws.close();
	}
});

perEncoding("refused", async (enc, id) => {
	const c = client(enc);
	const h = c.chat.getOrCreate([key(id)]);
	const actorId = await within(60_000, "resolve", h.resolve());
	const conn = h.connect({ name: "mallory", token: "bad" });
	try {
		const err = await within(30_000, "the refusal at connect()", new Promise((resolve) => conn.onError((e) => resolve(e))));
		check(
			errCode(err) === "user.forbidden" && err.message === "bad token" && same(err.metadata, { name: "mallory" }),
			`connect() refused by on_before_connect → ${errCode(err)} ${JSON.stringify(err.message)} metadata ${show(err.metadata)}`,
		);
		await waitFor("status idle after the refusal", () => conn.connStatus === "idle", { timeoutMs: 10_000, intervalMs: 20 });
		const act = await rejection(30_000, "action on the refused connection", conn.say("x"));
		check(["user.forbidden", "client.connection_open_failed"].includes(errCode(act)) || act?.name === "ActorConnDisposed", `action on a refused connection → ${errCode(act)}`);
	} finally {
		await disposeConn(conn);
	}
	// What the socket itself carries: an Error frame, then close 1011 user.forbidden.
	const raw = rawConnect(actorId, { name: "mallory", token: "bad" });
	const closed = await race(15_000, "refused raw socket close", raw.sock.closed);
	check(closed.code === 1011 && closed.reason === "user.forbidden", `refused socket closed ${closed.code} ${JSON.stringify(closed.reason)}`);
	const frames = raw.frames();
	check(
		frames.length === 1 && frames[0].body.tag === "Error" && frames[0].body.val.code === "forbidden" && frames[0].body.val.actionId === null,
		`refused socket frames ${JSON.stringify(frames)}`,
	);
	// The same hook refuses an HTTP action whose handle carries the parameters.
	const viaHttp = await rejection(30_000, "HTTP action with bad params", c.chat.getOrCreate([key(id)], { params: { name: "mallory", token: "bad" } }).log());
	check(errCode(viaHttp) === "user.forbidden" && viaHttp.message === "bad token", `HTTP action with refused params → ${errCode(viaHttp)} ${viaHttp.message}`);
	const log = await within(30_000, "log", h.log());
	check(!log.some((l) => l.includes("mallory")), `refused connections ran the connect hooks: ${JSON.stringify(log)}`);
	return "connect() error user.forbidden with message and metadata, status idle; socket: Error frame + close 1011 user.forbidden; HTTP action refused the same way";
});

perEncoding("hibernation", async (enc, id) => {
	const c = client(enc);
	const h = c.sleepy.getOrCreate([key(id)]);
	const actorId = await within(60_000, "resolve", h.resolve());
	const t = track(h.connect({ name: `h-${enc}` }), ["changed"]);
	try {
		await within(30_000, "connection ready", t.conn.ready);
		check((await within(30_000, "increment", t.conn.increment(1))) === 1, "first increment");
		await received("changed(1)", t.events.changed, (v) => v === 1);
		await within(30_000, "nap", t.conn.nap());
		await waitFor("the actor asleep (nap)", async () => isSleeping(await getActor(actorId)), { timeoutMs: 20_000, intervalMs: 50 });
		check(t.closes === 0 && t.conn.connStatus === "connected", `the connection closed while the actor slept (closes ${t.closes}, status ${t.conn.connStatus})`);
		// The next action over the same connection wakes it; state, connection state and
		// subscriptions survived.
		let woke;
		try {
			woke = await race(15_000, "increment after the nap", t.conn.increment(1));
		} catch (e) {
			if (e instanceof ScenarioError) woke = e.message;
			else fail(`increment after the nap: ${errCode(e)} ${e.message}`);
		}
		if (!expect(`${id}:wake-by-message`, woke === 2, `an action over the hibernated connection → ${typeof woke === "string" ? woke : show(woke)}`)) {
			return "an action over the hibernated connection did not wake the actor (known)";
		}
		await received("changed(2) after the wake", t.events.changed, (v) => v === 2);
		const i1 = await within(30_000, "info", t.conn.info());
		check(
			same(i1, { count: 2, wakes: 2, sleeps: 1, conn: { name: `h-${enc}`, actions: 2 } }),
			`after the nap: ${show(i1)}`,
		);
		// Idle sleep (1 s) with the connection open; an HTTP action from elsewhere wakes it and
		// its broadcast reaches the hibernated connection.
		let idle = true;
		try {
			await waitFor("the actor asleep (idle)", async () => isSleeping(await getActor(actorId)), { timeoutMs: 20_000, intervalMs: 50 });
		} catch (e) {
			if (e instanceof ScenarioError) idle = false;
			else throw e;
		}
		if (!expect(`${id}:idle-sleep`, idle, "the actor sleeps on its idle timer with the connection open")) {
			return "the connection stayed open through a nap; the actor did not sleep on its idle timer with it open (known)";
		}
		check((await within(60_000, "increment over HTTP", c.sleepy.getForId(actorId).increment(10))) === 12, "increment over HTTP");
		await received("changed(12) after the HTTP wake", t.events.changed, (v) => v === 12);
		const i2 = await within(30_000, "info after the idle sleep", t.conn.info());
		check(
			same(i2, { count: 12, wakes: 3, sleeps: 2, conn: { name: `h-${enc}`, actions: 2 } }),
			`after the idle sleep: ${show(i2)}`,
		);
		check(t.closes === 0 && t.opens === 1, `the connection was reopened (opens ${t.opens}, closes ${t.closes})`);
		return "the connection stayed open through a nap and an idle sleep; actions and events after each wake; state, connection state and subscription survived";
	} finally {
		await disposeConn(t.conn);
	}
});

perEncoding("schedule", async (enc, id) => {
	const h = client(enc).timer.getOrCreate([key(id)]);
	const t = track(h.connect(), ["bumped"]);
	try {
		await within(60_000, "connection ready", t.conn.ready);
		const start = Date.now();
		const scheduleId = await within(30_000, "bumpLater", t.conn.bumpLater(300, 5));
		check(typeof scheduleId === "string" || scheduleId === undefined || scheduleId === null, `bumpLater returned ${show(scheduleId)}`);
		await received("bumped(5)", t.events.bumped, (v) => v === 5, 10_000);
		const took = Date.now() - start;
		check(took >= 250, `the scheduled action ran ${took} ms after it was scheduled 300 ms ahead`);
		check((await within(30_000, "getCount", h.getCount())) === 5, "state after the scheduled action");
		return `scheduled action ran ${took} ms later; its event and state change were seen`;
	} finally {
		await disposeConn(t.conn);
	}
});

perEncoding("destroy", async (enc, id) => {
	const c = client(enc);
	const h = c.values.getOrCreate([key(id)], { createWithInput: { label: "old", start: 100, tags: [] } });
	check((await within(60_000, "increment", h.increment(1))) === 101, "increment");
	const oldId = await within(30_000, "resolve", h.resolve());
	const out = await within(30_000, "destroy", h.destroy());
	check(out === undefined || out === null, `destroy returned ${show(out)}`);
	const first = await within(30_000, "identity right after destroy", c.values.getOrCreate([key(id)]).identity());
	expect(`${id}:fresh-at-once`, first.actorId !== oldId, `the first getOrCreate after destroy() reached the destroyed actor (count ${first.count})`);
	let attempts = 1;
	const fresh =
		first.actorId !== oldId
			? first
			: await waitFor(
					"getOrCreate to give a fresh actor",
					async () => {
						attempts++;
						const ident = await race(30_000, "identity", c.values.getOrCreate([key(id)]).identity());
						return ident.actorId !== oldId ? ident : false;
					},
					{ timeoutMs: 20_000, intervalMs: 50 },
				);
	check(fresh.count === 0, `the fresh actor's count is ${fresh.count}`);
	const gone = await rejection(30_000, "getForId(destroyed)", c.values.getForId(oldId).identity());
	check(errCode(gone) === "actor.not_found", `getForId of the destroyed actor → ${errCode(gone)}`);
	return `destroyed from an action; getOrCreate gave a fresh actor at attempt ${attempts}; the old id → actor.not_found`;
});

testCase("concurrency", async () => {
	const h = client("bare").faulty.getOrCreate([key("concurrency")]);
	const conn = h.connect();
	try {
		await within(60_000, "connection ready", conn.ready);
		const order = [];
		const slow = conn.slow(400).then(() => order.push("slow"));
		const fast = conn.length("abc").then(() => order.push("fast"));
		await within(30_000, "both actions", Promise.all([slow, fast]));
		expect("concurrency:actions-interleave", order[0] === "fast", `answers over one connection came in the order ${order.join(", ")} (slow(400) sent first)`);
		return `answers in the order ${order.join(", ")}`;
	} finally {
		await disposeConn(conn);
	}
});

testCase("raw-fetch", async () => {
	const h = client("bare").raw.getOrCreate([key("fetch")]);
	const res = await within(60_000, "fetch", h.fetch("/hello/world?x=1&y=2", { method: "PUT", headers: { "x-custom": "c1", "content-type": "text/plain" }, body: "payload" }));
	const j = await res.json();
	check(res.status === 201, `status ${res.status}`);
	check(res.headers.get("x-echo") === "yes", `x-echo header ${res.headers.get("x-echo")}`);
	const actorId = await within(30_000, "resolve", h.resolve());
	check(
		res.headers.get("x-rivet-actor") === actorId && res.headers.get("x-rivet-actor-key") === key("fetch") && res.headers.get("x-rivet-actor-generation") === "1",
		`actor headers on a raw response: x-rivet-actor ${res.headers.get("x-rivet-actor")}, -key ${res.headers.get("x-rivet-actor-key")}, -generation ${res.headers.get("x-rivet-actor-generation")}`,
	);
	check(
		j.method === "PUT" && j.path === "/hello/world" && j.query === "x=1&y=2" && j.custom === "c1" && j.body === "payload" && j.contentType === "text/plain",
		`on_request saw ${JSON.stringify(j)}`,
	);
	const teapot = await within(30_000, "fetch 418", h.fetch("status/418"));
	check(teapot.status === 418 && (await teapot.text()) === "teapot" && teapot.headers.get("x-echo-status") === "418", `418 → ${teapot.status}`);
	// Rust: `None` from on_request; TypeScript: a handler returning nothing.
	const missing = await within(30_000, "fetch missing", h.fetch("/missing"));
	const mt = await missing.text();
	expect("raw-fetch:none-is-404", missing.status === 404 && mt === "", `on_request returning None → ${missing.status} ${mt.slice(0, 200)}`);
	const plainHandle = client("bare").plain.getOrCreate([key("fetch")]);
	await within(60_000, "plain actor", plainHandle.ping());
	const started = Date.now();
	const plain = await within(60_000, "fetch without a handler", plainHandle.fetch("/x"));
	const pt = await plain.text();
	const took = Date.now() - started;
	// An actor.not_found body would send the client re-resolving for seconds first.
	check(plain.status === 404 && pt === "" && took < 3_000, `no on_request → ${plain.status} ${JSON.stringify(pt.slice(0, 200))} after ${took} ms`);
	return `method/path/query/headers/body reach on_request, status 201, headers and x-rivet-actor* come back; 418 passes through; None → ${missing.status}; no handler → empty 404 in ${took} ms`;
});

testCase("raw-websocket", async () => {
	const h = client("bare").raw.getOrCreate([key("ws")]);
	const ws = await within(60_000, "webSocket", h.webSocket("/chat/room?x=1"));
	const socket = collectSocket(ws);
	const { closed } = socket;
	const next = (what, pred) => socket.next(what, pred);
	try {
		await waitFor("raw socket open", () => ws.readyState === 1 || (socket.closeInfo && fail(`closed ${JSON.stringify(socket.closeInfo)}`)), { timeoutMs: 30_000, intervalMs: 10 });
		const hello = await next("greeting", (m) => typeof m === "string" && m.startsWith("hello "));
		check(hello === "hello /websocket/chat/room?x=1", `greeting ${JSON.stringify(hello)}`);
		ws.send("ping");
		await next("text echo", (m) => m === "echo:ping");
		ws.send(new Uint8Array([7, 8, 9, 0]));
		const bin = await next("binary echo", (m) => typeof m !== "string");
		check([...new Uint8Array(bin)].join() === "7,8,9,0", `binary echo ${[...new Uint8Array(bin)]}`);
		ws.close(1000, "bye");
		const c = await race(15_000, "close", closed);
		check(c.code === 1000, `close ${c.code} ${c.reason}`);
	} finally {
		if (ws.readyState < 2) ws.close();
	}
	// No on_websocket: the Rust SDK closes the socket (1000) at once.
	const plain = await within(60_000, "webSocket without a handler", client("bare").plain.getOrCreate([key("ws")]).webSocket("/x"));
	let pc;
	try {
		pc = await race(5_000, "close without a handler", new Promise((resolve) => plain.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason }))));
	} catch (e) {
		if (!(e instanceof ScenarioError)) throw e;
		pc = { code: "none", reason: "still open after 5 s" };
	} finally {
		if (plain.readyState < 2) plain.close();
	}
	expect("raw-websocket:no-handler-closes", pc.code === 1000, `a socket to an actor without on_websocket: close ${pc.code} ${JSON.stringify(pc.reason)}`);
	return `greeting with the /websocket/… path, text and binary echo, client close 1000; no handler → close ${pc.code} ${JSON.stringify(pc.reason)}`;
});

// ---------------------------------------------------------------------------------------------
// The TypeScript mirror (--target ts)

async function startMirror() {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rivetkit-mirror-"));
	eventsFile = path.join(tmp, "events.jsonl");
	const put = await rest("PUT", `/runner-configs/${POOL}?namespace=${NS}`, { datacenters: { default: { normal: {} } } });
	check(put.status === 200, `runner config ${POOL}: ${put.status} ${put.text}`);
	const storage = path.join(tmp, "storage");
	fs.mkdirSync(storage);
	const env = hostEnvironment({ endpoint: base, namespace: NS, pool: POOL, storage, eventsFile, overrides: { RIVET_LOG_LEVEL: "warn" } });
	const logFile = path.join(tmp, "host.log");
	const host = procs.start("mirror host", process.execPath, ["--import", "tsx", path.join(compatDir, "rust-actors/mirror.ts")], { env, cwd: compatDir, logFile });
	await waitFor(
		"the mirror host's envoy and actor names",
		async () => {
			if (host.exitCode !== null) fail(`mirror host exited with ${host.exitCode}\n${tail(logFile)}`);
			const e = await rest("GET", `/envoys?namespace=${NS}&name=${POOL}`);
			const names = await rest("GET", `/actors/names?namespace=${NS}`);
			return (e.json?.envoys ?? []).some((x) => x.metadata != null) && names.json?.names?.timer;
		},
		{ timeoutMs: 120_000 },
	);
	return logFile;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
	if (opts.only) {
		const unknown = opts.only.filter((n) => !cases.some((c) => c.name === n));
		if (unknown.length) usage(`--only: unknown case(s) ${unknown.join(",")}; known: ${cases.map((c) => c.name).join(",")}`);
	}
	console.log(`# rust-actors suite: client ${opts.client}, target ${opts.target}, endpoint ${base}, encodings ${opts.encodings.join(",")}, run ${RUN}`);
	const hostLog = opts.target === "ts" && !opts.mirrorRunning ? await startMirror() : null;
	clientModule = await import(CLIENT_MODULE[opts.client]);
	const results = { ok: 0, fail: 0 };
	const failed = [];
	for (const c of cases) {
		if (opts.only && !opts.only.includes(c.name)) continue;
		const started = Date.now();
		try {
			const detail = await race(120_000, c.name, c.fn());
			console.log(`ok ${c.name} (${((Date.now() - started) / 1000).toFixed(1)} s)${detail ? ` — ${detail}` : ""}`);
			results.ok++;
		} catch (e) {
			const msg = e instanceof ScenarioError ? e.message : `${e?.group ? `${errCode(e)}: ` : ""}${e?.stack ?? e}`;
			console.log(`FAIL ${c.name}: ${msg}`);
			results.fail++;
			failed.push(c.name);
		}
	}
	for (const cl of clients.values()) await race(10_000, "client dispose", cl.dispose()).catch(() => {});
	if (knownSeen.length) {
		console.log(`!!! ${knownSeen.length} KNOWN DIFFERENCE(S) of the ${opts.target} actors (listed in KNOWN, not failures):`);
		for (const k of knownSeen) console.log(`KNOWN ${k}`);
	}
	for (const u of unexpectedPasses) {
		console.log(`FAIL unexpected pass of a known difference: ${u}; remove it from KNOWN`);
		results.fail++;
		failed.push("known-list");
	}
	const total = ((Date.now() - t0) / 1000).toFixed(1);
	console.log(
		`summary: ${results.ok} ok, ${results.fail} failed, ${knownSeen.length} known differences (${total} s)${failed.length ? ` — failed: ${[...new Set(failed)].join(",")}` : ""}`,
	);
	if (results.fail && hostLog) console.log(`  mirror host log:\n${tail(hostLog, 30)}`);
	return results.fail ? 1 : 0;
}

main().then(
	(code) => shutdown(code),
	(e) => {
		console.log(`FAIL setup: ${e instanceof ScenarioError ? e.message : (e?.stack ?? e)}`);
		return shutdown(1);
	},
);
