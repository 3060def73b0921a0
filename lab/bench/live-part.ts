// bench:pipeline, part 2: brings a private lab up (lab.sh, namespace prefix
// vbpl), runs live-run.ts inside the victim's namespace and returns what it
// measured. Needs root, trafgen (Debian's netsniff-ng) and tcpdump.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Lab } from "../dist/lab.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

export async function livePart(): Promise<Record<string, unknown>> {
  const prefix = process.env.VIGIL_BENCH_LAB ?? "vbpl";
  const lab = new Lab({ prefix });
  await lab.down().catch(() => undefined);
  await lab.up();
  try {
    const { stdout, stderr } = await run(
      "ip",
      ["netns", "exec", lab.namespace("victim"), process.execPath, ...process.execArgv, join(here, "live-run.ts")],
      { env: { ...process.env, VIGIL_BENCH_LAB: prefix }, timeout: 1_800_000, maxBuffer: 16 << 20 },
    );
    process.stderr.write(stderr);
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
  } finally {
    await lab.down().catch(() => undefined);
    rmSync(lab.stateDir, { recursive: true, force: true });
  }
}
