import { spawn, type ChildProcess } from "node:child_process";
import { Action, RuleEvent_Kind, type RuleEvent } from "@vigil/proto";
import { Lab, LAB_SCRIPT } from "./lab.js";
import { Pipeline, type Detector } from "./pipeline.js";
import { ATTACK_HOSTS, BENIGN_HOSTS, labAddress4, labAddress6, labMac, type LabHost } from "./topology.js";

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
  /** In order (default scan, flood); see LiveAttackSpec for the hosts. */
  attacks?: LiveAttackSpec[];
  keep?: boolean;
  /** Log level of the services (their logs stay in the work directory with `keep`). */
  logLevel?: string;
  /** Also wait for each block to expire and check the attacker gets through again (default true). */
  expiry?: boolean;
  log?: (msg: string) => void;
}

export type LiveAttack = "scan" | "flood";
/**
 * An attack and the host it comes from: "flood@atk". By default the scan comes from atk and the
 * flood from atk2; an attack from a host blocked earlier in the run is a repeat offence.
 */
export type LiveAttackSpec = LiveAttack | `${LiveAttack}@${LabHost}`;

export function parseAttackSpec(spec: string): { attack: LiveAttack; host: LabHost } {
  const [attack, host = attack === "scan" ? "atk" : "atk2"] = spec.split("@");
  if (attack !== "scan" && attack !== "flood") throw Object.assign(new Error(`unknown attack "${attack}" in "${spec}" (scan or flood)`), { code: "VIGIL_ERR_USAGE" });
  if (!(ATTACK_HOSTS as string[]).includes(host)) throw Object.assign(new Error(`unknown attacker host "${host}" in "${spec}" (${ATTACK_HOSTS.join(" or ")})`), { code: "VIGIL_ERR_USAGE" });
  return { attack, host: host as LabHost };
}

