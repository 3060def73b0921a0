import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "@vigil/config";
import { LabelsError, loadLabels, type Labels } from "./labels.js";

const setSchema = z.strictObject({
  name: z.string().min(1),
  /** The folder of the captures, relative to the sets file. */
  dir: z.string().min(1),
  /** A labels file (relative to the sets file) for a set with attacks. */
  labels: z.string().optional(),
  /** Or: the files of a set where every address is benign (a block of anything is a false positive). */
  benign: z.array(z.string().regex(/^[\w.-]+\.pcap(ng)?$/)).optional(),
  /** Held out from every decision made while developing: report only. */
  heldOut: z.boolean().optional(),
});

const setsSchema = z.strictObject({
  version: z.literal(1),
  description: z.string().optional(),
  sets: z.array(setSchema).min(1),
});

export type EvalSetSpec = z.infer<typeof setSchema>;

export interface EvalSet {
  name: string;
  heldOut: boolean;
  /** Set when the set's captures are not there (../shared absent): why it cannot be evaluated. */
  missing: string | null;
  labels: Labels;
}

/** Labels of a benign-only set: every capture benign, no address named, so any block is a false positive. */
export function benignLabels(dir: string, files: string[]): Labels {
  return {
    version: 1,
    dir,
    captures: files.map((file) => ({ file, kind: "benign" as const, packets: 0, first_ts: null, last_ts: null, benign: [] })),
  };
}

/** Reads a sets file (lab/captures/sets.json); `only` picks sets by name. */
export function loadSets(file: string, only?: string[]): EvalSet[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new LabelsError(file, e.code === "ENOENT" ? "no such sets file" : `not valid JSON: ${e.message}`);
  }
  const parsed = setsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LabelsError(file, `${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  const base = dirname(resolve(file));
  const unknown = (only ?? []).filter((n) => !parsed.data.sets.some((s) => s.name === n));
  if (unknown.length) throw new LabelsError(file, `no set named ${unknown.map((n) => `"${n}"`).join(", ")} (sets: ${parsed.data.sets.map((s) => s.name).join(", ")})`);
  const out: EvalSet[] = [];
  for (const [i, s] of parsed.data.sets.entries()) {
    if (only?.length && !only.includes(s.name)) continue;
    if (!s.labels === !s.benign) throw new LabelsError(file, `sets.${i} (${s.name}): give either labels or benign`);
    const dir = join(base, s.dir);
    const missing = existsSync(dir) ? null : `${dir} not found`;
    const labels = s.labels ? { ...loadLabels(join(base, s.labels)), dir } : benignLabels(dir, s.benign!);
    out.push({ name: s.name, heldOut: s.heldOut ?? false, missing, labels });
  }
  return out;
}
