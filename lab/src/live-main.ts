#!/usr/bin/env node
// Runs the live end-to-end scenario; must be started inside the lab victim's
// namespace: ip netns exec <prefix>-victim node lab/dist/live-main.js --prefix <prefix>
import { parseArgs } from "node:util";
import { reportScenario } from "./scenario-main.js";
import { runLive, type LiveAttackSpec } from "./live.js";
import type { Detector } from "./pipeline.js";

const { values } = parseArgs({
  options: {
    prefix: { type: "string", default: "vlab" },
    ttl: { type: "string", default: "8" },
    detectors: { type: "string" },
    attacks: { type: "string", default: "scan,flood" },
    "no-expiry": { type: "boolean" },
    keep: { type: "boolean" },
    "log-level": { type: "string" },
  },
});

reportScenario(
  "live",
  runLive({
    prefix: values.prefix!,
    ttlS: Number(values.ttl),
    detectors: values.detectors?.split(",") as Detector[] | undefined,
    attacks: values.attacks!.split(",") as LiveAttackSpec[],
    expiry: !values["no-expiry"],
    keep: values.keep,
    logLevel: values["log-level"],
    log: (m) => process.stderr.write(`live: ${m}\n`),
  }),
);
