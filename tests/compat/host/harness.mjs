// Process and polling helpers shared by host/scenario.mjs and gateway/suite.mjs: an engine binary
// in a fresh temp dir with free ports, the npm rivetkit actor host (host/registry*.ts, run with
// tsx) attached to it through RIVET_ENDPOINT, REST calls, and deadline-bounded polling.
//
// Every child process is tracked by a `Processes` set and killed on every exit path; waits poll a
// condition with a deadline (`waitFor`), never sleep as synchronisation.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { encode as cborEncode } from "cbor-x";

const here = path.dirname(fileURLToPath(import.meta.url));
/** tests/compat (cwd of the actor host, where node_modules lives). */
export const compatDir = path.resolve(here, "..");

/** Host entry point per rivetkit version. */
export const HOST_ENTRY = {
	"2.3.19": path.join(here, "registry.ts"),
	"2.3.11": path.join(here, "registry-2.3.11.ts"),
};
/** The npm client module matching each host version. */
export const CLIENT_MODULE = { "2.3.19": "rivetkit/client", "2.3.11": "rivetkit211/client" };
/** Envoy protocol spoken by each host version (envoy-protocol.md §1). */
export const HOST_PROTOCOL = { "2.3.19": 8, "2.3.11": 6 };

/** A failed check; the scripts print its message without a stack. */
export class ScenarioError extends Error {}

export function fail(msg) {
	throw new ScenarioError(msg);
}

export function check(cond, msg) {
	if (!cond) fail(msg);
}

export const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

/** `group.code` of a client error, `?` for a missing part. */
export const errCode = (e) => `${e?.group ?? "?"}.${e?.code ?? "?"}`;

/** Like `promise`, but a ScenarioError naming `what` after `ms`; rejections pass through. */
export async function race(ms, what, promise) {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new ScenarioError(`${what}: no answer within ${ms} ms`)), ms);
	});
	try {
		return await Promise.race([promise, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

/**
 * Resolves with `promise`, or fails after `ms` naming `what` (client calls can retry forever).
 * A rejection is re-thrown as a failure naming `what` and the error's group.code.
 */
export async function within(ms, what, promise) {
	try {
		return await race(ms, what, promise);
	} catch (e) {
		if (e instanceof ScenarioError) throw e;
		fail(`${what}: ${errCode(e)} ${e?.message ?? e}`);
	}
}

/**
 * Polls `fn` until it returns a truthy value; fails with `what` (and the last value) at the
 * deadline. A ScenarioError thrown by `fn` ends the wait at once; other errors are retried.
 */
export async function waitFor(what, fn, { timeoutMs = 30_000, intervalMs = 100 } = {}) {
	const deadline = Date.now() + timeoutMs;
	let last;
	let lastErr;
	for (;;) {
		try {
			const v = await fn();
			if (v) return v;
			last = v;
		} catch (e) {
			if (e instanceof ScenarioError) throw e;
			lastErr = e;
		}
		if (Date.now() > deadline) {
			fail(
				`timed out after ${timeoutMs} ms waiting for ${what}` +
					(lastErr ? ` (last error: ${lastErr.message ?? lastErr})` : "") +
					(last !== undefined && last !== false && last !== null ? ` (last: ${JSON.stringify(last)})` : ""),
			);
		}
		await sleepMs(intervalMs);
	}
}

/** The last lines of a log file, indented, for failure reports. */
export function tail(file, lines = 25) {
	try {
		const text = fs.readFileSync(file, "utf8").split("\n");
		return text
			.filter((l) => !l.includes("SQLite transaction is unnamed"))
			.slice(-lines)
			.map((l) => `    ${l.slice(0, 400)}`)
			.join("\n");
	} catch {
		return "    (no log)";
	}
}

export function deepMerge(a, b) {
	if (!b || typeof b !== "object" || Array.isArray(b) || !a || typeof a !== "object" || Array.isArray(a)) return b;
	const out = { ...a };
	for (const [k, v] of Object.entries(b)) out[k] = k in a ? deepMerge(a[k], v) : v;
	return out;
}

export function cborBase64(value) {
	return Buffer.from(cborEncode(value)).toString("base64");
}

/** One REST call against `base`; returns status, parsed JSON (if any) and the raw text. */
export async function restCall(base, method, pathAndQuery, body) {
	const res = await fetch(`${base}${pathAndQuery}`, {
		method,
		headers: body === undefined ? {} : { "content-type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(45_000),
	});
	const text = await res.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: res.status, json, text };
}

function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

export async function freePorts(n) {
	const ports = new Set();
	while (ports.size < n) ports.add(await freePort());
	return [...ports];
}

/**
 * Writes the engine config (guard/api_peer/metrics ports, data dir under `tmp`) deep-merged with
 * `extraConfig`; returns its path.
 */
export function writeEngineConfig(tmp, [guard, peer, metrics], extraConfig, base = {}) {
	const configPath = path.join(tmp, "engine.json");
	fs.writeFileSync(
		configPath,
		JSON.stringify(
			deepMerge(
				deepMerge(
					{
						guard: { port: guard },
						api_peer: { port: peer },
						metrics: { port: metrics },
						file_system: { path: path.join(tmp, "engine-data") },
					},
					base,
				),
				extraConfig,
			),
		),
	);
	return configPath;
}

/** Environment for an npm actor host attached to the engine at `endpoint`. */
export function hostEnvironment({ endpoint, namespace, pool, storage, eventsFile, overrides = {} }) {
	const env = {
		...process.env,
		RIVET_ENDPOINT: endpoint,
		RIVET_NAMESPACE: namespace,
		RIVET_POOL: pool,
		// The npm host would otherwise start its own Services helper process.
		RIVET_RUN_SERVICES: "0",
		RIVETKIT_STORAGE_PATH: storage,
		COMPAT_EVENTS_FILE: eventsFile,
		RIVET_LOG_LEVEL: process.env.RIVET_LOG_LEVEL ?? "warn",
		...overrides,
	};
	// Never let the host inherit a different engine to talk to.
	delete env.RIVET_ENGINE;
	return env;
}

/**
 * The npm client needs a global WebSocket; Node 20 only has it behind a flag. When it is missing,
 * re-runs the calling script with the flag, forwards SIGINT/SIGTERM/SIGHUP to the re-run (so
 * that killing this process still cleans up the engine and hosts the re-run started), and exits
 * with its status; the returned promise then never settles. Await it before doing anything else.
 */
export async function reexecWithWebSocket(scriptUrl) {
	if (typeof WebSocket !== "undefined") return;
	const child = spawn(
		process.execPath,
		["--experimental-websocket", "--no-warnings", fileURLToPath(scriptUrl), ...process.argv.slice(2)],
		{ stdio: "inherit" },
	);
	for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
		process.on(sig, () => {
			try {
				child.kill(sig);
			} catch {}
		});
	}
	const code = await new Promise((resolve) => {
		child.on("error", (e) => {
			console.error(`cannot re-run with --experimental-websocket: ${e.message}`);
			resolve(1);
		});
		child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
	});
	process.exit(code);
}

/** Every process under `pid` (children, grandchildren, ...), read from /proc. */
export function descendants(pid) {
	const parentOf = new Map();
	for (const d of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(d)) continue;
		try {
			const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
			const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			parentOf.set(Number(d), ppid);
		} catch {}
	}
	const out = [];
	const frontier = [pid];
	while (frontier.length) {
		const p = frontier.pop();
		for (const [c, pp] of parentOf) {
			if (pp === p) {
				out.push(c);
				frontier.push(c);
			}
		}
	}
	return out.map((p) => {
		let cmd = "";
		try {
			cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").trim();
		} catch {}
		return { pid: p, cmd };
	});
}

/**
 * Processes (other than `exceptPid`) whose environment carries `COMPAT_EVENTS_FILE=<eventsFile>`:
 * anything a host started inherits it, even if it detached from the host's process tree.
 */
export function processesWithEnvMarker(eventsFile, exceptPid) {
	const marker = `COMPAT_EVENTS_FILE=${eventsFile}`;
	const out = [];
	for (const d of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(d) || Number(d) === exceptPid) continue;
		try {
			const env = fs.readFileSync(`/proc/${d}/environ`, "utf8").split("\0");
			if (env.includes(marker)) {
				const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim();
				out.push({ pid: Number(d), cmd });
			}
		} catch {}
	}
	return out;
}

