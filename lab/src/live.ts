import { spawn, type ChildProcess } from "node:child_process";
import { Action, RuleEvent_Kind, type RuleEvent } from "@vigil/proto";
import { Lab, LAB_SCRIPT } from "./lab.js";
import { Pipeline, type Detector } from "./pipeline.js";
import { BENIGN_HOSTS, labAddress4, labAddress6, labMac, type LabHost } from "./topology.js";

/**
 * The live end-to-end scenario. It must run inside the victim's network
 * namespace (`ip netns exec <prefix>-victim node dist/live-main.js`): the whole
 * stack runs there as it would on the protected host, with a private
 * nats-server on the namespace's loopback, capture over AF_PACKET on eth0 and
 * the rules service enforcing with nftables in the namespace.
 */

export interface LiveOptions {
  prefix: string;
  /** Rule TTL for the first offence (rules.baseTtlS). */
  ttlS?: number;
  detectors?: Detector[];
  attacks?: LiveAttack[];
  keep?: boolean;
  /** Also wait for each block to expire and check the attacker gets through again (default true). */
  expiry?: boolean;
  log?: (msg: string) => void;
}

export type LiveAttack = "scan" | "flood";

export interface LiveAttackResult {
  attack: LiveAttack;
  /** Wall-clock seconds from the attacker's first packet (seen on the victim's eth0) to the rule's creation. */
  block_s: number | null;
  blocked: boolean;
  /** After the block: the attacker's HTTP request failed, the benign clients' succeeded. */
  attacker_cut_off: boolean | null;
  benign_reachable: boolean | null;
  /** The rule expired after its TTL and the attacker could connect again. */
  expired: boolean | null;
  reachable_after_expiry: boolean | null;
  ttl_s: number | null;
  /** Per detector: wall-clock seconds from the first attack packet to its first verdict naming the attacker. */
  verdict_s: Record<string, number>;
  /** The detector(s) the rule names. */
  rule_detector: string | null;
}

