import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort } from "@vigil/stack";
import { Action, RuleEvent_Kind, type RuleEvent } from "@vigil/proto";
import { Lab, LAB_DIR } from "./lab.js";
import { Pipeline } from "./pipeline.js";
import { labAddress4, labAddress6, type LabHost } from "./topology.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The forged-handshake attack of issue 12 (security review F1, F4), live: the
 * stack runs in the victim's namespace (this process must run there, as the
 * live scenario does), enforcing with nftables; atk2 sends forged handshakes
 * from `sources` spoofed addresses to the victim's HTTP port, while an honest
 * client and an admin-like client keep using HTTP. A control attacker (atk)
 * makes real, completed but odd connections from its own address, before the forgeries when
 * the automatic rules are capped (a full table refuses it too) and after them
 * otherwise (a verified attacker is blocked whatever the forgeries spent).
 */
export interface ForgedOptions {
  prefix: string;
  /** rules.maxAutomaticRules; absent: the default. */
  maxAutomaticRules?: number;
  sources: number;
  /** Connections per spoofed source (pst.minConnections is 5). */
  connections?: number;
  /** First spoofed address (a range no lab host uses; replies die at the lab's gateway). */
  firstSource?: string;
  nftTable: string;
  log?: (msg: string) => void;
}

export interface ClientRecord {
  host: LabHost;
  requests: number;
  failures: number;
}

export interface ForgedReport {
  maxAutomaticRules: number | null;
  forged: { sources: number; packets: number; variants: Record<string, number> };
  /** Most drop rules in force at once: from the rule events, and sampled from the nftables sets. */
  maxRulesInForce: number;
  maxNftElements: number;
  /** Rules added for forged sources, and of those how many say a handshake was completed. */
  forgedRules: number;
  forgedVerified: number;
  /** Rule reasons of the forged sources' rules, counted. */
  reasons: Record<string, number>;
  verdictsOnForged: number;
  /** Distinct forged sources some detector judged. */
  forgedSourcesJudged: number;
  /** Counters scraped from the rules service at the end. */
  metrics: { automaticRefused: number; capped: number; tableFull: number; capTokens: number };
  control: { address: string; blocked: boolean; verified: boolean; reason: string | null; cutOff: boolean | null };
  clients: ClientRecord[];
  durationS: number;
}

const CONTROL: LabHost = "atk";
const SPOOFER: LabHost = "atk2";

function ipv4ToInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function isDrop(e: RuleEvent): boolean {
  return e.rule?.action === Action.ACTION_DROP;
}

/** The most drop rules in force at once over the events (added or updated, until expired or removed). */
function maxInForce(events: readonly RuleEvent[]): number {
  const live = new Set<number>();
  let max = 0;
  for (const e of events) {
    if (!e.rule || !isDrop(e)) continue;
    if (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED) live.add(e.rule.id);
    else live.delete(e.rule.id);
    max = Math.max(max, live.size);
  }
  return max;
}

async function nftElements(table: string): Promise<number> {
  let n = 0;
  for (const set of ["drop4", "drop6"]) {
    try {
      const { stdout } = await run("nft", ["-j", "list", "set", "inet", table, set]);
      const doc = JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
      for (const o of doc.nftables) n += o.set?.elem?.length ?? 0;
    } catch {
      // The table exists once the rules service has started; before that nothing is enforced.
    }
  }
  return n;
}

async function scrape(port: number): Promise<ForgedReport["metrics"]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  // Samples carry the registry's default labels (service, instance): match a name and the labels given.
  const value = (name: string, label = "") => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(label));
    return Number(line?.split(" ").at(-1) ?? 0);
  };
  return {
    automaticRefused: value("vigil_rules_automatic_refused_total"),
    capped: value("vigil_rules_decisions_total", 'outcome="capped"'),
    tableFull: value("vigil_rules_decisions_total", 'outcome="table-full"'),
    capTokens: value("vigil_rules_cap_tokens"),
  };
}

/** A client requesting the victim's HTTP service every 300 ms until stopped. */
function client(lab: Lab, host: LabHost, url: string): { record: ClientRecord; stop(): Promise<void> } {
  const record: ClientRecord = { host, requests: 0, failures: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      record.requests++;
      try {
        await lab.exec(host, ["curl", "-s", "-o", "/dev/null", "--max-time", "2", "-f", url], 10_000);
      } catch {
        record.failures++;
      }
      await sleep(300);
    }
  })();
  return { record, stop: async () => ((running = false), await loop) };
}

