import type { ChildProcess } from "node:child_process";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/**
 * Where a child's stdout and stderr go: "inherit" (the launcher's terminal),
 * a file path (appended), or "buffer" (kept in memory). The last 50 kB of
 * what the child wrote can be read back in every mode but "inherit", for
 * error messages.
 */
export type OutputTarget = "inherit" | "buffer" | { file: string };

const KEEP = 50_000;

/** A started child, and a reader of the tail of what it wrote. */
export interface ChildWithOutput {
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts a child with its stdout and stderr going to `target`: `start` gets what to pass as both.
 * A file target is opened here and handed to the child as its stdout and stderr, so the child
 * writes its log straight to the file: no pipe through the launcher, whose event loop would
 * otherwise handle every log line (and whose lag would block a child writing its log
 * synchronously). Our copy of the descriptor is closed once `start` returns or throws.
 */
export function spawnWithOutput(target: OutputTarget, start: (stdio: "inherit" | "pipe" | number) => ChildProcess): ChildWithOutput {
  if (target === "inherit") return { child: start("inherit"), output: () => "" };
  if (target === "buffer") {
    const child = start("pipe");
    return { child, output: bufferTail(child) };
  }
  const fd = openSync(target.file, "a");
  let from: number;
  let child: ChildProcess;
  try {
    // What the file held before is another run's: the tail starts at this child's first byte.
    from = fstatSync(fd).size;
    child = start(fd);
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  return { child, output: () => fileTail(target.file, from) };
}

function bufferTail(child: ChildProcess): () => string {
  let tail = "";
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-KEEP));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => tail;
}

/** The last KEEP bytes written to the file since offset `from` (empty when it cannot be read). */
function fileTail(file: string, from: number): string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return "";
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - KEEP);
    if (size <= start) return "";
    const buf = Buffer.alloc(size - start);
    const n = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, n).toString();
  } finally {
    closeSync(fd);
  }
}
