import { networkInterfaces } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Action, Rule } from "@vigil/proto";
import { freePort, toolMissing } from "@vigil/testing";
import { Allowlist } from "../src/allowlist.js";
import { EXIT } from "@vigil/lifecycle";
import { ControlApi } from "../src/client.js";
import { startGrpcServer } from "../src/grpc-server.js";
import { grpcStack, runCommand } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");

/** A non-loopback IPv4 address of this host, to be a TCP peer other than loopback. */
function ownAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return null;
}

describe.skipIf(natsSkip)("manual rules cannot lock the host out", () => {
  const allow = Allowlist.fromConfig(["203.0.113.0/24"], [
    { cidr: "192.0.2.10/32", why: "own address" },
    { cidr: "192.0.2.1/32", why: "default gateway" },
    { cidr: "198.51.100.53/32", why: "DNS server" },
  ]);
  const env = grpcStack({ bucket: "lockout_test", allowlist: allow });
  const add = (srcCidr: string, extra: { force?: boolean; sessionSource?: string; protocol?: number; dportMin?: number } = {}) =>
    env.api.call("addRule", { rule: Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr, protocol: extra.protocol ?? 0, dportMin: extra.dportMin ?? 0 }), ttlS: 600, force: !!extra.force, sessionSource: extra.sessionSource ?? "" });

  it("gRPC: refuses drops over loopback, own addresses, gateway, DNS, allowlist and the caller's session unless forced", async () => {
    const refused = (cidr: string, what: RegExp, extra = {}) =>
      expect(add(cidr, extra)).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(new RegExp(`^VIGIL_ERR_LOCKOUT: rule\\.src_cidr: .*${what.source}`)) });
    await refused("127.0.0.1", /covers 127\.0\.0\.0\/8 \(loopback\)/);
    await refused("::1", /loopback/);
    await refused("192.0.2.10", /own address/);
    await refused("192.0.2.0/29", /covers 192\.0\.2\.1\/32 \(default gateway\)/);
    await refused("198.51.100.53", /DNS server/);
    await refused("203.0.113.128/25", /configuration/);
    await refused("100.64.0.0/24", /session this request came from/, { sessionSource: "::ffff:100.64.0.9" });
    await expect(add("100.64.0.9", { sessionSource: "not an address" })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^session_source: /) });
    // Drops of everything: refused even with force; narrower lockouts go through with it.
    await refused("0.0.0.0/0", /drops all traffic.*even with force/, { force: true });
    await refused("::/0", /even with force/, { force: true });
    await refused("0.0.0.0/0", /loopback/, { protocol: 6, dportMin: 22 });
    expect(env.r.svc.listRules({})).toEqual([]);
    const forced = (await add("192.0.2.0/24", { force: true })) as Rule;
    expect(forced).toMatchObject({ srcCidr: "192.0.2.0/24" });
    // Allow rules and drops elsewhere are not concerned.
    await expect(env.api.call("addRule", { rule: Rule.fromPartial({ action: Action.ACTION_ACCEPT, srcCidr: "127.0.0.1" }), ttlS: 60 })).resolves.toBeTruthy();
    await expect(add("100.64.0.0/24")).resolves.toMatchObject({ srcCidr: "100.64.0.0/24" });
  });

  const own = ownAddress();
  it.skipIf(!own)("gRPC over TCP: the caller's own peer address is protected", async () => {
    const tcp = await startGrpcServer(env.r.svc, { host: own!, port: await freePort() });
    const remote = new ControlApi({ addr: tcp.address });
    try {
      const call = remote.call("addRule", { rule: Rule.fromPartial({ srcCidr: `${own}/32` }), ttlS: 60, force: false, sessionSource: "" });
      await expect(call).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/session this request came from/) });
    } finally {
      remote.close();
      await tcp.close();
    }
  });

  it("CLI: `vigil rules add` says why it refuses, exits 1, and adds with --force", async () => {
    const c = ["--socket", join(env.dir, "control.sock")];
    const res = await runCommand(["rules", "add", "block", "198.51.100.0/24", ...c]);
    expect(res.code).toBe(EXIT.FAILURE);
    expect(res.stderr).toBe("vigil rules: refused: VIGIL_ERR_LOCKOUT: rule.src_cidr: 198.51.100.0/24 would cut the host off: it covers 198.51.100.53/32 (DNS server); set force (--force) to add it anyway\n");
    const forced = await runCommand(["rules", "add", "block", "198.51.100.0/24", "--force", ...c, "--json"]);
    expect(forced.code).toBe(EXIT.OK);
    expect(JSON.parse(forced.stdout)).toMatchObject({ srcCidr: "198.51.100.0/24" });
    const all = await runCommand(["rules", "add", "block", "::/0", "--force", ...c]);
    expect(all.code).toBe(EXIT.FAILURE);
    expect(all.stderr).toMatch(/drops all traffic of the family: refused, even with force/);
  });
});
