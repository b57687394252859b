// Actor definitions shared by the rivetkit 2.3.19 and 2.3.11 registries (registry.ts,
// registry-2.3.11.ts). Each registry passes in its own package's `actor`/`event`, so the same
// definitions run on both host versions.
//
// Observability without the gateway: the REST API shows lifecycle (connectable_ts, sleep_ts, ...)
// but nothing an actor stores. rivetkit 2.3.x keeps actor state *and* `c.kv` in the actor's SQLite
// database (tables `_rivet_actor_state`, `_rivet_user_kv`), which lives in the engine's SQLite page
// store, not in the engine's actor KV — so `GET /actors/{id}/kv/keys/...` cannot see it. Instead
// every actor appends one JSON line per lifecycle event to the file named by COMPAT_EVENTS_FILE
// (the scenario reads it). The values written there come from state/KV that round-tripped through
// the engine, so "wakes: 2 after a sleep" proves the engine persisted the actor's SQLite data.
import fs from "node:fs";

type Rk = {
	actor: (def: any) => any;
	event: <T>() => any;
};

const EVENTS_FILE = process.env.COMPAT_EVENTS_FILE;

/** Appends one event line (the actor's state plus its KV wake counter) for the scenario. */
async function record(c: any, event: string, extra: Record<string, unknown> = {}): Promise<void> {
	const wakes = Number((await c.kv.get("wakes")) ?? 0);
	const line = {
		ts: Date.now(),
		pid: process.pid,
		actorId: c.actorId,
		name: c.name,
		key: c.key,
		event,
		wakes,
		state: { ...c.state },
		...extra,
	};
	if (EVENTS_FILE) fs.appendFileSync(EVENTS_FILE, `${JSON.stringify(line)}\n`);
}

/**
 * Counts starts in actor KV rather than in state: a KV put is committed at once, while awaiting a
 * state save (`saveState({immediate:true})`) inside onWake blocks the start forever (the host
 * only runs saves once the actor is ready), and a plain state change is only saved on a 1 s
 * throttle, so a kill -9 right after a start could lose it.
 */
async function countWake(c: any): Promise<void> {
	const wakes = Number((await c.kv.get("wakes")) ?? 0) + 1;
	await c.kv.put("wakes", String(wakes));
}

