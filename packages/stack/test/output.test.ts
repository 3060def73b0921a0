import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { spawnWithOutput, type OutputTarget } from "../src/output.js";

const dir = mkdtempSync(join(tmpdir(), "vigil-output-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A child writing `lines` lines to stdout and stderr in turn, synchronously. */
function writer(target: OutputTarget, lines: number) {
  const script = `for (let i = 0; i < ${lines}; i++) require("fs").writeSync(i % 2 ? 2 : 1, "line " + i + " " + "x".repeat(100) + "\\n");`;
  return spawnWithOutput(target, (stdio) => spawn(process.execPath, ["-e", script], { stdio: ["ignore", stdio, stdio] }));
}

const openFiles = () => readdirSync("/proc/self/fd").length;

describe("spawnWithOutput", () => {
  it("hands a file target to the child itself: no pipe through the launcher, the tail read back from this child's first byte", async () => {
    const file = join(dir, "svc.log");
    writeFileSync(file, "an earlier run's line\n");
    const { child, output } = writer({ file }, 1000);
    expect(child.stdout).toBeNull();
    expect(child.stderr).toBeNull();
    await once(child, "exit");
    const all = readFileSync(file, "utf8");
    expect(all.startsWith("an earlier run's line\nline 0 ")).toBe(true);
    expect(all.split("\n").filter(Boolean)).toHaveLength(1001);
    const tail = output();
    expect(tail.length).toBeLessThanOrEqual(50_000);
    expect(tail.length).toBeGreaterThan(49_000);
    expect(all.endsWith(tail)).toBe(true);
    expect(tail).toContain("line 999 ");
    expect(tail).not.toContain("earlier run");
  });

  it("reads back only what this child wrote when it wrote little", async () => {
    const file = join(dir, "short.log");
    writeFileSync(file, "an earlier run's line\n");
    const { child, output } = writer({ file }, 3);
    await once(child, "exit");
    expect(output()).toBe(["line 0", "line 1", "line 2"].map((l) => `${l} ${"x".repeat(100)}\n`).join(""));
  });

  it("closes its copy of the log file whether the child starts or the spawn throws", async () => {
    const file = join(dir, "failed.log");
    const before = openFiles();
    // Node refuses an argument with a NUL byte before it forks: the spawn throws where it is called.
    expect(() => spawnWithOutput({ file }, (stdio) => spawn(process.execPath, ["-e", "\0"], { stdio: ["ignore", stdio, stdio] }))).toThrow(/null bytes/);
    expect(openFiles()).toBe(before);
    const { child } = writer({ file }, 1);
    expect(openFiles()).toBe(before);
    await once(child, "exit");
  });

  it("keeps the tail of a piped child's output in memory", async () => {
    const { child, output } = writer("buffer", 1000);
    await once(child, "close");
    const tail = output();
    expect(tail.length).toBe(50_000);
    expect(tail).toContain("line 999 ");
  });
});
