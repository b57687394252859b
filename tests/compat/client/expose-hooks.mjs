// Module-loader hooks: the npm package keeps its client-protocol codec (generated BARE code,
// versioned handlers, zod schemas) private inside a bundled chunk. This hook appends an export
// list to that chunk at load time so the vector scripts can call the real npm code, unmodified.
const NAMES = [
	"CLIENT_PROTOCOL_TO_SERVER",
	"CLIENT_PROTOCOL_TO_CLIENT",
	"HTTP_ACTION_REQUEST_VERSIONED",
	"HTTP_ACTION_RESPONSE_VERSIONED",
	"HTTP_QUEUE_SEND_REQUEST_VERSIONED",
	"HTTP_QUEUE_SEND_RESPONSE_VERSIONED",
	"HTTP_RESPONSE_ERROR_VERSIONED",
	"HTTP_RESOLVE_RESPONSE_VERSIONED",
	"ToClientSchema",
	"ToServerSchema",
	"HttpActionRequestSchema",
	"HttpActionResponseSchema",
	"HttpQueueSendRequestSchema",
	"HttpQueueSendResponseSchema",
	"HttpResponseErrorSchema",
	"HttpResolveResponseSchema",
	"encodeToServer",
	"encodeToClient",
	"encodeHttpResponseError",
	"encodeToClient2",
	"encodeToClient3",
	"encodeToServer2",
	"encodeToServer3",
	"encodeHttpResponseError2",
	"encodeHttpResponseError3",
	"encodeHttpActionRequest",
	"encodeHttpActionResponse",
	"encodeHttpQueueSendRequest",
	"encodeHttpQueueSendResponse",
];

export async function load(url, context, nextLoad) {
	const result = await nextLoad(url, context);
	if (url.includes("/rivetkit/dist/tsup/chunk-") && url.endsWith(".js")) {
		const source = String(result.source);
		if (source.includes("var CLIENT_PROTOCOL_TO_SERVER =")) {
			return {
				...result,
				source: `${source}\nexport { ${NAMES.map((n) => `${n} as __npm_${n}`).join(", ")} };\n`,
			};
		}
	}
	return result;
}
