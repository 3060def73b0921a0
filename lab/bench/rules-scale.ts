// bench:pipeline, part 3: a million active rules (VIGIL_BENCH_RULES). The
// store is filled directly through JetStream with the records the service
// writes (a detector block: the rule, its "added" history entry and one PST
// verdict); then the real rules service daemon starts on it (dry-run) and the
// time to "rules loaded from the store" and its RSS are taken; then the
// nftables enforcer reconciles the set into an empty scratch namespace and
// again into the full one, and its bulk load is compared with `nft -f` of the
// same set in nft syntax.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connectBus } from "@vigil/bus";
import { Action, Origin, Rule, Verdict } from "@vigil/proto";
import { spawnService, startNatsServer, stackConfig, writeStackConfig } from "@vigil/stack";
import { canonicalRule, NftablesEnforcer } from "../../services/rules/dist/index.js";
import { encodeStored } from "../../services/rules/dist/store.js";

const RULES = Number(process.env.VIGIL_BENCH_RULES ?? 1_000_000);
const BUCKET = "bench_scale";
const log = (msg: string) => process.stderr.write(`bench:pipeline: scale: ${msg}\n`);
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** 10.0.0.0/8 then 11.0.0.0/8 ...: distinct host addresses. */
const addr = (i: number) => `${10 + (i >> 24)}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

function detectorRule(i: number, now: number): Rule {
  return canonicalRule(
    Rule.fromPartial({
      action: Action.ACTION_DROP,
      origin: Origin.ORIGIN_DETECTOR,
      srcCidr: `${addr(i)}/32`,
      detector: "pst",
      reason: "pst: anomalous TCP flag sequences",
      createdBy: "pst",
      createdAt: now,
      expiresAt: now + 3600,
      decidedTs: now,
      verdictIds: [`bench-${i}`],
    }),
  ).rule;
}

function verdict(i: number, now: number): Verdict {
  const address = addr(i);
  return Verdict.fromPartial({
    id: `bench-${i}`, detector: "pst", instance: "bench", sourceId: "bench", address, score: 5, threshold: 3,
    connections: 1, packets: 10, firstTs: now - 5, lastTs: now,
    pst: { connections: [{ client: address, clientPort: 40000, server: "10.0.0.1", serverPort: 22, symbols: "C:S S:SA C:R" }] },
  });
}

async function fill(url: string, rules: Rule[], now: number): Promise<number> {
  const nc = await connectBus({ servers: [url], name: "bench-scale-fill" });
  const js = jetstream(nc);
  // The bucket as the service makes it (RuleStore.open), so the service opens it as it is.
  const { Kvm } = await import("@nats-io/kv");
  const { StorageType } = await import("@nats-io/jetstream");
  await new Kvm(nc).create(BUCKET, { storage: StorageType.File, history: 1 });
  const t0 = performance.now();
  const window = 4096;
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < rules.length; i++) {
    const data = encodeStored({ rule: rules[i]!, history: [{ ts: now, event: "added", by: "pst", why: "bench", verdictIds: [`bench-${i}`] }], verdicts: [verdict(i, now)] });
    const p = js.publish(`$KV.${BUCKET}.rule.${rules[i]!.id}`, data).then(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await nc.close();
  return (performance.now() - t0) / 1000;
}

/** CPU seconds (user and system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Starts the rules daemon on the filled bucket; seconds (and CPU seconds) to its "rules loaded from the store", and its RSS then. */
async function restore(url: string, dir: string): Promise<{ restore_s: number; cpu_s: number; loaded: number; rss_mb: number; hwm_mb: number }> {
  const cfg = stackConfig({ natsUrl: url, stateDir: join(dir, "state"), overrides: { rules: { bucket: BUCKET, maxAutomaticRules: 2 * RULES } } });
  const file = writeStackConfig(join(dir, "vigil.yaml"), cfg);
  const logFile = join(dir, "rules.log");
  const t0 = Date.now();
  const profDir = process.env.VIGIL_BENCH_CPU_PROF;
  const nodeArgs = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}/scale`] : undefined;
  const svc = spawnService("rules", { configFile: file, env: { VIGIL_LOG_LEVEL: "info" }, log: { file: logFile }, nodeArgs });
  try {
    for (;;) {
      const exited = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r(null), 200))]);
      if (exited) throw new Error(`the rules service exited before loading: ${readFileSync(logFile, "utf8").slice(-1500)}`);
      const rec = readFileSync(logFile, "utf8")
        .split("\n")
        .map((l) => { try { return JSON.parse(l) as { msg?: string; time?: number; rules?: number }; } catch { return null; } })
        .find((r) => r?.msg === "rules loaded from the store");
      if (rec) {
        // Wall time depends on what else runs; its CPU time (read within the 200 ms poll) much less.
        const cpuS = cpuSeconds(svc.child.pid!);
        // RSS once it has also handed the rules to its enforcer and settled.
        await new Promise((r) => setTimeout(r, 3000));
        const status = readFileSync(`/proc/${svc.child.pid}/status`, "utf8");
        const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)![1]) / 1024;
        return { restore_s: r3((rec.time! - t0) / 1000), cpu_s: cpuS, loaded: rec.rules ?? 0, rss_mb: +kb("VmRSS").toFixed(1), hwm_mb: +kb("VmHWM").toFixed(1) };
      }
      if (Date.now() - t0 > 900_000) throw new Error("the rules service did not load its rules within 15 minutes");
    }
  } finally {
    await svc.stop(30_000);
  }
}

