import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, startNatsServer, type NatsServerHandle } from "@vigil/testing";
import { connectBus, credentialOptions } from "../src/index.js";

/** Security review F22: the credential keys of the nats section are honoured, not silently ignored. */
describe("bus credentials", () => {
  let nats: NatsServerHandle;
  let dir: string;
  beforeAll(async () => {
    nats = await startNatsServer({ auth: true });
    dir = mkdtempSync(join(tmpdir(), "vigil-bus-creds-"));
  });
  afterAll(async () => {
    await disposeNatsServer(nats);
    rmSync(dir, { recursive: true, force: true });
  });

  it("connects as the user whose password is in nats.passwordFile, and is refused without it", async () => {
    const pst = nats.auth!.credentials.pst;
    const nc = await connectBus({ servers: [nats.url], name: "creds-test", user: pst.user, passwordFile: pst.passwordFile, firstConnectTimeoutMs: 5000 });
    expect(nc.info?.client_id).toBeGreaterThan(0);
    await nc.close();
    await expect(connectBus({ servers: [nats.url], name: "creds-test", firstConnectTimeoutMs: 1500 })).rejects.toThrow(/authoriz/i);
    const wrong = join(dir, "wrong.password");
    writeFileSync(wrong, "not-the-password\n");
    await expect(connectBus({ servers: [nats.url], name: "creds-test", user: "pst", passwordFile: wrong, firstConnectTimeoutMs: 1500 })).rejects.toThrow(/authoriz/i);
  });

  it("names the key and the file when a credential file cannot be read or the keys do not fit together", () => {
    expect(() => credentialOptions({ user: "pst", passwordFile: join(dir, "missing") })).toThrow(/nats\.passwordFile: cannot read .*missing/);
    expect(() => credentialOptions({ credsFile: join(dir, "missing.creds") })).toThrow(/nats\.credsFile: cannot read .*missing\.creds/);
    expect(() => credentialOptions({ passwordFile: join(dir, "x") })).toThrow(/nats\.user is not/);
    expect(() => credentialOptions({ user: "a", credsFile: join(dir, "x") })).toThrow(/use one credential/);
  });

  it("turns a credentials file into an authenticator", () => {
    // A syntactically valid creds file (nsc's format); the server side of JWT auth is not set up here.
    const creds = join(dir, "user.creds");
    writeFileSync(
      creds,
      "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.x\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY\n------END USER NKEY SEED------\n",
    );
    expect(typeof credentialOptions({ credsFile: creds }).authenticator).toBe("function");
  });
});
