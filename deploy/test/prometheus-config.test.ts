import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";

const dir = join(repoRoot, "deploy/prometheus");
const promtoolMissing = spawnSync("promtool", ["--version"]).status === 0 ? null : "promtool is not installed (apt-get install prometheus)";

function promtool(...args: string[]) {
  return spawnSync("promtool", args, { cwd: dir, encoding: "utf8" });
}

describe.skipIf(promtoolMissing)(`Prometheus files ${promtoolMissing ? `(skipped: ${promtoolMissing})` : ""}`, () => {
  it("promtool check rules accepts the alerting rules", () => {
    const r = promtool("check", "rules", "alerts.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("promtool check config accepts the host and the lab configuration", () => {
    for (const f of ["prometheus.yml", "prometheus-lab.yml", "prometheus-lab-host-enforcement.yml"]) {
      const r = promtool("check", "config", f);
      expect(r.status, `${f}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${f} is valid prometheus config file syntax`);
    }
  });

  it("every alert fires on its situation and stays quiet on a healthy pipeline (promtool test rules)", () => {
    const r = promtool("test", "rules", "alerts.test.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("SUCCESS");
  });

  it("the checks can fail: a broken rule is rejected", () => {
    const r = spawnSync("promtool", ["check", "rules", "/dev/stdin"], {
      encoding: "utf8",
      input: "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(vigil_capture_frames_captured_total[5m]) >\n",
    });
    expect(r.status).not.toBe(0);
  });
});
