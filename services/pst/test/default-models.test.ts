import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "@vigil/testing";
import { DEFAULT_MODELS_DIR } from "../src/config.js";
import { readModelDir } from "../src/model.js";

const script = join(repoRoot, "services/pst/scripts/train-default.sh");
const labTrain = join(repoRoot, "lab/captures/train");
const built = join(repoRoot, "services/pst/dist/cli.js");
const skip = !existsSync(labTrain)
  ? `no lab training captures in ${labTrain}`
  : !existsSync(built)
    ? "services/pst is not built (npx tsc -b services/pst)"
    : null;
if (skip) console.warn(`skipping the default-model reproduction check: ${skip}`);

describe.skipIf(skip)("default models", () => {
  it("scripts/train-default.sh reproduces services/pst/models byte for byte", () => {
    const out = mkdtempSync(join(tmpdir(), "vigil-pst-default-"));
    execFileSync("bash", [script, out], { stdio: ["ignore", "ignore", "pipe"] });
    const shipped = readModelDir(DEFAULT_MODELS_DIR);
    const fresh = readModelDir(out);
    const sha = [...fresh.values()][0].training.sha256;
    if ([...shipped.values()][0].training.sha256 !== sha) {
      // The lab re-recorded its captures: the shipped models are stale, which is a finding, not a pass.
      throw new Error(`training data changed (sha256 ${sha}): run services/pst/scripts/train-default.sh and commit services/pst/models`);
    }
    const names = readdirSync(out).sort();
    expect(readdirSync(DEFAULT_MODELS_DIR).sort()).toEqual(names);
    for (const n of names) expect(readFileSync(join(out, n), "utf8"), n).toBe(readFileSync(join(DEFAULT_MODELS_DIR, n), "utf8"));
  }, 120_000);
});
