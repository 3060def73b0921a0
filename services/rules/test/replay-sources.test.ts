import { describe, expect, it } from "vitest";
import { netnsUnavailableReason, toolMissing, waitFor } from "@vigil/testing";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { isReplaySource } from "../src/replay-sources.js";
import { metricValue, natsAndVeth, publishVerdict, startService, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = toolMissing("nft") ?? netnsUnavailableReason();

describe("which sources are replays (F28)", () => {
  it("knows a pcap replay by the kind in its source id", () => {
    expect(isReplaySource("host1/pcap:attack.pcap")).toBe(true);
    expect(isReplaySource("replay:attack.pcap")).toBe(true);
    expect(isReplaySource("host1/afpacket:eth0")).toBe(false);
    expect(isReplaySource("host1/kernel:/dev/vigil")).toBe(false);
    expect(isReplaySource("host1/afpacket:pcap:odd-name")).toBe(false);
  });
});

// F28: a replayed capture (24 h of a third party's pcap in seconds) made real blocks on the live host.
describe.skipIf(natsSkip || nftSkip)("verdicts from a replayed capture on an enforcing service (F28)", () => {
  const env = natsAndVeth();

  it("records them as simulated and blocks nothing, unless rules.enforceReplays says so", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "f28_replay", netns: env.pair.b }, enforcer);
    try {
      publishVerdict(r.nc, verdict("198.51.100.40", { sourceId: "host1/pcap:third-party.pcap" }));
      publishVerdict(r.nc, verdict("198.51.100.41", { sourceId: "host1/afpacket:eth0" }));
      // A replay under a source id of the operator's choosing: the capture marks it, whatever the name.
      publishVerdict(r.nc, verdict("198.51.100.43", { sourceId: "lab-feed", replay: true }));
      await waitFor("all decided", () => r.svc.listVerdicts({}).length === 3 || null, 5000);
      await r.svc.idle();
      expect(r.svc.listRules({}).map((x) => x.srcCidr)).toEqual(["198.51.100.41/32"]);
      expect(r.svc.listVerdicts({ address: "198.51.100.43" })[0].outcome).toBe("replay-simulated");
      const [replayed] = r.svc.listVerdicts({ address: "198.51.100.40" });
      expect(replayed.outcome).toBe("replay-simulated");
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "replay-simulated" })).toBe(2);
      const { elems } = await enforcer.actual();
      expect([...elems.keys()].join(" ")).not.toContain("198.51.100.40");
      expect([...elems.keys()].join(" ")).not.toContain("198.51.100.43");
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
    const enforcer2 = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r2 = await startService(env.nats.url, { bucket: "f28_replay_on", netns: env.pair.b, enforceReplays: true }, enforcer2);
    try {
      publishVerdict(r2.nc, verdict("198.51.100.42", { sourceId: "host1/pcap:own-incident.pcap" }));
      await waitFor("blocked on request", () => r2.svc.listRules({ address: "198.51.100.42" }).length === 1 || null, 5000);
    } finally {
      await r2.stop();
      await enforcer2.destroy();
    }
  }, 30_000);
});
