// The chat page: joins a room of the Rust `chatRoom` actor with npm rivetkit's browser client
// (bundled as /rivetkit-client.js by `npm run build`), shows its messages and members, sends.

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorBox = $("error");

function showError(text) {
	errorBox.textContent = text;
}

function describe(error) {
	// Errors from the actor carry group and code (e.g. user.name_required).
	if (error && error.group && error.code) return `${error.group}.${error.code}: ${error.message}`;
	return String(error?.message ?? error);
}

let createClient;
try {
	({ createClient } = await import("/rivetkit-client.js"));
} catch (error) {
	// The server answers the missing bundle with the command that builds it.
	const response = await fetch("/rivetkit-client.js").catch(() => null);
	const hint = response && !response.ok ? await response.text() : describe(error);
	status.textContent = "The npm client is not available.";
	showError(hint);
	throw error;
}

const config = await (await fetch("/config.json")).json();
// devtools: npm's client would load its devtools script from the endpoint, which only npm
// rivetkit's own server has; the engine here serves Rust actors.
const client = createClient({ endpoint: config.endpoint, devtools: false });

const params = new URLSearchParams(location.search);
if (params.get("room")) $("room").value = params.get("room");
if (params.get("name")) $("name").value = params.get("name");

let conn = null;
/** Keys of the messages on screen, so history and live events never show one twice. */
let shown = new Set();

const messageKey = (m) => `${m.at}|${m.from}|${m.text}`;

function time(at) {
	return new Date(Number(at)).toLocaleTimeString();
}

function addMessage(m) {
	const key = messageKey(m);
	if (shown.has(key)) return;
	shown.add(key);
	const li = document.createElement("li");
	li.className = "message";
	const when = document.createElement("span");
	when.className = "time";
	when.textContent = time(m.at);
	const from = document.createElement("span");
	from.className = "from";
	from.textContent = m.from;
	const text = document.createElement("span");
	text.className = "text";
	text.textContent = m.text;
	li.append(when, from, text);
	appendLine(li);
}

function addNotice(text) {
	const li = document.createElement("li");
	li.className = "notice";
	li.textContent = text;
	appendLine(li);
}

function appendLine(li) {
	const list = $("messages");
	list.append(li);
	list.scrollTop = list.scrollHeight;
}

async function refreshMembers() {
	if (!conn) return;
	try {
		const names = await conn.members();
		$("members").replaceChildren(
			...names.map((name) => {
				const li = document.createElement("li");
				li.textContent = name;
				return li;
			}),
		);
	} catch (error) {
		showError(describe(error));
	}
}

async function join(room, name) {
	showError("");
	$("messages").replaceChildren();
	shown = new Set();
	const handle = client.chatRoom.getOrCreate([room], { params: { name } });
	const c = handle.connect();
	conn = c;
	let opened = false;
	c.onStatusChange((s) => {
		if (conn === c) status.textContent = `${s} · room "${room}" as "${name}"`;
	});
	c.onError((error) => {
		if (conn !== c) return;
		showError(describe(error));
		// Refused before it ever opened (e.g. no name): stop retrying, back to the form.
		if (!opened) leave();
	});
	c.on("message", addMessage);
	c.on("joined", (p) => {
		addNotice(`${p.name} joined`);
		refreshMembers();
	});
	c.on("left", (p) => {
		addNotice(`${p.name} left`);
		refreshMembers();
	});
	// Also after every reconnect: catch up on what was said meanwhile.
	c.onOpen(async () => {
		opened = true;
		$("chat").hidden = false;
		$("join").hidden = true;
		$("leave").hidden = false;
		try {
			for (const m of await c.history()) addMessage(m);
		} catch (error) {
			showError(describe(error));
		}
		await refreshMembers();
		$("text").focus();
	});
}

async function leave() {
	const c = conn;
	conn = null;
	$("chat").hidden = true;
	$("join").hidden = false;
	$("leave").hidden = true;
	status.textContent = "not connected";
	if (c) await c.dispose();
}

$("join-form").addEventListener("submit", (event) => {
	event.preventDefault();
	if (conn) return;
	join($("room").value.trim() || "lobby", $("name").value);
});

$("leave").addEventListener("click", () => leave());

$("send-form").addEventListener("submit", async (event) => {
	event.preventDefault();
	const input = $("text");
	const text = input.value;
	if (!conn || !text.trim()) return;
	try {
		addMessage(await conn.sendMessage(text));
		input.value = "";
		showError("");
	} catch (error) {
		showError(describe(error));
	}
});

status.textContent = "not connected";
$("join").disabled = false;