function netns(name: string): string {
  const n = `vgl-scale-${name}-${process.pid}`;
  execFileSync("ip", ["netns", "add", n]);
  return n;
}

async function nftables(rules: Rule[], dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const spaces: string[] = [];
  try {
    // Full reconcile: into an empty table (everything added), then against the full one (everything kept).
    const a = netns("rec");
    spaces.push(a);
    const enf = new NftablesEnforcer({ netns: a });
    let t = performance.now();
    const first = await enf.reconcile(rules);
    out.reconcile_empty_s = r3((performance.now() - t) / 1000);
    t = performance.now();
    const second = await enf.reconcile(rules);
    out.reconcile_s = r3((performance.now() - t) / 1000);
    log(`reconcile into an empty table ${out.reconcile_empty_s} s (${first.added} added), of the full table ${out.reconcile_s} s (${second.kept} kept, ${second.replaced} replaced)`);
    if (first.added !== rules.length || second.kept + second.replaced !== rules.length) throw new Error(`reconcile: ${JSON.stringify({ first, second })}`);
    await enf.close();
    // Bulk load: the enforcer's transaction against nft -f of the same set, each in a fresh namespace.
    const b = netns("bulk");
    spaces.push(b);
    const bulk = new NftablesEnforcer({ netns: b });
    await bulk.start();
    t = performance.now();
    await bulk.apply(rules, []);
    out.bulk_enforcer_s = r3((performance.now() - t) / 1000);
    await bulk.close();
    const file = join(dir, "set.nft");
    const lines = ["table inet vigil {", "  set drop4 { type ipv4_addr; flags timeout; elements = {"];
    lines.push(rules.map((r) => `    ${r.srcCidr.split("/")[0]} timeout 3600s`).join(",\n"));
    lines.push("  } }", "}");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const c = netns("nft");
    spaces.push(c);
    t = performance.now();
    execFileSync("ip", ["netns", "exec", c, "nft", "-f", file]);
    out.bulk_nft_s = r3((performance.now() - t) / 1000);
    out.bulk_ratio_to_nft = +(out.bulk_enforcer_s / out.bulk_nft_s).toFixed(2);
    log(`bulk load: enforcer ${out.bulk_enforcer_s} s, nft -f ${out.bulk_nft_s} s`);
  } finally {
    for (const n of spaces) {
      try {
        execFileSync("ip", ["netns", "del", n]);
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

export async function scalePart(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-bench-scale-"));
  const nats = await startNatsServer({ store: join(dir, "nats"), log: { file: join(dir, "nats-server.log") } });
  try {
    const now = Math.floor(Date.now() / 1000);
    const rules = Array.from({ length: RULES }, (_, i) => detectorRule(i, now));
    // VIGIL_BENCH_SCALE_STORE=0: the nftables half only.
    const store = process.env.VIGIL_BENCH_SCALE_STORE !== "0";
    const fillS = store ? await fill(nats.url, rules, now) : 0;
    if (store) log(`${RULES} rules stored in ${fillS.toFixed(1)} s`);
    const r = store ? await restore(nats.url, dir) : { restore_s: null, cpu_s: null, loaded: null, rss_mb: null, hwm_mb: null };
    if (store) log(`restore ${r.restore_s} s, ${r.cpu_s} CPU-s (${r.loaded} rules), RSS ${r.rss_mb} MB (peak ${r.hwm_mb} MB)`);
    // VIGIL_BENCH_SCALE_NFT=0: the store and the service only (no namespaces).
    const nft = process.env.VIGIL_BENCH_SCALE_NFT === "0" ? {} : await nftables(rules, dir);
    return {
      rules: RULES,
      store_fill_s: store ? r3(fillS) : null,
      rules_loaded: r.loaded,
      rules_restore_s: r.restore_s,
      rules_restore_cpu_s: r.cpu_s,
      rules_rss_mb: r.rss_mb,
      rules_peak_rss_mb: r.hwm_mb,
      ...nft,
      targets: { rules_rss_mb: 1024, rules_restore_s: 30, bulk_ratio_to_nft: 2 },
    };
  } finally {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
