#!/usr/bin/env node
// Runs the blocked-retry scenario (security review F9); must be started inside the lab victim's
// namespace: ip netns exec <prefix>-victim node lab/dist/blocked-retry-main.js --prefix <prefix> --ttl 10
import { parseArgs } from "node:util";
import { reportScenario } from "./scenario-main.js";
import { runBlockedRetry } from "./blocked-retry.js";

const { values } = parseArgs({
  options: {
    prefix: { type: "string", default: "vlab" },
    ttl: { type: "string", default: "10" },
    "retry-ttls": { type: "string", default: "6" },
    "nft-table": { type: "string", default: "vigil_retry" },
    // A JSON object merged into pst's section, e.g. '{"idleTimeoutSeconds":3,"windowSeconds":60,"verdictUpdateSeconds":5}'.
    pst: { type: "string" },
  },
});

reportScenario(
  "blocked-retry",
  runBlockedRetry({
    prefix: values.prefix!,
    ttlS: Number(values.ttl),
    retryTtls: Number(values["retry-ttls"]),
    nftTable: values["nft-table"]!,
    pst: values.pst === undefined ? undefined : (JSON.parse(values.pst) as Record<string, unknown>),
    log: (m) => process.stderr.write(`blocked-retry: ${m}\n`),
  }),
);
