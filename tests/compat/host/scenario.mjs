#!/usr/bin/env node
// Compatibility scenario: runs the real npm rivetkit actor host (2.3.19, or 2.3.11 for envoy
// protocol v6) against an engine binary and checks the engine's behaviour through its REST API.
//
//   node host/scenario.mjs --engine-bin <path> [--host-version 2.3.19|2.3.11] [--with-gateway]
//                          [--extra-config <json>] [--host-env KEY=VALUE]... [--keep] [--verbose]
//
// --extra-config is deep-merged into the engine config file. The reference engine sheds workflow
// admission when the machine's CPU is busy (actor creates then time out with 500 after 30 s), so
// on a shared machine run it with
//   --extra-config '{"runtime":{"worker_load_shedding_curve":[[0,1000],[1000,999]]}}'
// which keeps every workflow eligible whatever the CPU usage.
// --host-env overrides the host's environment (e.g. RIVET_RUN_SERVICES=1 to see the check that the
// host starts no process of its own fail). --keep leaves the temp dir (logs, data) in place.
//
// The engine gets a fresh data dir and free ports; the host (host/registry.ts, run with tsx) is
// attached to it through RIVET_ENDPOINT. Every step prints `ok <step> ...`; the first failing
// check prints `FAIL <step>: <reason>` plus the tails of the engine/host logs and exits 1. All
// waits poll a condition with a deadline. Child processes are killed on every exit path.
//
// Without the gateway nothing an actor stores is visible over REST (rivetkit 2.3.x keeps state
// and `c.kv` in the actor's SQLite database), so the actors append their lifecycle events, with
// their state, to a JSON-lines file (COMPAT_EVENTS_FILE, see host/actors.ts) that this script
// reads. REST-only wakes use alarms (the REST API has no "wake" route). `--with-gateway` adds
// checks through the npm client (`rivetkit/client`): actions, events, and state surviving sleep,
// engine restart and kill -9 of the host.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
	CLIENT_MODULE as CLIENT_MODULES,
	HOST_ENTRY as HOST_ENTRIES,
	HOST_PROTOCOL as HOST_PROTOCOLS,
	Processes,
	ScenarioError,
	cborBase64,
	check,
	compatDir,
	descendants,
	fail,
	freePorts,
	hostEnvironment,
	processesWithEnvMarker,
	reexecWithWebSocket,
	restCall,
	sleepMs,
	tail,
	waitFor,
	writeEngineConfig,
} from "./harness.mjs";

// ---------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
	const opts = {
		engineBin: undefined,
		hostVersion: "2.3.19",
		withGateway: false,
		extraConfig: {},
		hostEnv: {},
		keep: false,
		verbose: false,
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--engine-bin") opts.engineBin = argv[++i];
		else if (a === "--host-version") opts.hostVersion = argv[++i];
		else if (a === "--with-gateway") opts.withGateway = true;
		else if (a === "--extra-config") {
			try {
				opts.extraConfig = JSON.parse(argv[++i]);
			} catch (e) {
				console.error(`--extra-config: invalid JSON: ${e.message}`);
				process.exit(2);
			}
		} else if (a === "--host-env") {
			const kv = argv[++i] ?? "";
			const eq = kv.indexOf("=");
			if (eq <= 0) {
				console.error(`--host-env expects KEY=VALUE, got ${kv}`);
				process.exit(2);
			}
			opts.hostEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
		} else if (a === "--keep") opts.keep = true;
		else if (a === "--verbose") opts.verbose = true;
		else {
			console.error(`unknown argument ${a}`);
			process.exit(2);
		}
	}
	if (!opts.engineBin) {
		console.error(
			"usage: node host/scenario.mjs --engine-bin <path> [--host-version 2.3.19|2.3.11] [--with-gateway] [--extra-config <json>] [--host-env KEY=VALUE]... [--keep] [--verbose]",
		);
		process.exit(2);
	}
	if (!["2.3.19", "2.3.11"].includes(opts.hostVersion)) {
		console.error(`--host-version must be 2.3.19 or 2.3.11, got ${opts.hostVersion}`);
		process.exit(2);
	}
	opts.engineBin = path.resolve(opts.engineBin);
	return opts;
}

const opts = parseArgs(process.argv.slice(2));

// The npm client needs a global WebSocket for connections (events); Node 20 only has it behind
// a flag. Re-run this script with the flag rather than adding the `ws` package.
if (opts.withGateway) await reexecWithWebSocket(import.meta.url);

const HOST_ENTRY = HOST_ENTRIES[opts.hostVersion];
const CLIENT_MODULE = CLIENT_MODULES[opts.hostVersion];
const HOST_PROTOCOL = HOST_PROTOCOLS[opts.hostVersion];
const NS = "default";
const POOL = "default";

// ---------------------------------------------------------------------------------------------
// Output, failure, cleanup

const t0 = Date.now();
const timings = {};
let currentStep = "setup";
let tmp;

function elapsed() {
	return ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
}

function ok(step, detail = "") {
	console.log(`ok ${step}${detail ? ` — ${detail}` : ""}`);
}

