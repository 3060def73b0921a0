import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { guestKernel, isRoot, repoRoot } from "@vigil/testing";

const runVm = join(repoRoot, "kmod/test/vm/run-vm.sh");

const KVER = guestKernel();
// Our own build cache (git-ignored, and not under /tmp, which the guest mounts afresh): the harness builds the
// module out of tree there, never racing the kernel engineer's own runs.
const vmDir = process.env.VIGIL_RULES_VM_DIR ?? join(repoRoot, "services/rules/build/vm-cache");

function skipReason(): string | null {
  if (process.env.VIGIL_SKIP_VM) return "VIGIL_SKIP_VM is set";
  if (!isRoot()) return "needs root (qemu with the host root over 9p)";
  if (!existsSync(runVm)) return "the kernel module's VM harness (kmod/test/vm/run-vm.sh) is missing";
  if (!KVER) return "no Debian 6.1 guest kernel could be found or installed (kmod/test/vm/kver.sh)";
  if (!existsSync(`/boot/vmlinuz-${KVER}`)) return `the guest kernel /boot/vmlinuz-${KVER} is not installed`;
  if (!existsSync(`/lib/modules/${KVER}/build`)) return `the guest kernel's headers (/lib/modules/${KVER}/build) are not installed`;
  for (const f of ["packages/netlink/native/build/Release/vigil_netlink.node", "packages/netlink/dist/index.js", "services/rules/dist/enforcers/kmod.js", "services/rules/dist/kernel-metrics.js"])
    if (!existsSync(join(repoRoot, f))) return `${f} is not built (run the build)`;
  return null;
}

/** Boots the VM, loads the module, runs `command` there and collects the {k, v} lines it prints. */
async function runInVm(command: string): Promise<Map<string, unknown>> {
  const { stdout } = await promisify(execFile)(runVm, ["--timeout", "500", "--", `insmod "$VIGIL_KO" && ${command}`], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 590_000,
    env: { ...process.env, VIGIL_VM_DIR: vmDir, VIGIL_KVER: KVER! },
  }).catch((err: { stdout?: string; stderr?: string; code?: number }) => {
    throw new Error(`VM run failed (exit ${err.code}): ${err.stdout ?? ""}\n${(err.stderr ?? "").slice(-3000)}`);
  });
  const results = new Map<string, unknown>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const { k, v } = JSON.parse(line) as { k: string; v: unknown };
    results.set(k, v);
  }
  return results;
}

const skip = skipReason();
if (skip) console.warn(`kmod enforcer VM test skipped: ${skip}`);

describe.skipIf(skip)(`kmod enforcer against the real module in a VM${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("adds in batches, dumps, deletes, reconciles, blocks traffic and mirrors expiry events", async () => {
    const results = await runInVm("node services/rules/test/vm/kmod-e2e.mjs");
    expect(results.get("error")).toBeUndefined();
    expect(results.get("ping-before")).toBe(true);
    expect(results.get("family")).toBe(true);
    expect(results.get("dump-count")).toBe(3);
    expect(results.get("host-rule")).toEqual({ kind: true, addr: "0a4d0002", timeoutOk: true, action: 1 });
    expect(results.get("v6-rule")).toEqual({ kind: 1, family: 6, noTimeout: true });
    expect(results.get("general-rule")).toEqual({ kind: 2, srcPrefix: 24, proto: 6, ports: [22, 23], direction: 1, priority: 5 });
    expect(results.get("ping-blocked")).toBe(true);
    expect(results.get("upsert")).toEqual({ count: 3, timeoutOk: true });
    expect(results.get("ping-still-blocked")).toBe(true);
    expect(results.get("counters")).toEqual({ hits: true, bytes: true });
    expect(results.get("stats")).toEqual({ dropped: true, hostRules: 2, generalRules: 1 });
    expect(results.get("kernel-metrics")).toEqual({ up: 1, seen: true, dropped: true, dropsAtLeastStats: true, captured: true, ringDrops: true, hostRules: 2, generalRules: 1, manualHits: true, manualBytes: true });
    expect(results.get("ping-after-delete")).toBe(true);
    expect(results.get("dump-after-batch")).toBe(5002);
    // Kept, or rewritten when the guest's jiffies drifted more than 5 s from its wall clock (qemu TCG on a busy host).
    const rec = results.get("reconcile") as { added: number; removed: number; kept: number; replaced: number };
    expect(rec).toMatchObject({ added: 0, removed: 4999 });
    expect(rec.kept + rec.replaced).toBe(3);
    expect(results.get("dump-after-reconcile")).toBe(true);
    expect(results.get("expiry-event")).toBe(true);
    expect(results.get("extack")).toEqual({ code: "VIGIL_ERR_NETLINK", errno: 22, extack: "address has bits set beyond the prefix length" });
    expect(results.get("enoent")).toEqual({ errno: 2, extack: "no rule with this ID" });
    expect(results.get("config")).toEqual({ before: 1, after: 3, snaplen: true, loopback: [false, true, false] });
    expect(results.get("host-clash")).toEqual({ blocked: true, allowed: true, reconciled: true, settled: true, held: [[true, 2]], blockedAgain: true, dropBack: [true] });
    expect(results.get("flush")).toBe(0);
    expect(results.get("done")).toBe(true);
  }, 620_000);

  // Security review F6 and F29: the same rule sets through both back ends, the same probes, the same verdicts.
  it("enforces general rules as the nftables back end does, in both directions", async () => {
    const results = await runInVm("node services/rules/test/vm/parity-e2e.mjs");
    expect(results.get("error")).toBeUndefined();
    const P = "pass";
    const B = "blocked";
    const names = ["in .2 to our 5300", "in .2 from its 5300", "out to .2 from our 5300", "out to .2 port 5300", "out to .3", "out to fd88::2", "in fd88::2"];
    const expected: Record<string, string[]> = {
      baseline: [P, P, P, P, P, P, P],
      "cidr both": [B, B, B, B, B, P, P],
      "cidr out": [P, P, B, B, B, P, P],
      "port both": [B, P, B, P, P, P, P],
      "host out": [P, P, P, P, B, P, P],
      "allow in a blocked cidr": [P, P, P, P, B, P, P],
      "v6 cidr out": [P, P, P, P, P, B, P],
      "allow under a first cidr drop": [P, P, P, P, B, P, P],
      "port allow over a host drop": [P, B, P, B, P, P, P],
      "one-direction allow before a cidr drop": [P, P, B, B, B, P, P],
      "one-direction allow after a cidr drop": [B, B, B, B, B, P, P],
    };
    // All sets at once, so that a failure shows every difference.
    const got = (set: string) => results.get(set) as { kmod: Record<string, string>; nftables: Record<string, string> } | undefined;
    const sets = Object.keys(expected);
    const table = (want: string[]) => Object.fromEntries(names.map((n, i) => [n, want[i]]));
    expect({ nftables: Object.fromEntries(sets.map((s) => [s, got(s)?.nftables])) }).toEqual({ nftables: Object.fromEntries(sets.map((s) => [s, table(expected[s])])) });
    expect({ kmod: Object.fromEntries(sets.map((s) => [s, got(s)?.kmod])) }).toEqual({ kmod: Object.fromEntries(sets.map((s) => [s, got(s)?.nftables])) });
    expect(results.get("done")).toBe(true);
  }, 620_000);
});
