#!/usr/bin/env node
// Gateway benchmark: our engine against the reference engine, side by side in one run, with the
// same npm rivetkit 2.3.19 actor host (tests/compat/host/registry.ts, `bench` actor in
// tests/compat/host/actors.ts) and the same npm client, on the same machine.
//
//   node bench/gateway/bench.mjs [--engine-bin PATH] [--reference-bin PATH] [--no-reference]
//        [--rounds N] [--calls N] [--tp-seconds S] [--tp-callers N] [--tp-actors N]
//        [--fan N] [--broadcasts N] [--extra-config JSON] [--keep] [--verbose] [--smoke]
//        [--endpoint URL]
//
// Both engines (each with its own host) start first and stay up; every round then measures ours,
// then the reference (alternating, so drift in machine load hits both). Figures per engine:
//   - sequential action round trip (`ping`) over HTTP through a getOrCreate handle (the client
//     resolves name+key through the gateway's query form on every call) and through a getForId
//     handle, and over a connection (`connect()` then `conn.ping()`): p50/p99 over all rounds;
//   - throughput: `--tp-callers` concurrent callers over `--tp-actors` actors (getForId
//     handles, caller i takes actors i, i+callers, ... in turn) for `--tp-seconds`: calls/s,
//     median over rounds;
//   - broadcast fan-out: `--fan` connections to one actor, subscribed to `tick`; one HTTP action
//     broadcasts; time from the action call until every connection got the event, p50/p99.
// --smoke: our engine only, tiny counts (a few seconds), for CI; exits 1 on any failure.
// --endpoint URL: measure an engine that is already running with its actor host (e.g. our
// engine serving the Rust `bench` actor of bench/rivetkit) instead of starting both engines.
//
// The reference engine sheds workflow admission when the machine's CPU is busy, so it always
// runs with a flat worker_load_shedding_curve (see tests/compat/host/scenario.mjs).
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
	HOST_ENTRY,
	Processes,
	ScenarioError,
	check,
	compatDir,
	fail,
	freePorts,
	hostEnvironment,
	reexecWithWebSocket,
	restCall,
	sleepMs,
	tail,
	waitFor,
	writeEngineConfig,
} from "../../tests/compat/host/harness.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const REFERENCE_BIN = path.join(compatDir, "node_modules/@rivetkit/engine-cli-linux-x64-musl/rivet-engine");
const REFERENCE_CONFIG = { runtime: { worker_load_shedding_curve: [[0, 1000], [1000, 999]] } };

function usage(msg) {
	if (msg) console.error(msg);
	console.error(
		"usage: node bench/gateway/bench.mjs [--engine-bin PATH] [--reference-bin PATH] [--no-reference] [--rounds N] [--calls N] [--tp-seconds S] [--tp-callers N] [--tp-actors N] [--fan N] [--broadcasts N] [--extra-config JSON] [--keep] [--verbose] [--smoke] [--endpoint URL]",
	);
	process.exit(2);
}

function defaultOurBin() {
	if (process.env.RIVET_ENGINE_BIN) return process.env.RIVET_ENGINE_BIN;
	for (const dir of [process.env.CARGO_TARGET_DIR, path.join(repo, "target")].filter(Boolean)) {
		for (const profile of ["release", "debug"]) {
			const p = path.join(dir, profile, "rivet-engine");
			if (fs.existsSync(p)) return p;
		}
	}
	return path.join(repo, "target/release/rivet-engine");
}

function parseArgs(argv) {
	const smoke = argv.includes("--smoke");
	const o = {
		smoke,
		ourBin: defaultOurBin(),
		referenceBin: REFERENCE_BIN,
		reference: !smoke,
		rounds: smoke ? 1 : 3,
		calls: smoke ? 20 : 300,
		tpSeconds: smoke ? 1 : 5,
		tpCallers: smoke ? 8 : 64,
		tpActors: smoke ? 10 : 100,
		fan: smoke ? 10 : 100,
		broadcasts: smoke ? 3 : 20,
		extraConfig: {},
		endpoint: null,
		keep: false,
		verbose: false,
	};
	const num = (i, name) => {
		const v = Number(argv[i]);
		if (!Number.isFinite(v) || v <= 0) usage(`${name} needs a positive number`);
		return v;
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--smoke") continue;
		else if (a === "--engine-bin") o.ourBin = argv[++i];
		else if (a === "--reference-bin") o.referenceBin = argv[++i];
		else if (a === "--no-reference") o.reference = false;
		else if (a === "--endpoint") {
			o.endpoint = argv[++i];
			o.reference = false;
		}
		else if (a === "--rounds") o.rounds = num(++i, a);
		else if (a === "--calls") o.calls = num(++i, a);
		else if (a === "--tp-seconds") o.tpSeconds = num(++i, a);
		else if (a === "--tp-callers") o.tpCallers = num(++i, a);
		else if (a === "--tp-actors") o.tpActors = num(++i, a);
		else if (a === "--fan") o.fan = num(++i, a);
		else if (a === "--broadcasts") o.broadcasts = num(++i, a);
		else if (a === "--extra-config") {
			try {
				o.extraConfig = JSON.parse(argv[++i]);
			} catch (e) {
				usage(`--extra-config: invalid JSON: ${e.message}`);
			}
		} else if (a === "--keep") o.keep = true;
		else if (a === "--verbose") o.verbose = true;
		else usage(`unknown argument ${a}`);
	}
	o.ourBin = path.resolve(o.ourBin);
	o.referenceBin = path.resolve(o.referenceBin);
	return o;
}