export interface LiveAttackResult {
  attack: LiveAttack;
  host: LabHost;
  /** The host had been blocked earlier in the run. */
  repeat: boolean;
  /**
   * A block of the attacker was already in force when its first packet arrived (a late verdict
   * about an earlier attack): the block measured is then not this attack's.
   */
  in_force_at_start: boolean | null;
  /** Wall-clock seconds from the attacker's first packet (seen on the victim's eth0) to the rule's creation. */
  block_s: number | null;
  blocked: boolean;
  /** After the block: the attacker's HTTP request failed, the benign clients' succeeded. */
  attacker_cut_off: boolean | null;
  benign_reachable: boolean | null;
  /** The rule expired after its TTL and the attacker could connect again. */
  expired: boolean | null;
  reachable_after_expiry: boolean | null;
  /** Seconds the attacker's first HTTP request after the expiry event took to connect (null: failed). */
  connect_s_after_expiry: number | null;
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

/** Seconds to connect for an HTTP request from the host to the victim, or null when it failed. */
async function httpConnect(lab: Lab, host: LabHost, why?: (reason: string) => void): Promise<number | null> {
  const t = performance.now();
  try {
    const out = await lab.exec(host, ["curl", "-s", "-S", "-o", "/dev/null", "--max-time", "2", "-f", "-w", "%{time_connect}", `http://${labAddress4("victim")}/`], 10_000);
    const s = Number(out.trim());
    return Number.isFinite(s) ? s : null;
  } catch (err) {
    why?.(`${((performance.now() - t) / 1000).toFixed(2)} s: ${(err as Error).message.trim().split("\n").slice(-2).join(" / ")}`);
    return null;
  }
}

/** Whether the rule events up to `t` (seconds) leave a drop rule of the address in force at `t`. */
export function blockInForceAt(events: readonly RuleEvent[], address: string, t: number): boolean {
  let last: RuleEvent | undefined;
  for (const e of events) if (isDropFor(e, address) && e.ts <= t) last = e;
  if (!last?.rule || (last.kind !== RuleEvent_Kind.KIND_ADDED && last.kind !== RuleEvent_Kind.KIND_UPDATED)) return false;
  return last.rule.expiresAt === 0 || last.rule.expiresAt > t;
}

function isDropFor(e: RuleEvent, address: string): boolean {
  const cidr = e.rule?.srcCidr ?? "";
  return e.rule?.action === Action.ACTION_DROP && (cidr === address || cidr === `${address}/32` || cidr === `${address}/128`);
}

export async function runLive(opts: LiveOptions): Promise<LiveReport> {
  const log = opts.log ?? (() => undefined);
  const lab = new Lab({ prefix: opts.prefix });
  const ttlS = opts.ttlS ?? 8;
  const attacks = (opts.attacks ?? ["scan", "flood"]).map(parseAttackSpec);
  const benign = BENIGN_HOSTS.flatMap((h) => [labAddress4(h), labAddress6(h)]);
  const pipeline = new Pipeline({
    detectors: opts.detectors,
    keep: opts.keep,
    logLevel: opts.logLevel,
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
    const blockedHosts = new Set<LabHost>();
    for (const { attack, host } of attacks) {
      const res: LiveAttackResult = { attack, host, repeat: blockedHosts.has(host), in_force_at_start: null, connect_s_after_expiry: null, block_s: null, blocked: false, attacker_cut_off: null, benign_reachable: null, expired: null, reachable_after_expiry: null, ttl_s: null, verdict_s: {}, rule_detector: null };
      results.push(res);
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
          ? host === "atk"
            ? lab.attack("scan-syn")
            : lab.exec(host, ["timeout", "--signal=INT", "150", "nmap", "-n", "-Pn", "--max-retries", "1", "-sS", "-T4", "--top-ports", "1000", labAddress4("victim")], 200_000)
          : lab.exec(host, ["timeout", "--signal=INT", "20", "hping3", "-q", "-S", "-p", "80", "-i", "u250", "-c", "20000", labAddress4("victim")], 40_000);
      const toolDone = tool.catch(() => undefined);
      try {
        await pipeline.waitFor(`a block of ${attacker} after the ${attack}`, () => added() !== undefined, 15_000);
      } catch (err) {
        log(`${attack}: ${(err as Error).message}`);
      }
      first.stop();
      const t0 = await first.ts;
      res.in_force_at_start = t0 === null ? null : blockInForceAt(pipeline.seen.ruleEvents, attacker, t0);
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
        blockedHosts.add(host);
        res.block_s = t0 === null ? null : Math.round((ev.rule.createdAt - t0) * 1000) / 1000;
        res.ttl_s = ev.rule.expiresAt > 0 ? Math.round(ev.rule.expiresAt - ev.rule.createdAt) : null;
        log(`${attack}: ${attacker} blocked ${res.block_s} s after its first packet (ttl ${res.ttl_s} s${res.in_force_at_start ? "; a block was already in force at the first packet" : ""})`);
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
        // Once the expiry is announced, the first try must get through at once: a SYN still dropped
        // shows as a connect time of a second or more (the retransmission).
        const eventsAtExpiry = pipeline.seen.ruleEvents.length;
        const probe = await httpConnect(lab, host, (why) => {
          // A late verdict about this attack may have blocked the attacker again meanwhile.
          const since = pipeline.seen.ruleEvents.slice(eventsAtExpiry).filter((e) => isDropFor(e, attacker));
          const events = since.map((e) => `${RuleEvent_Kind[e.kind]} at ${e.ts.toFixed(3)}`).join(", ") || "none";
          log(`${attack}: the first request after the expiry event failed after ${why}; rule events of ${attacker} since: ${events}`);
        });
        res.connect_s_after_expiry = probe;
        let ok = probe !== null;
        for (let i = 0; i < 4 && !ok; i++) {
          await sleep(500);
          ok = (await httpConnect(lab, host)) !== null;
        }
        res.reachable_after_expiry = ok;
        log(`${attack}: expired ${res.expired}, attacker reachable again ${ok} (first request after the expiry event connected in ${probe ?? "-"} s)`);
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
