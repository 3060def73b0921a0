// Runs inside the kernel module's VM (kmod/test/vm/run-vm.sh) after insmod:
// drives the real module through @vigil/netlink and the rules service's kmod
// enforcer, and prints one JSON line per check for the host-side test.
import { execFileSync } from "node:child_process";
import { VigilNetlink, constants } from "@vigil/netlink";
import { Action, Direction, Rule } from "@vigil/proto";
import { prom } from "@vigil/metrics";
import { KmodEnforcer } from "../../dist/enforcers/kmod.js";
import { KernelMetrics } from "../../dist/kernel-metrics.js";
import { canonicalRule } from "../../dist/model.js";

const report = (k, v) => process.stdout.write(`${JSON.stringify({ k, v })}\n`);
const sh = (...args) => execFileSync(args[0], args.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const ping = () => {
  try {
    sh("ip", "netns", "exec", "peer", "ping", "-c", "1", "-W", "1", "10.77.0.1");
    return true;
  } catch {
    return false;
  }
};
const now = () => Date.now() / 1000;
const rule = (p, ttlS) => canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, createdAt: now(), expiresAt: ttlS ? now() + ttlS : 0, ...p })).rule;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  try {
    sh("modprobe", "veth");
  } catch {
    /* built in */
  }
  sh("ip", "link", "set", "lo", "up");
  sh("ip", "netns", "add", "peer");
  sh("ip", "link", "add", "vm0", "type", "veth", "peer", "name", "vm1");
  sh("ip", "link", "set", "vm1", "netns", "peer");
  sh("ip", "addr", "add", "10.77.0.1/24", "dev", "vm0");
  sh("ip", "link", "set", "vm0", "up");
  sh("ip", "netns", "exec", "peer", "ip", "addr", "add", "10.77.0.2/24", "dev", "vm1");
  sh("ip", "netns", "exec", "peer", "ip", "link", "set", "vm1", "up");
  report("ping-before", ping());

  const c = constants();
  const enforcer = new KmodEnforcer();
  const expired = [];
  enforcer.onExpired((id) => expired.push(id));
  await enforcer.start();
  const nl = VigilNetlink.open();
  report("family", nl.familyId > 0);

  const host = rule({ srcCidr: "10.77.0.2/32" }, 600);
  const v6 = rule({ srcCidr: "2001:db8::1/128" }, 0);
  const general = rule({ srcCidr: "198.51.100.0/24", protocol: 6, dportMin: 22, dportMax: 23, direction: Direction.DIRECTION_INGRESS, priority: 5 }, 300);
  await enforcer.apply([host, v6, general], []);
  const dump = await nl.dumpRules();
  const byId = new Map(dump.map((k) => [k.id, k]));
  const h = byId.get(host.id);
  const g = byId.get(general.id);
  report("dump-count", dump.length);
  report("host-rule", { kind: h?.kind === c.VIGIL_RULE_HOST, addr: h?.addr?.toString("hex"), timeoutOk: h?.timeoutMs > 590_000 && h?.timeoutMs <= 600_000, action: h?.action });
  report("v6-rule", { kind: byId.get(v6.id)?.kind, family: byId.get(v6.id)?.family, noTimeout: !byId.get(v6.id)?.timeoutMs });
  report("general-rule", { kind: g?.kind, srcPrefix: g?.srcPrefix, proto: g?.proto, ports: [g?.dportMin, g?.dportMax], direction: g?.direction, priority: g?.priority });
  report("ping-blocked", !ping());
  // Re-adding a rule (a repeat offence, a longer TTL) replaces it in place.
  await enforcer.apply([{ ...host, expiresAt: now() + 1200 }], []);
  const upd = (await nl.dumpRules()).find((k) => k.id === host.id);
  report("upsert", { count: (await nl.dumpRules()).length, timeoutOk: upd?.timeoutMs > 1_190_000 });
  report("ping-still-blocked", !ping());
  const counters = await enforcer.counters();
  report("counters", { hits: counters.get(host.id)?.hits > 0, bytes: counters.get(host.id)?.bytes > 0 });
  const stats = await nl.stats();
  report("stats", { dropped: stats.dropped > 0, hostRules: stats.hostRules, generalRules: stats.generalRules });
  // The rules service's exporter against the real module: what Prometheus would scrape.
  const registry = new prom.Registry();
  new KernelMetrics(registry, enforcer, (id) => (id === host.id ? "manual" : undefined), { minIntervalMs: 0 });
  const page = new Map();
  for (const line of (await registry.metrics()).split("\n")) {
    const m = /^(vigil_kernel_\S+) (\S+)$/.exec(line);
    if (m) page.set(m[1], Number(m[2]));
  }
  report("kernel-metrics", {
    up: page.get("vigil_kernel_module_up"),
    seen: page.get("vigil_kernel_packets_seen_total") > 0,
    dropped: page.get("vigil_kernel_packets_dropped_total") > 0,
    dropsAtLeastStats: page.get("vigil_kernel_packets_dropped_total") >= stats.dropped,
    captured: Number.isFinite(page.get("vigil_kernel_frames_captured_total")),
    ringDrops: Number.isFinite(page.get("vigil_kernel_ring_drops_total")),
    hostRules: page.get('vigil_kernel_rules{kind="host"}'),
    generalRules: page.get('vigil_kernel_rules{kind="general"}'),
    manualHits: page.get('vigil_kernel_rule_hits_total{origin="manual"}') >= counters.get(host.id)?.hits && counters.get(host.id)?.hits > 0,
    manualBytes: page.get('vigil_kernel_rule_bytes_total{origin="manual"}') > 0,
  });
  await enforcer.apply([], [host]);
  report("ping-after-delete", ping());

  // Batches: thousands of rules in few sendmsg() calls, dumped back in several parts.
  const many = [];
  for (let i = 0; i < 5000; i++) many.push(rule({ srcCidr: `10.200.${i >> 8}.${i & 255}/32` }, 600));
  const t0 = performance.now();
  await enforcer.apply(many, []);
  report("batch-add-ms", Math.round(performance.now() - t0));
  report("dump-after-batch", (await nl.dumpRules()).length);
  const rec = await enforcer.reconcile([v6, general, many[0]]);
  report("reconcile", rec);
  report("dump-after-reconcile", (await nl.dumpRules()).map((k) => k.id).sort().join(",") === [v6.id, general.id, many[0].id].sort().join(","));

  // Expiry: the module expires the rule and tells us.
  const short = rule({ srcCidr: "192.0.2.9/32" }, 1);
  await enforcer.apply([short], []);
  for (let i = 0; i < 150 && !expired.includes(short.id); i++) await sleep(100);
  report("expiry-event", expired.includes(short.id));

  // Errors carry errno and the kernel's extack message.
  try {
    await nl.addRules([{ id: 77, kind: c.VIGIL_RULE_GENERAL, family: c.VIGIL_FAMILY_IPV4, src: Buffer.from([10, 0, 0, 1]), srcPrefix: 24 }]);
    report("extack", null);
  } catch (err) {
    report("extack", { code: err.code, errno: err.errno, extack: err.extack ?? "" });
  }
  try {
    await nl.deleteRules([123456789]);
    report("enoent", null);
  } catch (err) {
    report("enoent", { errno: err.errno, extack: err.extack ?? "" });
  }

  const cfg0 = await nl.getConfig();
  await nl.setConfig({ sample: 3, captureLoopback: true });
  const cfg1 = await nl.getConfig();
  await nl.setConfig({ sample: cfg0.sample, captureLoopback: false });
  const cfg2 = await nl.getConfig();
  report("config", { before: cfg0.sample, after: cfg1.sample, snaplen: typeof cfg0.snaplen === "number", loopback: [cfg0.captureLoopback, cfg1.captureLoopback, cfg2.captureLoopback] });

  // One address, a detector's drop and an operator's allow (security review F5): the allow wins, and reconciling
  // settles instead of failing on every pass.
  await nl.flush();
  const det = rule({ srcCidr: "10.77.0.2/32" }, 600);
  const allow = rule({ srcCidr: "10.77.0.2/32", action: Action.ACTION_ACCEPT }, 600);
  await enforcer.apply([det], []);
  const clashBlocked = !ping();
  await enforcer.apply([allow], []);
  const clashAllowed = ping();
  const first = await enforcer.reconcile([det, allow]);
  const again = await enforcer.reconcile([det, allow]);
  const held = await nl.dumpRules();
  await enforcer.apply([], [allow]);
  const clashBlockedAgain = !ping();
  report("host-clash", {
    blocked: clashBlocked,
    allowed: clashAllowed,
    reconciled: first.removed === 0 && first.added === 0,
    settled: again.added === 0 && again.removed === 0 && again.kept + again.replaced === 1,
    held: held.map((k) => [k.id === allow.id, k.action]),
    blockedAgain: clashBlockedAgain,
    dropBack: (await nl.dumpRules()).map((k) => k.id === det.id),
  });

  await nl.flush();
  report("flush", (await nl.dumpRules()).length);
  nl.close();
  await enforcer.close();
  report("done", true);
  process.exit(0);
} catch (err) {
  report("error", { message: err.message, errno: err.errno, extack: err.extack });
  process.exit(1);
}