const opts = parseArgs(process.argv.slice(2));
await reexecWithWebSocket(import.meta.url);

const NS = "default";
const POOL = "default";
const RUN = crypto.randomBytes(3).toString("hex");
const hostLogLevel = process.env.RIVET_LOG_LEVEL ?? "warn";
if (!opts.verbose) process.env.RIVET_LOG_LEVEL = "error";

const t0 = Date.now();
function info(msg) {
	if (opts.verbose) console.log(`  [${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
}

let tmpRoot;
const setups = [];
const procs = new Processes({ info, eventsFile: () => undefined });
process.on("exit", () => {
	procs.killAll();
	if (tmpRoot && !opts.keep) fs.rmSync(tmpRoot, { recursive: true, force: true });
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

// The client module lives in tests/compat/node_modules; resolve it from there (this file is
// outside that package, so a bare `rivetkit/client` would not resolve).
async function loadClientModule() {
	const pkgDir = path.join(compatDir, "node_modules/rivetkit");
	const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
	const entry = pkg.exports["./client"].import.default;
	return import(pathToFileURL(path.join(pkgDir, entry)).href);
}

/** Resolves with `promise` or fails after `ms` naming `what` (client calls can retry forever). */
async function within(ms, what, promise) {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new ScenarioError(`${what}: no answer within ${ms} ms`)), ms);
	});
	try {
		return await Promise.race([promise, timeout]);
	} catch (e) {
		if (e instanceof ScenarioError) throw e;
		fail(`${what}: ${e?.group ?? "?"}.${e?.code ?? "?"} ${e?.message ?? e}`);
	} finally {
		clearTimeout(timer);
	}
}

// ---------------------------------------------------------------------------------------------
// Engines

/** Starts one engine plus its own npm host; returns {label, base, engine, host, dir, client}. */
async function startSetup(label, bin, extraConfig, clientModule) {
	const dir = path.join(tmpRoot, label);
	fs.mkdirSync(path.join(dir, "host-storage"), { recursive: true });
	const ports = await freePorts(3);
	const base = `http://127.0.0.1:${ports[0]}`;
	const configPath = writeEngineConfig(dir, ports, extraConfig, { telemetry: { enabled: false } });
	const engineLog = path.join(dir, "engine.log");
	const hostLog = path.join(dir, "host.log");
	// Registered before the waits, so a failed start still prints this setup's logs.
	const s = { label, base, dir, engineLog, hostLog };
	setups.push(s);
	const engine = procs.start(`${label} engine`, bin, ["start", "--config", configPath], {
		env: { ...process.env, RUST_BACKTRACE: "0" },
		cwd: dir,
		logFile: engineLog,
	});
	await waitFor(
		`${label} engine GET /health`,
		async () => {
			if (engine.spawnError) fail(`cannot start ${bin}: ${engine.spawnError.message}`);
			if (engine.exitCode !== null) fail(`${label} engine exited with code ${engine.exitCode}\n${tail(engineLog)}`);
			const r = await restCall(base, "GET", "/health");
			return r.status === 200;
		},
		{ timeoutMs: 60_000 },
	);
	const eventsFile = path.join(dir, "actor-events.jsonl");
	const host = procs.start(`${label} host`, process.execPath, ["--import", "tsx", HOST_ENTRY["2.3.19"]], {
		env: hostEnvironment({ endpoint: base, namespace: NS, pool: POOL, storage: path.join(dir, "host-storage"), eventsFile, overrides: { RIVET_LOG_LEVEL: hostLogLevel } }),
		cwd: compatDir,
		logFile: hostLog,
	});
	await waitFor(
		`${label}: actor name bench in GET /actors/names`,
		async () => {
			if (host.exitCode !== null) fail(`${label} host exited with code ${host.exitCode}\n${tail(hostLog)}`);
			const r = await restCall(base, "GET", `/actors/names?namespace=${NS}`);
			return r.json?.names?.bench;
		},
		{ timeoutMs: 90_000 },
	);
	const client = clientModule.createClient({ endpoint: base, namespace: NS });
	info(`${label}: engine ${bin} at ${base}, host attached`);
	return Object.assign(s, { engine, host, client });
}

// ---------------------------------------------------------------------------------------------
// Measurements

const now = () => performance.now();

function percentile(values, p) {
	if (!values.length) return NaN;
	const s = [...values].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function sequential(what, n, call) {
	await within(60_000, `${what} warm up`, call());
	const out = [];
	for (let i = 0; i < n; i++) {
		const t = now();
		await within(30_000, what, call());
		out.push(now() - t);
	}
	return out;
}

async function throughput(s, round) {
	const handles = [];
	for (let i = 0; i < opts.tpActors; i++) {
		const h = s.client.bench.getOrCreate([`tp-${RUN}-${i}`]);
		handles.push(s.client.bench.getForId(await within(60_000, "resolve", h.resolve())));
	}
	// Wake every actor before the clock starts (they may have slept since the last round).
	await within(120_000, "throughput warm up", Promise.all(handles.map((h) => h.ping())));
	let calls = 0;
	const end = now() + opts.tpSeconds * 1000;
	const caller = async (i) => {
		for (let k = i; now() < end; k += opts.tpCallers) {
			await handles[k % handles.length].ping();
			calls++;
		}
	};
	const t = now();
	await within(opts.tpSeconds * 1000 + 60_000, "throughput", Promise.all(Array.from({ length: opts.tpCallers }, (_, i) => caller(i))));
	const perS = calls / ((now() - t) / 1000);
	info(`${s.label} round ${round}: throughput ${perS.toFixed(0)} calls/s`);
	return perS;
}

async function broadcast(s, round) {
	const h = s.client.bench.getOrCreate([`fan-${RUN}-${round}`]);
	await within(60_000, "fan actor", h.ping());
	const conns = [];
	const seen = [];
	let waiter = null;
	try {
		for (let i = 0; i < opts.fan; i++) {
			const c = h.connect();
			conns.push(c);
			seen.push(-1);
			c.on("tick", (seq) => {
				seen[i] = seq;
				if (waiter && seen.every((v) => v >= waiter.seq)) {
					const w = waiter;
					waiter = null;
					w.resolve(now());
				}
			});
		}
		await within(120_000, "fan connections ready", Promise.all(conns.map((c) => c.ready)));
		// A connection is "ready" before its event subscription reaches the actor, so warm up by
		// broadcasting seq 0 until every connection got it (bounded); only then measure.
		const warmDeadline = Date.now() + 30_000;
		for (;;) {
			await within(30_000, "broadcast action", h.broadcast(0));
			const attemptEnd = Date.now() + 1000;
			await waitFor("warm-up broadcast", () => seen.every((v) => v >= 0) || Date.now() > attemptEnd, { timeoutMs: 5000, intervalMs: 5 });
			const got = seen.filter((v) => v >= 0).length;
			if (got === opts.fan) break;
			if (Date.now() > warmDeadline) fail(`${s.label}: after 30 s of broadcasts only ${got} of ${opts.fan} connections received an event`);
			info(`${s.label}: warm-up broadcast reached ${got} of ${opts.fan}; again`);
			await sleepMs(200);
		}
		const times = [];
		for (let seq = 1; seq <= opts.broadcasts; seq++) {
			const all = new Promise((resolve) => {
				waiter = { seq, resolve };
			});
			const t = now();
			await within(30_000, "broadcast action", h.broadcast(seq));
			let done;
			try {
				done = await within(30_000, `broadcast ${seq}`, all);
			} catch (e) {
				fail(`${s.label}: broadcast ${seq} reached only ${seen.filter((v) => v >= seq).length} of ${opts.fan} connections within 30 s`);
			}
			times.push(done - t);
		}
		return times;
	} finally {
		await Promise.all(conns.map((c) => within(10_000, "dispose", c.dispose()).catch(() => {})));
	}
}

async function measureRound(s, round, acc) {
	const h = s.client.bench.getOrCreate([`lat-${RUN}`]);
	acc.httpKey.push(...(await sequential("ping (getOrCreate)", opts.calls, () => h.ping())));
	const id = await within(30_000, "resolve", h.resolve());
	const byId = s.client.bench.getForId(id);
	acc.httpId.push(...(await sequential("ping (getForId)", opts.calls, () => byId.ping())));
	const conn = h.connect();
	try {
		await within(30_000, "connection ready", conn.ready);
		acc.conn.push(...(await sequential("ping (connection)", opts.calls, () => conn.ping())));
	} finally {
		await within(10_000, "dispose", conn.dispose()).catch(() => {});
	}
	acc.tp.push(await throughput(s, round));
	acc.fan.push(...(await broadcast(s, round)));
	info(`${s.label} round ${round} done`);
}

// ---------------------------------------------------------------------------------------------
// Table

const fmt = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "—");

function rows(acc) {
	const median = (xs) => percentile(xs, 50);
	return [
		["action RTT, HTTP getOrCreate handle, p50 (ms)", percentile(acc.httpKey, 50), "lower"],
		["action RTT, HTTP getOrCreate handle, p99 (ms)", percentile(acc.httpKey, 99), "lower"],
		["action RTT, HTTP getForId handle, p50 (ms)", percentile(acc.httpId, 50), "lower"],
		["action RTT, HTTP getForId handle, p99 (ms)", percentile(acc.httpId, 99), "lower"],
		["action RTT, connection, p50 (ms)", percentile(acc.conn, 50), "lower"],
		["action RTT, connection, p99 (ms)", percentile(acc.conn, 99), "lower"],
		[`throughput, ${opts.tpCallers} callers / ${opts.tpActors} actors (calls/s, median of rounds)`, median(acc.tp), "higher"],
		[`broadcast → ${opts.fan} connections, p50 (ms)`, percentile(acc.fan, 50), "lower"],
		[`broadcast → ${opts.fan} connections, p99 (ms)`, percentile(acc.fan, 99), "lower"],
	];
}

function table(accs) {
	const ours = rows(accs.ours);
	const ref = accs.reference ? rows(accs.reference) : null;
	const lines = [];
	if (ref) {
		lines.push("| figure | ours | reference | ours / reference |", "|---|---:|---:|---:|");
		ours.forEach(([name, v, better], i) => {
			const r = ref[i][1];
			const d = name.includes("calls/s") ? 0 : 2;
			lines.push(`| ${name} | ${fmt(v, d)} | ${fmt(r, d)} | ${fmt(v / r)}${better === "higher" ? " (higher is better)" : ""} |`);
		});
	} else {
		lines.push("| figure | ours |", "|---|---:|");
		for (const [name, v] of ours) lines.push(`| ${name} | ${fmt(v, name.includes("calls/s") ? 0 : 2)} |`);
	}
	return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

const emptyAcc = () => ({ httpKey: [], httpId: [], conn: [], tp: [], fan: [] });

async function main() {
	tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "rivet-bench-gateway-"));
	console.log(
		`# gateway bench: ours ${opts.endpoint ?? opts.ourBin}${opts.reference ? `, reference ${opts.referenceBin}` : ""}; rounds ${opts.rounds}, calls ${opts.calls}, throughput ${opts.tpCallers} callers/${opts.tpActors} actors/${opts.tpSeconds} s, fan-out ${opts.fan} × ${opts.broadcasts}; load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
	);
	const clientModule = await loadClientModule();
	if (opts.endpoint) {
		// Already running: only a client of our own.
		setups.push({ label: "ours", base: opts.endpoint, client: clientModule.createClient({ endpoint: opts.endpoint, namespace: NS }) });
	} else {
		check(fs.existsSync(opts.ourBin), `our engine binary ${opts.ourBin} not found (build it: cargo build --release -p rivet-engine)`);
		await startSetup("ours", opts.ourBin, opts.extraConfig, clientModule);
	}
	if (opts.reference) check(fs.existsSync(opts.referenceBin), `reference engine ${opts.referenceBin} not found (npm ci in tests/compat)`);
	if (opts.reference) await startSetup("reference", opts.referenceBin, { ...REFERENCE_CONFIG, ...opts.extraConfig }, clientModule);
	const accs = { ours: emptyAcc(), reference: opts.reference ? emptyAcc() : null };
	for (let round = 1; round <= opts.rounds; round++) {
		for (const s of setups) {
			await measureRound(s, round, accs[s.label]);
			console.log(`round ${round} ${s.label}: done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
		}
	}
	for (const s of setups) await within(10_000, "client dispose", s.client.dispose()).catch(() => {});
	console.log(table(accs));
	console.log(`# load after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; ${((Date.now() - t0) / 1000).toFixed(0)} s`);
	if (opts.smoke) {
		const a = accs.ours;
		check(a.httpKey.length === opts.calls && a.httpId.length === opts.calls && a.conn.length === opts.calls, "smoke: missing samples");
		check(a.tp[0] > 0, "smoke: no throughput");
		check(a.fan.length === opts.broadcasts, "smoke: missing broadcasts");
		console.log("smoke ok");
	}
	return 0;
}

main().then(
	(code) => shutdown(code),
	(e) => {
		console.log(`FAIL: ${e instanceof ScenarioError ? e.message : (e?.stack ?? e)}`);
		for (const s of setups) {
			console.log(`  ${s.label} engine log:\n${tail(s.engineLog, 15)}`);
			console.log(`  ${s.label} host log:\n${tail(s.hostLog, 15)}`);
		}
		if (opts.keep && tmpRoot) console.log(`  kept ${tmpRoot}`);
		return shutdown(1);
	},
);
