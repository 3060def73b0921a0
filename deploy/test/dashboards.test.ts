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
  fieldConfig?: { defaults: { unit?: string; thresholds?: { steps: Array<{ color: string; value: number | null }> } } };
}
interface Variable {
  name: string;
  type: string;
  current?: { value: string | string[] };
  query?: { query: string } | string;
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
}
interface Annotation {
  name: string;
  builtIn?: number;
  enable: boolean;
  expr?: string;
  datasource: { uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
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

  // Metric names a PromQL expression selects (not functions, labels or keywords).
  const metricsIn = (expr: string) => [...expr.matchAll(/\b(vigil_[a-z0-9_]+|up)\b(?=\s*[{[)]|\s*$)/g)].map((m) => m[1]);
  const documented = new Set([...readFileSync(join(repoRoot, "docs/metrics-reference.md"), "utf8").matchAll(/^\| `(vigil_[a-z0-9_]+)` \|/gm)].map((m) => m[1]));

  for (const f of files) {
    it(`${f}: an instance variable every query filters on, block/unblock annotations, up stats red at 0`, () => {
      const d = load(f);
      const v = d.templating.list.find((x) => x.name === "instance");
      expect(v, "no instance variable").toBeDefined();
      expect(v!.type).toBe("query");
      expect(JSON.stringify(v!.query)).toContain("label_values(up{job=~\\\"vigil-.*\\\"}, instance)");
      expect(v!.includeAll && v!.multi).toBe(true);
      expect(v!.allValue).toBe(".*");
      const queries = [
        ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
        ...d.annotations.list.filter((a) => a.expr).map((a) => ({ where: `annotation ${a.name}`, expr: a.expr! })),
      ];
      for (const { where, expr } of queries) {
        const names = metricsIn(expr);
        expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
        // Every selector, not just one: a sum over two metrics filtered on one would mix hosts.
        const filtered = [...expr.matchAll(/\b(?:vigil_[a-z0-9_]+|up)\{[^}]*instance=~"\$instance"[^}]*\}/g)].length;
        expect(filtered, `${where}: ${expr}`).toBe(names.length);
      }
      const marks = d.annotations.list.filter((a) => !a.builtIn);
      const blocks = marks.find((a) => a.name === "Blocks");
      const unblocks = marks.find((a) => a.name === "Unblocks");
      expect(blocks?.enable && unblocks?.enable).toBe(true);
      expect(blocks!.expr).toMatch(/increase\(vigil_rules_rules_added_total\{/);
      expect(unblocks!.expr).toMatch(/increase\(vigil_rules_rules_expired_total\{/);
      expect(unblocks!.expr).toMatch(/increase\(vigil_rules_rules_removed_total\{/);
      for (const a of marks) expect(a.datasource.uid).toBe("${datasource}");
      // Up / connected / reachable stats: red below 1, green from 1.
      const upStats = d.panels.filter((p) => p.type === "stat" && /\b(up|connected|reachable)\b/i.test(p.title));
      for (const p of upStats) {
        const steps = p.fieldConfig!.defaults.thresholds!.steps;
        expect(steps, p.title).toEqual([{ color: "red", value: null }, { color: "green", value: 1 }]);
      }
    });
  }

  it("up and connected stats exist where the review asked for them", () => {
    const upTitles = files.flatMap((f) => load(f).panels.filter((p) => p.type === "stat" && p.fieldConfig?.defaults.thresholds?.steps[0]?.color === "red").map((p) => p.title));
    expect(upTitles).toEqual(expect.arrayContaining(["Services up", "Bus connected", "Module reachable", "Rules service up"]));
  });

  it("query only metrics docs/metrics-reference.md documents", () => {
    expect(documented.size).toBeGreaterThan(50);
    const missing = new Set<string>();
    for (const f of files) {
      const d = load(f);
      const exprs = [...d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...d.annotations.list.flatMap((a) => (a.expr ? [a.expr] : []))];
      for (const n of exprs.flatMap(metricsIn)) {
        if (n === "up") continue;
        const base = n.replace(/_(bucket|sum|count)$/, "");
        if (!documented.has(n) && !documented.has(base)) missing.add(`${f}: ${n}`);
      }
    }
    expect([...missing]).toEqual([]);
  });

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