export function buildActors(rk: Rk) {
	const counter = rk.actor({
		createState: (_c: any, input: any) => ({
			count: typeof input?.start === "number" ? input.start : 0,
			input: input ?? null,
		}),
		onWake: async (c: any) => {
			await countWake(c);
			await record(c, "wake");
		},
		onSleep: async (c: any) => {
			await record(c, "sleep");
		},
		onDestroy: async (c: any) => {
			await record(c, "destroy");
		},
		actions: {
			increment: async (c: any, n: number) => {
				c.state.count += n;
				// Acknowledge only once the new count is durable, so a kill -9 right after the
				// action cannot lose it (the default save is throttled to 1 s).
				await c.saveState({ immediate: true });
				await record(c, "increment");
				return c.state.count;
			},
			getCount: (c: any) => c.state.count,
		},
	});

	const chatRoom = rk.actor({
		state: { messages: [] as Array<{ sender: string; text: string }> },
		events: {
			newMessage: rk.event<{ sender: string; text: string }>(),
		},
		onWake: async (c: any) => {
			await countWake(c);
			await record(c, "wake");
		},
		onSleep: async (c: any) => {
			await record(c, "sleep");
		},
		actions: {
			send: async (c: any, sender: string, text: string) => {
				const message = { sender, text };
				c.state.messages.push(message);
				c.broadcast("newMessage", message);
				await c.saveState({ immediate: true });
				return message;
			},
			getHistory: (c: any) => c.state.messages,
		},
	});

	// Wakes itself through alarms, so the scenario can make it run again without the gateway.
	// Input: {delayMs, armOn: "sleep" | "wake", arms, sleepAfterFire}.
	// - armOn "sleep": while going to sleep, schedule `fire` delayMs later (the engine must wake the
	//   sleeping actor for it).
	// - armOn "wake": on every start, schedule `fire` delayMs later (an alarm pending while the
	//   actor runs, e.g. when its host is killed).
	// `arms` bounds how many alarms are armed in total; with sleepAfterFire the actor asks to sleep
	// after each firing, so armOn "sleep" makes it cycle sleep → alarm → wake `arms` times.
	const alarmer = rk.actor({
		createState: (_c: any, input: any) => ({
			delayMs: typeof input?.delayMs === "number" ? input.delayMs : 3000,
			armOn: input?.armOn === "wake" ? "wake" : "sleep",
			armsLeft: typeof input?.arms === "number" ? input.arms : 1,
			sleepAfterFire: input?.sleepAfterFire === true,
			armedAt: null as number | null,
			fired: 0,
			firedAt: null as number | null,
		}),
		onWake: async (c: any) => {
			await countWake(c);
			if (c.state.armOn === "wake" && c.state.armsLeft > 0) await arm(c);
			await record(c, "wake");
		},
		onSleep: async (c: any) => {
			if (c.state.armOn === "sleep" && c.state.armsLeft > 0) await arm(c);
			await record(c, "sleep");
		},
		actions: {
			fire: async (c: any) => {
				c.state.fired += 1;
				c.state.firedAt = Date.now();
				await c.saveState({ immediate: true });
				await record(c, "fired");
				if (c.state.sleepAfterFire) c.sleep();
			},
			getStatus: (c: any) => ({ ...c.state }),
		},
	});

	// Raw HTTP (onRequest) and raw WebSocket (onWebSocket) handlers for the gateway suite
	// (gateway/suite.mjs): the request handler answers what it received, so the suite can check
	// what the gateway forwarded (path, query, headers, body); the socket handler greets with the
	// URL it saw and echoes every frame, keeping the text/binary kind.
	const rawEcho = rk.actor({
		state: { requests: 0, sockets: 0 },
		onRequest: async (c: any, request: Request) => {
			c.state.requests += 1;
			const url = new URL(request.url);
			if (url.pathname === "/status/418") {
				return new Response("teapot", { status: 418, headers: { "x-echo-status": "418" } });
			}
			const headers: Record<string, string> = {};
			request.headers.forEach((v, k) => {
				headers[k] = v;
			});
			const body = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
			return new Response(
				JSON.stringify({
					actorId: c.actorId,
					method: request.method,
					url: request.url,
					path: url.pathname,
					search: url.search,
					headers,
					body,
					requests: c.state.requests,
				}),
				{ status: 200, headers: { "content-type": "application/json", "x-echo-actor": c.actorId } },
			);
		},
		onWebSocket: (c: any, ws: any) => {
			c.state.sockets += 1;
			ws.send(JSON.stringify({ hello: c.actorId, url: c.request?.url ?? null, sockets: c.state.sockets }));
			ws.addEventListener("message", (ev: any) => {
				if (typeof ev.data === "string") ws.send(`echo:${ev.data}`);
				else ws.send(ev.data);
			});
		},
		actions: {
			// Returns its argument unchanged (encoding round trips).
			echo: (_c: any, value: unknown) => value,
			getStats: (c: any) => ({ ...c.state }),
		},
	});

	// Sleeps after a short idle timeout (1.5 s) and broadcasts every change, for the suite's
	// sleep/wake and hibernation cases. Lifecycle events go to COMPAT_EVENTS_FILE like the others.
	const sleepy = rk.actor({
		createState: (_c: any, input: any) => ({ count: typeof input?.start === "number" ? input.start : 0 }),
		events: {
			changed: rk.event<number>(),
		},
		options: { sleepTimeout: 1500 },
		onWake: async (c: any) => {
			await countWake(c);
			await record(c, "wake");
		},
		onSleep: async (c: any) => {
			await record(c, "sleep");
		},
		actions: {
			increment: async (c: any, n: number) => {
				c.state.count += n;
				c.broadcast("changed", c.state.count);
				await c.saveState({ immediate: true });
				await record(c, "increment");
				return c.state.count;
			},
			getCount: (c: any) => c.state.count,
			getInfo: async (c: any) => ({
				count: c.state.count,
				wakes: Number((await c.kv.get("wakes")) ?? 0),
				pid: process.pid,
			}),
		},
	});

	// For bench/gateway/bench.mjs and bench/rivetkit: `ping` does nothing (the round trip is all
	// engine and host plumbing) and `broadcast` fans one `tick` event out to every connection of
	// the actor. For bench/rivetkit also: `increment` changes the state (saved on npm's default
	// throttle), `incrementSaved` waits until the change is saved, `goToSleep` asks to sleep.
	const benchActions = {
		ping: () => null,
		broadcast: (c: any, seq: number) => {
			c.broadcast("tick", seq);
			return seq;
		},
		increment: (c: any) => {
			c.state.count = (c.state.count ?? 0) + 1;
			return c.state.count;
		},
		incrementSaved: async (c: any) => {
			c.state.count = (c.state.count ?? 0) + 1;
			await c.saveState({ immediate: true });
			return c.state.count;
		},
		goToSleep: (c: any) => {
			c.sleep();
			return null;
		},
	};
	const bench = rk.actor({
		state: {},
		events: {
			tick: rk.event<number>(),
		},
		actions: benchActions,
	});
	// The same actor with a 10-minute idle timeout, so that the actors bench/rivetkit wakes for
	// its memory figure stay awake while it wakes the rest.
	const benchAwake = rk.actor({
		state: {},
		events: {
			tick: rk.event<number>(),
		},
		options: { sleepTimeout: 600_000 },
		actions: benchActions,
	});

	// For the Rust client's connection tests (crates/rivetkit-client/tests): events, slow and
	// failing actions, and connections refused (onBeforeConnect) or dropped on request.
	// onBeforeConnect refuses with `user.rejected` when the params say {reject: true}, and
	// connections with params {gated: true} while `state.refuse` is set (setRefuse), so a test
	// can hold its connection off and let it back in while calling actions without params.
	const clientConn = rk.actor({
		state: { count: 0, refuse: false },
		events: {
			changed: rk.event<number>(),
			note: rk.event<unknown>(),
		},
		onBeforeConnect: (c: any, params: any) => {
			if (params?.reject === true || (params?.gated === true && c.state.refuse)) {
				throw userError("connection refused", "rejected", { byParams: params?.reject === true });
			}
		},
		actions: {
			increment: (c: any, n: number) => {
				c.state.count += n;
				c.broadcast("changed", c.state.count);
				return c.state.count;
			},
			getCount: (c: any) => c.state.count,
			// Broadcasts event `name` with the remaining arguments.
			emit: (c: any, name: string, ...args: unknown[]) => {
				c.broadcast(name, ...args);
				return args.length;
			},
			// Answers `value` after `ms` milliseconds, so concurrent calls finish out of order.
			// Broadcasts note("started", value) first: a test can tell the call is running.
			delay: async (c: any, ms: number, value: unknown) => {
				c.broadcast("note", "started", value);
				await new Promise((resolve) => setTimeout(resolve, ms));
				return value;
			},
			fail: (_c: any, message: string) => {
				throw userError(message, "bad_thing", { a: 1 });
			},
			// The connection parameters the calling connection was opened with.
			params: (c: any) => c.conn?.params ?? null,
			setRefuse: (c: any, refuse: boolean) => {
				c.state.refuse = refuse;
				return refuse;
			},
			// Closes the connection with id `connId` (code 1000, `reason`); false if none.
			kick: async (c: any, connId: string, reason: string) => {
				for (const conn of c.conns.values()) {
					if (conn.id === connId) {
						await conn.disconnect(reason);
						return true;
					}
				}
				return false;
			},
		},
	});

	return { counter, chatRoom, alarmer, rawEcho, sleepy, bench, benchAwake, clientConn };
}

/**
 * A public user error (`user.<code>` with message and metadata, as `UserError` builds it),
 * duck-typed so that this file needs nothing from the host's rivetkit package beyond what
 * the registries pass in.
 */
function userError(message: string, code: string, metadata?: unknown): Error {
	const error: any = new Error(message);
	error.__type = "RivetError";
	error.group = "user";
	error.code = code;
	error.public = true;
	error.metadata = metadata;
	error.statusCode = 400;
	return error;
}

async function arm(c: any): Promise<void> {
	c.state.armsLeft -= 1;
	c.state.armedAt = Date.now();
	await c.schedule.after(c.state.delayMs, "fire");
	await record(c, "armed", { dueAt: c.state.armedAt + c.state.delayMs });
}