export interface LiveReport {
  attacks: LiveAttackResult[];
  /** Benign client addresses that were ever blocked (must be empty). */
  benign_blocked: string[];
  rules: number;
  verdicts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prints the capture time of the first IP packet from a MAC on an interface of this namespace. */
function firstPacketFrom(mac: string): { ts: Promise<number | null>; stop(): void } {
  // Immediate mode: without it libpcap hands packets over per filled block or 1 s timeout, so a block
  // faster than that stopped tcpdump before it printed the first packet (block_s came out null).
  const p: ChildProcess = spawn("tcpdump", ["-i", "eth0", "-n", "-tt", "-l", "--immediate-mode", "-c", "1", `ether src ${mac} and (ip or ip6) and not ip6 multicast`], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  const ts = new Promise<number | null>((resolve) => {
    p.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    p.once("exit", () => {
      const t = Number(out.trim().split(" ")[0]);
      resolve(Number.isFinite(t) && t > 0 ? t : null);
    });
  });
  return { ts, stop: () => p.kill("SIGINT") };
}

async function httpOk(lab: Lab, host: LabHost, v6 = false): Promise<boolean> {
  const target = v6 ? `http://[${labAddress6("victim")}]/` : `http://${labAddress4("victim")}/`;
  try {
    await lab.exec(host, ["curl", "-s", "-o", "/dev/null", "--max-time", "2", "-f", target], 10_000);
    return true;
  } catch {
    return false;
  }
}

function isDropFor(e: RuleEvent, address: string): boolean {
  const cidr = e.rule?.srcCidr ?? "";
  return e.rule?.action === Action.ACTION_DROP && (cidr === address || cidr === `${address}/32` || cidr === `${address}/128`);
}

export async function runLive(opts: LiveOptions): Promise<LiveReport> {
  const log = opts.log ?? (() => undefined);
  const lab = new Lab({ prefix: opts.prefix });
  const ttlS = opts.ttlS ?? 8;
  const benign = BENIGN_HOSTS.flatMap((h) => [labAddress4(h), labAddress6(h)]);
  const pipeline = new Pipeline({
    detectors: opts.detectors,
    keep: opts.keep,
    rules: { enforcer: "nftables", dryRun: false, nftTable: "vigil_lab", baseTtlS: ttlS, maxTtlS: ttlS * 4, offenceMemoryS: 1 },
    // The SOM folds a culprit's anomalous windows into one verdict per merge
    // period (60 s by default, far below production TTLs). The scenario's TTLs
    // are seconds, so a repeat attack after an expiry must start a new period.
    som: { mergePeriodSeconds: 1 },
  });
  const background = spawn(LAB_SCRIPT, ["benign", "600", "42"], {
    env: { ...process.env, VLAB: opts.prefix },
    stdio: "ignore",
  });
  const results: LiveAttackResult[] = [];
  try {
    await pipeline.start();
    await pipeline.startLiveCapture({ source: "afpacket", interface: "eth0", local: [`${labAddress4("victim")}/32`, `${labAddress6("victim")}/128`], sourceId: `${opts.prefix}/afpacket:eth0` });
    log("stack running; benign background started");
    // Let the detectors see normal traffic first.
    await sleep(5000);
    for (const attack of opts.attacks ?? ["scan", "flood"]) {
      const res: LiveAttackResult = { attack, block_s: null, blocked: false, attacker_cut_off: null, benign_reachable: null, expired: null, reachable_after_expiry: null, ttl_s: null, verdict_s: {}, rule_detector: null };
      results.push(res);
      // Each attack comes from its own host: a repeat offender's return after expiry is a
      // different scenario from a first offence.
      const host: LabHost = attack === "scan" ? "atk" : "atk2";
      const attacker = labAddress4(host);
      // A late verdict about the previous attack can block the attacker again after its rule
      // expired; the next attack is measured only once no block of the attacker is in force.
      const blockInForce = () => {
        const last = pipeline.seen.ruleEvents.filter((e) => isDropFor(e, attacker)).at(-1);
        if (!last?.rule || (last.kind !== RuleEvent_Kind.KIND_ADDED && last.kind !== RuleEvent_Kind.KIND_UPDATED)) return false;
        return last.rule.expiresAt === 0 || last.rule.expiresAt > Date.now() / 1000;
      };
      await pipeline.waitFor(`no block of ${attacker} in force before the ${attack}`, () => !blockInForce(), 60_000);
      const first = firstPacketFrom(labMac(host));
      await sleep(300);
      const eventsBefore = pipeline.seen.ruleEvents.length;
      const verdictsBefore = pipeline.seen.verdicts.length;
      // A repeat offender's rule may come back as an update of the earlier one.
      const added = () =>
        pipeline.seen.ruleEvents
          .slice(eventsBefore)
          .find((e) => (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED) && isDropFor(e, attacker));
      const tool =
        attack === "scan"
          ? lab.attack("scan-syn")
          : lab.exec(host, ["timeout", "--signal=INT", "20", "hping3", "-q", "-S", "-p", "80", "-i", "u250", "-c", "20000", labAddress4("victim")], 40_000);
      const toolDone = tool.catch(() => undefined);
      try {
        await pipeline.waitFor(`a block of ${attacker} after the ${attack}`, () => added() !== undefined, 15_000);
      } catch (err) {
        log(`${attack}: ${(err as Error).message}`);
      }
      first.stop();
      const t0 = await first.ts;
      const ev = added();
      const seen = pipeline.seen;
      for (let i = verdictsBefore; i < seen.verdicts.length; i++) {
        const v = seen.verdicts[i]!;
        if (v.address === attacker && t0 !== null && res.verdict_s[v.detector] === undefined) {
          res.verdict_s[v.detector] = Math.round((seen.verdictAt[i]! - t0) * 1000) / 1000;
        }
      }
      if (ev?.rule) {
        res.rule_detector = ev.rule.detector;
        res.blocked = true;
        res.block_s = t0 === null ? null : Math.round((ev.rule.createdAt - t0) * 1000) / 1000;
        res.ttl_s = ev.rule.expiresAt > 0 ? Math.round(ev.rule.expiresAt - ev.rule.createdAt) : null;
        log(`${attack}: ${attacker} blocked ${res.block_s} s after its first packet (ttl ${res.ttl_s} s)`);
      }
      if (res.blocked) {
        // At once, while the rule is young: a flood can outlast a short TTL.
        res.attacker_cut_off = !(await httpOk(lab, host));
        res.benign_reachable = (await Promise.all([httpOk(lab, "c1"), httpOk(lab, "c2", true), httpOk(lab, "c3")])).every(Boolean);
      }
      await toolDone;
      if (res.blocked) {
        if (opts.expiry === false) continue;
        const gone = () =>
          pipeline.seen.ruleEvents
            .slice(eventsBefore)
            .some((e) => (e.kind === RuleEvent_Kind.KIND_EXPIRED || e.kind === RuleEvent_Kind.KIND_REMOVED) && isDropFor(e, attacker));
        try {
          await pipeline.waitFor(`the block of ${attacker} to expire`, gone, ((res.ttl_s ?? ttlS) + 30) * 1000);
          res.expired = true;
        } catch {
          res.expired = false;
        }
        // nftables set timeouts and the service's own expiry run on their own clocks: allow a second.
        let ok = false;
        for (let i = 0; i < 5 && !ok; i++) {
          ok = await httpOk(lab, host);
          if (!ok) await sleep(500);
        }
        res.reachable_after_expiry = ok;
        log(`${attack}: expired ${res.expired}, attacker reachable again ${ok}`);
      }
    }
    const blocked = new Set(
      pipeline.seen.ruleEvents.filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED && e.rule?.action === Action.ACTION_DROP).map((e) => (e.rule!.srcCidr ?? "").replace(/\/(32|128)$/, "")),
    );
    return {
      attacks: results,
      benign_blocked: benign.filter((a) => blocked.has(a)),
      rules: pipeline.seen.ruleEvents.filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED).length,
      verdicts: pipeline.seen.verdicts.length,
    };
  } finally {
    background.kill("SIGTERM");
    await pipeline.stop();
  }
}
