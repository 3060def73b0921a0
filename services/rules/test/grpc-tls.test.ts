import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Status } from "@vigil/proto";
import { disposeNatsServer, freePort, startNatsServer, toolMissing, type NatsServerHandle } from "@vigil/testing";
import { ControlApi } from "../src/client.js";
import { startGrpcServer, type GrpcHandle } from "../src/grpc-server.js";
import { startService, type Running } from "./support/rules.js";

const skip = toolMissing("openssl", "", ["version"]) ?? toolMissing("nats-server");
if (skip) console.warn(`gRPC TLS tests skipped: ${skip}`);

function makePki(dir: string): void {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=vigil-test-ca");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=operator");
  ssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "1");
  // A client certificate from another CA must be refused.
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "1", "-subj", "/CN=rogue");
}

describe.skipIf(skip)("gRPC over TLS with client certificates", () => {
  let nats: NatsServerHandle;
  let r: Running;
  let server: GrpcHandle;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vigil-tls-"));
    makePki(dir);
    nats = await startNatsServer({ jetstream: true });
    r = await startService(nats.url, { bucket: "tls_test", dryRun: true });
    server = await startGrpcServer(r.svc, {
      host: "127.0.0.1",
      port: await freePort(),
      tls: { cert: join(dir, "server.pem"), key: join(dir, "server.key"), clientCa: join(dir, "ca.pem") },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await r?.stop();
    if (nats) await disposeNatsServer(nats);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves a client with a certificate signed by the client CA and refuses the others", async () => {
    const ok = new ControlApi({ addr: server.address, tls: { ca: join(dir, "ca.pem"), cert: join(dir, "client.pem"), key: join(dir, "client.key") } });
    expect((await ok.call<object, Status>("getStatus", {})).enforcer).toBe("dry-run");
    ok.close();
    for (const tls of [{ ca: join(dir, "ca.pem") }, { ca: join(dir, "ca.pem"), cert: join(dir, "rogue.pem"), key: join(dir, "rogue.key") }]) {
      const c = new ControlApi({ addr: server.address, tls, deadlineMs: 3000 });
      await expect(c.call("getStatus", {})).rejects.toMatchObject({ code: expect.any(Number) });
      const err = await c.call("getStatus", {}).catch((e: grpc.ServiceError) => e);
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain((err as grpc.ServiceError).code);
      c.close();
    }
    const plain = new ControlApi({ addr: server.address, deadlineMs: 3000 });
    await expect(plain.call("getStatus", {})).rejects.toBeDefined();
    plain.close();
  }, 30_000);
});
