// bench:pipeline, part 2, inside the lab victim's namespace (live-part.ts
// starts it there): the stack captures eth0 with AF_PACKET while trafgen in
// the attacker's namespace sends TCP SYNs to the victim at rising rates, 10 s
// each; tcpdump -w /dev/null gets the same rates first, alone. Prints one JSON
// line: per rate the frames sent, the drops of every stage and the frames
// judged, and the seconds from the flood's start to the attacker's block.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RuleEvent_Kind } from "@vigil/proto";
import { Pipeline } from "../dist/pipeline.js";

const prefix = process.env.VIGIL_BENCH_LAB ?? "vbpl";
const RATES = (process.env.VIGIL_BENCH_RATES ?? "5000,10000,20000,50000,100000,200000").split(",").map(Number);
const SECONDS = Number(process.env.VIGIL_BENCH_LIVE_S ?? 10);
const VICTIM = "10.77.0.10";
const ATTACKER = "10.77.0.66";
const log = (msg: string) => process.stderr.write(`bench:pipeline: live: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** One SYN per packet from the attacker to the victim's web server, random source port and sequence. */
function trafgenConfig(dir: string): string {
  const file = join(dir, "syn.trafgen");
  writeFileSync(
    file,
    `{\n  eth(da=02:77:00:00:00:0a, sa=02:77:00:00:00:42),\n  ipv4(sa=${ATTACKER}, da=${VICTIM}, ttl=64),\n  tcp(sp=drnd(), dp=80, seq=drnd(), syn, win=64240)\n}\n`,
  );
  return file;
}

/**
 * Sends `rate` packets a second for SECONDS from the attacker's namespace, on
 * one CPU; resolves with the packets sent and the rate reached (a loaded
 * machine may not reach the asked one).
 */
function flood(conf: string, rate: number): Promise<{ sent: number; pps: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn("ip", ["netns", "exec", `${prefix}-atk`, "trafgen", "-o", "eth0", "-i", conf, "-b", `${rate}pps`, "-n", String(rate * SECONDS), "-P", "1", "-C"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("error", reject);
    p.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`trafgen exited ${code}: ${out.slice(-500)}`));
      const m = /(\d+) packets outgoing/.exec(out);
      const sent = m ? Number(m[1]) : NaN;
      resolve({ sent, pps: Math.round(sent / ((performance.now() - t0) / 1000)) });
    });
  });
}

/** tcpdump -w /dev/null on eth0 during one flood: packets it received and the kernel dropped. */
async function tcpdumpTrial(conf: string, rate: number): Promise<{ rate: number; sent: number; sent_pps: number; received: number; dropped: number }> {
  const td = spawn("tcpdump", ["-i", "eth0", "-n", "-w", "/dev/null"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  td.stderr.on("data", (d) => (err += d));
  await sleep(1000);
  const { sent, pps } = await flood(conf, rate);
  await sleep(500);
  td.kill("SIGINT");
  await new Promise((r) => td.once("exit", r));
  const num = (re: RegExp) => Number(re.exec(err)?.[1] ?? NaN);
  return { rate, sent, sent_pps: pps, received: num(/(\d+) packets received by filter/), dropped: num(/(\d+) packets dropped by kernel/) };
}

/** Sums every sample of the named metrics from a service's /metrics. */
async function scrape(url: string, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m && m[1]! in out) out[m[1]!]! += Number(m[2]);
  }
  return out;
}

function metricsUrl(workDir: string, name: string): string {
  for (const line of readFileSync(join(workDir, `${name}.log`), "utf8").split("\n")) {
    try {
      const rec = JSON.parse(line) as { msg?: string; url?: string };
      if (rec.msg === "metrics listening" && rec.url) return rec.url.replace(/\/metrics$/, "");
    } catch {
      /* not a record */
    }
  }
  throw new Error(`${name} did not log its metrics address`);
}

const CAPTURE = ["vigil_capture_frames_captured_total", "vigil_capture_ring_drops_total", "vigil_capture_frames_dropped_total", "vigil_capture_frames_published_total"];

async function main(): Promise<void> {
  const pipeline = new Pipeline({ logLevel: "info", rules: { baseTtlS: 3, maxTtlS: 6, offenceMemoryS: 1 }, som: { mergePeriodSeconds: 1 } });
  const conf = trafgenConfig(pipeline.workDir);
  const tcpdump = [];
  const stack = [];
  try {
    for (const rate of RATES) {
      const t = await tcpdumpTrial(conf, rate);
      log(`tcpdump at ${rate} pps: sent ${t.sent}, received ${t.received}, dropped ${t.dropped}`);
      tcpdump.push(t);
    }
    await pipeline.start();
    await pipeline.startLiveCapture({ source: "afpacket", interface: "eth0", local: [`${VICTIM}/32`, "fd77::10/128"], sourceId: `${prefix}/afpacket:eth0` });
    const urls = { capture: metricsUrl(pipeline.workDir, "capture-live"), pst: metricsUrl(pipeline.workDir, "pst"), som: metricsUrl(pipeline.workDir, "som") };
    const all = async () => ({
      ...(await scrape(urls.capture, CAPTURE)),
      ...(await scrape(urls.pst, ["vigil_pst_frames_total"])),
      ...(await scrape(urls.som, ["vigil_som_frames_total"])),
    });
    const blockAfter = (from: number) =>
      pipeline.seen.ruleEvents.slice(from).find((e) => (e.kind === RuleEvent_Kind.KIND_ADDED || e.kind === RuleEvent_Kind.KIND_UPDATED) && e.rule?.srcCidr === `${ATTACKER}/32`);
    const inForce = () => {
      const last = pipeline.seen.ruleEvents.filter((e) => e.rule?.srcCidr === `${ATTACKER}/32`).at(-1);
      return !!last?.rule && last.kind !== RuleEvent_Kind.KIND_REMOVED && last.kind !== RuleEvent_Kind.KIND_EXPIRED && (last.rule.expiresAt === 0 || last.rule.expiresAt > Date.now() / 1000);
    };
    for (const rate of RATES) {
      await pipeline.waitFor("no block of the attacker in force", () => !inForce(), 60_000).catch(() => log("a block was still in force at the start"));
      const before = await all();
      const events = pipeline.seen.ruleEvents.length;
      const t0 = Date.now() / 1000;
      const { sent, pps } = await flood(conf, rate);
      // Let the detectors take what is queued (an overloaded one keeps working after the flood).
      let after = await all();
      for (let i = 0; i < 30; i++) {
        await sleep(1000);
        const next = await all();
        const settled = next.vigil_pst_frames_total === after.vigil_pst_frames_total && next.vigil_som_frames_total === after.vigil_som_frames_total;
        after = next;
        if (settled) break;
      }
      const d = (k: string) => after[k]! - before[k]!;
      const published = d("vigil_capture_frames_published_total");
      const ev = blockAfter(events);
      const row = {
        rate,
        sent,
        sent_pps: pps,
        captured: d("vigil_capture_frames_captured_total"),
        ring_drops: d("vigil_capture_ring_drops_total"),
        capture_drops: d("vigil_capture_frames_dropped_total"),
        published,
        // Published but never judged: lost in NATS (slow consumer) or a detector.
        bus_drops: { pst: published - d("vigil_pst_frames_total"), som: published - d("vigil_som_frames_total") },
        judged: { pst: d("vigil_pst_frames_total"), som: d("vigil_som_frames_total") },
        flood_verdict_s: ev?.rule ? r3(ev.rule.createdAt - t0) : null,
      };
      log(JSON.stringify(row));
      stack.push(row);
    }
  } finally {
    await pipeline.stop();
  }
  // Rates as reached: a loaded machine's generator may fall short of the asked rate.
  const lossless = (rows: { sent_pps: number }[], ok: (i: number) => boolean) => Math.max(0, ...rows.filter((_, i) => ok(i)).map((r) => r.sent_pps));
  const stackOk = (i: number) => {
    const r = stack[i]!;
    return r.ring_drops === 0 && r.capture_drops === 0 && r.bus_drops.pst <= 0 && r.bus_drops.som <= 0;
  };
  const liveMax = lossless(stack, stackOk);
  const tdMax = lossless(tcpdump, (i) => tcpdump[i]!.dropped === 0);
  process.stdout.write(
    `${JSON.stringify({
      seconds_per_rate: SECONDS,
      generator: "trafgen, one CPU, TCP SYN to port 80 from one attacker",
      tcpdump,
      stack,
      live_max_lossless_pps: liveMax,
      tcpdump_max_lossless_pps: tdMax,
      live_ratio_to_tcpdump: tdMax ? +(liveMax / tdMax).toFixed(2) : null,
      flood_verdict_s: stack.find((r) => r.sent_pps === liveMax)?.flood_verdict_s ?? null,
    })}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`bench:pipeline: live: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
