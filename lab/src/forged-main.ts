#!/usr/bin/env node
// Runs the forged-handshake scenario; must be started inside the lab victim's
// namespace: ip netns exec <prefix>-victim node lab/dist/forged-main.js --prefix <prefix> --sources 1000
import { parseArgs } from "node:util";
import { reportScenario } from "./scenario-main.js";
import { runForged } from "./forged.js";

const { values } = parseArgs({
  options: {
    prefix: { type: "string", default: "vlab" },
    sources: { type: "string", default: "1000" },
    connections: { type: "string", default: "6" },
    "max-automatic-rules": { type: "string" },
    "nft-table": { type: "string", default: "vigil_forged" },
  },
});

reportScenario(
  "forged",
  runForged({
    prefix: values.prefix!,
    sources: Number(values.sources),
    connections: Number(values.connections),
    maxAutomaticRules: values["max-automatic-rules"] === undefined ? undefined : Number(values["max-automatic-rules"]),
    nftTable: values["nft-table"]!,
    log: (m) => process.stderr.write(`forged: ${m}\n`),
  }),
);
