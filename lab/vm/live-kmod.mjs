// Runs INSIDE the kernel-module VM, in the victim's network namespace (see
// lab/vm/live-kmod.sh): the live scenario of lab/src/live.ts with capture
// from /dev/vigil and enforcement by the rules service's kmod enforcer over
// generic netlink. Times are measured on the frames themselves: the capture
// timestamp of the attacker's first frame, the rule's creation, and the first
// attacker frame the module flagged dropped. Prints JSON lines {"k":..,"v":..}.
import { execFile, spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { codecs, connectBus, subjects } from "@vigil/bus";
import { DIR_INGRESS, FRAME_F_DROPPED, decodeRecords, formatAddress } from "@vigil/frames";
import { Action, RuleEvent_Kind } from "@vigil/proto";
import { Pipeline } from "../dist/pipeline.js";

const { values: o } = parseArgs({
  options: {
    nats: { type: "string" },
    victim4: { type: "string" },
    victim6: { type: "string" },
    atk: { type: "string" },
    atkNs: { type: "string" },
    client4: { type: "string" },
    client6: { type: "string" },
    clientNs: { type: "string" },
    ttl: { type: "string", default: "10" },
    detectors: { type: "string", default: "pst,som" },
    attacks: { type: "string", default: "scan,flood" },
    rule: { type: "string" },
  },
});
const ttlS = Number(o.ttl);
const emit = (k, v) => process.stdout.write(`${JSON.stringify({ k, v })}\n`);
const log = (m) => process.stderr.write(`live-kmod: ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);

function run(cmd, args, timeoutMs) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout) => resolve({ ok: !err, stdout: String(stdout) }));
  });
}
const inNs = (ns, args, timeoutMs) => run("ip", ["netns", "exec", ns, ...args], timeoutMs);
const httpOk = async (ns, url) => (await inNs(ns, ["curl", "-s", "-o", "/dev/null", "-f", "--max-time", "4", url], 8000)).ok;
const url4 = `http://${o.victim4}/`;
const url6 = `http://[${o.victim6}]/`;

async function kmodRuleFor(address) {
  const r = await run(o.rule, ["dump"], 20_000);
  const line = r.stdout.split("\n").find((l) => l.includes(` host ${address} `));
  if (!line) return null;
  return { hits: Number(/hits=(\d+)/.exec(line)?.[1] ?? 0), timeoutMs: Number(/timeout_ms=(\d+)/.exec(line)?.[1] ?? -1), action: /action=(\S+)/.exec(line)?.[1] };
}

const isDropFor = (e, address) => {
  const cidr = e.rule?.srcCidr ?? "";
  return e.rule?.action === Action.ACTION_DROP && (cidr === address || cidr === `${address}/32` || cidr === `${address}/128`);
};

// ---- frames: the attacker's and the clients' frames as the module saw them.
const benignAddrs = new Set([o.client4, o.client6]);
const atkFrames = []; // [tsSeconds, dropped]
let benignFramesDropped = 0;
let benignFrames = 0;
const nc = await connectBus({ servers: [o.nats], name: "vm-live-observer" });
nc.subscribe(subjects.framesAll, {
  callback: (err, msg) => {
    if (err) return;
    const b = codecs.frameBatch.decode(msg.data);
    for (const r of decodeRecords(b.records)) {
      if (r.direction !== DIR_INGRESS) continue;
      const a = r.family === 4 ? formatAddress(r.data, 12, 4) : formatAddress(r.data, 8, 16);
      const dropped = (r.flags & FRAME_F_DROPPED) !== 0;
      if (a === o.atk) atkFrames.push([Number(r.tsNs) / 1e9, dropped]);
      else if (benignAddrs.has(a)) {
        benignFrames++;
        if (dropped) benignFramesDropped++;
      }
    }
  },
});
const ruleEvents = [];
nc.subscribe(subjects.ruleEvents, { callback: (err, msg) => !err && ruleEvents.push(codecs.ruleEvent.decode(msg.data)) });
await nc.flush();

const pipeline = new Pipeline({
  nats: [o.nats],
  detectors: o.detectors.split(","),
  rules: { enforcer: "kmod", dryRun: false, baseTtlS: ttlS, maxTtlS: ttlS * 4, offenceMemoryS: 1 },
  som: { mergePeriodSeconds: 1 },
});

// A benign client browsing the victim all along, over IPv4 and IPv6.
const benign = { ok: 0, failed: 0, stop: false };
async function benignLoop() {
  while (!benign.stop) {
    for (const u of [url4, url6]) {
      if (await httpOk(o.clientNs, u)) benign.ok++;
      else benign.failed++;
    }
    await sleep(300);
  }
}

let loop = null;
try {
  let t = Date.now();
  await pipeline.start(180_000);
  emit("pipeline_start_ms", Date.now() - t);
  t = Date.now();
  await pipeline.startLiveCapture({ source: "kernel", local: [`${o.victim4}/32`, `${o.victim6}/128`], sourceId: "vm/kernel" }, 120_000);
  emit("capture_start_ms", Date.now() - t);
  loop = benignLoop();
  await sleep(5000);
  emit("attacker_reachable_before", await httpOk(o.atkNs, url4));

  for (const attack of o.attacks.split(",")) {
    const res = { attack, blocked: false, block_s: null, first_drop_s: null, verdict_detector: null, attacker_cut_off: null, client_reachable: null, kmod_rule: null, expired: null, expiry_s: null, kmod_rule_gone: null, reachable_after_expiry: null, attacker_frames: 0, attacker_dropped_frames: 0 };
    const evBefore = ruleEvents.length;
    const frBefore = atkFrames.length;
    const tool =
      attack === "scan"
        ? inNs(o.atkNs, ["timeout", "150", "nmap", "-sS", "-T4", "-n", "-Pn", "--max-retries", "1", "--top-ports", "1000", o.victim4], 170_000)
        : inNs(o.atkNs, ["timeout", "--signal=INT", "30", "hping3", "-q", "-S", "-p", "80", "-i", "u1000", "-c", "20000", o.victim4], 40_000);
    const added = () => ruleEvents.slice(evBefore).find((e) => (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED) && isDropFor(e, o.atk));
    const deadline = Date.now() + 120_000;
    while (!added() && Date.now() < deadline) await sleep(100);
    const ev = added();
    if (ev) {
      res.blocked = true;
      res.verdict_detector = ev.rule.detector;
      res.ttl_s = ev.rule.expiresAt > 0 ? round(ev.rule.expiresAt - ev.rule.createdAt) : null;
      // The first dropped frame follows within a moment while the attack goes on.
      const dl = Date.now() + 15_000;
      while (!atkFrames.slice(frBefore).some((f) => f[1]) && Date.now() < dl) await sleep(100);
      const mine = atkFrames.slice(frBefore);
      const t0 = mine.length ? mine[0][0] : null;
      const firstDrop = mine.find((f) => f[1]);
      res.block_s = t0 === null ? null : round(ev.rule.createdAt - t0);
      res.first_drop_s = t0 === null || !firstDrop ? null : round(firstDrop[0] - t0);
      res.attacker_cut_off = !(await httpOk(o.atkNs, url4));
      res.client_reachable = (await httpOk(o.clientNs, url4)) && (await httpOk(o.clientNs, url6));
      res.kmod_rule = await kmodRuleFor(o.atk);
      log(`${attack}: blocked by ${res.verdict_detector} ${res.block_s} s after the first attack frame, first drop at ${res.first_drop_s} s`);
    } else {
      log(`${attack}: no block within 120 s`);
    }
    await tool;
    if (ev) {
      const gone = () => ruleEvents.slice(evBefore).find((e) => (e.kind === RuleEvent_Kind.KIND_EXPIRED || e.kind === RuleEvent_Kind.KIND_REMOVED) && isDropFor(e, o.atk));
      const dl = Date.now() + (ttlS + 60) * 1000;
      while (!gone() && Date.now() < dl) await sleep(200);
      res.expired = gone()?.kind === RuleEvent_Kind.KIND_EXPIRED;
      res.expiry_s = gone() ? round(Date.now() / 1000 - ev.rule.createdAt) : null;
      res.kmod_rule_gone = (await kmodRuleFor(o.atk)) === null;
      let ok = false;
      for (let i = 0; i < 5 && !ok; i++) {
        ok = await httpOk(o.atkNs, url4);
        if (!ok) await sleep(1000);
      }
      res.reachable_after_expiry = ok;
    }
    const mine = atkFrames.slice(frBefore);
    res.attacker_frames = mine.length;
    res.attacker_dropped_frames = mine.filter((f) => f[1]).length;
    emit(`attack_${attack}`, res);
  }
  const blockedAddrs = ruleEvents.filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED && e.rule?.action === Action.ACTION_DROP).map((e) => e.rule.srcCidr.replace(/\/(32|128)$/, ""));
  benign.stop = true;
  await loop;
  emit("benign", { ok: benign.ok, failed: benign.failed, frames: benignFrames, frames_dropped: benignFramesDropped, blocked: blockedAddrs.filter((a) => benignAddrs.has(a)), rules_added: blockedAddrs });
} catch (err) {
  emit("error", String(err?.message ?? err).slice(0, 3000));
} finally {
  benign.stop = true;
  if (loop) await loop.catch(() => undefined);
  await pipeline.stop().catch(() => undefined);
  await nc.close().catch(() => undefined);
}
emit("live_done", true);
process.exit(0);
