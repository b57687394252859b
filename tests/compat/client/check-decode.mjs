// Reverse direction of the client-protocol compat test: decodes bytes produced by the Rust codec
// with npm rivetkit@2.3.19's codec and compares the result with the expected fields.
// Usage: node check-decode.mjs <input.json>, input [{name,type,encoding,hex,expected}].
// Output (stdout): [{name, ok, got?, error?}].
import fs from "node:fs";
import { fieldsOf, npmDecode } from "./npm-codec.mjs";

// Key order of the expected fields is not significant (they pass through serde_json).
function canonical(x) {
	if (Array.isArray(x)) return x.map(canonical);
	if (x && typeof x === "object") {
		return Object.fromEntries(
			Object.keys(x)
				.sort()
				.map((k) => [k, canonical(x[k])]),
		);
	}
	return x;
}

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const results = input.map((item) => {
	try {
		const decoded = npmDecode(item.type, item.encoding, Buffer.from(item.hex, "hex"));
		const got = fieldsOf(item.type, decoded);
		const ok = JSON.stringify(canonical(got)) === JSON.stringify(canonical(item.expected));
		return ok ? { name: item.name, ok } : { name: item.name, ok, got };
	} catch (e) {
		return { name: item.name, ok: false, error: String(e && e.message ? e.message : e).slice(0, 500) };
	}
});
process.stdout.write(JSON.stringify(results));
