import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";
import { MODEL_FILE, trainDefaultModel } from "../src/index.js";
import { DEFAULT_MODEL } from "./support/scenarios.js";

const labDir = join(repoRoot, "lab/captures/train");
const skip = existsSync(join(labDir, "labels.json")) ? null : `lab training captures not recorded (${labDir}/labels.json absent; sudo lab/record.sh train)`;
if (skip) console.warn(`SOM default-model reproduction test skipped: ${skip}`);

describe.skipIf(skip)(`the shipped default SOM model${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("is reproduced byte for byte from the lab's training captures and the seeded synthetic traffic", { timeout: 180_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "som-default-"));
    try {
      const model = await trainDefaultModel({ labDir });
      model.save(out);
      const shipped = readFileSync(join(DEFAULT_MODEL, MODEL_FILE));
      const rebuilt = readFileSync(join(out, MODEL_FILE));
      // A mismatch means features, training or the recipe changed without `node services/som/scripts/train-default.mjs`.
      expect(rebuilt.equals(shipped), "the shipped model differs from a fresh training run: rerun services/som/scripts/train-default.mjs").toBe(true);
      const labels = new Set(Object.values(model.json.labels).flatMap((counts) => Object.keys(counts)));
      expect([...labels].sort()).toEqual(["fragment-flood", "icmp-flood", "ping-sweep", "syn-flood", "syn-scan", "udp-amplification", "udp-flood", "udp-scan"]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
