import { execFile, execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason } from "@vigil/testing";
import { Lab, LAB_DIR } from "../src/lab.js";
import type { LiveReport } from "../src/live.js";
import { Pipeline } from "../src/pipeline.js";

const run = promisify(execFile);
const LIVE_MAIN = join(LAB_DIR, "dist", "live-main.js");
// The detector groups the live stack runs (all by default).
const DETECTORS = process.env.VIGIL_LIVE_DETECTORS ?? "pst,som";

function skipReason(): string | null {
  const ns = netnsUnavailableReason();
  if (ns) return ns;
  if (!existsSync(LIVE_MAIN)) return "lab/dist/live-main.js is not built (node scripts/build.mjs)";
  const missing = Pipeline.missingServices(["rules", ...(DETECTORS.split(",") as ("pst" | "som")[])]);
  if (missing.length) return `not built: ${missing.join(", ")} (node scripts/build.mjs)`;
  for (const tool of ["nmap", "hping3", "nft", "nats-server", "tcpdump"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

const reason = skipReason();
if (reason) console.warn(`live end-to-end test skipped: ${reason}`);

describe.skipIf(reason)(`live end-to-end in the lab (AF_PACKET capture, nftables enforcement)${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const lab = new Lab({ prefix: `vle${randomBytes(2).toString("hex")}` });
  let report: LiveReport;

  beforeAll(async () => {
    await lab.up();
    const { stdout, stderr } = await run(
      "ip",
      ["netns", "exec", lab.namespace("victim"), process.execPath, LIVE_MAIN, "--prefix", lab.prefix, "--ttl", "6", "--detectors", DETECTORS, ...(process.env.VIGIL_LIVE_KEEP ? ["--keep"] : [])],
      { timeout: 280_000, maxBuffer: 1 << 20 },
    ).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`live scenario failed: ${err.message}\n${err.stderr ?? ""}`);
    });
    process.stderr.write(stderr);
    report = JSON.parse(stdout.trim().split("\n").at(-1)!) as LiveReport;
  }, 300_000);

  afterAll(async () => {
    await lab.down().catch(() => undefined);
    rmSync(lab.stateDir, { recursive: true, force: true });
  }, 60_000);

  for (const attack of ["scan", "flood"] as const) {
    it(`blocks the attacker of a ${attack === "scan" ? "nmap SYN scan" : "SYN flood"} within 2 s of its first packet, and only the attacker`, () => {
      const r = report.attacks.find((a) => a.attack === attack)!;
      expect(r.blocked).toBe(true);
      expect(r.block_s).not.toBeNull();
      expect(r.block_s!, `block ${r.block_s} s by ${r.rule_detector}; first verdicts (s after the first packet): ${JSON.stringify(r.verdict_s)}`).toBeLessThan(2);
      expect(r.attacker_cut_off).toBe(true);
      expect(r.benign_reachable).toBe(true);
    });

    it(`lets the ${attack} attacker through again once the rule's TTL has passed`, () => {
      const r = report.attacks.find((a) => a.attack === attack)!;
      expect(r.expired).toBe(true);
      expect(r.reachable_after_expiry).toBe(true);
    });
  }

  it("never blocks a benign client", () => {
    expect(report.benign_blocked).toEqual([]);
  });
});
