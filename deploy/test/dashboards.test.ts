import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "@vigil/testing";

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string; datasource: { uid: string } }>;
  fieldConfig?: { defaults: { unit?: string } };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; current?: { value: string } }> };
}

const dir = join(repoRoot, "deploy/grafana/dashboards");
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const load = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Dashboard;

describe("Grafana dashboards", () => {
  it("are what build-dashboards.mjs produces (no hand edits drifting away)", () => {
    const out = mkdtempSync(join(tmpdir(), "vigil-dash-"));
    try {
      execFileSync(process.execPath, [join(repoRoot, "deploy/grafana/build-dashboards.mjs"), out], { stdio: "ignore" });
      const fresh = readdirSync(out).sort();
      expect(fresh).toEqual(files);
      for (const f of files) expect(readFileSync(join(out, f), "utf8"), f).toBe(readFileSync(join(dir, f), "utf8"));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("cover the pipeline, the detectors, the rules and the kernel module", () => {
    expect(files).toEqual(["vigil-detectors.json", "vigil-kernel.json", "vigil-pipeline.json", "vigil-rules.json"]);
    const titles = (f: string) => load(f).panels.map((p) => p.title.toLowerCase()).join("\n");
    expect(titles("vigil-pipeline.json")).toMatch(/packets\/s captured/);
    expect(titles("vigil-pipeline.json")).toMatch(/ring drops/);
    expect(titles("vigil-pipeline.json")).toMatch(/bus drops/);
    expect(titles("vigil-pipeline.json")).toMatch(/per .*instance/);
    expect(titles("vigil-detectors.json")).toMatch(/scores/);
    expect(titles("vigil-detectors.json")).toMatch(/threshold/);
    expect(titles("vigil-detectors.json")).toMatch(/verdicts\/s/);
    expect(titles("vigil-detectors.json")).toMatch(/lag/);
    expect(titles("vigil-rules.json")).toMatch(/active rules by origin/);
    expect(titles("vigil-rules.json")).toMatch(/added and expired/);
    expect(titles("vigil-rules.json")).toMatch(/decision latency/);
    expect(titles("vigil-kernel.json")).toMatch(/drops/);
    const exprs = (f: string) => load(f).panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    expect(titles("vigil-pipeline.json")).toMatch(/per shard/);
    expect(exprs("vigil-pipeline.json")).toMatch(/sum by \(shard\) \(rate\(vigil_capture_shard_frames_total/);
    for (const n of ["vigil_kernel_packets_seen_total", "vigil_kernel_packets_dropped_total", "vigil_kernel_ring_drops_total", "vigil_kernel_rule_hits_total"]) expect(exprs("vigil-kernel.json")).toContain(n);
  });

  for (const f of files) {
    it(`${f}: valid layout, unique ids, every query on the provisioned datasource`, () => {
      const d = load(f);
      expect(d.uid).toBe(f.replace(/\.json$/, ""));
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      const ds = d.templating.list.find((v) => v.type === "datasource");
      expect(ds?.current?.value).toBe("vigil-prometheus");
      // No two panels overlap on Grafana's 24-column grid.
      const cells = new Set<string>();
      for (const p of d.panels) {
        expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
            cells.add(`${x},${y}`);
          }
        if (p.type === "row") continue;
        expect(p.datasource?.uid, p.title).toBe("${datasource}");
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        const refs = p.targets!.map((t) => t.refId);
        expect(new Set(refs).size, p.title).toBe(refs.length);
        for (const t of p.targets!) {
          expect(t.expr, p.title).toMatch(/\bvigil_|\bup\b/);
          expect(t.datasource.uid).toBe("${datasource}");
          // Parentheses balance: a cheap guard before the live PromQL check in metrics.test.ts.
          let depth = 0;
          for (const c of t.expr) {
            depth += c === "(" ? 1 : c === ")" ? -1 : 0;
            expect(depth, t.expr).toBeGreaterThanOrEqual(0);
          }
          expect(depth, t.expr).toBe(0);
        }
      }
    });
  }

  it("are provisioned where compose mounts them, with the datasource they name", () => {
    const compose = parseYaml(readFileSync(join(repoRoot, "compose.yaml"), "utf8")) as { services: Record<string, { volumes: string[]; environment: Record<string, string> }> };
    const grafana = compose.services.grafana;
    const provider = parseYaml(readFileSync(join(repoRoot, "deploy/grafana/provisioning/dashboards/vigil.yml"), "utf8")) as { providers: Array<{ options: { path: string } }> };
    const mount = grafana.volumes.find((v) => v.startsWith("./deploy/grafana/dashboards:"))!;
    expect(mount.split(":")[1]).toBe(provider.providers[0].options.path);
    expect(grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider.providers[0].options.path}/vigil-pipeline.json`);
    const datasource = parseYaml(readFileSync(join(repoRoot, "deploy/grafana/provisioning/datasources/prometheus.yml"), "utf8")) as { datasources: Array<{ uid: string; url: string }> };
    expect(datasource.datasources[0].uid).toBe("vigil-prometheus");
    expect(datasource.datasources[0].url).toBe("http://prometheus:9090");
  });
});
