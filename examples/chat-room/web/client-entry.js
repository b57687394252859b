// What the page imports: npm rivetkit's browser client. Its dist/browser/client.js imports
// CommonJS packages (pino, invariant, retry) that a browser cannot load as modules, so
// `npm run build` bundles it with its dependencies into dist/rivetkit-client.js.
export * from "rivetkit/client";
