// The notifier as it runs in production: services/notify/dist/main.js under the
// lifecycle kit, configured from a YAML file, a real nats-server and receiver.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { Action, Origin, RuleEvent, RuleEvent_Kind } from "@vigil/proto";
import { disposeNatsServer, freePort, repoRoot, spawnService, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { Receiver } from "./support/receiver.js";

const skip = existsSync(join(repoRoot, "services/notify/dist/main.js")) ? null : "services/notify is not built (run node scripts/build.mjs)";
const TOKEN = "xoxb-daemon-s3cret";
const dir = mkdtempSync(join(tmpdir(), "vigil-notify-daemon-"));
let nats: NatsServerHandle;
let receiver: Receiver;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  receiver = await Receiver.start();
  nc = await connectBus({ servers: [nats.url], name: "notify-daemon-test", logger: createLogger("notify-daemon-test", "warn") });
});
afterAll(async () => {
  await nc?.close();
  await receiver?.close();
  if (nats) await disposeNatsServer(nats);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)(`notify daemon ${skip ? `(skipped: ${skip})` : ""}`, () => {
  it("delivers a block from the bus, counts it on /metrics, stops cleanly on SIGTERM, never logs the hook's token", async () => {
    const port = await freePort();
    const config = join(dir, "vigil.yaml");
    writeFileSync(
      config,
      [
        `nats: { servers: ["${nats.url}"] }`,
        "notify:",
        `  metrics: { host: 127.0.0.1, port: ${port} }`,
        "  targets:",
        `    - { name: chat, type: slack, url: "${receiver.url}/services/${TOKEN}" }`,
        "",
      ].join("\n"),
    );
    const svc = spawnService("notify", { configFile: config, env: { VIGIL_LOG_LEVEL: "debug" } });
    try {
      await waitFor("notify subscribed", () => /"msg":"notifying"/.test(svc.output()), 15_000, 100);
      // The subscription is made right after the log line: give the server a round trip to register it.
      await waitFor("the block delivered", async () => {
        if (receiver.at(`/services/${TOKEN}`).length === 0)
          nc.publish(subjects.ruleEvents, codecs.ruleEvent.encode(RuleEvent.fromPartial({ kind: RuleEvent_Kind.KIND_ADDED, rule: { id: 1, action: Action.ACTION_DROP, srcCidr: "203.0.113.5/32", origin: Origin.ORIGIN_DETECTOR, detector: "som" } })));
        return receiver.at(`/services/${TOKEN}`).length > 0;
      }, 10_000, 300);
      expect(receiver.at(`/services/${TOKEN}`)[0].json.text).toMatch(/blocked 203\.0\.113\.5\/32 permanently \(som\)/);
      const page = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(page).toMatch(/^vigil_notify_sent_total\{[^}]*target="chat"[^}]*\} [1-9]/m);
      expect(page).toMatch(/^vigil_notify_dead_letters_total\{[^}]*target="chat"[^}]*\} 0$/m);
      expect(page).toMatch(/^vigil_notify_events_total\{[^}]*kind="block"[^}]*\} [1-9]/m);
    } finally {
      await svc.stop();
    }
    expect((await svc.exited).code).toBe(0);
    expect(svc.output()).not.toContain(TOKEN);
  }, 40_000);
});
