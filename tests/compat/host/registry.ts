// rivetkit@2.3.19 actor host for the compatibility scenario (scenario.mjs).
// Run: tsx host/registry.ts, with RIVET_ENDPOINT pointing at the engine under test and
// RIVET_RUN_SERVICES=0 (see scenario.mjs for the full environment).
import { actor, event, setup } from "rivetkit";
import { buildActors } from "./actors.ts";

export const registry = setup({ use: buildActors({ actor, event }) });

registry.start();
