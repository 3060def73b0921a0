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

function start(cmd, args, timeoutMs) {
  let child;
  const done = new Promise((resolve) => {
    child = execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout) => resolve({ ok: !err, stdout: String(stdout) }));
  });
  return { done, child };
}
const run = (cmd, args, timeoutMs) => start(cmd, args, timeoutMs).done;
const inNs = (ns, args, timeoutMs) => run("ip", ["netns", "exec", ns, ...args], timeoutMs);
const httpOk = async (ns, url, maxTimeS = 4) => (await inNs(ns, ["curl", "-s", "-o", "/dev/null", "-f", "--max-time", String(maxTimeS), url], maxTimeS * 1000 + 4000)).ok;
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
const verdicts = [];
nc.subscribe(subjects.verdictsAll, {
  callback: (err, msg) => {
    if (err) return;
    const v = codecs.verdict.decode(msg.data);
    verdicts.push({ at: round(Date.now() / 1000), detector: v.detector, address: v.address, aggregate: v.aggregate, score: round(v.score), threshold: round(v.threshold), summary: String(v.summary ?? "").slice(0, 300) });
  },
});
const ruleEvents = [];
const ruleEventAt = [];
nc.subscribe(subjects.ruleEvents, {
  callback: (err, msg) => {
    if (err) return;
    ruleEvents.push(codecs.ruleEvent.decode(msg.data));
    ruleEventAt.push(Date.now() / 1000);
  },
});
await nc.flush();