function info(msg) {
	if (opts.verbose) console.log(`  [${elapsed()}s] ${msg}`);
}

const procs = new Processes({ info, eventsFile: () => eventsFile });

process.on("exit", () => {
	procs.killAll();
	if (tmp && !opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
});
/** Kills the children and waits for them to be reaped (a child left unreaped becomes a zombie). */
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
// Helpers: polling, REST, processes

let base; // http://127.0.0.1:<guard>

async function rest(method, pathAndQuery, body) {
	return restCall(base, method, pathAndQuery, body);
}

/** A REST call that must answer 200; returns the JSON body. */
async function rest200(method, pathAndQuery, body) {
	const r = await rest(method, pathAndQuery, body);
	check(r.status === 200, `${method} ${pathAndQuery} → ${r.status} ${r.text.slice(0, 300)}`);
	return r.json;
}

const q = (extra = "") => `?namespace=${NS}${extra}`;

async function getActor(id) {
	const body = await rest200("GET", `/actors${q(`&actor_ids=${id}`)}`);
	check(Array.isArray(body.actors), `GET /actors?actor_ids: no actors array: ${JSON.stringify(body)}`);
	return body.actors.find((a) => a.actor_id === id);
}

function createBody(name, key, input) {
	const b = { name, key, runner_name_selector: POOL, crash_policy: "sleep" };
	if (input !== undefined) b.input = cborBase64(input);
	return b;
}

function actorState(a) {
	if (!a) return "missing";
	if (a.destroy_ts) return "destroyed";
	if (a.connectable_ts) return "running";
	if (a.sleep_ts) return "sleeping";
	return "starting";
}

function describe(a) {
	if (!a) return "missing";
	const { actor_id, name, key, start_ts, connectable_ts, sleep_ts, reschedule_ts, destroy_ts, error } = a;
	return JSON.stringify({ actor_id, name, key, state: actorState(a), start_ts, connectable_ts, sleep_ts, reschedule_ts, destroy_ts, error });
}

async function waitActor(id, what, pred, timeoutMs = 30_000, intervalMs = 100) {
	let last;
	try {
		return await waitFor(
			`actor ${id} ${what}`,
			async () => {
				last = await getActor(id);
				return last && pred(last) ? last : false;
			},
			{ timeoutMs, intervalMs },
		);
	} catch (e) {
		if (e instanceof ScenarioError) fail(`${e.message}; actor now: ${describe(last)}`);
		throw e;
	}
}

/**
 * Polls the given actors every 250 ms in the background and records every change of
 * (state, error, reschedule_ts), with the time relative to `since`. For the report only.
 */
function watchActors(labels, since) {
	const ids = Object.keys(labels);
	const log = [];
	const last = new Map();
	let stopped = false;
	const loop = (async () => {
		while (!stopped) {
			try {
				const body = await rest200("GET", `/actors${q(`&actor_ids=${ids.join(",")}`)}`);
				for (const a of body.actors) {
					const entry = {
						state: actorState(a),
						error: a.error ?? null,
						reschedule_ts: a.reschedule_ts,
						connectable_ts: a.connectable_ts,
					};
					const sig = JSON.stringify(entry);
					if (last.get(a.actor_id) !== sig) {
						last.set(a.actor_id, sig);
						const rec = { t: Date.now() - since, actor: labels[a.actor_id], ...entry };
						log.push(rec);
						info(`watch +${rec.t} ms ${rec.actor}: ${rec.state}${rec.error ? ` error=${JSON.stringify(rec.error)}` : ""}${rec.reschedule_ts ? ` reschedule_ts=+${rec.reschedule_ts - since}` : ""}`);
					}
				}
			} catch (e) {
				info(`watch: ${e.message}`);
			}
			await sleepMs(250);
		}
	})();
	return {
		log,
		async stop() {
			stopped = true;
			await loop;
			return log;
		},
	};
}

const isRunning = (a) => !!a.connectable_ts && !a.sleep_ts && !a.destroy_ts;
const isSleeping = (a) => !!a.sleep_ts && !a.connectable_ts && !a.destroy_ts;

function startChild(label, cmd, args, options) {
	return procs.start(label, cmd, args, options);
}

async function stopChild(child, signal, timeoutMs) {
	return procs.stop(child, signal, timeoutMs);
}

function processesWithOurEnv(exceptPid) {
	return processesWithEnvMarker(eventsFile, exceptPid);
}

/** Fails if the host started an engine (or the Services helper, or anything else) of its own. */
function checkHostSpawnedNothing(host, hostStorage) {
	const spawned = descendants(host.pid).filter((p) => /rivet-engine|rivet-services|engine-cli/.test(p.cmd));
	check(spawned.length === 0, `host process ${host.pid} spawned ${JSON.stringify(spawned)}`);
	// tsx runs esbuild as a compile service next to the host on a cold cache; it is the test's
	// TypeScript loader, not something rivetkit started.
	const inherited = processesWithOurEnv(host.pid).filter((p) => !/\/esbuild(\s|$)/.test(p.cmd));
	check(inherited.length === 0, `processes started by the host are running: ${JSON.stringify(inherited)}`);
	const engineDir = path.join(hostStorage, ".rivetkit", "var", "engine");
	check(!fs.existsSync(engineDir), `host created local engine data at ${engineDir}`);
}

// ---------------------------------------------------------------------------------------------
// Actor event log written by host/actors.ts

let eventsFile;

function readEvents() {
	let text;
	try {
		text = fs.readFileSync(eventsFile, "utf8");
	} catch {
		return [];
	}
	const out = [];
	for (const line of text.split("\n")) {
		if (!line.trim()) continue;
		try {
			out.push(JSON.parse(line));
		} catch {}
	}
	return out;
}

function eventsOf(actorId, event) {
	return readEvents().filter((e) => e.actorId === actorId && (event === undefined || e.event === event));
}

/** Waits for the n-th (1-based) event of this kind for this actor. */
async function waitEvent(actorId, event, n = 1, timeoutMs = 30_000) {
	return waitFor(
		`event "${event}" #${n} from actor ${actorId} (have ${eventsOf(actorId, event).length})`,
		() => eventsOf(actorId, event)[n - 1],
		{ timeoutMs, intervalMs: 100 },
	);
}

// ---------------------------------------------------------------------------------------------
// Engine and host lifecycle

let engine;
let host;
let engineConfigPath;
let ports;
let hostStorage;
let hostLogIndex = 0;

async function startEngine(label) {
	engine = startChild(label, opts.engineBin, ["start", "--config", engineConfigPath], {
		env: { ...process.env, RUST_BACKTRACE: "0" },
		cwd: tmp,
		logFile: path.join(tmp, "engine.log"),
	});
	const start = Date.now();
	await waitFor(
		"engine GET /health",
		async () => {
			if (engine.spawnError) fail(`cannot start ${opts.engineBin}: ${engine.spawnError.message}`);
			if (engine.exitCode !== null) fail(`engine exited with code ${engine.exitCode}\n${tail(path.join(tmp, "engine.log"))}`);
			const r = await rest("GET", "/health");
			return r.status === 200 && r.json?.status === "ok" && r.json?.runtime === "engine" ? r.json : false;
		},
		{ timeoutMs: 60_000, intervalMs: 100 },
	);
	return Date.now() - start;
}

function startHost() {
	hostLogIndex += 1;
	const env = hostEnvironment({
		endpoint: base,
		namespace: NS,
		pool: POOL,
		storage: hostStorage,
		eventsFile,
		overrides: opts.hostEnv,
	});
	host = startChild(`host#${hostLogIndex}`, process.execPath, ["--import", "tsx", HOST_ENTRY], {
		env,
		cwd: compatDir,
		logFile: path.join(tmp, `host${hostLogIndex}.log`),
	});
	return host;
}

async function listEnvoys() {
	const body = await rest200("GET", `/envoys${q(`&name=${POOL}`)}`);
	check(Array.isArray(body.envoys), `GET /envoys: no envoys array: ${JSON.stringify(body)}`);
	return body.envoys;
}

/** Waits until an envoy other than `exceptKeys` is listed; returns it. */
async function waitNewEnvoy(exceptKeys, timeoutMs = 60_000) {
	return waitFor(
		"the host's envoy in GET /envoys",
		async () => {
			if (host.exitCode !== null) fail(`host exited with code ${host.exitCode}\n${tail(path.join(tmp, `host${hostLogIndex}.log`))}`);
			const envoys = await listEnvoys();
			const e = envoys.find((x) => !exceptKeys.includes(x.envoy_key));
			// The reference lists a connecting envoy before its Metadata message arrived
			// (`metadata: null`); the host is only usable once the metadata is there.
			if (e && e.metadata == null) {
				if (!timings.envoyListedWithoutMetadata) info(`envoy ${e.envoy_key} listed with metadata null`);
				timings.envoyListedWithoutMetadata = true;
				return false;
			}
			return e;
		},
		{ timeoutMs, intervalMs: 100 },
	);
}

// ---------------------------------------------------------------------------------------------
// Scenario

async function step(name, fn) {
	currentStep = name;
	const started = Date.now();
	const detail = await fn();
	info(`${name} took ${Date.now() - started} ms`);
	ok(name, detail);
}

async function createAndWaitRunning(label, method, body) {
	const t = Date.now();
	const r = await rest(method, `/actors${q()}`, body);
	const hint =
		r.status === 500 && Date.now() - t > 25_000
			? " (after ~30 s: the reference engine sheds workflows when the machine's CPU is busy; see --extra-config in the header)"
			: "";
	check(r.status === 200, `${method} /actors ${JSON.stringify(body)} → ${r.status} ${r.text.slice(0, 300)}${hint}`);
	const actor = r.json.actor;
	check(actor && typeof actor.actor_id === "string", `${method} /actors: no actor in ${r.text.slice(0, 300)}`);
	check(actor.connectable_ts === null, `${method} /actors answered an already-running actor: ${describe(actor)}`);
	const running = await waitActor(actor.actor_id, "running", isRunning);
	const ms = Date.now() - t;
	(timings.createToRunningMs ??= []).push(ms);
	info(`${label} ${actor.actor_id} running after ${ms} ms (create_ts→connectable_ts ${running.connectable_ts - running.create_ts} ms)`);
	return { actor, running, response: r.json };
}

async function main() {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rivet-compat-host-"));
	eventsFile = path.join(tmp, "actor-events.jsonl");
	hostStorage = path.join(tmp, "host-storage");
	fs.mkdirSync(hostStorage);
	ports = await freePorts(3);
	const [guard] = ports;
	base = `http://127.0.0.1:${guard}`;
	engineConfigPath = writeEngineConfig(tmp, ports, opts.extraConfig);
	console.log(`# host ${opts.hostVersion}, engine ${opts.engineBin}, ports ${ports.join("/")}, dir ${tmp}`);

	let gw; // gateway helpers (--with-gateway)

	await step("engine-start", async () => {
		const ms = await startEngine("engine");
		timings.engineStartMs = ms;
		const md = await rest200("GET", "/metadata");
		return `health after ${ms} ms, metadata version ${md.version}, envoy_protocol_version ${md.envoy_protocol_version}`;
	});

	let envoy;
	await step("host-attach", async () => {
		const t = Date.now();
		startHost();
		envoy = await waitNewEnvoy([]);
		timings.hostAttachMs = Date.now() - t;
		check(
			envoy.metadata?.rivetkit?.version === opts.hostVersion,
			`envoy metadata ${JSON.stringify(envoy.metadata)} does not name rivetkit ${opts.hostVersion}`,
		);
		check(envoy.pool_name === POOL, `envoy pool_name ${envoy.pool_name}`);
		checkHostSpawnedNothing(host, hostStorage);
		return `envoy ${envoy.envoy_key} listed after ${timings.hostAttachMs} ms; host spawned no engine/services`;
	});

	await step("runner-config", async () => {
		const body = await rest200("GET", `/runner-configs${q()}`);
		const cfg = body.runner_configs?.[POOL]?.datacenters?.default;
		check(cfg && cfg.normal, `no normal runner config for pool ${POOL}: ${JSON.stringify(body)}`);
		check(
			cfg.protocol_version === HOST_PROTOCOL,
			`runner config protocol_version ${cfg.protocol_version}, expected ${HOST_PROTOCOL}`,
		);
		return `pool ${POOL}: normal, protocol_version ${cfg.protocol_version}`;
	});

	await step("actor-names", async () => {
		const body = await rest200("GET", `/actors/names${q()}`);
		const names = Object.keys(body.names ?? {}).sort();
		for (const n of ["alarmer", "chatRoom", "counter"]) check(names.includes(n), `GET /actors/names lacks ${n}: ${JSON.stringify(body)}`);
		return names.join(",");
	});

	// PUT /actors (get or create) with input; the input reaches createState.
	let counterId;
	await step("put-get-or-create", async () => {
		const { actor, response } = await createAndWaitRunning("counter c1", "PUT", createBody("counter", "c1", { start: 5 }));
		check(response.created === true, `first PUT /actors: created=${response.created}`);
		counterId = actor.actor_id;
		const wake = await waitEvent(counterId, "wake");
		check(wake.state.count === 5 && wake.state.input?.start === 5, `counter did not get its input: ${JSON.stringify(wake)}`);
		check(wake.wakes === 1, `first wake has wakes=${wake.wakes}`);
		const again = await rest200("PUT", `/actors${q()}`, createBody("counter", "c1", { start: 99 }));
		check(again.created === false && again.actor.actor_id === counterId, `second PUT /actors: ${JSON.stringify(again)}`);
		return `${counterId} running, input delivered, second PUT created=false`;
	});

	let roomId;
	await step("post-create", async () => {
		const { actor } = await createAndWaitRunning("chatRoom room1", "POST", createBody("chatRoom", "room1"));
		roomId = actor.actor_id;
		const dup = await rest("POST", `/actors${q()}`, createBody("chatRoom", "room1"));
		// The reference answers a duplicate key with either `actor.duplicate_key` (metadata
		// existing_actor_id) or, racily, `actor.destroyed_during_creation` (its create workflow
		// for the new id found the key taken and destroyed itself). Accept both.
		const dupOk =
			dup.status === 400 &&
			dup.json?.group === "actor" &&
			((dup.json?.code === "duplicate_key" && dup.json?.metadata?.existing_actor_id === roomId) ||
				dup.json?.code === "destroyed_during_creation");
		check(dupOk, `duplicate POST /actors → ${dup.status} ${dup.text.slice(0, 300)}`);
		timings.duplicatePostCode = dup.json.code;
		const listed = await rest200("GET", `/actors${q("&name=chatRoom")}`);
		check(
			listed.actors.length === 1 && listed.actors[0].actor_id === roomId,
			`after the duplicate POST, GET /actors?name=chatRoom lists ${JSON.stringify(listed.actors.map(describe))}`,
		);
		await waitEvent(roomId, "wake");
		return `${roomId} running; duplicate key → 400 actor.${dup.json.code}`;
	});

	await step("list-actors", async () => {
		const byKey = await rest200("GET", `/actors${q("&name=counter&key=c1")}`);
		check(byKey.actors.length === 1 && byKey.actors[0].actor_id === counterId, `GET by key: ${JSON.stringify(byKey)}`);
		const byName = await rest200("GET", `/actors${q("&name=chatRoom")}`);
		check(byName.actors.some((a) => a.actor_id === roomId), `GET by name: ${JSON.stringify(byName)}`);
		const byIds = await rest200("GET", `/actors${q(`&actor_ids=${counterId},${roomId}`)}`);
		check(byIds.actors.length === 2, `GET by ids: ${JSON.stringify(byIds)}`);
		return "by key, by name, by ids";
	});

	if (opts.withGateway) {
		gw = await setupGateway();
		await step("gateway-actions", async () => {
			const v = await gw.counter("g1", { start: 10 }).increment(1);
			check(v === 11, `increment(1) on a counter created with start 10 returned ${v}`);
			const v2 = await gw.counter("g1").getCount();
			check(v2 === 11, `getCount returned ${v2}`);
			return "counter g1 = 11";
		});
		await step("gateway-events", async () => {
			const r = await gw.chatEvent("room1", "alice", "hello");
			const hist = await gw.room("room1").getHistory();
			check(hist.length === 1 && hist[0].text === "hello", `history ${JSON.stringify(hist)}`);
			return `newMessage received after ${r} ms, history has 1 message`;
		});
	}

	await step("sleep", async () => {
		const t = Date.now();
		const r = await rest200("POST", `/actors/${counterId}/sleep${q()}`, {});
		check(JSON.stringify(r) === "{}", `POST sleep answered ${JSON.stringify(r)}`);
		const a = await waitActor(counterId, "sleeping", isSleeping);
		timings.sleepToSleepTsMs = Date.now() - t;
		await waitEvent(counterId, "sleep");
		return `sleep_ts set, connectable_ts null after ${timings.sleepToSleepTsMs} ms (sleep_ts=${a.sleep_ts})`;
	});

	if (opts.withGateway) {
		await step("gateway-wake-after-sleep", async () => {
			const gid = await gw.counter("g1").resolve();
			await rest200("POST", `/actors/${gid}/sleep${q()}`, {});
			await waitActor(gid, "sleeping", isSleeping);
			const t = Date.now();
			const v = await gw.retry("getCount after sleep", () => gw.counter("g1").getCount());
			check(v === 11, `counter g1 after sleep: ${v}, expected 11`);
			timings.gatewayWakeMs = Date.now() - t;
			const wakes = eventsOf(gid, "wake");
			check(wakes.length >= 2 && wakes.at(-1).wakes === wakes.length, `wake events ${JSON.stringify(wakes.map((w) => w.wakes))}`);
			return `woken through the gateway in ${timings.gatewayWakeMs} ms, count still 11`;
		});
	}

	// An alarm armed while going to sleep wakes the actor without any request.
	await step("alarm-wake", async () => {
		const delayMs = 3000;
		const { actor } = await createAndWaitRunning("alarmer a1", "POST", createBody("alarmer", "a1", { delayMs, armOn: "sleep", arms: 1 }));
		const id = actor.actor_id;
		await rest200("POST", `/actors/${id}/sleep${q()}`, {});
		const slept = await waitActor(id, "sleeping", isSleeping);
		const armed = await waitEvent(id, "armed");
		const woke = await waitActor(id, "woken by its alarm", isRunning, delayMs + 30_000, 50);
		const fired = await waitEvent(id, "fired");
		const wake2 = eventsOf(id, "wake")[1];
		check(wake2 && wake2.wakes === 2, `second wake event: ${JSON.stringify(wake2)}`);
		check(fired.state.fired === 1, `fired state ${JSON.stringify(fired.state)}`);
		timings.alarmLatencyMs = {
			dueToConnectable: woke.connectable_ts - armed.dueAt,
			dueToWakeHook: wake2.ts - armed.dueAt,
			dueToFire: fired.ts - armed.dueAt,
		};
		return `slept at ${slept.sleep_ts}, alarm due ${armed.dueAt}, connectable ${woke.connectable_ts} (+${timings.alarmLatencyMs.dueToConnectable} ms), fired +${timings.alarmLatencyMs.dueToFire} ms; KV wake counter 2`;
	});

	// ---- engine restart ---------------------------------------------------------------------
	// An alarm that falls due while the engine is down (or just after) must still wake its actor.
	let restartAlarmId;
	let restartAlarm;
	await step("prepare-restart", async () => {
		const { actor } = await createAndWaitRunning("alarmer r1", "POST", createBody("alarmer", "r1", { delayMs: 4000, armOn: "sleep", arms: 1 }));
		restartAlarmId = actor.actor_id;
		await rest200("POST", `/actors/${restartAlarmId}/sleep${q()}`, {});
		await waitActor(restartAlarmId, "sleeping", isSleeping);
		restartAlarm = await waitEvent(restartAlarmId, "armed");
		return `alarmer r1 ${restartAlarmId} asleep with an alarm due at ${restartAlarm.dueAt}`;
	});

	if (opts.withGateway) {
		await step("gateway-before-restart", async () => {
			const v = await gw.counter("g1").increment(1);
			check(v === 12, `increment before restart returned ${v}`);
			return "counter g1 = 12";
		});
	}

	const roomBefore = await getActor(roomId);
	const roomWakesBefore = eventsOf(roomId, "wake").length;
	await step("engine-restart", async () => {
		const stopMs = await stopChild(engine, "SIGTERM", 120_000);
		timings.engineStopMs = stopMs;
		const downAt = Date.now();
		check((await listEnvoysOrDown()) === "down", "engine still answers after exit");
		const upMs = await startEngine("engine#2");
		timings.engineRestartUpMs = upMs;
		const tUp = Date.now();
		const again = await waitFor(
			`envoy ${envoy.envoy_key} to reconnect`,
			async () => (await listEnvoys()).find((e) => e.envoy_key === envoy.envoy_key),
			{ timeoutMs: 90_000, intervalMs: 100 },
		);
		timings.hostReconnectAfterHealthMs = Date.now() - tUp;
		timings.engineDowntimeMs = tUp - downAt;
		check(host.exitCode === null, "host exited during the engine restart");
		checkHostSpawnedNothing(host, hostStorage);
		return `SIGTERM exit in ${stopMs} ms, health after ${upMs} ms, same envoy ${again.envoy_key} back ${timings.hostReconnectAfterHealthMs} ms after health`;
	});

	await step("actors-after-restart", async () => {
		const counter = await getActor(counterId);
		check(counter && isSleeping(counter), `counter after restart: ${describe(counter)}`);
		const names = await rest200("GET", `/actors/names${q()}`);
		check(names.names?.counter && names.names?.chatRoom && names.names?.alarmer, `names after restart: ${JSON.stringify(names)}`);
		// The room kept running on the host, which reconnected with the same envoy key: it must
		// still be the same generation (no new wake) and connectable.
		const room = await waitActor(roomId, "still running after restart", isRunning, 30_000);
		check(!room.error, `room has error after restart: ${describe(room)}`);
		check(room.connectable_ts === roomBefore.connectable_ts, `room connectable_ts changed: ${roomBefore.connectable_ts} → ${room.connectable_ts}`);
		check(eventsOf(roomId, "wake").length === roomWakesBefore, "room was restarted by the engine restart");
		return "counter still sleeping, room still running (same start), names kept";
	});

	await step("alarm-after-restart", async () => {
		const woke = await waitActor(restartAlarmId, "woken by its alarm after the engine restart", isRunning, 60_000, 50);
		const fired = await waitEvent(restartAlarmId, "fired");
		timings.restartAlarmLatencyMs = fired.ts - restartAlarm.dueAt;
		return `alarm due ${restartAlarm.dueAt} fired +${timings.restartAlarmLatencyMs} ms (connectable ${woke.connectable_ts})`;
	});

	if (opts.withGateway) {
		await step("gateway-after-restart", async () => {
			const v = await gw.retry("getCount after engine restart", () => gw.counter("g1").getCount());
			check(v === 12, `counter g1 after engine restart: ${v}, expected 12`);
			const hist = await gw.retry("history after engine restart", () => gw.room("room1").getHistory());
			check(hist.length === 1, `room history after restart ${JSON.stringify(hist)}`);
			const ms = await gw.chatEvent("room1", "bob", "after-restart");
			return `counter 12, room history kept, events flow (${ms} ms)`;
		});
	}

	// ---- kill -9 of the host ----------------------------------------------------------------
	// Three situations: an actor asleep with a pending alarm (wakes on the new host at its
	// alarm), an actor running with a pending alarm (lost, then woken by the overdue alarm), an
	// actor running without alarm (lost → sleeping with envoy_connection_lost).
	let sleepyId, busyId, busyArmed, sleepyArmed;
	await step("prepare-kill", async () => {
		const s = await createAndWaitRunning("alarmer k-sleep", "POST", createBody("alarmer", "k-sleep", { delayMs: 6000, armOn: "sleep", arms: 1 }));
		sleepyId = s.actor.actor_id;
		await rest200("POST", `/actors/${sleepyId}/sleep${q()}`, {});
		await waitActor(sleepyId, "sleeping", isSleeping);
		sleepyArmed = await waitEvent(sleepyId, "armed");
		const b = await createAndWaitRunning("alarmer k-busy", "POST", createBody("alarmer", "k-busy", { delayMs: 8000, armOn: "wake", arms: 1 }));
		busyId = b.actor.actor_id;
		busyArmed = await waitEvent(busyId, "armed");
		return `k-sleep ${sleepyId} asleep (alarm ${sleepyArmed.dueAt}), k-busy ${busyId} running (alarm ${busyArmed.dueAt}), room1 running`;
	});

	if (opts.withGateway) {
		await step("gateway-before-kill", async () => {
			const v = await gw.counter("g1").increment(1);
			check(v === 13, `increment before kill returned ${v}`);
			return "counter g1 = 13 (acknowledged, then the host is killed at once)";
		});
	}

	const oldPid = host.pid;
	const oldEnvoyKey = envoy.envoy_key;
	let killAt;
	let watcher;
	let gwKillProbe;
	await step("kill-host", async () => {
		killAt = Date.now();
		process.kill(host.pid, "SIGKILL");
		watcher = watchActors({ [roomId]: "room1", [busyId]: "k-busy", [sleepyId]: "k-sleep" }, killAt);
		await host.exited;
		procs.children.delete(host);
		const gone = await waitFor(
			"the killed host's envoy to leave GET /envoys",
			async () => !(await listEnvoys()).some((e) => e.envoy_key === oldEnvoyKey),
			{ timeoutMs: 30_000 },
		);
		timings.killedEnvoyUnlistedMs = Date.now() - killAt;
		startHost();
		envoy = await waitNewEnvoy([oldEnvoyKey]);
		timings.newHostAttachMs = Date.now() - killAt;
		checkHostSpawnedNothing(host, hostStorage);
		if (opts.withGateway) {
			// Ask the counter (it ran on the killed host) at once: measures how long the gateway
			// takes to serve an actor whose host died (checked in gateway-after-kill).
			gwKillProbe = gw
				.retry("getCount right after kill -9", () => gw.counter("g1").getCount(), 90_000)
				.then((v) => ({ v, ms: Date.now() - killAt }), (e) => ({ error: e }));
		}
		return `old envoy unlisted after ${timings.killedEnvoyUnlistedMs} ms, new envoy ${envoy.envoy_key} listed ${timings.newHostAttachMs} ms after the kill`;
	});

	await step("kill-sleeping-alarm", async () => {
		const wake = await waitFor(
			"k-sleep to wake on the new host",
			() => eventsOf(sleepyId, "wake").find((e) => e.pid === host.pid),
			{ timeoutMs: 60_000 },
		);
		const fired = await waitEvent(sleepyId, "fired");
		check(fired.pid === host.pid, `k-sleep fired on pid ${fired.pid}, new host is ${host.pid}`);
		check(wake.wakes === 2, `k-sleep wake counter ${wake.wakes}`);
		timings.killSleepingAlarmLatencyMs = fired.ts - sleepyArmed.dueAt;
		return `woke on the new host, fired +${timings.killSleepingAlarmLatencyMs} ms after due`;
	});

	await step("kill-lost-actors", async () => {
		// The room had no alarm: once the engine gives up on the dead host it must be sleeping
		// with envoy_connection_lost.
		const room = await waitActor(
			roomId,
			"declared lost (sleeping with envoy_connection_lost)",
			(a) => isSleeping(a) && !!a.error,
			90_000,
			250,
		);
		timings.lostAfterKillMs = Date.now() - killAt;
		check(
			room.error?.envoy_connection_lost?.envoy_key === oldEnvoyKey,
			`room error ${JSON.stringify(room.error)}, expected envoy_connection_lost for ${oldEnvoyKey}`,
		);
		return `room1 sleeping with envoy_connection_lost ${timings.lostAfterKillMs} ms after the kill`;
	});

	await step("kill-running-alarm", async () => {
		// k-busy was running with an alarm pending when its host died: it must run again on the
		// new host once lost (its alarm is overdue by then).
		const wake = await waitFor(
			"k-busy to run again on the new host",
			() => eventsOf(busyId, "wake").find((e) => e.pid === host.pid),
			{ timeoutMs: 90_000, intervalMs: 250 },
		);
		check(wake.wakes === 2, `k-busy wake counter on the new host ${wake.wakes}, expected 2`);
		const a = await waitActor(busyId, "running on the new host", isRunning, 30_000);
		check(!a.error, `k-busy still has error ${JSON.stringify(a.error)}`);
		timings.killRunningAlarmRunAgainMs = wake.ts - killAt;
		const fired = await waitFor("k-busy to fire on the new host", () => eventsOf(busyId, "fired").find((e) => e.pid === host.pid), {
			timeoutMs: 30_000,
		});
		return `ran again on the new host ${timings.killRunningAlarmRunAgainMs} ms after the kill (alarm was due ${busyArmed.dueAt - killAt} ms after it), fired ${fired.ts - busyArmed.dueAt} ms after due`;
	});

	if (opts.withGateway) {
		await step("gateway-after-kill", async () => {
			const t = Date.now();
			const probe = await gwKillProbe;
			if (probe.error) throw probe.error;
			check(probe.v === 13, `counter g1 right after kill -9: ${probe.v}, expected 13`);
			timings.gatewayAnswerAfterKillMs = probe.ms;
			const v = await gw.retry("getCount after kill -9", () => gw.counter("g1").getCount(), 90_000);
			check(v === 13, `counter g1 after kill -9: ${v}, expected 13`);
			const hist = await gw.retry("history after kill -9", () => gw.room("room1").getHistory());
			check(hist.length === 2, `room history after kill ${JSON.stringify(hist)}`);
			const r = await getActor(roomId);
			check(isRunning(r) && !r.error, `room after gateway wake: ${describe(r)}`);
			check(eventsOf(roomId, "wake").at(-1).pid === host.pid, "room did not wake on the new host");
			return `counter 13 (first answer ${probe.ms} ms after the kill) and room history (2) kept`;
		});
	}

	// Transitions seen since the kill (the gateway checks above may add wakes).
	timings.killTransitions = (await watcher.stop()).map(
		(r) =>
			`+${r.t} ${r.actor} ${r.state}${r.connectable_ts ? ` connectable_ts=+${r.connectable_ts - killAt}` : ""}${r.error ? ` ${JSON.stringify(r.error)}` : ""}`,
	);

	await step("destroy", async () => {
		const t = Date.now();
		const r = await rest200("DELETE", `/actors/${counterId}${q()}`);
		check(JSON.stringify(r) === "{}", `DELETE answered ${JSON.stringify(r)}`);
		const a = await waitActor(counterId, "destroyed", (x) => !!x.destroy_ts, 30_000);
		timings.destroySleepingMs = Date.now() - t;
		const t2 = Date.now();
		await rest200("DELETE", `/actors/${busyId}${q()}`);
		await waitActor(busyId, "destroyed", (x) => !!x.destroy_ts, 30_000);
		timings.destroyRunningMs = Date.now() - t2;
		const destroyEvents = eventsOf(counterId, "destroy");
		const byKey = await rest200("GET", `/actors${q("&name=counter&key=c1")}`);
		check(byKey.actors.length === 0, `destroyed actor still found by key: ${JSON.stringify(byKey)}`);
		const withDestroyed = await rest200("GET", `/actors${q("&name=counter&key=c1&include_destroyed=true")}`);
		check(withDestroyed.actors.some((x) => x.actor_id === counterId), `include_destroyed lacks it: ${JSON.stringify(withDestroyed)}`);
		const again = await rest("DELETE", `/actors/${counterId}${q()}`);
		check(again.status === 200, `second DELETE → ${again.status} ${again.text}`);
		return `destroy_ts=${a.destroy_ts} (sleeping: ${timings.destroySleepingMs} ms, running: ${timings.destroyRunningMs} ms), key freed, onDestroy ran ${destroyEvents.length}x, second DELETE → 200`;
	});

	await step("no-engine-spawned", async () => {
		checkHostSpawnedNothing(host, hostStorage);
		check(oldPid !== host.pid, "host pid unchanged");
		return "no rivet-engine/rivet-services under the host processes";
	});

	if (gw) await gw.dispose();
	console.log(`timings ${JSON.stringify(timings)}`);
	console.log(`PASS (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

async function listEnvoysOrDown() {
	try {
		await rest("GET", "/health");
		return "up";
	} catch {
		return "down";
	}
}

// ---------------------------------------------------------------------------------------------
// Gateway checks through the npm client

async function setupGateway() {
	const { createClient } = await import(CLIENT_MODULE);
	const client = createClient({ endpoint: base, namespace: NS });
	const handles = {
		counter: (key, input) =>
			client.counter.getOrCreate([key], input === undefined ? {} : { createWithInput: input }),
		room: (key) => client.chatRoom.getOrCreate([key]),
		/** Retries a gateway call until it succeeds (the actor may be lost/asleep meanwhile). */
		async retry(what, fn, timeoutMs = 60_000) {
			return waitFor(what, async () => ({ v: await fn() }), { timeoutMs, intervalMs: 500 }).then((r) => r.v);
		},
		/** Sends a message through a connection and returns how long until its broadcast arrived. */
		async chatEvent(key, sender, text) {
			const conn = client.chatRoom.getOrCreate([key]).connect();
			try {
				const got = new Promise((resolve) => {
					conn.on("newMessage", (m) => {
						if (m.text === text) resolve(m);
					});
				});
				const t = Date.now();
				// The subscription is registered once the connection is open.
				const opened = await Promise.race([conn.ready.then(() => true), sleepMs(30_000).then(() => false)]);
				check(opened, `chat connection to ${key} did not open within 30 s (status ${conn.connStatus})`);
				// Send over the same connection: its event subscription travels on that socket
				// ahead of the action, whereas an action sent through a separate HTTP request can
				// reach the actor before the subscription and miss the broadcast.
				// `send(...)` is the client's queue API in rivetkit 2.3.x and shadows an action
				// named `send`, so call the action by name.
				await conn.action({ name: "send", args: [sender, text] });
				const m = await Promise.race([got, sleepMs(15_000).then(() => null)]);
				check(m && m.sender === sender, `no newMessage event for "${text}"`);
				return Date.now() - t;
			} finally {
				await conn.dispose();
			}
		},
		dispose: () => client.dispose(),
	};
	return handles;
}

main().then(
	() => shutdown(0),
	(e) => {
		console.log(`FAIL ${currentStep}: ${e instanceof ScenarioError ? e.message : (e?.stack ?? e)}`);
		if (tmp) {
			console.log(`  engine log (${path.join(tmp, "engine.log")}):\n${tail(path.join(tmp, "engine.log"))}`);
			for (let i = 1; i <= hostLogIndex; i++) console.log(`  host log #${i}:\n${tail(path.join(tmp, `host${i}.log`), 15)}`);
			console.log(`  timings so far ${JSON.stringify(timings)}`);
			if (opts.keep) console.log(`  kept ${tmp}`);
		}
		return shutdown(1);
	},
);
