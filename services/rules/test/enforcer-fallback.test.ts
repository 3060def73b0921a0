import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { Writable } from "node:stream";
import { disposeNatsServer, startNatsServer, toolMissing, type NatsServerHandle } from "@vigil/testing";
import { selectEnforcer } from "../src/enforcers/select.js";
import { metricValue, startService } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");

// F21: with `enforcer: auto` and no usable back end the service used to run dry with one warning.
describe.skipIf(natsSkip)("no usable enforcer (F21)", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("says loudly, in the log, the metrics and Status, that auto fell back to not enforcing and why", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "info" }, new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }));
    // A network namespace that does not exist: neither the module nor nft can be used.
    const enforcer = await selectEnforcer({ choice: "auto", dryRun: false, nftTable: "vigil_f21", netns: "vigil-f21-no-such-ns", logger: logger as never });
    expect(enforcer.name).toBe("dry-run");
    const entry = lines.map((l) => JSON.parse(l)).find((l) => /NOT ENFORCING/.test(l.msg));
    expect(entry?.level).toBe(50); // error, not a warning among the info lines
    const r = await startService(nats.url, { bucket: "f21_fallback" }, enforcer);
    try {
      expect(await metricValue(r.registry, "vigil_rules_enforcer_fallback")).toBe(1);
      const st = r.svc.status();
      expect(st.dryRun).toBe(true);
      expect(st.enforcerDetail).toMatch(/^NOT ENFORCING: enforcer auto found no back end \(kmod: .*; nftables: .*\)/);
    } finally {
      await r.stop();
    }
  });

  it("does not raise the alarm when dry-run was asked for", async () => {
    const enforcer = await selectEnforcer({ choice: "dry-run", dryRun: false, nftTable: "vigil_f21" });
    const r = await startService(nats.url, { bucket: "f21_asked" }, enforcer);
    try {
      expect(await metricValue(r.registry, "vigil_rules_enforcer_fallback")).toBe(0);
    } finally {
      await r.stop();
    }
  });
});