const pipeline = new Pipeline({
  nats: [o.nats],
  detectors: o.detectors.split(","),
  // One TTL whatever the number of agreeing detectors, so that the expiry phase stays short under emulation.
  rules: { enforcer: "kmod", dryRun: false, baseTtlS: ttlS, maxTtlS: ttlS * 4, offenceMemoryS: 1, agreementTtlFactor: 1 },
  som: { mergePeriodSeconds: 1 },
  keep: true,
});
emit("workdir", pipeline.workDir);

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
    const args =
      attack === "scan"
        ? ["timeout", "150", "nmap", "-sS", "-T4", "-n", "-Pn", "--max-retries", "1", "--top-ports", "1000", o.victim4]
        : ["timeout", "--signal=INT", "30", "hping3", "-q", "-S", "-p", "80", "-i", "u1000", "-c", "20000", o.victim4];
    const { done: tool, child: toolProc } = start("ip", ["netns", "exec", o.atkNs, ...args], 170_000);
    const added = () => ruleEvents.slice(evBefore).find((e) => (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED) && isDropFor(e, o.atk));
    const deadline = Date.now() + 120_000;
    while (!added() && Date.now() < deadline) await sleep(100);
    const ev = added();
    if (ev) {
      res.blocked = true;
      res.verdict_detector = ev.rule.detector;
      res.ttl_s = ev.rule.expiresAt > 0 ? round(ev.rule.expiresAt - ev.rule.createdAt) : null;
      // At once, while the rule is young (a fast scan may be over before the block; its TTL is seconds):
      // the module holds it, the attacker's new connection fails (its SYNs come back as dropped frames),
      // the client's succeed.
      // The module holds the rule once the service has enforced it (the event may come first): look for
      // it before anything slow, since under TCG a 10 s rule can be over by the time a curl gives up.
      const held = Date.now() + 5_000;
      let rule = await kmodRuleFor(o.atk);
      while (!rule && Date.now() < held) {
        await sleep(100);
        rule = await kmodRuleFor(o.atk);
      }
      // Two SYNs in 2 s: enough for the rule to count hits, short enough to read them while it lasts.
      res.attacker_cut_off = !(await httpOk(o.atkNs, url4, 2));
      res.kmod_rule = (await kmodRuleFor(o.atk)) ?? rule;
      // A client that is cut off fails every try; under TCG a flood the guest still copies into its ring can
      // make one try miss its deadline, so the client gets three (the benign loop counts single failures).
      const reachable = async (url) => {
        for (let i = 0; i < 3; i++) if (await httpOk(o.clientNs, url)) return true;
        return false;
      };
      res.client_reachable = (await reachable(url4)) && (await reachable(url6));
      const dl = Date.now() + 5_000;
      while (!atkFrames.slice(frBefore).some((f) => f[1]) && Date.now() < dl) await sleep(100);
      const mine = atkFrames.slice(frBefore);
      const t0 = mine.length ? mine[0][0] : null;
      const firstDrop = mine.find((f) => f[1]);
      res.block_s = t0 === null ? null : round(ev.rule.createdAt - t0);
      res.first_drop_s = t0 === null || !firstDrop ? null : round(firstDrop[0] - t0);
      res.attack_frames_before_block = mine.filter((f) => f[0] < ev.rule.createdAt).length;
      log(`${attack}: blocked by ${res.verdict_detector} ${res.block_s} s after the first attack frame, first drop at ${res.first_drop_s} s`);
    } else {
      log(`${attack}: no block within 120 s`);
    }
    // The attacker stops (a scan is usually over by now), so the expiry is not followed by a new block.
    toolProc.kill("SIGTERM");
    await tool;
    if (ev) {
      const evIdx = ruleEvents.indexOf(ev);
      const goneIdx = () => ruleEvents.findIndex((e, i) => i > evIdx && (e.kind === RuleEvent_Kind.KIND_EXPIRED || e.kind === RuleEvent_Kind.KIND_REMOVED) && isDropFor(e, o.atk));
      const dl = Date.now() + (ttlS + 60) * 1000;
      while (goneIdx() < 0 && Date.now() < dl) await sleep(100);
      const gi = goneIdx();
      res.expired = gi >= 0 && ruleEvents[gi].kind === RuleEvent_Kind.KIND_EXPIRED;
      // When the module's expiry event reached the service and came out as RuleEvent EXPIRED, from the rule's creation.
      res.expiry_s = gi >= 0 ? round(ruleEventAt[gi] - ev.rule.createdAt) : null;
      // The service's own account, free of this script's and the bus's lag: when it published the expiry,
      // by whom (the module's event or its own sweep), and the expiry the rule last carried (agreement may extend it).
      if (gi >= 0) {
        const last = ruleEvents.slice(evIdx, gi).filter((e) => e.rule?.id === ruleEvents[gi].rule?.id && (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED)).at(-1) ?? ev;
        res.expires_at_s = round(last.rule.expiresAt - ev.rule.createdAt);
        res.expiry_event_s = round(ruleEvents[gi].ts - ev.rule.createdAt);
        res.expired_by = ruleEvents[gi].by;
      }
      // The detectors may still judge the attacker's last windows or half-open connections after it
      // stopped, and block it again (their right): wait until no block of it is active and none came
      // for 3 s, then the module must hold nothing for it and its traffic must pass.
      const settle = Date.now() + (3 * ttlS + 30) * 1000;
      const active = () => {
        let n = 0;
        for (const e of ruleEvents.slice(evIdx)) {
          if (!isDropFor(e, o.atk)) continue;
          if (e.kind === RuleEvent_Kind.KIND_ADDED) n++;
          else if (e.kind === RuleEvent_Kind.KIND_EXPIRED || e.kind === RuleEvent_Kind.KIND_REMOVED) n--;
        }
        return n > 0;
      };
      while (Date.now() < settle && (active() || Date.now() / 1000 - ruleEventAt[ruleEventAt.length - 1] < 3)) await sleep(200);
      res.reblocked_after_expiry = ruleEvents.slice(gi + 1).filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED && isDropFor(e, o.atk)).length;
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
  emit("verdicts", verdicts);
  emit("rule_events", ruleEvents.map((e, i) => ({ at: round(ruleEventAt[i]), kind: e.kind, cidr: e.rule?.srcCidr, detector: e.rule?.detector, created: e.rule?.createdAt, expires: e.rule?.expiresAt, reason: String(e.rule?.reason ?? "").slice(0, 200) })));
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
