import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { toolMissing } from "@vigil/testing";
import { LAB_DIR } from "../src/lab.js";
import { loadLabels } from "../src/labels.js";
import { Pipeline } from "../src/pipeline.js";

const EVAL = join(LAB_DIR, "captures", "eval");
const missing = Pipeline.missingServices(["rules", "pst", "som"]);
const skip = toolMissing("nats-server") ?? (missing.length ? `not built: ${missing.join(", ")} (node scripts/build.mjs)` : null);
if (skip) console.warn(`load shedding over the pipeline skipped: ${skip}`);

describe.skipIf(skip)(`load shedding forced at 1/16 over the real pipeline${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("a benign capture: most of it shed, as heartbeats say, and no verdict, no rule; an attack after it: still blocked", async () => {
    const labels = loadLabels(EVAL);
    const force = { shedding: { force: 4 } };
    const p = new Pipeline({ pst: force, som: force });
    try {
      await p.start();
      const benign = await p.replay(join(EVAL, "benign-1.pcap"), { local: labels.local, sourceId: "replay:benign-1" });
      expect(benign.frames).toBeGreaterThan(7000);
      expect(benign.verdicts.map((v) => v.summary)).toEqual([]);
      expect(benign.ruleEvents).toEqual([]);
      const shed = (service: string) => p.heartbeats(service).reduce((n, h) => n + h.framesShed, 0);
      await p.waitFor("heartbeats counting the frames shed", () => shed("pst") > benign.frames / 2 && shed("som") > benign.frames / 2, 10_000);

      const scan = labels.captures.find((c) => c.attack === "scan-syn")!;
      const attack = await p.replay(join(EVAL, scan.file), { local: labels.local, sourceId: "replay:scan-syn" });
      const blocked = new Set(attack.ruleEvents.map((e) => e.rule?.srcCidr.split("/")[0]));
      expect([...blocked]).toEqual(scan.attackers);
    } finally {
      await p.stop();
    }
  }, 180_000);
});
