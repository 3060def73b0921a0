import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort } from "@vigil/stack";
import { Action, RuleEvent_Kind, type RuleEvent } from "@vigil/proto";
import { Lab } from "./lab.js";
import { Pipeline } from "./pipeline.js";
import { labAddress4, labAddress6 } from "./topology.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A blocked host that keeps retrying (security review F9), live: the stack
 * runs in the victim's namespace (this process must run there, as the live
 * scenario does), capturing over AF_PACKET on eth0, which sees packets before
 * nftables drops them. The attacker (atk) SYN-scans the victim with nmap and
 * is blocked; meanwhile and for `retryTtls` TTLs in all it retries ordinary
 * HTTP connections to the victim (curl, a new connection every few hundred
 * ms). Its dropped SYNs reach the detectors, whose verdicts must neither
 * extend the block nor block it again once it ended.
 */
export interface BlockedRetryOptions {
  prefix: string;
  /** rules.baseTtlS: the first block's TTL. */
  ttlS: number;
  /** How long the attacker retries, in TTLs from the start of the scan. */
  retryTtls: number;
  /** Seconds between the attacker's tries (default 0.3). */
  everyS?: number;
  /** Settings merged into pst's section over the scenario's scaled timers. */
  pst?: Record<string, unknown>;
  nftTable: string;
  log?: (msg: string) => void;
}

/** One curl from the attacker: when it started (epoch s) and whether it got a response. */
export interface RetryAttempt {
  t: number;
  ok: boolean;
}

export interface BlockedRetryReport {
  attacker: string;
  ttlS: number;
  retryS: number;
  /** Rule events of drop rules for the attacker, in order. */
  events: { kind: string; ts: number; by: string; id: number; createdAt: number; decidedTs: number; expiresAt: number; offences: number; reason: string }[];
  /** Verdicts naming the attacker: all, and those whose evidence began (capture time) at or after the block's decision. */
  verdicts: number;
  verdictsAfterBlock: number;
  /** Each verdict naming the attacker: its evidence's capture times and when it arrived (epoch s). */
  verdictTimes: { detector: string; firstTs: number; lastTs: number; at: number; label: string }[];
  /** vigil_rules_decisions_total by outcome, scraped at the end. */
  decisions: Record<string, number>;
  attempts: RetryAttempt[];
  scanStart: number;
  durationS: number;
}

const ATTACKER = "atk" as const;

function kindName(k: RuleEvent_Kind): string {
  return RuleEvent_Kind[k]?.replace(/^KIND_/, "").toLowerCase() ?? String(k);
}

async function decisions(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^vigil_rules_decisions_total\{.*outcome="([^"]+)".*\} (\S+)$/.exec(line);
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}

/**
 * The attacker's retry loop, run as one shell in its namespace so the pace does not depend on
 * spawning a process per try here: a new try every `everyS` seconds whether or not the previous one
 * has given up (as users behind one address do), each printing a line "<epoch s> ok|fail".
 */
function retryLoop(lab: Lab, url: string, seconds: number, everyS: number): Promise<RetryAttempt[]> {
  const script = [
    `end=$(( $(date +%s) + ${seconds} ))`,
    'while [ "$(date +%s)" -lt "$end" ]; do',
    "  t=$(date +%s.%N)",
    `  ( if curl -s -o /dev/null -f --connect-timeout 1 --max-time 2 '${url}'; then echo "$t ok"; else echo "$t fail"; fi ) &`,
    `  sleep ${everyS}`,
    "done",
    "wait",
  ].join("\n");
  return lab.exec(ATTACKER, ["sh", "-c", script], (seconds + 30) * 1000).then((out) =>
    out
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [t, r] = l.split(" ");
        return { t: Number(t), ok: r === "ok" };
      })
      .sort((a, b) => a.t - b.t),
  );
}