/**
 * The child processes of one run. `eventsFile()` names the run's COMPAT_EVENTS_FILE so that
 * processes the hosts started (which outlive a SIGKILLed host) are killed too.
 */
export class Processes {
	constructor({ info = () => {}, eventsFile = () => undefined } = {}) {
		this.children = new Set();
		this.info = info;
		this.eventsFile = eventsFile;
	}

	/** Spawns a child with stdout/stderr appended to `logFile`. */
	start(label, cmd, args, { env, cwd, logFile }) {
		const out = fs.openSync(logFile, "a");
		const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", out, out] });
		fs.closeSync(out);
		// A spawn failure (e.g. missing binary) is reported through "error"; record it so the next
		// wait fails with a clear message instead of crashing on an unhandled event.
		child.on("error", (e) => {
			child.spawnError = e;
			this.info(`${label} failed to start: ${e.message}`);
		});
		this.children.add(child);
		child.label = label;
		child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
		child.on("exit", (code, signal) => this.info(`${label} (pid ${child.pid}) exited code=${code} signal=${signal}`));
		this.info(`started ${label} pid ${child.pid}`);
		return child;
	}

	/** Signals `child` and waits up to `timeoutMs` for it to exit (then SIGKILL and fail). */
	async stop(child, signal, timeoutMs) {
		if (child.exitCode !== null || child.signalCode !== null) {
			this.children.delete(child);
			return 0;
		}
		const start = Date.now();
		process.kill(child.pid, signal);
		const res = await Promise.race([child.exited, sleepMs(timeoutMs).then(() => null)]);
		if (res === null) {
			process.kill(child.pid, "SIGKILL");
			await child.exited;
			fail(`${child.label} did not exit within ${timeoutMs} ms of ${signal}`);
		}
		this.children.delete(child);
		return Date.now() - start;
	}

	/** SIGKILLs every child (and whatever the hosts started); synchronous, for `exit` handlers. */
	killAll() {
		for (const child of this.children) {
			if (child.exitCode === null && child.signalCode === null) {
				try {
					process.kill(child.pid, "SIGKILL");
				} catch {}
			}
		}
		const eventsFile = this.eventsFile();
		if (eventsFile) {
			for (const p of processesWithEnvMarker(eventsFile, -1)) {
				try {
					process.kill(p.pid, "SIGKILL");
				} catch {}
			}
		}
	}

	/** Kills the children and waits (bounded) for them to be reaped, so none is left a zombie. */
	async killAndReap() {
		const alive = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null && !c.spawnError);
		this.killAll();
		await Promise.race([Promise.all(alive.map((c) => c.exited)), sleepMs(5000)]);
	}
}
