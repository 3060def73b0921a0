import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { subjects, type NatsConnection } from "@vigil/bus";
import { ModelError, parsePstExport, parseSomExport } from "@vigil/models";
import type { ModelDocument } from "./wire.js";

/**
 * Model views for the console. Detectors are asked first on the request
 * subject vigil.models.<detector> (empty request, JSON reply: the same document
 * as `vigil <detector> export --format json`); when no instance answers, the
 * newest *.json export in the configured model directories is read. The
 * documents are parsed by the model contract (@vigil/models), which rejects
 * anything else with an error naming the field. The console never reads a
 * detector's files by its place in the repository.
 */

export const modelSubject = subjects.models;

async function jsonFiles(dir: string): Promise<{ path: string; mtime: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const files: { path: string; mtime: number }[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith(".json")) continue;
    const path = join(dir, n);
    const st = await stat(path).catch(() => null);
    if (st?.isFile()) files.push({ path, mtime: st.mtimeMs });
  }
  return files;
}

export interface ModelSourceOptions {
  nats: () => NatsConnection | null;
  stateDir: string;
  dirs: Partial<Record<"pst" | "som", string>>;
  requestTimeoutMs: number;
}

export class ModelSource {
  private cache = new Map<string, { at: number; value: Promise<ModelDocument<unknown>> }>();

  constructor(private readonly opts: ModelSourceOptions) {}

  /**
   * Where model files are looked for when no detector answers: the configured
   * directory (models.pstDir / models.somDir), else the detector's state
   * directory (models updated by feedback).
   */
  directories(detector: "pst" | "som"): string[] {
    const configured = this.opts.dirs[detector];
    if (configured) return [configured];
    const state = join(this.opts.stateDir, detector);
    return [join(state, "models"), state];
  }

  get(detector: "pst" | "som"): Promise<ModelDocument<unknown>> {
    const hit = this.cache.get(detector);
    if (hit && Date.now() - hit.at < 2000) return hit.value;
    const value = this.load(detector);
    this.cache.set(detector, { at: Date.now(), value });
    value.catch(() => this.cache.delete(detector));
    return value;
  }

  private async load(detector: "pst" | "som"): Promise<ModelDocument<unknown>> {
    const parse = detector === "pst" ? parsePstExport : parseSomExport;
    const nc = this.opts.nats();
    const problems: string[] = [];
    if (nc && !nc.isClosed()) {
      try {
        const reply = await nc.request(modelSubject(detector), new Uint8Array(0), { timeout: this.opts.requestTimeoutMs });
        const text = new TextDecoder().decode(reply.data);
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (err) {
          throw new ModelError(`reply on ${modelSubject(detector)} is not JSON: ${(err as Error).message}`);
        }
        return { detector, origin: `live: ${modelSubject(detector)}`, loadedAt: Date.now() / 1000, models: parse(doc) };
      } catch (err) {
        if (err instanceof ModelError) throw err;
        problems.push(`no answer on ${modelSubject(detector)} (${(err as Error).message})`);
      }
    }
    // PST keeps one file per service class; SOM one map. Files that are not models (feedback stores) are passed over.
    const dirs = this.directories(detector);
    for (const dir of dirs) {
      const files = await jsonFiles(dir);
      if (!files.length) continue;
      if (detector === "som") files.sort((a, b) => b.mtime - a.mtime);
      const models: unknown[] = [];
      const used: string[] = [];
      for (const file of files) {
        try {
          models.push(...parse(JSON.parse(await readFile(file.path, "utf8"))));
          used.push(file.path);
          if (detector === "som") break;
        } catch (err) {
          problems.push(`${file.path}: ${(err as Error).message}`);
        }
      }
      if (models.length) {
        const origin = used.length === 1 ? `file: ${used[0]}` : `files: ${dir}/ (${used.length})`;
        return { detector, origin, loadedAt: Date.now() / 1000, models };
      }
    }
    if (!problems.some((p) => p.includes(".json"))) problems.push(`no *.json model in ${dirs.join(", ")}`);
    throw Object.assign(new ModelError(`${detector} model unavailable: ${problems.join("; ")}`), { notFound: true });
  }
}
