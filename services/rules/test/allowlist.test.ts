import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, freePort, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { Allowlist, discoverHostAllowlist, watchAllowlist } from "../src/allowlist.js";
import { ControlApi } from "../src/client.js";
import { startGrpcServer } from "../src/grpc-server.js";
import { publishVerdict, runCommand, startService, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const ipSkip = toolMissing("ip", "iproute2", ["-V"]);

/** A systemd-resolved host: /etc/resolv.conf names the stub, the upstream servers are in resolved's own file. */
function resolvedHost(dir: string, upstream: string[]): { stub: string; resolved: string } {
  const stub = join(dir, "resolv.conf");
  const resolved = join(dir, "resolved.conf");
  writeFileSync(stub, "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\n");
  writeFileSync(resolved, upstream.map((a) => `nameserver ${a}`).join("\n") + "\n");
  return { stub, resolved };
}

describe.skipIf(ipSkip)("the DNS servers in the allowlist (F7)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vigil-allow-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads systemd-resolved's upstream servers as well as /etc/resolv.conf, and tolerates a missing file", async () => {
    const { stub, resolved } = resolvedHost(dir, ["192.0.2.53", "2001:db8::53"]);
    const found = await discoverHostAllowlist(undefined, [stub, resolved, join(dir, "absent.conf")]);
    const dns = found.filter((e) => e.why === "DNS server").map((e) => e.cidr);
    expect(dns).toEqual(["127.0.0.53/32", "192.0.2.53/32", "2001:db8::53/128"]);
    const allow = Allowlist.fromConfig([], found);
    expect(allow.why("192.0.2.53")).toBe("DNS server");
    expect(allow.why("2001:db8::53")).toBe("DNS server");
  });

  it("re-discovers when resolved's upstream list changes", async () => {
    const { stub, resolved } = resolvedHost(dir, ["192.0.2.53"]);
    const allow = Allowlist.fromConfig([], await discoverHostAllowlist(undefined, [stub, resolved]));
    const watch = watchAllowlist(allow, { configured: [], defaults: true, resolvConfs: [stub, resolved], refreshS: 3600 });
    try {
      expect(allow.why("198.51.100.53")).toBeNull();
      writeFileSync(resolved, "nameserver 198.51.100.53\n");
      await waitFor("re-discovered", () => allow.why("198.51.100.53") === "DNS server" || null, 8000, 100);
      expect(allow.why("192.0.2.53")).toBeNull();
    } finally {
      watch.close();
    }
  });
});

describe.skipIf(natsSkip)("the effective allowlist over gRPC and in `vigil status`", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("Status carries the allowlist, the CLI prints it, and the upstream resolver is never blocked", async () => {
    const allow = Allowlist.fromConfig(["203.0.113.0/24"], [{ cidr: "192.0.2.53/32", why: "DNS server" }]);
    const r = await startService(nats.url, { bucket: "allowstatus_test", dryRun: true }, undefined, allow);
    const server = await startGrpcServer(r.svc, { host: "127.0.0.1", port: await freePort() });
    const api = new ControlApi({ addr: server.address });
    try {
      const st = (await api.call("getStatus", {})) as { allowlist: Array<{ cidr: string; why: string }> };
      expect(st.allowlist).toEqual(expect.arrayContaining([{ cidr: "192.0.2.53/32", why: "DNS server" }, { cidr: "203.0.113.0/24", why: "configuration" }, { cidr: "127.0.0.0/8", why: "loopback/link-local" }]));
      const { code, stdout } = await runCommand(["status", "--addr", server.address]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/NEVER BLOCKED AUTOMATICALLY\s+WHY/);
      expect(stdout).toMatch(/192\.0\.2\.53\/32\s+DNS server/);
      publishVerdict(r.nc, verdict("192.0.2.53", { handshakes: 3 }));
      await waitFor("decided", () => r.svc.listVerdicts({}).length === 1 || null);
      expect(r.svc.listVerdicts({})[0].outcome).toBe("allowlisted");
    } finally {
      api.close();
      await server.close();
      await r.stop();
    }
  });
});
