import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { conversationPackets, writeCapture } from "./support/gen.js";
import { ringProducerAddonPath } from "./support/ring-producer.js";

// Valgrind memcheck rather than an ASan build: it checks the very addon that
// ships (same -O2 build, same libpcap), needs no second build configuration,
// and follows the addon's memory through libpcap and the N-API finalizers.
// Node's own noise is suppressed narrowly (test/valgrind/node.supp).
const here = dirname(fileURLToPath(import.meta.url));
const built =
  existsSync(join(here, "../dist/index.js")) && existsSync(join(here, "../native/build/Release/vigil_packet_sources.node")) && existsSync(ringProducerAddonPath);
const hasValgrind = spawnSync("valgrind", ["--version"]).status === 0;
const skip = !hasValgrind ? "valgrind is not installed (scripts/deps/test-capture.apt)" : !built ? "packet-sources is not built (run node scripts/build.mjs)" : null;
if (skip) console.warn(`skipping the Valgrind run: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), "vigil-vg-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)(`native addon under Valgrind memcheck${skip ? ` — skipped: ${skip}` : ""}`, () => {
  it("replays a large capture and runs the ring reader with no invalid access and no definite leak", async () => {
    const frames = 30_000;
    const pcap = writeCapture(join(dir, "large.pcap"), conversationPackets(frames, 11));
    const args = [
      "--error-exitcode=1",
      "--leak-check=full",
      "--errors-for-leak-kinds=definite",
      "--show-leak-kinds=definite",
      "--num-callers=40",
      `--suppressions=${join(here, "valgrind/node.supp")}`,
      process.execPath,
      "--expose-gc",
      join(here, "valgrind/workload.mjs"),
      pcap,
      String(frames),
      ringProducerAddonPath,
    ];
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn("valgrind", args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
    const summary = /ERROR SUMMARY: (\d+) errors/.exec(result.stderr);
    const definitely = /definitely lost: ([\d,]+) bytes/.exec(result.stderr);
    if (result.code !== 0) console.error(result.stderr.slice(-20_000));
    expect(summary?.[1], "memcheck errors").toBe("0");
    expect(definitely === null || definitely[1] === "0", "definitely lost bytes").toBe(true);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim().split("\n").pop()!)).toMatchObject({ frames, ringFrames: 2000 });
  }, 600_000);
});
