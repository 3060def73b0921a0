import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "@vigil/config";

const captureSchema = z.strictObject({
  file: z.string().regex(/^[\w.-]+\.pcap(ng)?$/, "a file name in the labels' folder"),
  kind: z.enum(["benign", "attack"]),
  packets: z.number().int().nonnegative(),
  first_ts: z.number().nullable(),
  last_ts: z.number().nullable(),
  /** Benign addresses seen in this capture: none may ever be blocked. */
  benign: z.array(z.string()),
  attack: z.string().optional(),
  tool: z.string().optional(),
  /** "block": every address in attackers should be blocked; "detect": forged sources, alert without blocking them. */
  expect: z.enum(["block", "detect"]).optional(),
  attackers: z.array(z.string()).optional(),
  sender: z.string().optional(),
  sender_mac: z.string().optional(),
  spoofed: z.boolean().optional(),
  /** Reflection/amplification: the sources are real reflectors, so blocking them is no false positive. */
  reflected: z.boolean().optional(),
  forged_sources: z.number().int().nonnegative().optional(),
  /** Capture time (seconds since the epoch) of the first attack packet. */
  attack_start: z.number().optional(),
  attack_end: z.number().optional(),
  attack_packets: z.number().int().nonnegative().optional(),
  /** Protected addresses of this capture, when they differ from the set's (captures from elsewhere). */
  local: z.array(z.string()).min(1).optional(),
  note: z.string().optional(),
});

const labelsSchema = z.strictObject({
  version: z.literal(1),
  description: z.string().optional(),
  /** The protected addresses (the victim): --local for replay. Absent: per capture, else inferred. */
  local: z.array(z.string()).min(1).optional(),
  captures: z.array(captureSchema),
});

export type CaptureLabel = z.infer<typeof captureSchema>;
export type Labels = z.infer<typeof labelsSchema> & { dir: string };

export class LabelsError extends Error {
  readonly code = "VIGIL_ERR_LABELS";
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

/** Reads and checks a labels.json (a folder holding one, or the file itself). */
export function loadLabels(path: string): Labels {
  const file = path.endsWith(".json") ? path : join(path, "labels.json");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new LabelsError(file, e.code === "ENOENT" ? "no labels file here" : `not valid JSON: ${e.message}`);
  }
  const parsed = labelsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LabelsError(file, `${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  for (const [i, c] of parsed.data.captures.entries()) {
    if (c.kind === "attack" && (c.attack_start === undefined || c.attackers === undefined || c.expect === undefined)) {
      throw new LabelsError(file, `captures.${i} (${c.file}): an attack needs attack_start, attackers and expect`);
    }
  }
  return { ...parsed.data, dir: dirname(file) };
}