export async function runBlockedRetry(opts: BlockedRetryOptions): Promise<BlockedRetryReport> {
  const log = opts.log ?? (() => undefined);
  const started = Date.now();
  const lab = new Lab({ prefix: opts.prefix });
  const attacker = labAddress4(ATTACKER);
  const victim = labAddress4("victim");
  const metricsPort = await freePort();
  const pipeline = new Pipeline({
    rules: {
      enforcer: "nftables",
      dryRun: false,
      nftTable: opts.nftTable,
      baseTtlS: opts.ttlS,
      maxTtlS: opts.ttlS * 64,
      // A second detector agreeing on the scan (evidence from before the block) must not lengthen the
      // block either: with the default factor of 4 that would be a legitimate extension, not a renewal.
      agreementTtlFactor: 1,
      metrics: { host: "127.0.0.1", port: metricsPort },
    },
    // pst's timers scaled with the TTL (defaults: TTL 600 s, window 60 s, idle 120 s), so the dropped
    // retries reach verdicts while the run lasts: a half-open connection (a dropped SYN) is judged 2 s after
    // it, in windows of 2 s. The renewal of a verdict while an attack goes on (5 s by default) stays far
    // below the idle timeout, as with the defaults: idle-judged connections never look fresh enough for it.
    // The SOM reports per second.
    pst: { idleTimeoutSeconds: 2, windowSeconds: 2, verdictUpdateSeconds: 0.1, lingerSeconds: 1, ...opts.pst },
    som: { mergePeriodSeconds: 1 },
  });
  const retryS = opts.ttlS * opts.retryTtls;
  try {
    await pipeline.start();
    await pipeline.startLiveCapture({ source: "afpacket", interface: "eth0", local: [`${victim}/32`, `${labAddress6("victim")}/128`], sourceId: `${opts.prefix}/afpacket:eth0` });
    log("stack running");
    await sleep(2000);
    const scanStart = Date.now() / 1000;
    // Bounded: the scan itself is over in seconds, the rest of the run is only the attacker's retries.
    const scan = lab
      .exec(ATTACKER, ["timeout", "--signal=INT", "8", "nmap", "-n", "-Pn", "--max-retries", "1", "-sS", "-T4", "--top-ports", "1000", victim], 30_000)
      .catch(() => "");
    const retries = retryLoop(lab, `http://${victim}/`, retryS, opts.everyS ?? 0.3);
    const isAttackerDrop = (e: RuleEvent) => e.rule?.action === Action.ACTION_DROP && e.rule.srcCidr === `${attacker}/32`;
    await pipeline
      .waitFor(`a block of ${attacker} after its scan`, () => pipeline.seen.ruleEvents.some((e) => e.kind === RuleEvent_Kind.KIND_ADDED && isAttackerDrop(e)), 20_000)
      .catch((err: Error) => log(err.message));
    log("attacker blocked (or not: see the report); it keeps retrying");
    await scan;
    const attempts = await retries;
    // Verdicts on the last retries come once pst has judged them (idle timeout): wait for them to stop.
    let last = -1;
    for (let i = 0; i < 10 && pipeline.seen.verdicts.length !== last; i++) {
      last = pipeline.seen.verdicts.length;
      await sleep(2000);
    }
    const events = pipeline.seen.ruleEvents.filter(isAttackerDrop);
    const first = events.find((e) => e.kind === RuleEvent_Kind.KIND_ADDED)?.rule;
    const seen = pipeline.seen;
    const mine = seen.verdicts.filter((v) => v.address === attacker);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const verdictTimes = seen.verdicts.flatMap((v, i) =>
      v.address === attacker ? [{ detector: v.detector, firstTs: r3(v.firstTs), lastTs: r3(v.lastTs), at: r3(seen.verdictAt[i]!), label: v.label }] : [],
    );
    return {
      attacker,
      ttlS: opts.ttlS,
      retryS,
      events: events.map((e) => ({
        kind: kindName(e.kind),
        ts: e.ts,
        by: e.by,
        id: e.rule!.id,
        createdAt: e.rule!.createdAt,
        decidedTs: e.rule!.decidedTs,
        expiresAt: e.rule!.expiresAt,
        offences: e.rule!.offences,
        reason: e.rule!.reason,
      })),
      verdicts: mine.length,
      // Evidence that reaches into the block: its last packets were seen while the attacker was blocked.
      verdictsAfterBlock: first ? mine.filter((v) => (v.lastTs || v.firstTs) >= first.decidedTs).length : 0,
      verdictTimes,
      decisions: await decisions(metricsPort),
      attempts,
      scanStart,
      durationS: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await pipeline.stop();
    await run("nft", ["delete", "table", "inet", opts.nftTable]).catch(() => undefined);
  }
}
