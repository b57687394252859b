// Drives the chat page in Debian's Chromium (headless) with playwright-core, for
// examples/chat-room/tests/browser.rs, which starts the example and plays "bob" with
// rivetkit-client. Steps, each reported on stdout as "STEP <name>" for the Rust side:
//
//   1. joining without a name shows the actor's refusal (user.name_required);
//   2. "alice" joins the room and sends a message            → STEP alice-sent
//   3. the page renders bob's reply (sent by the Rust test)   → STEP saw-bob
//   4. the member list shows both names                       → STEP members
//
// Usage: node browser-test.mjs <page url> <room> <bob's text> [screenshot.png]
// Environment: CHROMIUM (default /usr/bin/chromium).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [pageUrl, room, bobText, screenshot] = process.argv.slice(2);
if (!pageUrl || !room || !bobText) {
	console.error("usage: node browser-test.mjs <page url> <room> <bob's text> [screenshot.png]");
	process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT = 30_000;

// Never outlive the Rust test that started us, whatever hangs.
const deadline = setTimeout(() => {
	console.error("FAIL: browser test still running after 120 s");
	process.exit(1);
}, 120_000);

const userDataDir = await mkdtemp(join(tmpdir(), "chat-room-chromium-"));
let context;
try {
	context = await chromium.launchPersistentContext(userDataDir, {
		executablePath,
		headless: true,
		timeout: STEP_TIMEOUT,
		args: [
			"--headless",
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
		],
	});
} catch (error) {
	console.error(`FAIL: cannot launch Chromium at ${executablePath}: ${error.message}`);
	await rm(userDataDir, { recursive: true, force: true });
	process.exit(1);
}

let failed = false;
try {
	const page = context.pages()[0] ?? (await context.newPage());
	page.setDefaultTimeout(STEP_TIMEOUT);
	page.on("console", (m) => console.log(`[page ${m.type()}] ${m.text()}`));
	page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
	page.on("requestfailed", (r) => console.log(`[request failed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
	page.on("websocket", (ws) => {
		console.log(`[websocket] open ${ws.url()}`);
		ws.on("close", () => console.log(`[websocket] closed ${ws.url()}`));
		ws.on("socketerror", (e) => console.log(`[websocket] error ${ws.url()}: ${e}`));
	});

	await page.goto(`${pageUrl}/?room=${encodeURIComponent(room)}`);
	await page.locator("#join:not([disabled])").waitFor();

	// 1. No name: the actor's on_before_connect refuses, the page shows its error.
	await page.fill("#name", "");
	await page.click("#join");
	await page.locator("#error", { hasText: "user.name_required" }).waitFor();
	await page.locator("#join:not([hidden])").waitFor();
	console.log("STEP refused-without-name");

	// 2. alice joins and speaks.
	await page.fill("#name", "alice");
	await page.click("#join");
	await page.locator("#chat:not([hidden])").waitFor();
	await page.locator("#status", { hasText: "connected" }).waitFor();
	await page.fill("#text", "hello from alice");
	await page.click("#send");
	await page.locator("#messages li.message", { hasText: "hello from alice" }).waitFor();
	console.log("STEP alice-sent");

	// 3. bob's message, sent from Rust, appears.
	const bob = page.locator("#messages li.message", { hasText: bobText });
	await bob.waitFor();
	const from = await bob.locator(".from").textContent();
	if (from !== "bob") throw new Error(`bob's message is shown as from ${JSON.stringify(from)}`);
	console.log("STEP saw-bob");

	// 4. Both are listed as members.
	await page.waitForFunction(
		() => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join(",") === "alice,bob",
	);
	console.log("STEP members");
	if (screenshot) await page.screenshot({ path: screenshot });
} catch (error) {
	failed = true;
	console.error(`FAIL: ${error.message}`);
} finally {
	await context.close().catch(() => {});
	await rm(userDataDir, { recursive: true, force: true });
	clearTimeout(deadline);
}
if (failed) process.exit(1);
console.log("PASS");