export async function runForged(opts: ForgedOptions): Promise<ForgedReport> {
  const log = opts.log ?? (() => undefined);
  const started = Date.now();
  const lab = new Lab({ prefix: opts.prefix });
  const first = opts.firstSource ?? "198.18.0.1";
  const lo = ipv4ToInt(first);
  const forgedAddr = (cidr: string) => {
    const n = ipv4ToInt(cidr.replace(/\/32$/, ""));
    return cidr.includes(":") ? false : n >= lo && n < lo + opts.sources;
  };
  const metricsPort = await freePort();
  const pipeline = new Pipeline({
    rules: {
      enforcer: "nftables",
      dryRun: false,
      nftTable: opts.nftTable,
      // Long enough that nothing expires during the run: every rule made stays in force.
      baseTtlS: 600,
      metrics: { host: "127.0.0.1", port: metricsPort },
      ...(opts.maxAutomaticRules !== undefined ? { maxAutomaticRules: opts.maxAutomaticRules } : {}),
    },
    som: { mergePeriodSeconds: 1 },
  });
  const clients = [client(lab, "c1", `http://${labAddress4("victim")}/`), client(lab, "c3", `http://[${labAddress6("victim")}]/`)];
  let maxNft = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxNft = Math.max(maxNft, await nftElements(opts.nftTable));
      await sleep(250);
    }
  })();
  const control = { address: labAddress4(CONTROL), blocked: false, verified: false, reason: null as string | null, cutOff: null as boolean | null };
  let forged: ForgedReport["forged"] = { sources: 0, packets: 0, variants: {} };
  try {
    await pipeline.start();
    await pipeline.startLiveCapture({ source: "afpacket", interface: "eth0", local: [`${labAddress4("victim")}/32`, `${labAddress6("victim")}/128`], sourceId: `${opts.prefix}/afpacket:eth0` });
    log("stack running");
    await sleep(2000);
    const controlRule = () => pipeline.seen.ruleEvents.find((e) => e.kind === RuleEvent_Kind.KIND_ADDED && isDrop(e) && e.rule!.srcCidr === `${control.address}/32`);
    const runControl = async () => {
      // Real connections from the attacker's own address: each completes its handshake, then sends urgent
      // data and aborts. Once blocked, the rest fail: the loop outlasts the wait.
      const scan = lab.exec(CONTROL, ["timeout", "--signal=INT", "30", "python3", `${LAB_DIR}tools/connect-odd.py`, labAddress4("victim"), "80,22", "200"], 60_000).catch(() => "");
      await pipeline.waitFor(`a block of the control attacker ${control.address}`, () => controlRule() !== undefined, 25_000).catch((err: Error) => log(err.message));
      await scan;
      const rule = controlRule()?.rule;
      control.blocked = !!rule;
      control.reason = rule?.reason ?? null;
      control.verified = /completed handshake/.test(rule?.reason ?? "");
      if (rule) {
        control.cutOff = await lab.exec(CONTROL, ["curl", "-s", "-o", "/dev/null", "--max-time", "2", "-f", `http://${labAddress4("victim")}/`], 10_000).then(() => false, () => true);
      }
      log(`control: blocked ${control.blocked} (${control.reason}), cut off ${control.cutOff}`);
    };
    const capped = opts.maxAutomaticRules !== undefined;
    if (capped) await runControl();
    const out = await lab.exec(SPOOFER, ["python3", `${LAB_DIR}tools/forge.py`, labAddress4("victim"), "80", first, String(opts.sources), String(opts.connections ?? 6)], 120_000);
    forged = JSON.parse(out.trim().split("\n").at(-1)!) as ForgedReport["forged"];
    log(`forged: ${JSON.stringify(forged)}`);
    // Verdicts on the last connections come once pst has judged them: wait for the verdicts to stop.
    let last = -1;
    for (let i = 0; i < 40 && pipeline.seen.verdicts.length !== last; i++) {
      last = pipeline.seen.verdicts.length;
      await sleep(1500);
    }
    if (!capped) await runControl();
    await sleep(500);
  } finally {
    sampling = false;
    await sampler;
    await Promise.all(clients.map((c) => c.stop()));
  }
  try {
    const metrics = await scrape(metricsPort);
    const events = pipeline.seen.ruleEvents;
    const forgedRules = events.filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED && isDrop(e) && forgedAddr(e.rule!.srcCidr));
    const reasons: Record<string, number> = {};
    for (const e of forgedRules) {
      const why = e.rule!.reason.replace(/^.*?; /, "");
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
    return {
      maxAutomaticRules: opts.maxAutomaticRules ?? null,
      forged,
      maxRulesInForce: maxInForce(events),
      maxNftElements: maxNft,
      forgedRules: forgedRules.length,
      forgedVerified: forgedRules.filter((e) => /completed handshake/.test(e.rule!.reason)).length,
      reasons,
      verdictsOnForged: pipeline.seen.verdicts.filter((v) => forgedAddr(v.address)).length,
      forgedSourcesJudged: new Set(pipeline.seen.verdicts.filter((v) => forgedAddr(v.address)).map((v) => v.address)).size,
      metrics,
      control,
      clients: clients.map((c) => c.record),
      durationS: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await pipeline.stop();
    await run("nft", ["delete", "table", "inet", opts.nftTable]).catch(() => undefined);
  }
}
