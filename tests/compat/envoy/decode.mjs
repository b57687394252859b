// Reads [{kind, version, hex}] (JSON) on stdin, decodes each with the npm codec, and prints
// [{value, reencoded}] where value is the JSON-safe view and reencoded the npm re-encoding (hex);
// errors are reported as {error}.
import { decode, encode, fromHex, toHex, view } from "./common.mjs";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(({ kind, version, hex }) => {
  try {
    const value = decode(kind, version, fromHex(hex));
    return { value: view(value), reencoded: toHex(encode(kind, version, value)) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify(out));
