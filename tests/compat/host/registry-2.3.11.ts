// rivetkit@2.3.11 (envoy protocol v6) twin of registry.ts, from the `rivetkit211` alias package.
import { actor, event, setup } from "rivetkit211";
import { buildActors } from "./actors.ts";

export const registry = setup({ use: buildActors({ actor, event }) });

registry.start();
