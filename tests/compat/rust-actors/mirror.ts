// The Rust test actors of crates/rivetkit/tests/npm_client.rs written with npm rivetkit@2.3.19,
// action for action, so that rust-actors/suite.mjs can run the same cases against both
// (`--target ts` starts this host) and tell where the Rust SDK behaves differently.
//
// Where TypeScript has no exact equivalent the closest idiom is used and named in a comment.
import fs from "node:fs";
import { UserError, actor, event, setup } from "rivetkit";

const values = actor({
	createState: (_c: any, input: any) => ({ input: input ?? null, count: input?.start ?? 0 }),
	actions: {
		getInput: (c: any) => c.state.input,
		increment: (c: any, by: number) => {
			c.state.count += by;
			return c.state.count;
		},
		describe: (_c: any, n: number, s: string, nested: any, items: any[], missing: unknown) => ({
			doubled: n * 2,
			shout: s.toUpperCase(),
			nested,
			itemIds: items.map((i) => i.id),
			labels: items.map((i) => i.label ?? null),
			missingWasNull: missing == null,
		}),
		nextBig: (_c: any, x: bigint | number) => BigInt(x) + 1n,
		reverseBytes: (_c: any, bytes: Uint8Array) => new Uint8Array([...bytes].reverse()),
		// Rust: `async fn nothing(&mut self) {}`.
		nothing: () => {},
		// Rust's ctx.key() is the serialized key; one component serializes as itself.
		identity: (c: any) => ({
			actorId: c.actorId,
			name: c.name,
			key: c.key.length ? c.key.join("/") : null,
			count: c.state.count,
		}),
		destroy: (c: any) => {
			c.destroy();
		},
	},
});

const faulty = actor({
	state: { calls: 0 },
	options: { actionTimeout: 500 },
	actions: {
		userFail: (c: any, code: string, message: string, detail: unknown) => {
			c.state.calls += 1;
			throw new UserError(message, { code, metadata: detail });
		},
		// Rust: `std::fs::read(…)?` in an action returning `Result<_, rivetkit::Error>`.
		ioFail: (c: any) => {
			c.state.calls += 1;
			return fs.readFileSync("/nonexistent/rivetkit-npm-client-test").length;
		},
		slow: async (_c: any, ms: number) => {
			await new Promise((resolve) => setTimeout(resolve, ms));
			return ms;
		},
		length: (_c: any, text: string) => text.length,
		calls: (c: any) => c.state.calls,
	},
});

// Rust's `Conn::is_realtime()` (a /connect socket, not an HTTP action's connection) is
// `conn.isHibernatable` here: realtime connections are hibernatable by default.
const chat = actor({
	state: { log: [] as string[], messages: 0 },
	events: {
		joined: event<string>(),
		left: event<string>(),
		message: event<{ from: string; text: string }>(),
		whisper: event<{ from: string; text: string }>(),
		other: event<string>(),
	},
	onBeforeConnect: (_c: any, params: any) => {
		if (params?.token === "bad") {
			throw new UserError("bad token", { code: "forbidden", metadata: { name: params.name } });
		}
	},
	createConnState: (_c: any, params: any) => ({ name: params?.name ?? "anonymous", said: 0 }),
	onConnect: (c: any, conn: any) => {
		if (!conn.isHibernatable) return;
		c.state.log.push(`connect:${conn.state.name}`);
		c.broadcast("joined", conn.state.name);
	},
	onDisconnect: (c: any, conn: any) => {
		if (!conn.isHibernatable) return;
		c.state.log.push(`disconnect:${conn.state.name}`);
		c.broadcast("left", conn.state.name);
	},
	actions: {
		say: (c: any, text: string) => {
			c.state.messages += 1;
			let from = "nobody";
			let said = 0;
			if (c.conn) {
				c.conn.state.said += 1;
				from = c.conn.state.name;
				said = c.conn.state.said;
			}
			c.broadcast("message", { from, text });
			return said;
		},
		whoami: (c: any) =>
			c.conn
				? { id: c.conn.id, name: c.conn.state.name, said: c.conn.state.said, realtime: c.conn.isHibernatable }
				: null,
		whisper: (c: any, to: string, text: string) => {
			const from = c.conn ? c.conn.state.name : "nobody";
			const target = c.conns.get(to);
			if (!target) return false;
			target.send("whisper", { from, text });
			return true;
		},
		announce: (c: any, name: string, text: string) => {
			c.broadcast(name, text);
		},
		connCount: (c: any) => ({
			total: c.conns.size,
			realtime: [...c.conns.values()].filter((x: any) => x.isHibernatable).length,
		}),
		kick: async (c: any, who: string, reason: string) => {
			for (const conn of c.conns.values()) {
				if (conn.isHibernatable && conn.state.name === who) {
					await conn.disconnect(reason);
					return true;
				}
			}
			return false;
		},
		log: (c: any) => c.state.log,
	},
});

const sleepy = actor({
	state: { count: 0, wakes: 0, sleeps: 0 },
	events: { changed: event<number>() },
	options: { sleepTimeout: 1000 },
	onWake: (c: any) => {
		c.state.wakes += 1;
	},
	onSleep: (c: any) => {
		c.state.sleeps += 1;
	},
	createConnState: (_c: any, params: any) => ({ name: params?.name ?? "anonymous", actions: 0 }),
	actions: {
		increment: (c: any, by: number) => {
			c.state.count += by;
			if (c.conn) c.conn.state.actions += 1;
			c.broadcast("changed", c.state.count);
			return c.state.count;
		},
		info: (c: any) => ({
			count: c.state.count,
			wakes: c.state.wakes,
			sleeps: c.state.sleeps,
			conn: c.conn?.isHibernatable ? { name: c.conn.state.name, actions: c.conn.state.actions } : null,
		}),
		nap: (c: any) => {
			c.sleep();
		},
	},
});

const raw = actor({
	state: { requests: 0 },
	onRequest: async (c: any, request: Request) => {
		c.state.requests += 1;
		const url = new URL(request.url);
		// Rust: `on_request` returning `None`.
		if (url.pathname === "/missing") return undefined as any;
		if (url.pathname === "/status/418") {
			return new Response("teapot", { status: 418, headers: { "x-echo-status": "418" } });
		}
		return new Response(
			JSON.stringify({
				method: request.method,
				path: url.pathname,
				query: url.search ? url.search.slice(1) : null,
				custom: request.headers.get("x-custom"),
				contentType: request.headers.get("content-type"),
				body: await request.text(),
				requests: c.state.requests,
			}),
			{ status: 201, headers: { "content-type": "application/json", "x-echo": "yes" } },
		);
	},
	onWebSocket: (c: any, ws: any) => {
		const url = new URL(c.request?.url ?? "http://unknown/");
		ws.send(`hello ${url.pathname}${url.search}`);
		ws.addEventListener("message", (ev: any) => {
			if (typeof ev.data === "string") ws.send(`echo:${ev.data}`);
			else ws.send(ev.data);
		});
	},
	actions: {
		requests: (c: any) => c.state.requests,
	},
});

const plain = actor({
	state: {},
	actions: {
		ping: () => "pong",
	},
});

const timer = actor({
	state: { count: 0 },
	events: { bumped: event<number>() },
	actions: {
		bumpLater: async (c: any, ms: number, by: number) => {
			await c.schedule.after(ms, "bump", by);
		},
		bump: (c: any, by: number) => {
			c.state.count += by;
			c.broadcast("bumped", c.state.count);
		},
		getCount: (c: any) => c.state.count,
	},
});

export const registry = setup({ use: { values, faulty, chat, sleepy, raw, plain, timer } });

registry.start();
