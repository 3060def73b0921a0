import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { freePort, portOpen, stopChild, waitFor } from "@vigil/testing";

/**
 * Security review F16: a detector host's leaf node takes the permissions of
 * the hub user it authenticates as (the one docs/operations.md gives it), so a
 * compromised detector host can send the hub only detector traffic.
 */
const DETECTORS_USER = `{ user: "detectors", password: "leaf-secret", permissions: {
    publish: { allow: ["vigil.verdicts.pst", "vigil.verdicts.som", "vigil.scores.pst", "vigil.scores.som",
                       "vigil.heartbeat.pst", "vigil.heartbeat.som", "vigil.eos.pst", "vigil.eos.som"] }
    subscribe: { allow: ["vigil.frames.*", "vigil.feedback", "vigil.heartbeat.pst", "vigil.heartbeat.som",
                         "vigil.models.pst", "vigil.models.som", "_INBOX.>"] }
    allow_responses: true
} }`;

describe("a detector host's leaf node (F16)", () => {
  let dir: string;
  const servers: ChildProcess[] = [];
  let hubPort: number;
  let leafPort: number;

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
    await server("hub", `listen: 127.0.0.1:${hubPort}\nleafnodes { listen: 127.0.0.1:${hubLeafPort} }\nauthorization { users = [\n{ user: "rules", password: "r" }\n${DETECTORS_USER}\n] }\n`, hubPort);
    await server("leaf", `listen: 127.0.0.1:${leafPort}\nleafnodes { remotes: [ { url: "nats-leaf://detectors:leaf-secret@127.0.0.1:${hubLeafPort}" } ] }\n`, leafPort);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => stopChild(s, 5000)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passes the detectors' verdicts and the frames, and nothing else, in either direction", async () => {
    const hub = await connect({ servers: [`127.0.0.1:${hubPort}`], user: "rules", pass: "r" });
    const leaf: NatsConnection = await connect({ servers: [`127.0.0.1:${leafPort}`] });
    const atHub: string[] = [];
    const atLeaf: string[] = [];
    hub.subscribe("vigil.>", { callback: (_e, m) => atHub.push(m.subject) });
    hub.subscribe("$KV.>", { callback: (_e, m) => atHub.push(m.subject) });
    leaf.subscribe("vigil.>", { callback: (_e, m) => atLeaf.push(m.subject) });
    await hub.flush();
    await leaf.flush();
    // The leaf connection needs a moment to learn the hub's interest.
    await waitFor("the leaf to forward a verdict", async () => {
      leaf.publish("vigil.verdicts.pst");
      await leaf.flush();
      await new Promise((r) => setTimeout(r, 100));
      return atHub.includes("vigil.verdicts.pst") || null;
    }, 10_000, 0);
    for (const s of ["vigil.verdicts.rules", "vigil.verdicts.forged", "vigil.feedback", "vigil.eos.rules", "$KV.vigil_rules.x", "vigil.frames.3"]) leaf.publish(s);
    hub.publish("vigil.frames.1");
    hub.publish("vigil.events.rules");
    leaf.publish("vigil.verdicts.som");
    await leaf.flush();
    await hub.flush();
    await waitFor("the last verdict", () => atHub.includes("vigil.verdicts.som") || null, 5000, 50);
    await waitFor("the frames at the leaf", () => atLeaf.includes("vigil.frames.1") || null, 5000, 50);
    expect(new Set(atHub)).toEqual(new Set(["vigil.verdicts.pst", "vigil.verdicts.som", "vigil.frames.1", "vigil.events.rules"]));
    expect(atLeaf).not.toContain("vigil.events.rules");
    await hub.close();
    await leaf.close();
  });
});
