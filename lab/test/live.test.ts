import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveLabSkipReason } from "./support/live-lab.js";
import { Lab, LAB_DIR } from "../src/lab.js";
import type { LiveAttackResult, LiveReport } from "../src/live.js";

const run = promisify(execFile);
const LIVE_MAIN = join(LAB_DIR, "dist", "live-main.js");
// The detector groups the live stack runs (all by default).
const DETECTORS = process.env.VIGIL_LIVE_DETECTORS ?? "pst,som";
// The scan's host floods again once its block expired (a repeat offender), then a fresh host floods.
const ATTACKS = ["scan@atk", "flood@atk", "flood@atk2"] as const;
const CASES: Record<(typeof ATTACKS)[number], string> = {
  "scan@atk": "an nmap SYN scan",
  "flood@atk": "a SYN flood from the scan's host after its block expired (repeat offender)",
  "flood@atk2": "a SYN flood from a new host",
};

function skipReason(): string | null {
  return liveLabSkipReason("live-main.js", ["rules", ...(DETECTORS.split(",") as ("pst" | "som")[])], ["nmap", "hping3", "nft", "nats-server", "tcpdump"]);
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
      ["netns", "exec", lab.namespace("victim"), process.execPath, LIVE_MAIN, "--prefix", lab.prefix, "--ttl", "6", "--detectors", DETECTORS, "--attacks", ATTACKS.join(","), ...(process.env.VIGIL_LIVE_KEEP ? ["--keep"] : [])],
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

  const result = (spec: (typeof ATTACKS)[number]): LiveAttackResult => {
    const [attack, host] = spec.split("@");
    const r = report.attacks.find((a) => a.attack === attack && a.host === host);
    if (!r) throw new Error(`no result for ${spec} in ${JSON.stringify(report.attacks)}`);
    return r;
  };

  for (const spec of ATTACKS) {
    it(`blocks the attacker of ${CASES[spec]} within 2 s of its first packet, and only the attacker`, () => {
      const r = result(spec);
      const why = `block ${r.block_s} s by ${r.rule_detector}; first verdicts (s after the first packet): ${JSON.stringify(r.verdict_s)}`;
      expect(r.repeat).toBe(spec === "flood@atk");
      // A block still (or again) in force when the attack starts would be measured as this attack's.
      expect(r.in_force_at_start, `a block of ${r.host} was in force when the ${r.attack} started; ${why}`).toBe(false);
      expect(r.blocked, why).toBe(true);
      expect(r.block_s).not.toBeNull();
      expect(r.block_s!, why).toBeGreaterThanOrEqual(0);
      expect(r.block_s!, why).toBeLessThan(2);
      expect(r.attacker_cut_off).toBe(true);
      expect(r.benign_reachable).toBe(true);
    });

    it(`lets the attacker of ${CASES[spec]} through again as soon as its rule's expiry is announced`, () => {
      const r = result(spec);
      expect(r.expired).toBe(true);
      expect(r.reachable_after_expiry).toBe(true);
      // A first SYN dropped after the announcement would take a retransmission: a second or more.
      expect(r.connect_s_after_expiry, `connect time of the first request after the expiry event`).not.toBeNull();
      expect(r.connect_s_after_expiry!).toBeLessThan(0.9);
    });
  }

  it("never blocks a benign client", () => {
    expect(report.benign_blocked).toEqual([]);
  });
});
