import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createNatsAuth, type NatsAuth } from "@vigil/stack";
import { freePort, portOpen, stopChild, waitFor } from "@vigil/testing";

/**
 * Security review F16: a detector host's leaf node takes the permissions of
 * the hub user it authenticates as (`detectors`, generated with the others by
 * install.sh and `vigil up`), so a compromised detector host can send the hub
 * only detector traffic.
 */


describe("a detector host's leaf node (F16)", () => {
  let dir: string;
  const servers: ChildProcess[] = [];
  let hubPort: number;
  let leafPort: number;
  let auth: NatsAuth;

  async function server(name: string, conf: string, port: number): Promise<void> {
    writeFileSync(join(dir, `${name}.conf`), conf);
    const p = spawn("nats-server", ["-c", join(dir, `${name}.conf`)], { stdio: "ignore" });
    servers.push(p);
    await waitFor(`${name} nats-server`, () => portOpen(port).then((ok) => ok || null), 10_000, 50);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vigil-leaf-"));
    hubPort = await freePort();
    const hubLeafPort = await freePort();
    leafPort = await freePort();
    auth = createNatsAuth(join(dir, "secrets"));
    await server("hub", `listen: 127.0.0.1:${hubPort}\nleafnodes { listen: 127.0.0.1:${hubLeafPort} }\ninclude "secrets/nats-users.conf"\n`, hubPort);
    await server("leaf", `listen: 127.0.0.1:${leafPort}\nleafnodes { remotes: [ { url: "nats-leaf://${auth.leaf.user}:${auth.leaf.password}@127.0.0.1:${hubLeafPort}" } ] }\n`, leafPort);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => stopChild(s, 5000)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passes the detectors' verdicts and the frames, and nothing else, in either direction", async () => {
    const as = (s: "rules" | "pst" | "capture", port = hubPort) => connect({ servers: [`127.0.0.1:${port}`], user: s, pass: auth.credentials[s].password });
    // On the hub, as the services there: what reaches rules (verdicts, ends of stream, the bucket) and detectors (frames, feedback).
    const hub = await as("rules");
    const hubPst = await as("pst");
    const hubCapture = await as("capture");
    const leaf: NatsConnection = await connect({ servers: [`127.0.0.1:${leafPort}`] });
    const atHub: string[] = [];
    const atLeaf: string[] = [];
    for (const subject of ["vigil.verdicts.>", "vigil.eos.>", "$KV.vigil_rules.>"]) hub.subscribe(subject, { callback: (_e, m) => atHub.push(m.subject) });
    for (const subject of ["vigil.frames.*", "vigil.feedback"]) hubPst.subscribe(subject, { callback: (_e, m) => atHub.push(m.subject) });
    leaf.subscribe("vigil.>", { callback: (_e, m) => atLeaf.push(m.subject) });
    await hub.flush();
    await hubPst.flush();
    await leaf.flush();
    // The leaf connection needs a moment to learn the hub's interest.
    await waitFor("the leaf to forward a verdict", async () => {
      leaf.publish("vigil.verdicts.pst");
      await leaf.flush();
      await new Promise((r) => setTimeout(r, 100));
      return atHub.includes("vigil.verdicts.pst") || null;
    }, 10_000, 0);
    for (const s of ["vigil.verdicts.rules", "vigil.verdicts.forged", "vigil.feedback", "vigil.eos.rules", "$KV.vigil_rules.x", "vigil.frames.3"]) leaf.publish(s);
    hubCapture.publish("vigil.frames.1");
    hub.publish("vigil.events.rules");
    leaf.publish("vigil.verdicts.som");
    await leaf.flush();
    await hub.flush();
    await hubCapture.flush();
    await waitFor("the last verdict", () => atHub.includes("vigil.verdicts.som") || null, 5000, 50);
    await waitFor("the frames at the leaf", () => atLeaf.includes("vigil.frames.1") || null, 5000, 50);
    expect(new Set(atHub)).toEqual(new Set(["vigil.verdicts.pst", "vigil.verdicts.som", "vigil.frames.1"]));
    expect(atLeaf).not.toContain("vigil.events.rules");
    await Promise.all([hubPst.close(), hubCapture.close()]);
    await hub.close();
    await leaf.close();
  });
});
