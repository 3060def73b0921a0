import type { ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";

/**
 * Where a child's stdout and stderr go: "inherit" (the launcher's terminal),
 * a file path (appended), or "buffer" (kept in memory). The last 50 kB are kept
 * in memory in every mode but "inherit", for error messages.
 */
export type OutputTarget = "inherit" | "buffer" | { file: string };

const KEEP = 50_000;

export function stdioOf(target: OutputTarget): "inherit" | "pipe" {
  return target === "inherit" ? "inherit" : "pipe";
}

/** Collects a child's output as `target` says; returns a reader of its tail. */
export function collectOutput(child: ChildProcess, target: OutputTarget): () => string {
  if (target === "inherit") return () => "";
  let tail = "";
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-KEEP));
  const file = typeof target === "object" ? createWriteStream(target.file, { flags: "a" }) : null;
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on("data", keep);
    if (file) stream?.pipe(file, { end: false });
  }
  return () => tail;
}
