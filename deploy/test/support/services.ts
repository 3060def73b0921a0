import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { mainOf, repoRoot, spawnService, waitFor } from "@vigil/testing";

export { mainOf };

export const SERVICE_NAMES = ["capture", "pst", "som", "rules", "console"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Trained models a detector cannot start without (shipped in its package). */
const MODELS: Record<string, string> = { pst: "services/pst/models", som: "services/som/models/default" };

/** Why a service cannot be started by a test, or null. */
export function serviceMissing(name: string): string | null {
  if (!existsSync(mainOf(name))) return `services/${name}/dist/main.js is missing (${name} not built or not written yet)`;
  const models = MODELS[name];
  if (models) {
    const dir = join(repoRoot, models);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith(".")) : [];
    if (files.length === 0) return `${models} holds no trained model (vigil train ${name}), and ${name} cannot start without one`;
  }
  return null;
}

export interface RunningService {
  name: string;
  child: ChildProcess;
  /** Combined stdout and stderr, the last 50 kB. */
  output(): string;
  stop(hard?: boolean): Promise<void>;
}

/**
 * Starts `node services/<name>/dist/main.js`, optionally inside a network
 * namespace, with the given environment on top of a clean one (no VIGIL_*
 * variables leak in from the test runner's environment).
 */
export function startService(name: string, env: Record<string, string>, opts: { ns?: string; label?: string } = {}): RunningService {
  const svc = spawnService(opts.label ?? name, { service: name, env, ns: opts.ns });
  return { name: svc.name, child: svc.child, output: svc.output, stop: (hard = false) => svc.stop(hard ? 0 : 15_000) };
}

export async function fetchText(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

/** Waits until the service answers /healthz, failing early (with its output) if it exits. */
export async function waitHealthy(svc: RunningService, metricsBase: string, path = "/healthz", timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<void> {
  let exited = false;
  const onExit = () => (exited = true);
  svc.child.once("exit", onExit);
  if (svc.child.exitCode !== null) exited = true;
  try {
    await waitFor(
      `${svc.name} ${path} at ${metricsBase}`,
      async () => {
        if (exited) return "exited";
        const r = await fetch(`${metricsBase}${path}`, { headers, signal: AbortSignal.timeout(2000) }).catch(() => null);
        return r?.ok ? "ok" : null;
      },
      timeoutMs,
      200,
    ).then((state) => {
      if (state === "exited") throw new Error(`${svc.name} exited with ${svc.child.exitCode ?? svc.child.signalCode} before it was healthy`);
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- ${svc.name} output ---\n${svc.output().slice(-3000)}`);
  } finally {
    svc.child.off("exit", onExit);
  }
}

/**
 * Metric names a /metrics page declares (# TYPE lines, including metrics that
 * have no sample yet) and the sample names it carries (histogram _bucket, _sum
 * and _count included).
 */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      names.add(type[1]);
      if (type[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(type[1] + s);
      if (type[2] === "summary") for (const s of ["_sum", "_count"]) names.add(type[1] + s);
      continue;
    }
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

/** Every vigil_* metric name a PromQL expression mentions. */
export function metricNamesIn(expr: string): string[] {
  return [...new Set(expr.match(/\bvigil_[a-z0-9_]+\b/g) ?? [])];
}
