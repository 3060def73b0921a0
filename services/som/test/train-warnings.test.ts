import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";

// `vigil train som` writes a model from thin data, but says what it was too thin
// for, with the counts it saw and the minimum.

const vigil = join(repoRoot, "packages/cli/dist/main.js");
const capture = join(repoRoot, "lab/captures/train/benign-2.pcap");
const skip = !existsSync(vigil) ? "needs the build (node scripts/build.mjs)" : !existsSync(capture) ? `${capture} missing` : null;

describe.skipIf(skip)("vigil train som warnings", () => {
  const tmp = mkdtempSync(join(tmpdir(), "vigil-som-thin-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const train = (extra: string[]) =>
    spawnSync(process.execPath, [vigil, "train", "som", "--pcap", capture, "--local", "10.77.0.10/32,fd77::10/128", "--epochs", "2", ...extra], { encoding: "utf8", timeout: 120_000 });

  it("names the training windows per map unit and the held-out windows per percentile it lacked; none when the map and percentile fit", () => {
    const thin = train(["--out", join(tmp, "a")]);
    expect(thin.status, thin.stderr).toBe(0);
    expect(thin.stderr).toMatch(/vigil train som: warning: som: \d+ training windows for a 10 x 10 map \(100 units\), below the minimum of 500 \(5 per unit\)/);
    expect(thin.stderr).toMatch(/vigil train som: warning: som: \d+ held-out windows calibrate the threshold at p99\.5, below the minimum of 200/);
    expect(existsSync(join(tmp, "a", "som-model.json"))).toBe(true);
    const fits = train(["--out", join(tmp, "b"), "--rows", "4", "--cols", "5", "--percentile", "95"]);
    expect(fits.status, fits.stderr).toBe(0);
    expect(fits.stderr).not.toMatch(/warning/);
  }, 180_000);
});
